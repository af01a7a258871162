//! Cluster mode: several real `banter` processes sharing one chat through a
//! private redis-server and a private PostgreSQL, over real sockets.

use std::{collections::BTreeSet, time::Duration};

use serde_json::Value;

use crate::{
    services::{Postgres, Redis},
    support::*,
};

/// The shared engines of one test, and the flags that point a process at
/// them.
struct Backends {
    redis: Redis,
    postgres: Postgres,
}

impl Backends {
    fn start() -> Backends {
        Backends {
            redis: Redis::start(),
            postgres: Postgres::start(),
        }
    }

    async fn process(&self) -> Server {
        self.process_with(&[]).await
    }

    async fn process_with(&self, extra: &[&str]) -> Server {
        let redis = self.redis.url();
        let postgres = self.postgres.url();
        let mut args = vec!["--redis-url", &redis, "--database-url", &postgres];
        args.extend_from_slice(UNTHROTTLED);
        args.extend_from_slice(extra);
        Server::start_with(&args).await
    }
}

/// Every message event a socket receives until it has seen `count` of them
/// (history pages included), as (id, text).
async fn messages(socket: &mut Socket, count: usize) -> Vec<(u64, String)> {
    let mut seen = Vec::new();
    while seen.len() < count {
        match next_frame(socket).await {
            Frame::Event(event) if event["event"] == "send-message" => seen.push(entry(&event)),
            Frame::Event(event) if event["event"] == "history" => {
                for message in event["messages"].as_array().into_iter().flatten() {
                    seen.push(entry(message));
                }
            }
            Frame::Event(_) => {}
            Frame::Closed(frame) => panic!("closed after {} messages: {frame:?}", seen.len()),
        }
    }
    seen
}

fn entry(message: &Value) -> (u64, String) {
    (
        message["id"].as_u64().expect("id"),
        message["message"].as_str().expect("text").to_string(),
    )
}

#[tokio::test]
async fn users_on_two_processes_chat_as_on_one_server_with_one_id_order() {
    let backends = Backends::start();
    let one = backends.process().await;
    let two = backends.process().await;

    let mut alice = one.join("alice").await;
    expect_users(&mut alice, &["alice"]).await;
    let mut bob = two.join("bob").await;
    // One user list, on both processes.
    expect_users(&mut bob, &["alice", "bob"]).await;
    expect_users(&mut alice, &["alice", "bob"]).await;

    // Both talk at once; each sees every message, in one order.
    for i in 0..50 {
        say(&mut alice, &format!("a{i}")).await;
        say(&mut bob, &format!("b{i}")).await;
    }
    let seen_by_alice = messages(&mut alice, 100).await;
    let seen_by_bob = messages(&mut bob, 100).await;
    assert_eq!(seen_by_alice, seen_by_bob, "one order on every screen");
    let ids: Vec<u64> = seen_by_alice.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, (1..=100).collect::<Vec<_>>(), "no gaps, no doubles");

    // A joiner on either process gets the same latest page.
    let mut carol = one.connect("username=carol&presence=delta").await;
    let mut dave = two.connect("username=dave&presence=delta").await;
    let page_one = history(&mut carol).await;
    let page_two = history(&mut dave).await;
    assert_eq!(page_one["messages"], page_two["messages"]);
    assert_eq!(page_one["messages"].as_array().map(Vec::len), Some(50));
    assert_eq!(page_one["messages"][49]["id"], 100);

    // Typing crosses processes too.
    send_json(&mut bob, r#"{"event":"typing"}"#).await;
    expect_event(&mut alice, "typing", |e| e["username"] == "bob").await;

    // Each process counts what went through Redis.
    let (_, metrics) = one.http_get("/metrics").await;
    assert!(
        metrics.contains("banter_redis_publish_seconds_count"),
        "{metrics}"
    );
    assert!(
        metrics.contains("banter_messages_accepted_total 50"),
        "{metrics}"
    );

    // The room list agrees on both.
    for server in [&one, &two] {
        let (status, body) = server.http_get("/api/rooms").await;
        assert_eq!(status, 200);
        assert!(body.contains(r#""name":"general","online":4"#), "{body}");
    }
}

#[tokio::test]
async fn a_name_held_on_one_process_is_refused_on_the_other_until_it_is_free() {
    let backends = Backends::start();
    let one = backends.process().await;
    let two = backends.process().await;
    let mut alice = one.join("Alice").await;
    expect_users(&mut alice, &["Alice"]).await;
    let mut again = two.join("alice").await;
    match next_frame(&mut again).await {
        Frame::Closed(Some((code, reason))) => {
            assert_eq!(code, 1008);
            assert_eq!(reason, "Username alice is already taken");
        }
        other => panic!("expected 1008, got {other:?}"),
    }
    drop(alice);
    let freed = tokio::time::timeout(PATIENCE, async {
        loop {
            let mut socket = two.join("alice").await;
            match next_frame(&mut socket).await {
                Frame::Event(event) if event["event"] == "update-users" => return socket,
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await;
    assert!(freed.is_ok(), "the name was never freed");
}

#[tokio::test]
async fn a_killed_process_leaves_every_list_and_its_clients_resume_exactly_on_another() {
    let backends = Backends::start();
    let doomed = backends.process().await;
    let survivor = backends.process().await;
    let mut watcher = survivor.join("watcher").await;
    expect_users(&mut watcher, &["watcher"]).await;
    let mut victim = doomed.join("victim").await;
    expect_users(&mut victim, &["victim", "watcher"]).await;
    expect_users(&mut watcher, &["victim", "watcher"]).await;

    // A flood of 300 messages, 5 ms apart; the victim's process is killed
    // in the middle of it.
    let flood = async {
        for i in 0..300 {
            say(&mut watcher, &format!("m{i}")).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let seen_then_killed = async {
        let mut seen: Vec<(u64, String)> = Vec::new();
        let kill_at = tokio::time::Instant::now() + Duration::from_millis(500);
        let killer = async {
            tokio::time::sleep_until(kill_at).await;
            doomed.kill().await;
            std::time::Instant::now()
        };
        let reader = async {
            use futures::StreamExt;
            while let Some(Ok(frame)) = victim.next().await {
                if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
                    let event: Value = serde_json::from_str(&text).expect("json");
                    if event["event"] == "send-message" {
                        seen.push(entry(&event));
                    }
                }
            }
        };
        let (killed_at, ()) = tokio::join!(killer, reader);
        (seen, killed_at)
    };
    let ((), (before, killed_at)) = tokio::join!(flood, seen_then_killed);
    assert!(
        !before.is_empty() && before.len() < 300,
        "killed mid-flood: {}",
        before.len()
    );

    // The victim's name leaves the survivor's list within 15 s.
    tokio::time::timeout(
        Duration::from_secs(15),
        expect_users(&mut watcher, &["watcher"]),
    )
    .await
    .expect("the dead process's user left the list within 15 s");
    let left_after = killed_at.elapsed();
    assert!(left_after < Duration::from_secs(15), "{left_after:?}");
    eprintln!("measured: the killed process's user left the list {left_after:?} after the kill");

    // Reconnecting to the survivor with `since`: exactly what was missed,
    // so the victim has each of the 300 once, in order.
    let last_seen = before.last().map(|(id, _)| *id).expect("messages");
    let mut back = survivor
        .connect(&format!("username=victim&since={last_seen}"))
        .await;
    let missed = messages(&mut back, 300 - before.len()).await;
    let all: Vec<(u64, String)> = before.into_iter().chain(missed).collect();
    let texts: Vec<String> = all.iter().map(|(_, t)| t.clone()).collect();
    let expected: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, expected);
    let ids: Vec<u64> = all.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, (1..=300).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_resend_through_another_process_is_shown_once_and_everything_is_archived_once() {
    let backends = Backends::start();
    let one = backends.process().await;
    let two = backends.process().await;
    let mut reader = one.join("reader").await;
    let mut writer = one.join("writer").await;
    // Both in, so the message reaches the reader live, not in its page.
    expect_users(&mut reader, &["reader", "writer"]).await;
    let with_id = r#"{"event":"send-message","message":"once","client_id":"c-42"}"#;
    send_json(&mut writer, with_id).await;
    let first = expect_event(&mut reader, "send-message", |_| true).await;
    assert_eq!(first["client_id"], "c-42");
    drop(writer);
    // The same client id again, through the other process, after a drop.
    let mut writer = tokio::time::timeout(PATIENCE, async {
        loop {
            let mut socket = two.join("writer").await;
            if let Frame::Event(event) = next_frame(&mut socket).await
                && event["event"] == "update-users"
            {
                return socket;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("rejoined");
    send_json(&mut writer, with_id).await;
    say(&mut writer, "next").await;
    let next = expect_event(&mut reader, "send-message", |_| true).await;
    assert_eq!(next["message"], "next", "the resend was not shown again");

    // Every message reaches PostgreSQL, once.
    let archived = tokio::time::timeout(PATIENCE, async {
        loop {
            let rows = backends
                .postgres
                .sql("SELECT id || ':' || body FROM messages WHERE room = 'general' ORDER BY id");
            if rows.lines().count() >= 2 {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("archived");
    assert_eq!(archived, "1:once\n2:next");
}

#[tokio::test]
async fn history_beyond_redis_comes_from_postgresql_on_every_process() {
    let backends = Backends::start();
    let one = backends.process().await;
    let mut alice = one.join("alice").await;
    for i in 1..=120 {
        say(&mut alice, &format!("m{i}")).await;
    }
    let all = messages(&mut alice, 120).await;
    assert_eq!(all.len(), 120);
    // Wait for the archive, then drop what Redis keeps of the room's log:
    // the history must come from PostgreSQL now.
    tokio::time::timeout(PATIENCE, async {
        while backends.postgres.sql("SELECT count(*) FROM messages") != "120" {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("archived");
    backends
        .redis
        .cli(&["XTRIM", "banter:room:general:log", "MAXLEN", "10"]);

    let two = backends.process().await;
    let mut bob = two.connect("username=bob&presence=delta").await;
    let page = history(&mut bob).await;
    let ids: Vec<u64> = page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, (71..=120).collect::<Vec<_>>());
    assert_eq!(page["more"], true);
    send_json(&mut bob, r#"{"event":"load-history","before":71}"#).await;
    let older = history(&mut bob).await;
    let ids: BTreeSet<u64> = older["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, (21..=70).collect());
    // Resuming from far back also reads PostgreSQL.
    let mut carol = two.connect("username=carol&since=5").await;
    let resumed = messages(&mut carol, 115).await;
    let ids: Vec<u64> = resumed.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, (6..=120).collect::<Vec<_>>());
}

/// Sends the messages `which` (client ids `cN`), one every `every`, and
/// keeps reading: returns the client ids the server acknowledged (echoed)
/// and how many it refused with an `error` event. Prints how long the
/// refusals lasted, when there were any.
async fn send_paced(
    socket: &mut Socket,
    which: &[usize],
    every: Duration,
) -> (BTreeSet<String>, usize) {
    use futures::StreamExt;
    let mut acked = BTreeSet::new();
    let mut refused = 0;
    let mut ticks = tokio::time::interval(every);
    let mut sent = 0;
    let mut refusing: Option<(tokio::time::Instant, tokio::time::Instant)> = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while sent < which.len() || acked.len() + refused < which.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "sending took over a minute"
        );
        tokio::select! {
            _ = ticks.tick(), if sent < which.len() => {
                let next = which[sent];
                let json = serde_json::json!({
                    "event": "send-message", "message": format!("m{next}"), "client_id": format!("c{next}")
                });
                send_json(socket, &json.to_string()).await;
                sent += 1;
            }
            frame = socket.next() => {
                let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) = frame else { continue };
                let event: Value = serde_json::from_str(&text).expect("json");
                match event["event"].as_str() {
                    Some("send-message") => {
                        if let Some(id) = event["client_id"].as_str() {
                            acked.insert(id.to_string());
                        }
                    }
                    Some("error") => {
                        let now = tokio::time::Instant::now();
                        refusing = Some((refusing.map_or(now, |(first, _)| first), now));
                        assert!(
                            event["message"].as_str().is_some_and(|m| m.contains("paused")),
                            "{event}"
                        );
                        refused += 1;
                    }
                    _ => {}
                }
            }
        }
    }
    if let Some((first, last)) = refusing {
        eprintln!(
            "measured: delivery paused for {:?} ({refused} messages refused, {} accepted)",
            last - first,
            acked.len()
        );
    }
    (acked, refused)
}

/// Reads until `socket` has seen every client id in `wanted`; returns the
/// (id, client id) of every message seen, in order.
async fn until_seen(socket: &mut Socket, wanted: &BTreeSet<String>) -> Vec<(u64, String)> {
    let mut seen = Vec::new();
    let mut have = BTreeSet::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while !wanted.is_subset(&have) {
            if let Frame::Event(event) = next_frame(socket).await
                && event["event"] == "send-message"
                && let Some(client_id) = event["client_id"].as_str()
            {
                have.insert(client_id.to_string());
                seen.push((event["id"].as_u64().expect("id"), client_id.to_string()));
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("saw {} of {}", have.len(), wanted.len()));
    seen
}

#[tokio::test]
async fn redis_killed_mid_flood_and_restarted_from_its_aof_loses_nothing_acknowledged() {
    let mut backends = Backends::start();
    let one = backends.process().await;
    let two = backends.process().await;
    let mut alice = one.join("alice").await;
    let mut bob = two.join("bob").await;
    expect_users(&mut bob, &["alice", "bob"]).await;

    let sender = async {
        let all: Vec<usize> = (0..400).collect();
        let (acked, refused) = send_paced(&mut alice, &all, Duration::from_millis(5)).await;
        (alice, acked, refused)
    };
    let outage = async {
        tokio::time::sleep(Duration::from_millis(600)).await;
        backends.redis.kill();
        let killed = tokio::time::Instant::now();
        // Degraded while it is down, and says which dependency.
        let degraded = tokio::time::timeout(PATIENCE, async {
            loop {
                let (_, health) = two.http_get("/healthz").await;
                if health.contains(r#""status":"degraded""#) && health.contains(r#""down":"redis""#)
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert!(degraded.is_ok(), "healthz never said degraded");
        // Down for five seconds in all.
        tokio::time::sleep_until(killed + Duration::from_secs(5)).await;
        backends.redis.restart();
    };
    let ((mut alice, acked, refused), ()) = tokio::join!(sender, outage);
    assert!(acked.len() + refused == 400, "{} + {refused}", acked.len());
    assert!(
        refused > 0,
        "the outage refused nothing: it was not measured"
    );

    // Everything acknowledged before, during and after the outage reaches
    // both screens once, in one order, with no gap.
    let on_bob = until_seen(&mut bob, &acked).await;
    let ids: Vec<u64> = on_bob.iter().map(|(id, _)| *id).collect();
    let unique: BTreeSet<String> = on_bob.iter().map(|(_, c)| c.clone()).collect();
    assert_eq!(unique.len(), on_bob.len(), "a message was shown twice");
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "ids with a gap: {ids:?}"
    );

    // What was refused is sent again (as Banter's page does) and then
    // reaches everyone too; what was acknowledged is not doubled.
    let all: BTreeSet<String> = (0..400).map(|i| format!("c{i}")).collect();
    let rest: BTreeSet<String> = all.difference(&unique).cloned().collect();
    let resend: Vec<usize> = (0..400)
        .filter(|i| rest.contains(&format!("c{i}")))
        .collect();
    let (again, refused_again) = send_paced(&mut alice, &resend, Duration::from_millis(2)).await;
    assert_eq!(refused_again, 0);
    assert_eq!(again, rest);
    let more = until_seen(&mut bob, &rest).await;
    let mut shown: Vec<String> = on_bob.iter().chain(&more).map(|(_, c)| c.clone()).collect();
    shown.sort();
    shown.dedup();
    assert_eq!(
        shown.len(),
        on_bob.len() + more.len(),
        "a resend was shown twice"
    );
    assert_eq!(shown.into_iter().collect::<BTreeSet<_>>(), all);

    // And PostgreSQL has each of the 400 once.
    let archived = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let count = backends.postgres.sql("SELECT count(*) FROM messages");
            if count == "400" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(
        archived.is_ok(),
        "PostgreSQL has {}",
        backends.postgres.sql("SELECT count(*) FROM messages")
    );
    let distinct = backends
        .postgres
        .sql("SELECT count(DISTINCT client_id) FROM messages");
    assert_eq!(distinct, "400");
}

#[tokio::test]
async fn a_process_shut_down_gracefully_takes_its_users_out_of_every_list_at_once() {
    let backends = Backends::start();
    let leaving = backends.process().await;
    let staying = backends.process().await;
    let mut watcher = staying.join("watcher").await;
    let _alice = leaving.join("alice").await;
    expect_users(&mut watcher, &["alice", "watcher"]).await;
    let started = std::time::Instant::now();
    leaving.stop().await;
    expect_users(&mut watcher, &["watcher"]).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

/// `banter --import-sqlite` on `root`'s data, into `postgres`.
fn import(root: &std::path::Path, postgres: &Postgres) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_banter"))
        .arg("--config")
        .arg(root.join("banter.toml"))
        .arg("--data-dir")
        .arg(root.join("data"))
        .args(["--database-url", &postgres.url(), "--import-sqlite"])
        .output()
        .expect("run banter --import-sqlite");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[tokio::test]
async fn an_embedded_history_imported_twice_is_kept_once_and_cluster_ids_continue_above_it() {
    let backends = Backends::start();
    let root = tempfile::tempdir().expect("tempdir");
    let embedded = Server::start_in(root.path(), UNTHROTTLED).await;
    let mut alice = embedded.join("alice").await;
    for i in 0..30 {
        say(&mut alice, &format!("old {i}")).await;
    }
    let old = messages(&mut alice, 30).await;
    let mut bob = embedded.connect("username=bob&room=ops").await;
    for i in 0..10 {
        say(&mut bob, &format!("ops {i}")).await;
    }
    messages(&mut bob, 10).await;
    embedded.stop().await;

    let (ok, said) = import(root.path(), &backends.postgres);
    assert!(ok, "{said}");
    assert!(
        said.contains("imported 40 messages into PostgreSQL (40 new, 0 already there)"),
        "{said}"
    );
    let (ok, said) = import(root.path(), &backends.postgres);
    assert!(ok, "{said}");
    assert!(said.contains("(0 new, 40 already there)"), "{said}");
    assert_eq!(backends.postgres.sql("SELECT count(*) FROM messages"), "40");

    // The cluster shows the old history with its ids, and goes on above it.
    let one = backends.process().await;
    let mut carol = one.connect("username=carol&presence=delta").await;
    let page = history(&mut carol).await;
    let shown: Vec<(u64, String)> = page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(entry)
        .collect();
    assert_eq!(shown, old);
    say(&mut carol, "new").await;
    let new = expect_event(&mut carol, "send-message", |_| true).await;
    let newest_old = old.last().map(|(id, _)| *id).expect("old messages");
    assert_eq!(new["id"].as_u64(), Some(newest_old + 1));

    // Without a database to import into, a clear error.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_banter"))
        .args(["--import-sqlite", "--config"])
        .arg(root.path().join("banter.toml"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs database-url"));
}

#[tokio::test]
async fn with_redis_gone_for_good_sockets_stay_open_and_shutdown_still_ends_in_time() {
    let mut backends = Backends::start();
    let one = backends.process().await;
    let mut alice = one.join("alice").await;
    expect_users(&mut alice, &["alice"]).await;
    backends.redis.kill();
    // The socket stays; a message is refused with the reason, not dropped.
    say(&mut alice, "anyone?").await;
    let refused = expect_event(&mut alice, "error", |_| true).await;
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("Delivery is paused")),
        "{refused}"
    );
    // A new joiner is told to try again later rather than left hanging.
    let mut late = one.join("late").await;
    match next_frame(&mut late).await {
        Frame::Closed(Some((code, _))) => assert_eq!(code, 1013),
        other => panic!("expected 1013, got {other:?}"),
    }
    let started = std::time::Instant::now();
    let mut child = one.child;
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the process exits")
        .expect("wait");
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    loop {
        match next_frame(&mut alice).await {
            Frame::Event(_) => continue,
            Frame::Closed(Some((code, _))) => break assert_eq!(code, 1001),
            other => panic!("expected 1001, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_page_on_a_killed_process_takes_its_name_back_on_another_at_once() {
    let backends = Backends::start();
    let doomed = backends.process().await;
    let survivor = backends.process().await;
    let mut watcher = survivor.join("watcher").await;
    let mut victim = doomed.join("victim").await;
    expect_users(&mut victim, &["victim", "watcher"]).await;
    say(&mut watcher, "seen").await;
    let seen = messages(&mut victim, 1).await;
    doomed.kill().await;
    say(&mut watcher, "missed").await;
    // Straight away, not after the 10 s heartbeat expiry: the dead
    // process's probe channel is empty, so its claim no longer counts.
    let started = std::time::Instant::now();
    let mut back = survivor
        .connect(&format!("username=victim&since={}", seen[0].0))
        .await;
    let missed = messages(&mut back, 1).await;
    assert_eq!(missed[0].1, "missed");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // And it stays in the list once the dead process is reaped.
    tokio::time::sleep(Duration::from_secs(13)).await;
    let (_, rooms) = survivor.http_get("/api/rooms").await;
    assert!(rooms.contains(r#""name":"general","online":2"#), "{rooms}");
}

#[tokio::test]
async fn redis_flushed_ids_continue_above_the_stored_names_stay_taken_and_stale_resumes_reset() {
    let backends = Backends::start();
    let one = backends.process().await;
    let two = backends.process().await;
    let mut alice = one.join("alice").await;
    let mut bob = two.join("bob").await;
    expect_users(&mut bob, &["alice", "bob"]).await;
    for i in 1..=20 {
        say(&mut alice, &format!("m{i}")).await;
    }
    assert_eq!(messages(&mut bob, 20).await.last().map(|m| m.0), Some(20));
    backends.redis.cli(&["FLUSHALL"]);

    // Ids continue above everything stored and shown, never from 1.
    say(&mut alice, "after the flush").await;
    let after = expect_event(&mut bob, "send-message", |_| true).await;
    assert_eq!(after["message"], "after the flush");
    assert_eq!(after["id"], 21);
    // A resume from what bob had gets exactly the new message.
    let mut resumed = two.connect("username=bob2&since=20").await;
    let missed = messages(&mut resumed, 1).await;
    assert_eq!(missed, [(21, "after the flush".to_string())]);
    // A `since` that no longer matches anything gets a fresh page.
    let mut stale = two.connect("username=carol&since=900").await;
    let page = history(&mut stale).await;
    assert_eq!(
        page["messages"]
            .as_array()
            .and_then(|m| m.last())
            .map(|m| m["id"].clone()),
        Some(21.into())
    );

    // The names in use are claimed again: nobody else can take alice.
    tokio::time::timeout(PATIENCE, async {
        while !backends
            .redis
            .cli(&["HVALS", "banter:room:general:users"])
            .contains("alice")
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("alice's name claimed again");
    let mut thief = two.join("alice").await;
    match next_frame(&mut thief).await {
        Frame::Closed(Some((code, _))) => assert_eq!(code, 1008),
        other => panic!("expected 1008, got {other:?}"),
    }
}

#[tokio::test]
async fn three_processes_one_list_and_a_moved_user_is_listed_once_everywhere() {
    let backends = Backends::start();
    let one = backends.process().await;
    let two = backends.process().await;
    let three = backends.process().await;
    let mut ann = one.join("Ann").await;
    let mut bob = two.join("bob").await;
    let mut cat = three.join("cat").await;
    for socket in [&mut ann, &mut bob, &mut cat] {
        expect_users(socket, &["Ann", "bob", "cat"]).await;
    }
    // A message with a NUL in it is delivered as sent, and does not stop
    // the archive (PostgreSQL's text cannot hold NUL).
    say(&mut bob, "nul \u{0} inside").await;
    say(&mut bob, "after it").await;
    let seen = messages(&mut cat, 2).await;
    assert_eq!(seen[0].1, "nul \u{0} inside");
    tokio::time::timeout(PATIENCE, async {
        while backends.postgres.sql("SELECT count(*) FROM messages") != "2" {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("both archived");

    // Ann's process dies; she comes back on another as "ann": the third
    // process lists her once, under the new spelling, also after the dead
    // process is reaped.
    one.kill().await;
    let mut back = two.join("ann").await;
    expect_users(&mut back, &["ann", "bob", "cat"]).await;
    expect_users(&mut cat, &["ann", "bob", "cat"]).await;
    tokio::time::sleep(Duration::from_secs(13)).await;
    let (_, rooms) = three.http_get("/api/rooms").await;
    assert!(rooms.contains(r#""name":"general","online":3"#), "{rooms}");
}

/// A joiner greeted from another process the moment it is listed there
/// gets the greeting as a `send-message` of its own (the tutorial's client
/// reads no `history`): its join is announced only once it has entered,
/// its page in hand. Twenty rooms new to the joiner's process at once, so
/// each join also subscribes and reads a page.
#[tokio::test]
async fn a_joiner_greeted_from_another_process_as_soon_as_it_is_listed_gets_it_live() {
    let backends = Backends::start();
    let one = backends.process().await;
    let two = backends.process().await;
    let rounds = (0..20).map(|round| {
        let (one, two) = (&one, &two);
        async move {
            let mut alice = one
                .connect(&format!("username=alice&room=greet{round}"))
                .await;
            expect_users(&mut alice, &["alice"]).await;
            let mut bob = two
                .connect(&format!("username=bob&room=greet{round}"))
                .await;
            expect_users(&mut alice, &["alice", "bob"]).await;
            say(&mut alice, "hi bob").await;
            expect_live(&mut bob, "hi bob").await;
        }
    });
    futures::future::join_all(rounds).await;
}
