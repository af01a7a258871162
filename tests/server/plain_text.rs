//! Plain-text sockets: a WebSocket opened on a page address (`/`, `/r/ROOM`)
//! is a chat in lines of text, for `websocat`, shell scripts and the
//! tutorials' smallest clients. Same room, rules and limits as the JSON
//! endpoint; only the two ends speak differently.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::{
    connect_async,
    tungstenite::{Message, protocol::CloseFrame},
};

use crate::support::*;

const TOKEN: &str = "correct-horse-battery-staple";

/// `ws://ADDR` + `path` (a page address with any query).
fn page_url(server: &Server, path: &str) -> String {
    format!("ws://{}{path}", server.addr)
}

/// A plain-text socket on the page address `path` (e.g. `/r/ops?username=a`).
async fn open(server: &Server, path: &str) -> Socket {
    let (socket, _) = tokio::time::timeout(PATIENCE, connect_async(page_url(server, path)))
        .await
        .expect("connect timed out")
        .expect("connect");
    socket
}

/// A handshake on a page address with extra request headers: the socket,
/// or the HTTP status and body it was refused with.
async fn try_open(
    server: &Server,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Socket, (u16, String)> {
    try_connect_to(&page_url(server, path), headers).await
}

/// Reads lines until one satisfies `accept`; returns it.
async fn expect_line(socket: &mut Socket, accept: impl Fn(&str) -> bool) -> String {
    loop {
        let line = next_text(socket).await;
        if accept(&line) {
            return line;
        }
    }
}

/// The greeting's name: `* Welcome to #ROOM, NAME. N online: …`.
fn greeted_name(greeting: &str) -> String {
    let rest = greeting
        .split_once(", ")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("not a greeting: {greeting:?}"));
    rest.split_once(". ")
        .map(|(name, _)| name.to_string())
        .unwrap_or_else(|| panic!("not a greeting: {greeting:?}"))
}

fn is_guest_name(name: &str) -> bool {
    name.strip_prefix("guest-")
        .is_some_and(|n| n.len() == 4 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Every text frame that arrives within `window` (pings skipped); fails on
/// a close.
async fn lines_within(socket: &mut Socket, window: Duration) -> Vec<String> {
    let mut lines = Vec::new();
    let until = Instant::now() + window;
    while let Ok(frame) = tokio::time::timeout_at(until, socket.next()).await {
        match frame {
            Some(Ok(Message::Text(text))) => lines.push(text.to_string()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected text frames, got {other:?}"),
        }
    }
    lines
}

/// The close frame (code, reason), skipping any text before it.
async fn expect_close(socket: &mut Socket) -> Option<(u16, String)> {
    loop {
        let frame = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("no close in time");
        match frame {
            Some(Ok(Message::Close(frame))) => {
                return frame
                    .map(|CloseFrame { code, reason }| (u16::from(code), reason.to_string()));
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

/// A plain GET on a page address is still the page: only an upgrade is a
/// socket.
#[tokio::test]
async fn a_plain_get_on_a_page_address_still_serves_the_html_page() {
    let server = Server::start().await;
    for path in ["/", "/r/ops"] {
        let (status, response) = server.http_get(path).await;
        assert_eq!(status, 200, "{path}: {response}");
        let head = response.split("\r\n\r\n").next().unwrap_or_default();
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/html"),
            "{path}: {head}"
        );
        assert!(
            response.contains("<title>Banter</title>"),
            "{path}: {response}"
        );
    }
}

/// The first line says where the client is, under which name, and who is
/// online (sorted regardless of case); then its own messages come back to
/// it as `name: text`.
#[tokio::test]
async fn a_named_client_is_greeted_with_its_room_and_who_is_online() {
    let server = Server::start().await;
    let mut zed = open(&server, "/r/ops?username=Zed").await;
    assert_eq!(
        next_text(&mut zed).await,
        "* Welcome to #ops, Zed. 1 online: Zed"
    );
    let mut bob = server.connect("username=bob&room=ops").await;
    // JSON lists are sorted regardless of case too.
    expect_users(&mut bob, &["bob", "Zed"]).await;
    let mut alice = open(&server, "/r/ops?username=alice").await;
    assert_eq!(
        next_text(&mut alice).await,
        "* Welcome to #ops, alice. 3 online: alice, bob, Zed"
    );
    alice.send(Message::text("hello ops")).await.expect("send");
    assert_eq!(next_text(&mut alice).await, "alice: hello ops");
}

/// A long online list spells out ten names and counts the rest.
#[tokio::test]
async fn a_long_online_list_names_ten_and_counts_the_rest() {
    let server = Server::start().await;
    let mut others = Vec::new();
    for i in 0..12 {
        others.push(server.join(&format!("u{i:02}")).await);
    }
    server.wait_for_clients(12).await;
    let mut me = open(&server, "/?username=zz").await;
    assert_eq!(
        next_text(&mut me).await,
        "* Welcome to #general, zz. 13 online: u00, u01, u02, u03, u04, u05, u06, u07, u08, u09 and 3 more"
    );
}

/// A client that gives no name is a guest, `guest-NNNN`, and is told so in
/// its first line.
#[tokio::test]
async fn a_nameless_client_is_a_guest_and_told_its_name() {
    let server = Server::start().await;
    let mut guest = open(&server, "/").await;
    let greeting = next_text(&mut guest).await;
    let name = greeted_name(&greeting);
    assert!(is_guest_name(&name), "{greeting}");
    assert_eq!(
        greeting,
        format!("* Welcome to #general, {name}. 1 online: {name}")
    );
    // The guest is in the room under that name.
    let mut bob = server.join("bob").await;
    let users = expect_event(&mut bob, "update-users", |_| true).await;
    assert_eq!(
        users["usernames"],
        serde_json::json!(["bob", name.as_str()])
    );
}

/// Every text frame is a message (a trailing line ending dropped), and
/// every message in the room comes back to everyone as one `author: text`
/// frame, the sender included.
#[tokio::test]
async fn text_frames_are_messages_and_come_back_to_everyone_as_lines() {
    let server = Server::start().await;
    let mut alice = open(&server, "/r/ops?username=alice").await;
    next_text(&mut alice).await;
    let mut bob = open(&server, "/r/ops?username=bob").await;
    next_text(&mut bob).await;
    assert_eq!(next_text(&mut alice).await, "* bob joined (2 online)");

    alice.send(Message::text("hello\r\n")).await.expect("send");
    assert_eq!(next_text(&mut alice).await, "alice: hello");
    assert_eq!(next_text(&mut bob).await, "alice: hello");
    bob.send(Message::text("hi there\n")).await.expect("send");
    assert_eq!(next_text(&mut alice).await, "bob: hi there");
    assert_eq!(next_text(&mut bob).await, "bob: hi there");
    // A line that looks like JSON is still just text.
    let json = r#"{"event":"typing"}"#;
    bob.send(Message::text(json)).await.expect("send");
    assert_eq!(next_text(&mut alice).await, format!("bob: {json}"));
}

/// Others' arrivals and departures are lines with the new count.
#[tokio::test]
async fn joins_and_leaves_of_others_are_lines_with_the_count() {
    let server = Server::start().await;
    let mut alice = open(&server, "/?username=alice").await;
    assert_eq!(
        next_text(&mut alice).await,
        "* Welcome to #general, alice. 1 online: alice"
    );
    let mut bob = open(&server, "/?username=bob").await;
    next_text(&mut bob).await;
    assert_eq!(next_text(&mut alice).await, "* bob joined (2 online)");
    let carol = server.join("carol").await;
    assert_eq!(next_text(&mut alice).await, "* carol joined (3 online)");
    drop(carol);
    assert_eq!(next_text(&mut alice).await, "* carol left (2 online)");
    bob.close(None).await.expect("close");
    assert_eq!(next_text(&mut alice).await, "* bob left (1 online)");
}

/// A plain-text client is a live view: no history on joining and no
/// typing notices, only what is said from then on.
#[tokio::test]
async fn no_history_is_sent_on_joining_and_no_typing_events() {
    let server = Server::start().await;
    let mut carol = server.join("carol").await;
    expect_users(&mut carol, &["carol"]).await;
    say(&mut carol, "said before").await;
    expect_event(&mut carol, "send-message", |e| {
        e["message"] == "said before"
    })
    .await;

    let mut alice = open(&server, "/?username=alice").await;
    assert_eq!(
        next_text(&mut alice).await,
        "* Welcome to #general, alice. 2 online: alice, carol"
    );
    expect_users(&mut carol, &["alice", "carol"]).await;
    send_json(&mut carol, r#"{"event":"typing"}"#).await;
    say(&mut carol, "said after").await;
    assert_eq!(next_text(&mut alice).await, "carol: said after");
}

/// A refused message comes back as one line, the same sentence a JSON
/// client's `error` event carries; the socket keeps working.
#[tokio::test]
async fn a_refused_message_comes_back_as_the_error_sentence() {
    let server = Server::start().await;
    let mut alice = open(&server, "/?username=alice").await;
    next_text(&mut alice).await;

    for blank in ["", "   ", "\r\n", " \t \n"] {
        alice.send(Message::text(blank)).await.expect("send");
        assert_eq!(
            next_text(&mut alice).await,
            "Message must not be empty",
            "{blank:?}"
        );
    }
    alice
        .send(Message::text("x".repeat(4001)))
        .await
        .expect("send");
    assert_eq!(
        next_text(&mut alice).await,
        "Message is 4001 characters long; the limit is 4000"
    );
    // Exactly 4000, with a line ending: allowed.
    let longest = "y".repeat(4000);
    alice
        .send(Message::text(format!("{longest}\n")))
        .await
        .expect("send");
    assert_eq!(next_text(&mut alice).await, format!("alice: {longest}"));

    alice
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .expect("send");
    assert_eq!(
        next_text(&mut alice).await,
        "Binary frames are not supported; send text"
    );

    // The JSON client's sentences are the same ones.
    let mut bob = server.join("bob").await;
    expect_users(&mut bob, &["alice", "bob"]).await;
    say(&mut bob, "   ").await;
    let error = expect_event(&mut bob, "error", |_| true).await;
    assert_eq!(error["message"], "Message must not be empty");

    alice
        .send(Message::text("still works"))
        .await
        .expect("send");
    expect_line(&mut alice, |l| l == "alice: still works").await;
}

/// Over the flood rate, the refused message is answered with the same
/// "Slow down" sentence as for a JSON client.
#[tokio::test]
async fn over_the_flood_rate_a_text_client_is_told_to_slow_down() {
    // The defaults: 10 a second, burst 20.
    let server = Server::start().await;
    let mut alice = open(&server, "/?username=alice").await;
    next_text(&mut alice).await;
    // Pipelined: the burst of 20 passes, the rest (but for a token or
    // two refilled on a loaded machine) is refused.
    const SENT: usize = 25;
    for i in 0..SENT {
        alice
            .feed(Message::text(format!("m{i}")))
            .await
            .expect("feed");
    }
    alice.flush().await.expect("flush");
    let mut echoed = 0;
    let mut slow_downs = Vec::new();
    while echoed + slow_downs.len() < SENT {
        let line = next_text(&mut alice).await;
        if line.starts_with("alice: m") {
            echoed += 1;
        } else {
            slow_downs.push(line);
        }
    }
    assert!(
        (20..SENT).contains(&echoed),
        "{echoed} echoed, {slow_downs:?}"
    );
    for line in &slow_downs {
        assert_eq!(line, "Slow down: the limit is 10 per second");
    }
}

/// A plain-text user is a user like any other to JSON clients: in their
/// lists, and what it says reaches them live and is stored for later
/// joiners' history.
#[tokio::test]
async fn a_text_user_is_listed_heard_and_stored_for_json_clients() {
    let server = Server::start().await;
    let mut bob = server.join("bob").await;
    expect_users(&mut bob, &["bob"]).await;
    let mut alice = open(&server, "/?username=alice").await;
    next_text(&mut alice).await;
    expect_users(&mut bob, &["alice", "bob"]).await;

    alice
        .send(Message::text("for the record"))
        .await
        .expect("send");
    let live = expect_event(&mut bob, "send-message", |_| true).await;
    assert_eq!(live["username"], "alice");
    assert_eq!(live["message"], "for the record");

    let mut carol = server.join("carol").await;
    let page = history(&mut carol).await;
    let messages = page["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 1, "{page}");
    assert_eq!(messages[0]["username"], "alice");
    assert_eq!(messages[0]["message"], "for the record");
    assert_eq!(messages[0]["id"], live["id"]);
}

/// A JSON client's message reaches a plain-text client as `name: text`,
/// in the room it was said in only.
#[tokio::test]
async fn a_json_client_s_message_reaches_a_text_client_as_a_line() {
    let server = Server::start().await;
    let mut in_ops = open(&server, "/r/ops?username=alice").await;
    next_text(&mut in_ops).await;
    let mut in_general = open(&server, "/?username=dave").await;
    next_text(&mut in_general).await;
    let mut bob = server.connect("username=bob&room=ops").await;
    expect_users(&mut bob, &["alice", "bob"]).await;
    assert_eq!(next_text(&mut in_ops).await, "* bob joined (2 online)");
    say(&mut bob, "hi from JSON").await;
    assert_eq!(next_text(&mut in_ops).await, "bob: hi from JSON");
    // Nothing of ops reached general.
    let general = lines_within(&mut in_general, Duration::from_millis(300)).await;
    assert!(general.is_empty(), "{general:?}");
}

/// With access tokens, a plain-text socket needs one like any other: none
/// is refused at the handshake with 401, a token in the query or as a
/// bearer gets in.
#[tokio::test]
async fn with_tokens_a_text_socket_without_one_is_refused_with_401() {
    let server = Server::start_with(&["--auth-tokens", TOKEN]).await;
    let (status, body) = try_open(&server, "/?username=a", &[])
        .await
        .expect_err("401");
    assert_eq!(
        (status, body.trim()),
        (401, "This server needs an access token")
    );
    let (status, _) = try_open(&server, "/r/ops?username=a&accessToken=guess", &[])
        .await
        .expect_err("403");
    assert_eq!(status, 403);

    let mut by_query = try_open(&server, &format!("/?username=q&accessToken={TOKEN}"), &[])
        .await
        .expect("token in the query");
    assert_eq!(
        next_text(&mut by_query).await,
        "* Welcome to #general, q. 1 online: q"
    );
    let bearer = format!("Bearer {TOKEN}");
    let mut by_header = try_open(&server, "/r/ops?username=b", &[("authorization", &bearer)])
        .await
        .expect("token as a bearer");
    assert_eq!(
        next_text(&mut by_header).await,
        "* Welcome to #ops, b. 1 online: b"
    );
}

/// A page on another site cannot open a plain-text socket either: a
/// foreign `Origin` is refused with 403.
#[tokio::test]
async fn a_foreign_origin_is_refused_with_403() {
    let server = Server::start().await;
    let (status, _) = try_open(
        &server,
        "/?username=mallory",
        &[("origin", "https://evil.example")],
    )
    .await
    .expect_err("a foreign origin must be refused");
    assert_eq!(status, 403);
    let own = format!("http://{}", server.addr);
    let mut alice = try_open(&server, "/?username=alice", &[("origin", &own)])
        .await
        .expect("the page's own origin may connect");
    assert_eq!(
        next_text(&mut alice).await,
        "* Welcome to #general, alice. 1 online: alice"
    );
}

/// A name someone already has is refused with 1008 and the same reason a
/// JSON client gets; the holder is unaffected.
#[tokio::test]
async fn a_taken_name_is_closed_with_1008() {
    let server = Server::start().await;
    let mut alice = server.join("alice").await;
    expect_users(&mut alice, &["alice"]).await;
    let mut imposter = open(&server, "/?username=alice").await;
    assert_eq!(
        expect_close(&mut imposter).await,
        Some((1008, "Username alice is already taken".to_string()))
    );
    say(&mut alice, "still here").await;
    expect_event(&mut alice, "send-message", |e| e["message"] == "still here").await;
}

/// The tutorial's client, twice: each connects to `ws://HOST/` with no
/// name, says `hello, everyone` on open and prints every frame; the second
/// starts half a second after the first. The first hears both greetings,
/// the second only its own (no history).
#[tokio::test]
async fn tutorial_two_nameless_clients_say_hello() {
    let server = Server::start().await;
    let url = page_url(&server, "/");

    /// One tutorial client: what it printed, in order.
    fn tutorial_client(url: String) -> (Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>) {
        let printed = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&printed);
        let task = tokio::spawn(async move {
            let (mut ws, _) = connect_async(url).await.expect("connect");
            // onopen: send("hello, everyone")
            ws.send(Message::text("hello, everyone"))
                .await
                .expect("send");
            // onmessage: console.log(data)
            while let Some(Ok(frame)) = ws.next().await {
                if let Message::Text(text) = frame {
                    kept.lock().expect("lock").push(text.to_string());
                }
            }
        });
        (printed, task)
    }

    let (first, first_task) = tutorial_client(url.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (second, second_task) = tutorial_client(url);

    let name_of = |printed: &Arc<Mutex<Vec<String>>>| -> Option<String> {
        printed
            .lock()
            .expect("lock")
            .first()
            .map(|g| greeted_name(g))
    };
    let has = |printed: &Arc<Mutex<Vec<String>>>, line: &str| -> usize {
        printed
            .lock()
            .expect("lock")
            .iter()
            .filter(|l| *l == line)
            .count()
    };
    let waited = tokio::time::timeout(PATIENCE, async {
        loop {
            if let (Some(a), Some(b)) = (name_of(&first), name_of(&second)) {
                let from_a = format!("{a}: hello, everyone");
                let from_b = format!("{b}: hello, everyone");
                if has(&first, &from_a) > 0 && has(&first, &from_b) > 0 && has(&second, &from_b) > 0
                {
                    return (a, b);
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let (a, b) = waited.unwrap_or_else(|_| {
        panic!(
            "the hellos did not arrive: first {:?}, second {:?}",
            first.lock().expect("lock"),
            second.lock().expect("lock")
        )
    });
    // Let anything else that was coming arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    first_task.abort();
    second_task.abort();

    assert!(is_guest_name(&a) && is_guest_name(&b) && a != b, "{a} {b}");
    let first = first.lock().expect("lock").clone();
    let second = second.lock().expect("lock").clone();
    // The second's hello may overtake the line saying it joined (presence
    // is sent in batches); everything else is in order.
    assert_eq!(
        first[..2],
        [
            format!("* Welcome to #general, {a}. 1 online: {a}"),
            format!("{a}: hello, everyone"),
        ],
        "first client: {first:?}"
    );
    let mut rest = first[2..].to_vec();
    rest.sort();
    let mut expected = vec![
        format!("* {b} joined (2 online)"),
        format!("{b}: hello, everyone"),
    ];
    expected.sort();
    assert_eq!(rest, expected, "first client: {first:?}");
    let mut both = [a.as_str(), b.as_str()];
    both.sort();
    assert_eq!(
        second,
        [
            format!(
                "* Welcome to #general, {b}. 2 online: {}, {}",
                both[0], both[1]
            ),
            format!("{b}: hello, everyone"),
        ],
        "second client: no history, so not the first's hello"
    );
}

/// The tutorial's nine clients from one script: client N says
/// `Client N says hello` every 2·N seconds. Run for 8.5 s: everyone hears
/// every message said while it was connected, each exactly once, as
/// `guest-NNNN: Client N says hello` (client 1's four included).
#[tokio::test]
async fn tutorial_nine_clients_each_hear_every_hello_once() {
    const CLIENTS: usize = 9;
    const RUN: Duration = Duration::from_millis(8_500);
    let server = Server::start().await;
    let url = page_url(&server, "/");
    let start = Instant::now();

    struct Client {
        name: String,
        sent: usize,
        heard: Vec<String>,
    }
    let mut tasks = Vec::new();
    for n in 1..=CLIENTS {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let (ws, _) = connect_async(url).await.expect("connect");
            let (mut sink, mut stream) = ws.split();
            let greeting = match tokio::time::timeout(PATIENCE, stream.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => text.to_string(),
                other => panic!("client {n}: no greeting: {other:?}"),
            };
            let name = greeted_name(&greeting);
            let reader = tokio::spawn(async move {
                let mut heard = Vec::new();
                while let Some(Ok(frame)) = stream.next().await {
                    if let Message::Text(text) = frame {
                        heard.push(text.to_string());
                    }
                }
                heard
            });
            // setInterval(() => ws.send(`Client ${n} says hello`), 2000 * n)
            let period = Duration::from_secs(2 * n as u64);
            let mut every = tokio::time::interval_at(Instant::now() + period, period);
            let mut sent = 0;
            // The script is stopped at RUN, whatever is due next.
            while tokio::time::timeout_at(start + RUN, every.tick())
                .await
                .is_ok()
            {
                sink.send(Message::text(format!("Client {n} says hello")))
                    .await
                    .expect("send");
                sent += 1;
            }
            (name, sent, sink, reader)
        }));
    }
    let mut running = Vec::new();
    for task in tasks {
        running.push(
            tokio::time::timeout(RUN + PATIENCE, task)
                .await
                .expect("a client kept on")
                .expect("client task"),
        );
    }
    let total_sent: usize = running.iter().map(|(_, sent, _, _)| sent).sum();
    // Give the last messages time to arrive, then close every socket.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut clients = Vec::new();
    for (name, sent, mut sink, reader) in running {
        let _ = sink.close().await;
        let heard = tokio::time::timeout(PATIENCE, reader)
            .await
            .expect("reader ended")
            .expect("reader task");
        clients.push(Client { name, sent, heard });
    }

    // Client N (1..=4) sends at 2N, 4N, … seconds up to 8.5: 4, 2, 1, 1.
    let sent: Vec<usize> = clients.iter().map(|c| c.sent).collect();
    assert_eq!(
        sent,
        [4, 2, 1, 1, 0, 0, 0, 0, 0],
        "messages sent per client"
    );
    assert_eq!(total_sent, 8);
    let mut names: Vec<&str> = clients.iter().map(|c| c.name.as_str()).collect();
    assert!(names.iter().all(|n| is_guest_name(n)), "{names:?}");
    names.sort();
    names.dedup();
    assert_eq!(names.len(), CLIENTS, "guest names are distinct");
    for (i, listener) in clients.iter().enumerate() {
        for (n, speaker) in clients.iter().enumerate() {
            let line = format!("{}: Client {} says hello", speaker.name, n + 1);
            let times = listener.heard.iter().filter(|l| **l == line).count();
            assert_eq!(
                times,
                speaker.sent,
                "client {} heard {line:?} {times} times: {:?}",
                i + 1,
                listener.heard
            );
        }
        let messages = listener
            .heard
            .iter()
            .filter(|l| !l.starts_with("* "))
            .count();
        assert_eq!(messages, 8, "client {}: {:?}", i + 1, listener.heard);
    }
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
}
