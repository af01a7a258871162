//! The per-socket flood limit: a burst passes, then "slow down", then 1008
//! for a client that keeps on; everyone else chats on with nothing lost.

use futures::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

#[tokio::test]
async fn over_the_rate_a_client_is_told_to_slow_down_and_keeps_its_socket() {
    // 1 a second, burst 3: the fourth message in a row is refused.
    let server = Server::start_with(&["--message-rate", "1", "--message-burst", "3"]).await;
    let mut alice = server.join("alice").await;
    let mut bob = server.join("bob").await;
    expect_users(&mut alice, &["alice", "bob"]).await;
    for i in 0..4 {
        say(&mut alice, &format!("m{i}")).await;
    }
    for i in 0..3 {
        let expected = format!("m{i}");
        expect_event(&mut bob, "send-message", |e| {
            e["message"] == expected.as_str()
        })
        .await;
    }
    let error = expect_event(&mut alice, "error", |_| true).await;
    assert_eq!(error["message"], "Slow down: the limit is 1 per second");
    // A second later a token is back and the socket still works.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    say(&mut alice, "calmer now").await;
    expect_event(&mut bob, "send-message", |e| e["message"] == "calmer now").await;
}

#[tokio::test]
async fn a_client_that_keeps_flooding_is_closed_with_1008_and_others_lose_nothing() {
    // The defaults: 10 a second, burst 20.
    let server = Server::start().await;
    let mut alice = server.join("alice").await;
    let mut bob = server.join("bob").await;
    let mut flooder = server.join("flooder").await;
    expect_users(&mut alice, &["alice", "bob", "flooder"]).await;
    let flood = serde_json::json!({"event": "send-message", "message": "spam"}).to_string();
    let mut sent = 0;
    // Pipelined, without reading: as fast as the socket takes them.
    while sent < 5_000 {
        if flooder
            .feed(Message::Text(flood.clone().into()))
            .await
            .is_err()
        {
            break;
        }
        sent += 1;
    }
    let _ = flooder.flush().await;
    let mut slow_downs = 0;
    let close = loop {
        match next_frame(&mut flooder).await {
            Frame::Event(e) if e["event"] == "error" => slow_downs += 1,
            Frame::Event(_) => {}
            Frame::Closed(frame) => break frame,
        }
    };
    let (code, reason) = close.expect("a close frame");
    assert_eq!(code, 1008);
    assert_eq!(reason, "Sending too fast: slow down");
    // Told to slow down once per refused message: 20 in a row, then the
    // close (more if the bucket refilled while a loaded machine read).
    assert!(slow_downs >= 20, "{slow_downs} slow-downs");

    // Alice got exactly the burst that was accepted, then the flooder left.
    let mut spam = 0;
    loop {
        match next_frame(&mut alice).await {
            Frame::Event(e) if e["event"] == "send-message" => spam += 1,
            Frame::Event(e)
                if e["event"] == "update-users"
                    && e["usernames"] == serde_json::json!(["alice", "bob"]) =>
            {
                break;
            }
            Frame::Event(_) => {}
            Frame::Closed(frame) => panic!("alice was closed: {frame:?}"),
        }
    }
    // The burst of 20 (and any refill while a loaded machine read: 10 a
    // second) reached alice, whole.
    assert!((20..40).contains(&spam), "{spam} messages reached alice");
    say(&mut alice, "quiet again").await;
    expect_event(&mut bob, "send-message", |e| e["message"] == "quiet again").await;

    // Reconnecting does not buy the flooder a fresh burst: its name is
    // refused from its address for the cool-down ...
    let (status, body) = server
        .try_connect("username=flooder", &[])
        .await
        .expect_err("refused during the cool-down");
    assert_eq!(status, 429);
    assert!(body.starts_with("This name was sending too fast"), "{body}");
    // ... while a neighbour at the same address (all of this test's clients
    // share 127.0.0.1) connects and chats.
    let mut carol = server.join("carol").await;
    say(&mut carol, "hello from next door").await;
    expect_event(&mut bob, "send-message", |e| {
        e["message"] == "hello from next door"
    })
    .await;
}
