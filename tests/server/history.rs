//! Rooms, durable history and resume: what a user sees after reloads,
//! restarts, crashes and reconnects, against a real SQLite file.

use std::collections::BTreeSet;

use futures::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

fn texts(page: &Value) -> Vec<String> {
    page["messages"]
        .as_array()
        .expect("messages array")
        .iter()
        .map(|m| m["message"].as_str().expect("text").to_string())
        .collect()
}

fn ids(page: &Value) -> Vec<u64> {
    page["messages"]
        .as_array()
        .expect("messages array")
        .iter()
        .map(|m| m["id"].as_u64().expect("id"))
        .collect()
}

/// Sends `text` and waits for its echo; returns the echo's id.
async fn say_and_wait(socket: &mut Socket, text: &str) -> u64 {
    say(socket, text).await;
    let echo = expect_event(socket, "send-message", |e| e["message"] == text).await;
    echo["id"].as_u64().expect("id")
}

#[tokio::test]
async fn a_joiner_gets_the_latest_page_and_can_page_back_to_the_beginning() {
    let server = Server::start_with(UNTHROTTLED).await;
    let mut alice = server.connect("username=alice&room=paging").await;
    history(&mut alice).await;
    for i in 0..120 {
        say(&mut alice, &format!("m{i}")).await;
    }
    expect_event(&mut alice, "send-message", |e| e["message"] == "m119").await;

    let mut bob = server.connect("username=bob&room=paging").await;
    let page = history(&mut bob).await;
    let expected: Vec<String> = (70..120).map(|i| format!("m{i}")).collect();
    assert_eq!(texts(&page), expected, "the newest 50, oldest first");
    assert_eq!(page["more"], true);

    let mut seen = texts(&page);
    let mut oldest = ids(&page)[0];
    loop {
        send_json(
            &mut bob,
            &json!({"event": "load-history", "before": oldest}).to_string(),
        )
        .await;
        let older = history(&mut bob).await;
        let mut page_texts = texts(&older);
        page_texts.extend(seen);
        seen = page_texts;
        if older["more"] == false {
            break;
        }
        oldest = ids(&older)[0];
    }
    let all: Vec<String> = (0..120).map(|i| format!("m{i}")).collect();
    assert_eq!(
        seen, all,
        "paging back reaches the first message, none twice"
    );
}

#[tokio::test]
async fn history_survives_a_restart_and_ids_keep_increasing() {
    let root = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in(root.path(), &[]).await;
    let mut alice = server.join("alice").await;
    let first = say_and_wait(&mut alice, "before restart").await;
    drop(alice);
    server.stop().await;

    let server = Server::start_in(root.path(), &[]).await;
    let mut alice = server.join("alice").await;
    let page = history(&mut alice).await;
    assert_eq!(texts(&page), ["before restart"]);
    let second = say_and_wait(&mut alice, "after restart").await;
    // A clean stop leaves no gap (after a crash ids jump past any a lost
    // write could have shown; see storage::sqlite).
    assert_eq!(second, first + 1, "{second} after {first}");
}

#[tokio::test]
async fn nothing_anyone_saw_is_lost_when_the_server_is_killed_mid_flood() {
    const SENDERS: usize = 5;
    const EACH: usize = 1000;
    let root = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in(root.path(), UNTHROTTLED).await;
    let mut watcher = server.join("watcher").await;
    history(&mut watcher).await;
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let mut socket = server.join(&format!("sender{s}")).await;
        history(&mut socket).await;
        senders.push(socket);
    }
    // Everyone floods; the watcher counts what it was shown.
    let flood = tokio::spawn(async move {
        for i in 0..EACH {
            for (s, socket) in senders.iter_mut().enumerate() {
                let event = json!({"event": "send-message", "message": format!("s{s}-{i}")});
                // Fails once the server is gone: that is the point.
                if socket
                    .send(Message::Text(event.to_string().into()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    });
    let mut shown = BTreeSet::new();
    while shown.len() < SENDERS * EACH / 3 {
        if let Frame::Event(e) = next_frame(&mut watcher).await
            && e["event"] == "send-message"
        {
            shown.insert(e["id"].as_u64().expect("id"));
        }
    }
    server.kill().await;
    // Whatever was already in the watcher's socket buffer was shown too.
    while let Frame::Event(e) = next_frame(&mut watcher).await {
        if e["event"] == "send-message" {
            shown.insert(e["id"].as_u64().expect("id"));
        }
    }
    let _ = flood.await;

    let server = Server::start_in(root.path(), &[]).await;
    let mut reader = server.connect("username=reader&since=0").await;
    let mut stored = BTreeSet::new();
    let newest_shown = *shown.last().expect("something was shown");
    while stored.last().is_none_or(|last| *last < newest_shown) {
        let e = expect_event(&mut reader, "send-message", |_| true).await;
        stored.insert(e["id"].as_u64().expect("id"));
    }
    let missing: Vec<_> = shown.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "{} of {} messages shown before the kill are not in the history: {:?}",
        missing.len(),
        shown.len(),
        &missing[..missing.len().min(10)]
    );
}

#[tokio::test]
async fn a_resuming_client_gets_exactly_what_it_missed() {
    let server = Server::start().await;
    let mut alice = server.join("alice").await;
    let mut bob = server.join("bob").await;
    history(&mut bob).await;
    let last_seen = say_and_wait(&mut alice, "seen by bob").await;
    expect_event(&mut bob, "send-message", |e| e["message"] == "seen by bob").await;
    drop(bob);
    for text in ["missed 1", "missed 2", "missed 3"] {
        say_and_wait(&mut alice, text).await;
    }

    let mut bob = server
        .connect(&format!("username=bob&since={last_seen}"))
        .await;
    let mut got = Vec::new();
    loop {
        match next_frame(&mut bob).await {
            Frame::Event(e) if e["event"] == "send-message" => {
                got.push(e["message"].as_str().expect("text").to_string());
                if got.len() == 3 {
                    break;
                }
            }
            Frame::Event(e) => assert_ne!(e["event"], "history", "no page on resume"),
            Frame::Closed(frame) => panic!("closed: {frame:?}"),
        }
    }
    assert_eq!(got, ["missed 1", "missed 2", "missed 3"]);
    // Then live messages, with nothing repeated in between.
    say_and_wait(&mut alice, "live").await;
    let next = expect_event(&mut bob, "send-message", |_| true).await;
    assert_eq!(next["message"], "live");
}

#[tokio::test]
async fn a_resent_message_is_stored_and_shown_once() {
    let server = Server::start().await;
    let mut alice = server.join("alice").await;
    history(&mut alice).await;
    let send = json!({"event": "send-message", "message": "once", "client_id": "c-42"}).to_string();
    send_json(&mut alice, &send).await;
    let echo = expect_event(&mut alice, "send-message", |e| e["message"] == "once").await;
    assert_eq!(echo["client_id"], "c-42");
    // The same message again, as after a reconnect, then a marker.
    send_json(&mut alice, &send).await;
    say(&mut alice, "marker").await;
    let next = expect_event(&mut alice, "send-message", |_| true).await;
    assert_eq!(next["message"], "marker", "the resend was not shown again");

    let mut bob = server.join("bob").await;
    let page = history(&mut bob).await;
    assert_eq!(texts(&page), ["once", "marker"], "and not stored twice");
}

#[tokio::test]
async fn rooms_are_isolated() {
    let server = Server::start().await;
    let mut red = server.connect("username=alice&room=red").await;
    let mut blue = server.connect("username=bob&room=blue").await;
    // The same name may be used in another room.
    let mut red_bob = server.connect("username=bob&room=Red").await;
    expect_users(&mut red, &["alice", "bob"]).await;
    expect_users(&mut blue, &["bob"]).await;
    expect_users(&mut red_bob, &["alice", "bob"]).await;

    say_and_wait(&mut red, "for red").await;
    expect_event(&mut red_bob, "send-message", |e| e["message"] == "for red").await;
    say_and_wait(&mut blue, "for blue").await;
    send_json(&mut red, r#"{"event":"typing"}"#).await;
    let typing = expect_event(&mut red_bob, "typing", |_| true).await;
    assert_eq!(typing["username"], "alice");
    // Blue saw only its own message, and nobody's typing.
    say_and_wait(&mut blue, "marker").await;
    let mut blue_saw = Vec::new();
    let mut fresh = server.connect("username=carol&room=blue").await;
    let page = history(&mut fresh).await;
    blue_saw.extend(texts(&page));
    assert_eq!(blue_saw, ["for blue", "marker"]);
    drop(blue);

    // The server learns of bob's leaving from his socket closing, a moment
    // after the drop: ask until it has.
    let blue_has_one = r#""name":"blue","online":1"#;
    let body = tokio::time::timeout(PATIENCE, async {
        loop {
            let (status, body) = server.http_get("/api/rooms").await;
            assert_eq!(status, 200);
            if body.contains(blue_has_one) {
                return body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("blue never showed one person online");
    assert!(body.contains(r#""name":"red","online":2"#), "{body}");
}

#[tokio::test]
async fn bad_rooms_and_since_values_are_refused_with_a_reason() {
    let server = Server::start().await;
    for (query, reason) in [
        (
            "username=a&room=no%20spaces",
            "Room name may use only letters, digits, - and _ (not ' ')",
        ),
        ("username=a&room=", "Room name must not be empty"),
        (
            &format!("username=a&room={}", "x".repeat(41)),
            "Room name must be at most 40 characters",
        ),
        (
            "username=a&since=yesterday",
            r#"since must be a message id (a whole number), got "yesterday""#,
        ),
    ] {
        let mut socket = server.connect(query).await;
        match next_frame(&mut socket).await {
            Frame::Closed(Some((code, text))) => {
                assert_eq!(code, 1008, "{query}");
                assert_eq!(text, reason, "{query}");
            }
            other => panic!("{query}: expected a close, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_unreadable_database_is_a_clear_error_at_start() {
    let root = tempfile::tempdir().expect("temp dir");
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    std::fs::write(
        data.join("banter.sqlite3"),
        b"this is not a database, just text: ".repeat(200),
    )
    .expect("write junk");
    let output = match Server::try_start_in(root.path(), &[]).await {
        Ok(_) => panic!("banter started on a corrupt database"),
        Err(output) => output,
    };
    assert!(
        output.contains("banter.sqlite3") && output.contains("not a database"),
        "{output}"
    );
    assert!(!output.contains("panicked"), "{output}");
}

#[tokio::test]
async fn a_long_resume_arrives_whole_while_the_room_goes_on() {
    // More missed messages than a connection may have queued behind it
    // (4,096): the resume itself is not falling behind.
    const MISSED: usize = 6_000;
    let server = Server::start_with(UNTHROTTLED).await;
    let mut alice = server.join("alice").await;
    let last_seen = say_and_wait(&mut alice, "before").await;
    let spam = |i: usize| json!({"event": "send-message", "message": format!("m{i}")}).to_string();
    for i in 0..MISSED {
        alice
            .feed(Message::Text(spam(i).into()))
            .await
            .expect("send");
    }
    alice.flush().await.expect("flush");
    let last = format!("m{}", MISSED - 1);
    expect_event(&mut alice, "send-message", |e| {
        e["message"] == last.as_str()
    })
    .await;

    let mut bob = server
        .connect(&format!("username=bob&since={last_seen}&presence=delta"))
        .await;
    // The room goes on meanwhile: a join (a presence delta) and a message.
    let _carol = server.connect("username=carol&presence=delta").await;
    say(&mut alice, "live").await;
    let mut got = 0;
    loop {
        match next_frame(&mut bob).await {
            Frame::Event(e) if e["event"] == "send-message" => {
                let text = e["message"].as_str().expect("text");
                if text == "live" {
                    break;
                }
                assert_eq!(text, format!("m{got}"), "in order, nothing skipped");
                got += 1;
            }
            Frame::Event(_) => {}
            Frame::Closed(frame) => panic!("closed after {got} of {MISSED}: {frame:?}"),
        }
    }
    assert_eq!(got, MISSED);
}
