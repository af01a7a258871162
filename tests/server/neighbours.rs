//! One address is many people: an office behind NAT, a school, a mobile
//! carrier. Every test client here connects from 127.0.0.1, as such a
//! crowd would from its one public address, and the defaults must let them
//! all in, and keep them in while one of them floods.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

/// How long a test client waits after a 429 or 503 before trying again
/// (the server says `Retry-After: 1`, as the page and the terminal obey).
const RETRY: Duration = Duration::from_secs(1);

/// Connects, retrying after a refusal for going too fast as a real client
/// does; any other refusal fails the test.
async fn connect_patiently(server: &Server, query: &str) -> Socket {
    loop {
        match server.try_connect(query, &[]).await {
            Ok(socket) => return socket,
            Err((429 | 503, _)) => tokio::time::sleep(RETRY).await,
            Err((status, body)) => panic!("{query}: refused with {status}: {body}"),
        }
    }
}

#[tokio::test]
async fn three_hundred_people_behind_one_address_all_connect_within_15_s() {
    // The defaults, as an office would meet them after a server restart:
    // everyone's page reconnects at once.
    let server = Arc::new(Server::start().await);
    let started = Instant::now();
    let joins: Vec<_> = (0..300)
        .map(|i| {
            let server = Arc::clone(&server);
            tokio::spawn(async move {
                connect_patiently(&server, &format!("username=p{i}&presence=delta")).await
            })
        })
        .collect();
    let mut sockets = Vec::new();
    for join in joins {
        sockets.push(join.await.expect("join task"));
    }
    let took = started.elapsed();
    server.wait_for_clients(300).await;
    eprintln!("300 clients from one address connected in {took:?}");
    assert!(took <= Duration::from_secs(15), "took {took:?}");
    // And they are really in: the first hears the last.
    say(&mut sockets[299], "last one in").await;
    expect_event(&mut sockets[0], "send-message", |e| {
        e["message"] == "last one in"
    })
    .await;
}

#[tokio::test]
async fn a_flooder_gets_its_burst_per_cool_down_while_ten_neighbours_keep_chatting() {
    // A short cool-down so that a few of them fit in the test; the other
    // limits are the defaults (10 messages a second, a burst of 20).
    const COOLDOWN: Duration = Duration::from_secs(2);
    const FOR: Duration = Duration::from_secs(5);
    let server = Arc::new(Server::start_with(&["--flood-cooldown-ms", "2000"]).await);
    let mut watcher = server.connect("username=watcher&presence=delta").await;
    // In once its page comes (the handshake completes before the join is
    // processed): what is said from then on must all reach it.
    history(&mut watcher).await;
    let heard: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let listening = {
        let heard = Arc::clone(&heard);
        tokio::spawn(async move {
            loop {
                match next_frame(&mut watcher).await {
                    Frame::Event(e) if e["event"] == "send-message" => {
                        let who = e["username"].as_str().unwrap_or_default().to_owned();
                        let what = e["message"].as_str().unwrap_or_default().to_owned();
                        let done = what == "that's all";
                        heard.lock().expect("heard").push((who, what));
                        if done {
                            return watcher;
                        }
                    }
                    Frame::Event(_) => {}
                    Frame::Closed(frame) => panic!("the watcher was closed: {frame:?}"),
                }
            }
        })
    };
    let started = Instant::now();

    // The flooder: connects as often as it is let in and pipelines
    // messages without reading until it is closed.
    let flooder = {
        let server = Arc::clone(&server);
        tokio::spawn(async move {
            let (mut admitted, mut refused) = (0, 0);
            while started.elapsed() < FOR {
                let mut socket = match server.try_connect("username=flooder", &[]).await {
                    Ok(socket) => socket,
                    Err((429, _)) => {
                        refused += 1;
                        continue;
                    }
                    Err((status, body)) => panic!("flooder refused with {status}: {body}"),
                };
                admitted += 1;
                let spam = r#"{"event":"send-message","message":"spam"}"#;
                for _ in 0..500 {
                    if socket.feed(Message::text(spam)).await.is_err() {
                        break;
                    }
                }
                let _ = socket.flush().await;
                while let Frame::Event(_) = next_frame(&mut socket).await {}
            }
            (admitted, refused)
        })
    };

    // Ten neighbours at the same address: each connects, says a few
    // things at a person's pace, leaves, and comes back, throughout.
    let neighbours: Vec<_> = (0..10)
        .map(|n| {
            let server = Arc::clone(&server);
            tokio::spawn(async move {
                let mut said = Vec::new();
                let mut visit = 0;
                while started.elapsed() < FOR {
                    // A new name each visit: the last visit's may still be on
                    // its way out of the room.
                    let query = format!("username=n{n}v{visit}&presence=delta");
                    let mut socket = match server.try_connect(&query, &[]).await {
                        Ok(socket) => socket,
                        Err((status, body)) => panic!("n{n} refused with {status}: {body}"),
                    };
                    for line in 0..3 {
                        let text = format!("n{n} visit {visit} line {line}");
                        say(&mut socket, &text).await;
                        said.push(text);
                        tokio::time::sleep(Duration::from_millis(150 + 20 * n)).await;
                    }
                    let _ = socket.close(None).await;
                    visit += 1;
                }
                said
            })
        })
        .collect();
    let mut said = HashSet::new();
    for neighbour in neighbours {
        said.extend(neighbour.await.expect("neighbour task"));
    }
    let (admitted, refused) = flooder.await.expect("flooder task");
    let elapsed = started.elapsed();

    let mut last = server.join("last").await;
    say(&mut last, "that's all").await;
    tokio::time::timeout(PATIENCE, listening)
        .await
        .expect("the watcher heard the end")
        .expect("watcher task");
    let heard = heard.lock().expect("heard").clone();
    let spam = heard.iter().filter(|(who, _)| who == "flooder").count();
    let missing: Vec<_> = said
        .iter()
        .filter(|text| !heard.iter().any(|(_, what)| what == *text))
        .collect();
    eprintln!(
        "neighbours said {}, flooder admitted {admitted}× refused {refused}×, \
         {spam} of its messages went out in {elapsed:?}",
        said.len()
    );
    assert!(missing.is_empty(), "lost from the neighbours: {missing:?}");
    assert!(said.len() >= 10 * 6, "the neighbours kept chatting");
    // Its burst (20, and what refills at 10 a second while a loaded machine
    // reads) once per cool-down, and no more.
    let windows = (elapsed.as_millis() / COOLDOWN.as_millis()) as usize + 1;
    // What the server said about the flooder's visits, should it have
    // been let in more often than that.
    let visits: Vec<String> = server
        .log()
        .lines()
        .filter(|line| line.contains("flooder"))
        .map(str::to_owned)
        .collect();
    assert!(
        admitted <= windows,
        "admitted {admitted}× in {windows} cool-downs: {visits:#?}"
    );
    assert!(
        spam <= windows * 30,
        "{spam} of the flooder's messages in {windows} cool-downs"
    );
}
