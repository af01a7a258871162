//! Hostile JSON over a real socket: deeply nested or huge frames (up to the
//! 64 KiB frame limit) cost the server one `error` event, the sender stays
//! connected, and everyone else keeps chatting.
//!
//! What bounds them: frames over 64 KiB are refused before parsing (1009,
//! see `websocket.rs`), and serde_json refuses a 128th level of nesting, so
//! neither the parser's stack nor its work can grow past what one frame
//! holds.

use std::time::Instant;

use crate::support::*;

/// The largest frame the server reads.
const FRAME_LIMIT: usize = 64 * 1024;

/// `depth` levels of `open`, then `inner`, then the matching closes.
fn nested(open: &str, inner: &str, close: &str, depth: usize) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}

/// Sends each frame from `mallory` and checks the server answers it with
/// an `error` event whose message contains `expect`, while `mallory` stays
/// in and `bob` keeps chatting.
async fn survives(cases: Vec<(&str, String, &str)>) {
    let server = Server::start().await;
    let mut bob = server.join("bob").await;
    let mut mallory = server.join("mallory").await;
    expect_users(&mut bob, &["bob", "mallory"]).await;
    expect_users(&mut mallory, &["bob", "mallory"]).await;

    for (i, (what, frame, expect)) in cases.into_iter().enumerate() {
        assert!(frame.len() < FRAME_LIMIT, "{what}: {} bytes", frame.len());
        let sent = Instant::now();
        send_json(&mut mallory, &frame).await;
        let error = expect_event(&mut mallory, "error", |_| true).await;
        let message = error["message"].as_str().expect("error message");
        assert!(message.contains(expect), "{what}: {message}");
        eprintln!(
            "{what}: {} bytes answered in {:?}: {message}",
            frame.len(),
            sent.elapsed()
        );

        // Still connected, both ways, and the room goes on.
        let text = format!("bob's message {i}");
        say(&mut bob, &text).await;
        expect_event(&mut mallory, "send-message", |e| {
            e["message"] == text.as_str()
        })
        .await;
        expect_event(&mut bob, "send-message", |e| e["message"] == text.as_str()).await;
    }
    say(&mut mallory, "mallory is still here").await;
    expect_event(&mut bob, "send-message", |e| {
        e["message"] == "mallory is still here" && e["username"] == "mallory"
    })
    .await;
    server.wait_for_clients(2).await;
}

#[tokio::test]
async fn deeply_nested_json_gets_an_error_event_and_the_room_keeps_chatting() {
    let depth = 30_000;
    survives(vec![
        // At the top, an array is refused at its first element: the event
        // would be named there, and `[` is not a name.
        (
            "30,000 nested arrays",
            nested("[", "", "]", depth),
            "expected variant identifier",
        ),
        (
            "60,000 unclosed arrays",
            "[".repeat(60_000),
            "expected variant identifier",
        ),
        // Inside an event the parser descends, and refuses a 128th level.
        (
            "30,000 nested arrays in an unknown field",
            format!(
                r#"{{"event":"typing","x":{}}}"#,
                nested("[", "", "]", depth)
            ),
            "recursion limit exceeded",
        ),
        (
            "6,000 nested objects as the message",
            format!(
                r#"{{"event":"send-message","message":{}}}"#,
                nested(r#"{"a":"#, "1", "}", 6_000)
            ),
            "recursion limit exceeded",
        ),
        // The object and 127 arrays: 128 levels, one too many.
        (
            "128 levels",
            format!(r#"{{"event":"typing","x":{}}}"#, nested("[", "", "]", 127)),
            "recursion limit exceeded",
        ),
    ])
    .await;
}

#[tokio::test]
async fn nesting_up_to_the_limit_is_fine() {
    // The object and 126 arrays: 127 levels, the most serde_json takes
    // (its limit of 128 is the level it refuses). An ordinary event, with
    // an unknown field that is ignored.
    let server = Server::start().await;
    let mut bob = server.join("bob").await;
    let mut alice = server.join("alice").await;
    expect_users(&mut bob, &["alice", "bob"]).await;
    let frame = format!(r#"{{"event":"typing","x":{}}}"#, nested("[", "", "]", 126));
    send_json(&mut alice, &frame).await;
    expect_event(&mut bob, "typing", |e| e["username"] == "alice").await;
}

#[tokio::test]
async fn huge_json_gets_an_error_event_and_the_room_keeps_chatting() {
    let junk = "x".repeat(60_000);
    let many_keys: Vec<String> = (0..5_000).map(|i| format!(r#""k{i}":{i}"#)).collect();
    let many_keys = format!("{{{}}}", many_keys.join(","));
    survives(vec![
        (
            "a 60 KB unknown field in an unknown event",
            format!(r#"{{"junk":"{junk}","event":"fly"}}"#),
            "unknown variant",
        ),
        (
            "5,000 unknown keys and no event",
            many_keys,
            "missing field `event`",
        ),
        (
            "a 60,000-digit number",
            format!(
                r#"{{"event":"load-history","before":{}}}"#,
                "9".repeat(60_000)
            ),
            "out of range",
        ),
        (
            "20,000 array elements as the message",
            format!(
                r#"{{"event":"send-message","message":[{}]}}"#,
                vec!["0"; 20_000].join(",")
            ),
            "invalid type",
        ),
    ])
    .await;
}

#[tokio::test]
async fn a_huge_unknown_field_on_a_valid_event_is_ignored() {
    // Unknown fields are ignored by design (the tutorial's clients may add
    // their own); a big one costs only the parse.
    let server = Server::start().await;
    let mut alice = server.join("alice").await;
    expect_users(&mut alice, &["alice"]).await;
    let frame = format!(
        r#"{{"event":"send-message","message":"hi","junk":"{}"}}"#,
        "x".repeat(60_000)
    );
    send_json(&mut alice, &frame).await;
    let event = expect_event(&mut alice, "send-message", |_| true).await;
    assert_eq!(event["message"], "hi");
    assert!(event.get("junk").is_none(), "{event}");
}
