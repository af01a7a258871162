//! Who may open a socket: origins, tokens and connection limits, all
//! answered with an HTTP status before the upgrade.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

const TOKEN: &str = "correct-horse-battery-staple";

#[tokio::test]
async fn a_foreign_origin_is_refused_with_403_and_the_own_origin_and_listed_ones_are_not() {
    let server = Server::start_with(&["--allowed-origins", "https://friend.example"]).await;
    let refused = server
        .try_connect("username=mallory", &[("origin", "https://evil.example")])
        .await
        .expect_err("a foreign origin must be refused");
    assert_eq!(refused.0, 403);
    assert!(refused.1.contains("https://evil.example"), "{}", refused.1);

    let own = format!("http://{}", server.addr);
    let mut alice = server
        .try_connect("username=alice", &[("origin", &own)])
        .await
        .expect("the page's own origin may connect");
    expect_users(&mut alice, &["alice"]).await;
    server
        .try_connect("username=bob", &[("origin", "https://friend.example")])
        .await
        .expect("a listed origin may connect");
    // The page's probe after a refused socket (a same-origin GET, so no
    // Origin header) states its origin and gets the socket's answer.
    let (status, _, body) = server
        .http_request(
            "/start_web_socket?username=p&origin=https%3A%2F%2Fevil.example",
            "",
        )
        .await;
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("https://evil.example"));
    let probe = format!(
        "/start_web_socket?username=p&origin=http%3A%2F%2F{}",
        server.addr
    );
    assert_eq!(server.http_request(&probe, "").await.0, 426);
    // No Origin header: not a browser page (the tutorial's clients, bots).
    server
        .try_connect("username=bot", &[])
        .await
        .expect("no origin may connect");
}

#[tokio::test]
async fn with_tokens_a_missing_token_is_401_a_wrong_one_403_and_none_is_logged() {
    let server = Server::start_with(&["--auth-tokens", &format!("other,{TOKEN}")]).await;

    let (status, body) = server
        .try_connect("username=a", &[])
        .await
        .expect_err("401");
    assert_eq!(
        (status, body.trim()),
        (401, "This server needs an access token")
    );
    let (status, body) = server
        .try_connect("username=a&accessToken=guess", &[])
        .await
        .expect_err("403");
    assert_eq!((status, body.trim()), (403, "The access token was refused"));
    let wrong_bearer = server
        .try_connect("username=a", &[("authorization", "Bearer guess")])
        .await;
    assert_eq!(wrong_bearer.err().map(|e| e.0), Some(403));

    // Each of the three places a token may come from.
    let mut by_query = server
        .try_connect(&format!("username=q&accessToken={TOKEN}"), &[])
        .await
        .expect("token in the query");
    expect_users(&mut by_query, &["q"]).await;
    let bearer = format!("Bearer {TOKEN}");
    server
        .try_connect("username=b", &[("authorization", &bearer)])
        .await
        .expect("token as a bearer");
    server
        .try_connect("username=k", &[("x-ws-auth-key", TOKEN)])
        .await
        .expect("token in X-WS-Auth-Key");

    // The room list is guarded too; a plain GET that passes gets 426, so a
    // page can tell a refusal from a network failure.
    let (status, _, _) = server.http_request("/api/rooms", "").await;
    assert_eq!(status, 401);
    let (status, _, _) = server
        .http_request(&format!("/api/rooms?accessToken={TOKEN}"), "")
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = server
        .http_request(
            &format!("/start_web_socket?username=p&accessToken={TOKEN}"),
            "",
        )
        .await;
    assert_eq!(status, 426);
    let (status, _, _) = server
        .http_request("/start_web_socket?username=p", "")
        .await;
    assert_eq!(status, 401);

    let log = server.log();
    assert!(
        log.contains("handshake refused"),
        "refusals are logged:\n{log}"
    );
    assert!(
        !log.contains(TOKEN) && !log.contains("guess"),
        "tokens leaked into the log:\n{log}"
    );
}

#[tokio::test]
async fn connections_per_address_and_in_total_are_limited_and_places_are_freed() {
    let server =
        Server::start_with(&["--max-connections-per-ip", "2", "--max-connections", "3"]).await;
    let first = server.join("one").await;
    let _second = server.join("two").await;
    let (status, body) = server
        .try_connect("username=three", &[])
        .await
        .expect_err("429");
    assert_eq!(status, 429);
    assert!(body.contains("Too many connections"), "{body}");
    // The place is freed once the server has closed the socket (a moment
    // after the user leaves the list).
    drop(first);
    let freed = tokio::time::timeout(PATIENCE, async {
        loop {
            match server.try_connect("username=three", &[]).await {
                Ok(socket) => return socket,
                Err((429, _)) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(other) => panic!("unexpected refusal {other:?}"),
            }
        }
    })
    .await;
    assert!(freed.is_ok(), "the place was never freed");
}

#[tokio::test]
async fn handshakes_per_second_per_address_are_limited_with_retry_after() {
    let server = Server::start_with(&["--handshake-rate", "1", "--handshake-burst", "3"]).await;
    let mut sockets = Vec::new();
    for i in 0..3 {
        sockets.push(server.join(&format!("u{i}")).await);
    }
    // Both at once: a refusal is held back a second before it is sent, by
    // which time the bucket has a token again.
    let started = std::time::Instant::now();
    let (socket, plain) = tokio::join!(
        server.try_connect("username=u3", &[]),
        server.http_request("/start_web_socket?username=u4", ""),
    );
    let (status, body) = socket.expect_err("429");
    assert_eq!(status, 429);
    assert!(body.contains("wait a moment"), "{body}");
    let (status, head, _) = plain;
    assert_eq!(status, 429);
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    // Held back, so a client retrying at once tries about once a second.
    assert!(started.elapsed() >= Duration::from_millis(900));
    // The others chat on regardless.
    say(&mut sockets[0], "still here").await;
    expect_event(&mut sockets[2], "send-message", |e| {
        e["message"] == "still here"
    })
    .await;
}

#[tokio::test]
async fn a_connection_that_sends_nothing_or_trickles_is_dropped_after_the_handshake_timeout() {
    let server = Server::start_with(&["--handshake-timeout-ms", "500"]).await;
    let started = std::time::Instant::now();
    let mut silent = tokio::net::TcpStream::connect(&server.addr)
        .await
        .expect("connect");
    let mut trickle = tokio::net::TcpStream::connect(&server.addr)
        .await
        .expect("connect");
    let trickling = tokio::spawn(async move {
        for byte in b"GET /start_web_socket?username=slow HTTP/1.1\r\n" {
            if trickle.write_all(&[*byte]).await.is_err() {
                return trickle;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        trickle
    });
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(PATIENCE, silent.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "a silent connection must be closed, got {read:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let mut trickle = trickling.await.expect("trickler");
    let read = tokio::time::timeout(PATIENCE, trickle.read(&mut buf)).await;
    // hyper may answer 408 before closing; either way the connection ends.
    let ended = match read {
        Ok(Ok(0) | Err(_)) => true,
        Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n]).contains("408"),
        Err(_) => false,
    };
    assert!(ended, "a trickling handshake must be cut off");
    // And real clients are unaffected.
    let mut alice = server.join("alice").await;
    expect_users(&mut alice, &["alice"]).await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget() {
    // The test connects from 127.0.0.1, as a proxy on this machine would.
    let proxied = Server::start_with(&[
        "--trusted-proxies",
        "127.0.0.1, 10.0.0.0/8",
        "--max-connections-per-ip",
        "2",
    ])
    .await;
    let from = |client: &'static str| [("x-forwarded-for", client)];
    let mut sockets = Vec::new();
    for (i, client) in ["203.0.113.1", "203.0.113.1", "203.0.113.2", "203.0.113.2"]
        .into_iter()
        .enumerate()
    {
        let socket = proxied
            .try_connect(&format!("username=u{i}"), &from(client))
            .await
            .expect("each forwarded client has its own two places");
        sockets.push(socket);
    }
    let (status, _) = proxied
        .try_connect("username=u4", &from("203.0.113.1"))
        .await
        .expect_err("a third socket from one client");
    assert_eq!(status, 429);
    // A hop the client wrote itself, left of the proxy's, counts for nothing.
    let (status, _) = proxied
        .try_connect("username=u5", &from("198.51.100.9, 203.0.113.1"))
        .await
        .expect_err("a spoofed left-hand hop");
    assert_eq!(status, 429);
    // Through a second trusted proxy the client is still the first
    // untrusted hop from the right.
    proxied
        .try_connect("username=u6", &from("203.0.113.3, 10.0.0.7"))
        .await
        .expect("a client behind two proxies");

    // Without trusted proxies the header is ignored: everyone is 127.0.0.1.
    let direct = Server::start_with(&["--max-connections-per-ip", "2"]).await;
    let _a = direct.try_connect("username=a", &from("203.0.113.1")).await;
    let _b = direct.try_connect("username=b", &from("203.0.113.2")).await;
    let (status, _) = direct
        .try_connect("username=c", &from("203.0.113.3"))
        .await
        .expect_err("headers from an untrusted peer are ignored");
    assert_eq!(status, 429);
}
