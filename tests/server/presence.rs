//! Whole user lists to a crowd of tutorial clients: each joiner gets the
//! list at once, every list is exact once the joins stop, and what the
//! lists cost is paced (64 MiB a second of list bytes × recipients) rather
//! than growing with every join.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

/// The pace in `src/server/chat/presence.rs`.
const LIST_BYTES_PER_SECOND: f64 = 64.0 * 1024.0 * 1024.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_joining_at_once_gets_exact_lists_within_the_list_budget() {
    const N: usize = 600;
    // Every client here is 127.0.0.1: lift the per-address handshake pace,
    // which is not what this test is about.
    let server = Arc::new(
        Server::start_with(&["--handshake-rate", "100000", "--handshake-burst", "100000"]).await,
    );
    let started = Instant::now();
    let clients: Vec<_> = (0..N)
        .map(|i| {
            let server = Arc::clone(&server);
            tokio::spawn(async move {
                let mut socket = server.join(&format!("u{i:03}")).await;
                // (bytes of update-users received, the latest list's length)
                let (mut bytes, mut latest, mut first) = (0usize, 0usize, None);
                let deadline = Instant::now() + PATIENCE * 3;
                while latest < N {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let frame = tokio::time::timeout(left, socket.next())
                        .await
                        .unwrap_or_else(|_| panic!("u{i:03} never saw all {N}: last {latest}"));
                    let Some(Ok(Message::Text(text))) = frame else {
                        panic!("u{i:03}: the socket ended: {frame:?}");
                    };
                    if !text.starts_with(r#"{"event":"update-users""#) {
                        continue;
                    }
                    let list: serde_json::Value =
                        serde_json::from_str(&text).expect("update-users is JSON");
                    let names = list["usernames"].as_array().expect("a list");
                    // Its own name is in the first list it gets: the join
                    // snapshot, at once.
                    let me = format!("u{i:03}");
                    first.get_or_insert_with(|| names.iter().any(|n| *n == me.as_str()));
                    bytes += text.len();
                    latest = names.len();
                }
                (socket, bytes, first == Some(true))
            })
        })
        .collect();
    let mut sockets = Vec::new();
    let mut list_bytes = 0;
    for client in clients {
        let (socket, bytes, saw_itself) = client.await.expect("client task");
        assert!(saw_itself, "a joiner's first list has its own name");
        list_bytes += bytes;
        sockets.push(socket);
    }
    let took = started.elapsed();
    // Each joiner's snapshot (the list so far), plus what the pace allows
    // over the joins, plus the one list that may go at any moment, with a
    // margin for the list sizes' growth.
    let list = N * 7;
    let snapshots = N * list;
    let budget = snapshots + (LIST_BYTES_PER_SECOND * took.as_secs_f64()) as usize + 2 * N * list;
    eprintln!(
        "{N} list clients: exact in {took:?}, {:.1} MB of update-users (budget {:.1} MB)",
        list_bytes as f64 / 1e6,
        budget as f64 / 1e6
    );
    assert!(list_bytes <= budget, "{list_bytes} > {budget}");
    drop(sockets);
    tokio::time::sleep(Duration::from_millis(10)).await;
}
