//! Ctrl-C / SIGTERM: every socket is closed with 1001 and the process exits
//! within five seconds.

use std::time::{Duration, Instant};

use crate::support::*;

#[tokio::test]
async fn sigterm_closes_sockets_with_1001_and_exits_promptly() {
    let mut server = Server::start().await;
    let mut alice = server.join("alice").await;
    let mut bob = server.connect("username=bob&presence=delta").await;
    expect_users(&mut alice, &["alice", "bob"]).await;

    let pid = server.child.id().expect("server pid");
    let started = Instant::now();
    // SIGTERM to the process this test started, by its PID.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());

    for socket in [&mut alice, &mut bob] {
        loop {
            match next_frame(socket).await {
                Frame::Closed(Some((code, _))) => {
                    assert_eq!(code, 1001);
                    break;
                }
                Frame::Closed(None) => panic!("closed without a 1001 close frame"),
                Frame::Event(_) => continue,
            }
        }
    }
    let exit = tokio::time::timeout(Duration::from_secs(5), server.child.wait())
        .await
        .expect("server still running 5 s after SIGTERM")
        .expect("wait");
    assert!(exit.success(), "exit status {exit}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn sigterm_first_sends_everything_accepted_then_1001_and_it_is_all_stored() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    let root = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start_in(root.path(), UNTHROTTLED).await;
    let mut watcher = server.join("watcher").await;
    let mut sender = server.join("sender").await;
    expect_users(&mut watcher, &["sender", "watcher"]).await;

    // A burst still in flight (queued, being stored) when the signal comes.
    for i in 0..2_000 {
        let json = serde_json::json!({"event": "send-message", "message": format!("{i}")});
        sender
            .feed(Message::Text(json.to_string().into()))
            .await
            .expect("send");
    }
    sender.flush().await.expect("flush");
    let first = expect_event(&mut watcher, "send-message", |_| true).await;
    let pid = server.child.id().expect("server pid");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());

    let number = |e: &serde_json::Value| -> u64 {
        e["message"]
            .as_str()
            .and_then(|m| m.parse().ok())
            .expect("number")
    };
    let mut seen = vec![number(&first)];
    let code = loop {
        match next_frame(&mut watcher).await {
            Frame::Event(e) if e["event"] == "send-message" => {
                seen.push(number(&e));
            }
            Frame::Event(_) => {}
            Frame::Closed(frame) => break frame.map(|(code, _)| code),
        }
    };
    assert_eq!(code, Some(1001), "closed with 1001 after the messages");
    let exit = tokio::time::timeout(PATIENCE, server.child.wait())
        .await
        .expect("exit in time")
        .expect("wait");
    assert!(exit.success());

    // Everything stored was sent before the goodbye, and in order.
    let server = Server::start_in(root.path(), &[]).await;
    let mut check = server.connect("username=check&since=0").await;
    let mut stored = Vec::new();
    while let Ok(frame) =
        tokio::time::timeout(Duration::from_millis(1500), next_frame(&mut check)).await
    {
        if let Frame::Event(e) = frame
            && e["event"] == "send-message"
        {
            stored.push(number(&e));
        }
    }
    assert!(!stored.is_empty());
    assert_eq!(seen, stored, "the watcher was sent exactly what was stored");
}
