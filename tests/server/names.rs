//! Usernames over real sockets: what is refused (1008, with the words the
//! join screen shows) and when two spellings are one name.

use crate::support::*;

/// `name` as a query value: every byte outside the unreserved set
/// percent-encoded, so spaces, `&` and non-ASCII reach the server intact.
fn query(name: &str) -> String {
    let mut out = String::from("username=");
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Connects as `name` and returns the close code and reason it is refused
/// with; fails if it is let in.
async fn refused(server: &Server, name: &str) -> (u16, String) {
    let mut socket = server.connect(&query(name)).await;
    match next_frame(&mut socket).await {
        Frame::Closed(Some(close)) => close,
        other => panic!("{name:?} was let in: {other:?}"),
    }
}

#[tokio::test]
async fn a_name_in_another_case_is_taken() {
    let server = Server::start().await;
    let mut alice = server.connect(&query("Alice")).await;
    expect_users(&mut alice, &["Alice"]).await;
    for same in ["alice", "ALICE", "aLiCe"] {
        assert_eq!(
            refused(&server, same).await,
            (1008, format!("Username {same} is already taken"))
        );
    }
    // The holder is unaffected.
    say(&mut alice, "still me").await;
    expect_event(&mut alice, "send-message", |e| {
        e["message"] == "still me" && e["username"] == "Alice"
    })
    .await;
}

#[tokio::test]
async fn a_fullwidth_or_decomposed_spelling_is_taken_too() {
    let server = Server::start().await;
    let mut alice = server.connect(&query("alice")).await;
    let mut zoe = server.connect(&query("Zoë")).await;
    expect_users(&mut alice, &["alice", "Zoë"]).await;
    // NFKC folds the fullwidth letters; composition makes e + U+0308 an ë.
    // The reason names the refused spelling, as typed.
    for same in ["Ａlice", "ａｌｉｃｅ", "zoe\u{308}"] {
        assert_eq!(
            refused(&server, same).await,
            (1008, format!("Username {same} is already taken"))
        );
    }
    expect_users(&mut zoe, &["alice", "Zoë"]).await;
}

#[tokio::test]
async fn a_name_is_one_name_per_room_and_free_again_once_its_holder_leaves() {
    let server = Server::start().await;
    let mut alice = server.connect(&query("Alice")).await;
    expect_users(&mut alice, &["Alice"]).await;
    // Another room is another set of names.
    let mut elsewhere = server
        .connect(&format!("{}&room=other", query("alice")))
        .await;
    expect_users(&mut elsewhere, &["alice"]).await;

    alice.close(None).await.expect("close");
    server.wait_for_clients(1).await;
    let mut again = server.connect(&query("ALICE")).await;
    expect_users(&mut again, &["ALICE"]).await;
}

#[tokio::test]
async fn surrounding_spaces_are_trimmed_before_names_are_shown_or_compared() {
    let server = Server::start().await;
    let mut bob = server.connect(&query("  bob\u{3000}")).await;
    assert_eq!(
        next_text(&mut bob).await,
        r#"{"event":"update-users","usernames":["bob"]}"#
    );
    assert_eq!(
        refused(&server, " Bob ").await,
        (1008, "Username Bob is already taken".to_string())
    );
}

#[tokio::test]
async fn the_user_list_is_sorted_regardless_of_case() {
    let server = Server::start().await;
    let mut bob = server.connect(&query("bob")).await;
    let _zed = server.connect(&query("Zed")).await;
    let _carol = server.connect(&query("Carol")).await;
    expect_users(&mut bob, &["bob", "Carol", "Zed"]).await;
}

#[tokio::test]
async fn names_over_32_characters_or_all_whitespace_are_refused() {
    let server = Server::start().await;
    let limit = "Username must be at most 32 characters".to_string();
    assert_eq!(
        refused(&server, &"x".repeat(33)).await,
        (1008, limit.clone())
    );
    assert_eq!(refused(&server, &"é".repeat(33)).await, (1008, limit));
    // 32 characters (of 4 bytes each) are fine.
    let mut max = server.connect(&query(&"😀".repeat(32))).await;
    expect_event(&mut max, "update-users", |_| true).await;

    for blank in [" ", "\t \u{3000}\u{A0}", "\u{2003}"] {
        assert_eq!(
            refused(&server, blank).await,
            (1008, "Username must not be empty".to_string()),
            "{blank:?}"
        );
    }
}

#[tokio::test]
async fn invisible_direction_changing_and_control_characters_are_refused_by_code_point() {
    let server = Server::start().await;
    let invisible = "Username must not contain invisible or direction-changing characters";
    for (name, code) in [
        ("\u{202E}ecila", "U+202E"),
        ("ali\u{200B}ce", "U+200B"),
        ("alice\u{200D}", "U+200D"),
        ("\u{3164}", "U+3164"),
        ("bob\u{E0041}", "U+E0041"),
    ] {
        assert_eq!(
            refused(&server, name).await,
            (1008, format!("{invisible} ({code})")),
            "{name:?}"
        );
    }
    assert_eq!(
        refused(&server, "a\u{1B}[31mb").await,
        (
            1008,
            "Username must not contain control characters (U+001B)".to_string()
        )
    );
    assert_eq!(
        refused(&server, "x\u{E000}").await,
        (
            1008,
            "Username must not contain private-use characters (U+E000)".to_string()
        )
    );
}

#[tokio::test]
async fn a_taken_long_name_still_gets_the_whole_sentence() {
    let server = Server::start().await;
    let long = "😀".repeat(32);
    let mut holder = server.connect(&query(&long)).await;
    expect_event(&mut holder, "update-users", |_| true).await;
    let (code, reason) = refused(&server, &long).await;
    assert_eq!(code, 1008);
    assert!(reason.len() <= 123, "{} bytes", reason.len());
    assert!(reason.starts_with("Username 😀😀"), "{reason}");
    assert!(reason.ends_with("… is already taken"), "{reason}");
}
