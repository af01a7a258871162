//! The chat protocol as a client sees it.

use serde_json::Value;

use crate::support::*;

fn ids(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["id"].as_u64().expect("numeric id"))
        .collect()
}

#[tokio::test]
async fn a_joiner_gets_the_user_list_at_once_and_others_see_the_join() {
    let server = Server::start().await;
    let mut alice = server.join("alice").await;
    assert_eq!(
        next_text(&mut alice).await,
        r#"{"event":"update-users","usernames":["alice"]}"#
    );
    let mut bob = server.join("bob").await;
    assert_eq!(
        next_text(&mut bob).await,
        r#"{"event":"update-users","usernames":["alice","bob"]}"#
    );
    expect_users(&mut alice, &["alice", "bob"]).await;
}

#[tokio::test]
async fn messages_reach_everyone_including_the_sender_in_id_order() {
    let server = Server::start().await;
    let mut sockets = Vec::new();
    for name in ["alice", "bob", "carol"] {
        sockets.push(server.join(name).await);
    }
    for socket in &mut sockets {
        expect_users(socket, &["alice", "bob", "carol"]).await;
    }
    say(&mut sockets[0], "one").await;
    say(&mut sockets[1], "two").await;
    say(&mut sockets[0], "three").await;

    for socket in &mut sockets {
        let mut got = Vec::new();
        while got.len() < 3 {
            got.push(expect_event(socket, "send-message", |_| true).await);
        }
        let texts: Vec<_> = got.iter().map(|e| e["message"].as_str().unwrap()).collect();
        let authors: Vec<_> = got
            .iter()
            .map(|e| e["username"].as_str().unwrap())
            .collect();
        // bob's message may land between alice's two, but alice's keep their order.
        let alices: Vec<&str> = texts.iter().copied().filter(|t| *t != "two").collect();
        assert_eq!(alices, ["one", "three"]);
        assert!(texts.contains(&"two"));
        for (text, author) in texts.iter().zip(&authors) {
            assert_eq!(*author, if *text == "two" { "bob" } else { "alice" });
        }
        let ids = ids(&got);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
        for event in &got {
            let ts = event["ts"].as_str().expect("ts");
            // RFC 3339, UTC, milliseconds: 2026-11-23T19:30:00.123Z
            assert_eq!(ts.len(), 24, "{ts}");
            assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{ts}");
        }
    }
}

#[tokio::test]
async fn every_client_sees_the_same_order() {
    let server = Server::start_with(UNTHROTTLED).await;
    let mut a = server.join("a").await;
    let mut b = server.join("b").await;
    expect_users(&mut a, &["a", "b"]).await;
    expect_users(&mut b, &["a", "b"]).await;
    for i in 0..50 {
        say(if i % 2 == 0 { &mut a } else { &mut b }, &format!("m{i}")).await;
    }
    let mut seen = Vec::new();
    for socket in [&mut a, &mut b] {
        let mut got = Vec::new();
        while got.len() < 50 {
            got.push(expect_event(socket, "send-message", |_| true).await);
        }
        seen.push(ids(&got));
    }
    assert_eq!(seen[0], seen[1]);
}

#[tokio::test]
async fn a_taken_name_is_closed_with_1008_and_the_holder_is_unaffected() {
    let server = Server::start().await;
    let mut alice = server.join("alice").await;
    expect_users(&mut alice, &["alice"]).await;

    let mut imposter = server.join("alice").await;
    match next_frame(&mut imposter).await {
        Frame::Closed(Some((code, reason))) => {
            assert_eq!(code, 1008);
            assert_eq!(reason, "Username alice is already taken");
        }
        other => panic!("expected a 1008 close, got {other:?}"),
    }
    say(&mut alice, "still here").await;
    let event = expect_event(&mut alice, "send-message", |_| true).await;
    assert_eq!(event["message"], "still here");
}

#[tokio::test]
async fn an_empty_username_is_refused_with_a_reason() {
    let server = Server::start().await;
    for query in ["username=", "username=%20%20", ""] {
        let mut socket = server.connect(query).await;
        match next_frame(&mut socket).await {
            Frame::Closed(Some((1008, reason))) => {
                assert_eq!(reason, "Username must not be empty")
            }
            other => panic!("{query:?}: expected a 1008 close, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn bad_events_get_an_error_event_and_the_socket_keeps_working() {
    let server = Server::start().await;
    let mut alice = server.join("alice").await;
    expect_users(&mut alice, &["alice"]).await;
    for bad in [
        "not json",
        r#"{"event":"fly","message":"x"}"#,
        r#"{"event":"send-message","message":5}"#,
        r#"{"event":"send-message"}"#,
        r#"{"event":"send-message","message":"   "}"#,
    ] {
        send_json(&mut alice, bad).await;
        let error = expect_event(&mut alice, "error", |_| true).await;
        let message = error["message"].as_str().expect("error message");
        assert!(!message.is_empty(), "{bad}: empty error message");
    }
    let too_long = "x".repeat(4001);
    say(&mut alice, &too_long).await;
    let error = expect_event(&mut alice, "error", |_| true).await;
    assert!(
        error["message"].as_str().unwrap().contains("4000"),
        "{error}"
    );

    say(&mut alice, "works").await;
    let event = expect_event(&mut alice, "send-message", |_| true).await;
    assert_eq!(event["message"], "works");
}

#[tokio::test]
async fn binary_frames_get_an_error_event() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let server = Server::start().await;
    let mut alice = server.join("alice").await;
    expect_users(&mut alice, &["alice"]).await;
    alice
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    let error = expect_event(&mut alice, "error", |_| true).await;
    assert!(error["message"].as_str().unwrap().contains("Binary"));
}

#[tokio::test]
async fn a_disconnect_updates_everyone_s_list() {
    let server = Server::start().await;
    let mut alice = server.join("alice").await;
    let mut bob = server.join("bob").await;
    expect_users(&mut alice, &["alice", "bob"]).await;
    expect_users(&mut bob, &["alice", "bob"]).await;
    bob.close(None).await.unwrap();
    expect_users(&mut alice, &["alice"]).await;

    // A connection dropped without a close frame counts too.
    let carol = server.join("carol").await;
    expect_users(&mut alice, &["alice", "carol"]).await;
    drop(carol);
    expect_users(&mut alice, &["alice"]).await;
    // ...and the name is free again.
    let mut again = server.join("bob").await;
    expect_users(&mut again, &["alice", "bob"]).await;
}

#[tokio::test]
async fn delta_clients_get_joins_and_leaves_as_deltas() {
    let server = Server::start().await;
    let mut alice = server.connect("username=alice&presence=delta").await;
    assert_eq!(
        next_text(&mut alice).await,
        r#"{"event":"update-users","usernames":["alice"]}"#
    );
    let mut bob = server.join("bob").await;
    let joined = expect_event(&mut alice, "user-joined", |e| {
        e["usernames"].as_array().unwrap().contains(&"bob".into())
    })
    .await;
    assert!(joined["usernames"].as_array().unwrap().len() <= 2);
    bob.close(None).await.unwrap();
    expect_event(&mut alice, "user-left", |e| {
        e["usernames"] == serde_json::json!(["bob"])
    })
    .await;
}

#[tokio::test]
async fn names_are_trimmed_and_escaped_names_work() {
    let server = Server::start().await;
    let mut socket = server.join("%20Zoë%20%26%20co%20").await;
    assert_eq!(
        next_text(&mut socket).await,
        r#"{"event":"update-users","usernames":["Zoë & co"]}"#
    );
}

#[tokio::test]
async fn a_message_over_64_kib_closes_with_1009_and_others_keep_chatting() {
    let server = Server::start().await;
    let mut alice = server.join("alice").await;
    let mut bob = server.join("bob").await;
    expect_users(&mut alice, &["alice", "bob"]).await;
    let huge = "x".repeat(70 * 1024);
    say(&mut bob, &huge).await;
    assert_eq!(
        close_after_events(&mut bob).await,
        (1009, "Message too big: the limit is 64 KiB".to_string())
    );
    expect_users(&mut alice, &["alice"]).await;
    say(&mut alice, "still here").await;
    expect_event(&mut alice, "send-message", |e| e["message"] == "still here").await;
}

#[tokio::test]
async fn a_text_frame_that_is_not_utf8_closes_with_1007() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::{
        Message,
        protocol::frame::{
            Frame as RawFrame,
            coding::{Data, OpCode},
        },
    };
    let server = Server::start().await;
    let mut mallory = server.join("mallory").await;
    expect_users(&mut mallory, &["mallory"]).await;
    // A raw frame: the client library would refuse to build this message.
    let bad = RawFrame::message(vec![0xff, 0xfe, 0xfd], OpCode::Data(Data::Text), true);
    mallory
        .send(Message::Frame(bad))
        .await
        .expect("send raw frame");
    assert_eq!(
        close_after_events(&mut mallory).await,
        (1007, "Text frames must be valid UTF-8".to_string())
    );
    server.wait_for_clients(0).await;
}

/// Skips events already on their way and returns the close frame's code
/// and reason; a connection dropped without one fails the test.
async fn close_after_events(socket: &mut Socket) -> (u16, String) {
    loop {
        match next_frame(socket).await {
            Frame::Event(_) => continue,
            Frame::Closed(Some(close)) => return close,
            Frame::Closed(None) => panic!("closed without a close frame"),
        }
    }
}

/// A client on the tutorial's protocol does not read `history` events, so
/// a message said once it is in the room's list must reach it as a
/// `send-message`, never inside its join page — also in a room nobody was
/// in, whose page is still being read from storage as its first users
/// arrive, while others keep storage's reader busy catching up on a long
/// history. Fifty fresh rooms at once, each with two people arriving
/// together and one greeting the other the moment it sees them listed.
#[tokio::test]
async fn once_a_joiner_is_listed_everything_said_reaches_it_live_even_in_a_fresh_room() {
    let server = Server::start_with(UNTHROTTLED).await;
    let mut archivist = server.connect("username=archivist&room=archive").await;
    history(&mut archivist).await;
    for i in 0..3000 {
        say(&mut archivist, &format!("old {i}")).await;
    }
    expect_event(&mut archivist, "send-message", |e| {
        e["message"] == "old 2999"
    })
    .await;
    // Four readers catching up on all of it, again and again, until the
    // rounds are done.
    let done = std::sync::atomic::AtomicBool::new(false);
    let readers = futures::future::join_all((0..4).map(|r| {
        let (server, done) = (&server, &done);
        async move {
            let mut k = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                k += 1;
                let mut reader = server
                    .connect(&format!("username=reader{r}-{k}&room=archive&since=0"))
                    .await;
                expect_event(&mut reader, "send-message", |e| e["message"] == "old 2999").await;
            }
        }
    }));
    let rounds = (0..50).map(|round| {
        let server = &server;
        async move {
            let (bob_query, alice_query) = (
                format!("username=bob&room=fresh{round}"),
                format!("username=alice&room=fresh{round}"),
            );
            let (mut bob, mut alice) =
                tokio::join!(server.connect(&bob_query), server.connect(&alice_query));
            expect_event(&mut alice, "update-users", |e| {
                e["usernames"]
                    .as_array()
                    .is_some_and(|names| names.iter().any(|n| n == "bob"))
            })
            .await;
            say(&mut alice, "hi bob").await;
            expect_live(&mut bob, "hi bob").await;
        }
    });
    let rounds = async {
        futures::future::join_all(rounds).await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    tokio::join!(rounds, readers);
}
