//! Pings: a client that answers stays, one that does not is dropped and
//! leaves everyone's user list.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

#[tokio::test]
async fn a_peer_that_does_not_answer_pings_is_dropped_and_leaves_the_list() {
    let server =
        Server::start_with(&["--ping-interval-ms", "300", "--ping-timeout-ms", "700"]).await;
    // A real client (tungstenite answers pings as it reads).
    let mut alice = server.join("alice").await;
    expect_users(&mut alice, &["alice"]).await;

    // A peer that completes the handshake and then goes silent, like a
    // laptop whose lid closed: it never reads, so never answers a ping.
    let mut ghost = tokio::net::TcpStream::connect(&server.addr)
        .await
        .expect("connect");
    let request = format!(
        "GET /start_web_socket?username=ghost HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n",
        server.addr
    );
    ghost
        .write_all(request.as_bytes())
        .await
        .expect("handshake");
    let mut head = [0u8; 12];
    ghost.read_exact(&mut head).await.expect("response");
    assert_eq!(&head, b"HTTP/1.1 101");
    expect_users(&mut alice, &["alice", "ghost"]).await;

    // Well past several ping rounds, alice (who answers) is still there and
    // the ghost is gone.
    let started = std::time::Instant::now();
    expect_users(&mut alice, &["alice"]).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Alice keeps reading (and so answering pings) for several rounds.
    let until = tokio::time::Instant::now() + Duration::from_millis(1000);
    while let Ok(frame) = tokio::time::timeout_at(until, next_frame(&mut alice)).await {
        assert!(
            matches!(frame, Frame::Event(_)),
            "alice was dropped: {frame:?}"
        );
    }
    say(&mut alice, "still here").await;
    expect_event(&mut alice, "send-message", |e| e["message"] == "still here").await;
    server.wait_for_clients(1).await;
}
