//! A client that stops reading costs nobody else anything: it is dropped
//! with 1013, everyone else receives every message, and server memory
//! stays bounded.

use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

const MESSAGES: usize = 20_000;
/// The sender keeps at most this many messages unconfirmed (not yet back
/// on its own socket), as a real client would, so the test measures the
/// stalled client's effect rather than a flood outrunning everyone (which
/// the server answers by disconnecting the laggards with 1013).
const WINDOW: usize = 256;

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_the_others_get_everything() {
    let server = Server::start_with(&[&["--stall-timeout-ms", "500"], UNTHROTTLED].concat()).await;
    let mut reader = server.connect("username=reader&presence=delta").await;
    let sender = server.connect("username=sender&presence=delta").await;
    // Joins and then never reads a byte.
    let staller = server.connect("username=staller&presence=delta").await;
    server.wait_for_clients(3).await;

    // The sender reads its own copies on the side, as a browser would.
    let (mut outgoing, mut incoming) = sender.split();
    let (confirmed_tx, mut confirmed) = tokio::sync::watch::channel(0usize);
    let sender_reads = tokio::spawn(async move {
        let mut count = 0;
        while count < MESSAGES {
            match incoming.next().await {
                Some(Ok(Message::Text(text))) if text.contains("send-message") => {
                    count += 1;
                    let _ = confirmed_tx.send(count);
                }
                Some(Ok(_)) => {}
                other => panic!("sender's socket ended: {other:?}"),
            }
        }
        count
    });
    let filler = "x".repeat(1000);
    let sending = tokio::spawn(async move {
        use futures::SinkExt;
        for i in 0..MESSAGES {
            if i >= WINDOW {
                confirmed
                    .wait_for(|n| *n > i - WINDOW)
                    .await
                    .expect("sender's reader alive");
            }
            let json =
                serde_json::json!({"event": "send-message", "message": format!("{i} {filler}")});
            outgoing
                .send(Message::Text(json.to_string().into()))
                .await
                .expect("send");
        }
        outgoing
    });

    // The reader gets every message, in order, and sees the staller leave.
    let mut next = 0usize;
    let mut saw_staller_leave = false;
    while next < MESSAGES || !saw_staller_leave {
        let event = match next_frame(&mut reader).await {
            Frame::Event(event) => event,
            Frame::Closed(frame) => panic!("reader closed after {next} messages: {frame:?}"),
        };
        match event["event"].as_str() {
            Some("send-message") => {
                let text = event["message"].as_str().expect("message text");
                let number: usize = text.split(' ').next().unwrap().parse().unwrap();
                assert_eq!(number, next, "messages arrive complete and in order");
                next += 1;
            }
            Some("user-left") if event["usernames"] == serde_json::json!(["staller"]) => {
                saw_staller_leave = true;
            }
            _ => {}
        }
    }
    assert_eq!(sender_reads.await.expect("sender reader"), MESSAGES);
    let _outgoing = sending.await.expect("sending task");

    // The staller was dropped and has left.
    server.wait_for_clients(2).await;

    // It has left, so nothing more may be said under its name from it (the
    // name is free for someone else now).
    let mut staller = staller;
    say(&mut staller, "said after leaving").await;

    // When it reads again (a tab waking up) it gets what the kernel had
    // buffered for it, then 1013: reconnect and resume from storage.
    let ended = tokio::time::timeout(PATIENCE, async {
        loop {
            match staller.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert_eq!(
        ended,
        Ok(Some(1013)),
        "the stalled socket was closed with 1013"
    );

    // The server never held the backlog in memory: its peak RSS stayed far
    // below the 20 MB the staller never read.
    let pid = server.child.id().expect("pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let peak_kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmHWM");
    assert!(peak_kib < 100 * 1024, "peak RSS {peak_kib} KiB");
}
