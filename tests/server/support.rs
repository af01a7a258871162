//! Test harness: the real `banter` binary on a free loopback port, and a
//! WebSocket client that reads JSON events with time limits.
#![allow(dead_code)]

use std::{process::Stdio, time::Duration};

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    process::{Child, Command},
};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, protocol::CloseFrame},
};

/// How long any single expectation may wait. Generous for a loaded CI box;
/// a passing test never waits this long.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Lifts the per-socket flood limit (10 a second by default) for tests
/// about something else that send thousands of messages as fast as they
/// can. The limit itself is tested with its defaults.
pub const UNTHROTTLED: &[&str] = &["--message-rate", "1000000", "--message-burst", "1000000"];

/// A `banter` process serving on `127.0.0.1:<free port>` with its own data
/// directory. Killed (by its own PID) when dropped.
pub struct Server {
    pub child: Child,
    pub addr: String,
    /// Everything the server has logged so far (its stdout).
    log: std::sync::Arc<std::sync::Mutex<String>>,
    _data: Option<tempfile::TempDir>,
}

impl Server {
    pub async fn start() -> Server {
        Self::start_with(&[]).await
    }

    pub async fn start_with(extra: &[&str]) -> Server {
        let data = tempfile::tempdir().expect("temp dir");
        let mut server = Self::start_in(data.path(), extra).await;
        server._data = Some(data);
        server
    }

    /// A server whose data lives under `root` (which the caller keeps), so
    /// a test can stop it and start another on the same data.
    pub async fn start_in(root: &std::path::Path, extra: &[&str]) -> Server {
        match Self::try_start_in(root, extra).await {
            Ok(server) => server,
            Err(output) => panic!("banter exited before printing its address:\n{output}"),
        }
    }

    /// Like [`Server::start_in`]; a server that exits at start gives back
    /// what it printed to stderr.
    pub async fn try_start_in(root: &std::path::Path, extra: &[&str]) -> Result<Server, String> {
        Self::try_start_at(root, "127.0.0.1:0", extra).await
    }

    /// Like [`Server::start_in`], listening on `addr` (e.g. the address of
    /// a server just stopped, so its clients can come back to it).
    pub async fn start_at(root: &std::path::Path, addr: &str, extra: &[&str]) -> Server {
        match Self::try_start_at(root, addr, extra).await {
            Ok(server) => server,
            Err(output) => panic!("banter exited before printing its address:\n{output}"),
        }
    }

    /// Like [`Server::try_start_in`], listening on `addr`.
    pub async fn try_start_at(
        root: &std::path::Path,
        addr: &str,
        extra: &[&str],
    ) -> Result<Server, String> {
        let config = root.join("banter.toml");
        std::fs::write(&config, "").expect("config file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_banter"))
            .args(["--addr", addr, "--log", "info"])
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(root.join("data"))
            // The repository's own build stays untouched unless a test
            // brings a site of its own.
            .args(if extra.contains(&"--site-root") {
                vec![]
            } else {
                vec!["--site-root".into(), root.join("no-site")]
            })
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start banter");
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(PATIENCE, async {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                if let Some(rest) = line.split("http://").nth(1) {
                    return Some(rest.split('/').next().expect("address").to_string());
                }
            }
            None
        })
        .await
        .expect("banter did not start in time");
        let Some(addr) = addr else {
            let mut output = String::new();
            let _ = stderr.read_to_string(&mut output).await;
            return Err(output);
        };
        // Keep draining stderr too (logs at info go there).
        tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = stderr.read_to_end(&mut sink).await;
        });
        // Keep draining stdout so the server never blocks on a full pipe,
        // and keep it for tests about what is logged.
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let kept = std::sync::Arc::clone(&log);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if std::env::var_os("BANTER_TEST_LOG").is_some() {
                    eprintln!("server: {line}");
                }
                if let Ok(mut kept) = kept.lock() {
                    kept.push_str(&line);
                    kept.push('\n');
                }
            }
        });
        Ok(Server {
            child,
            addr,
            log,
            _data: None,
        })
    }

    /// Kills the process (SIGKILL, nothing flushed) and waits for it.
    pub async fn kill(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Asks the process to stop (SIGTERM) and waits for it to exit.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let _ = tokio::time::timeout(PATIENCE, self.child.wait()).await;
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }

    /// A WebSocket handshake with extra request headers: the socket, or the
    /// HTTP status and body the server refused it with.
    pub async fn try_connect(
        &self,
        query: &str,
        headers: &[(&str, &str)],
    ) -> Result<Socket, (u16, String)> {
        try_connect_to(&self.ws_url(query), headers).await
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/start_web_socket?{query}", self.addr)
    }

    /// Joins as `name` with tutorial-style (list) presence.
    pub async fn join(&self, name: &str) -> Socket {
        self.connect(&format!("username={name}")).await
    }

    pub async fn connect(&self, query: &str) -> Socket {
        let (socket, _) = tokio::time::timeout(PATIENCE, connect_async(self.ws_url(query)))
            .await
            .expect("connect timed out")
            .expect("connect");
        socket
    }

    /// A raw HTTP/1.1 GET; returns (status, headers and body as text).
    pub async fn http_get(&self, path: &str) -> (u16, String) {
        let (status, head, body) = self.http_get_bytes(path, "identity").await;
        let response = format!("{head}\r\n\r\n{}", String::from_utf8_lossy(&body));
        (status, response)
    }
}

impl Server {
    /// Polls /healthz until it counts `n` connected clients. A WebSocket
    /// handshake completes before the server has processed the join; a
    /// client is counted once it is in the room, and from then on
    /// everything said there reaches it as its own event (its page was
    /// taken as it entered).
    pub async fn wait_for_clients(&self, n: usize) {
        let wanted = format!(r#""clients":{n}}}"#);
        let waited = tokio::time::timeout(PATIENCE, async {
            loop {
                let (_, response) = self.http_get("/healthz").await;
                if response.contains(&wanted) {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "the server never counted {n} clients");
    }

    /// A GET with `Accept-Encoding`; returns (status, head, body bytes).
    /// A chunked body comes back with its chunk-size lines in it.
    pub async fn http_get_bytes(&self, path: &str, encoding: &str) -> (u16, String, Vec<u8>) {
        self.http_request(path, &format!("Accept-Encoding: {encoding}\r\n"))
            .await
    }

    /// A GET with extra header lines (each ending in CRLF).
    pub async fn http_request(&self, path: &str, headers: &str) -> (u16, String, Vec<u8>) {
        let mut stream = TcpStream::connect(&self.addr).await.expect("tcp connect");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\n{headers}Connection: close\r\n\r\n",
            self.addr
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = Vec::new();
        tokio::time::timeout(PATIENCE, stream.read_to_end(&mut response))
            .await
            .expect("response timed out")
            .expect("read");
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("end of headers");
        let head = String::from_utf8_lossy(&response[..split]).into_owned();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status line");
        (status, head, response[split + 4..].to_vec())
    }
}

/// A WebSocket handshake on `url` with extra request headers: the socket,
/// or the HTTP status and body the server refused it with.
pub async fn try_connect_to(url: &str, headers: &[(&str, &str)]) -> Result<Socket, (u16, String)> {
    use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};
    let mut request = url.into_client_request().expect("request");
    for (name, value) in headers {
        request.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            value.parse().expect("header value"),
        );
    }
    match tokio::time::timeout(PATIENCE, connect_async(request))
        .await
        .expect("handshake timed out")
    {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err((status, body))
        }
        Err(other) => panic!("handshake failed: {other}"),
    }
}

/// Polls `ready` every 20 ms until it holds or [`PATIENCE`] runs out;
/// whether it held.
pub async fn eventually(ready: impl Fn() -> bool) -> bool {
    tokio::time::timeout(PATIENCE, async {
        while !ready() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .is_ok()
}

/// What the next frame was.
#[derive(Debug)]
pub enum Frame {
    Event(Value),
    Closed(Option<(u16, String)>),
}

/// The next text or close frame (pings and pongs skipped).
pub async fn next_frame(socket: &mut Socket) -> Frame {
    loop {
        let message = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("no frame in time");
        match message {
            Some(Ok(Message::Text(text))) => {
                return Frame::Event(serde_json::from_str(&text).expect("server sent JSON"));
            }
            Some(Ok(Message::Close(frame))) => {
                return Frame::Closed(
                    frame.map(|CloseFrame { code, reason }| (u16::from(code), reason.to_string())),
                );
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Frame::Closed(None),
        }
    }
}

/// The next event's raw text, for golden comparisons.
pub async fn next_text(socket: &mut Socket) -> String {
    loop {
        let message = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("no frame in time");
        match message {
            Some(Ok(Message::Text(text))) => return text.to_string(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Reads the joiner's `history` page (skipping the user list): once it has
/// come, the client is in the room, and everything said after reaches it
/// as a `send-message` of its own.
pub async fn history(socket: &mut Socket) -> Value {
    expect_event(socket, "history", |_| true).await
}

/// Reads events until the message `text` comes as a `send-message` of its
/// own, and fails if it comes inside a `history` page instead: a client on
/// the tutorial's protocol reads no `history`, and would never show it.
pub async fn expect_live(socket: &mut Socket, text: &str) -> Value {
    loop {
        match next_frame(socket).await {
            Frame::Event(e) if e["event"] == "send-message" && e["message"] == text => return e,
            Frame::Event(e) if e["event"] == "history" => {
                let inside = e["messages"]
                    .as_array()
                    .is_some_and(|page| page.iter().any(|m| m["message"] == text));
                assert!(!inside, "{text:?} came only inside a history page");
            }
            Frame::Event(_) => {}
            Frame::Closed(frame) => panic!("closed before {text:?} came: {frame:?}"),
        }
    }
}

/// Reads events until one has `event == kind` and satisfies `accept`.
pub async fn expect_event(
    socket: &mut Socket,
    kind: &str,
    accept: impl Fn(&Value) -> bool,
) -> Value {
    loop {
        match next_frame(socket).await {
            Frame::Event(event) if event["event"] == kind && accept(&event) => return event,
            Frame::Event(_) => continue,
            Frame::Closed(frame) => panic!("closed while waiting for {kind}: {frame:?}"),
        }
    }
}

/// Waits until a list-presence client sees exactly `names` online.
pub async fn expect_users(socket: &mut Socket, names: &[&str]) {
    expect_event(socket, "update-users", |e| {
        e["usernames"] == serde_json::json!(names)
    })
    .await;
}

pub async fn send_json(socket: &mut Socket, json: &str) {
    socket.send(Message::Text(json.into())).await.expect("send");
}

pub async fn say(socket: &mut Socket, message: &str) {
    let json = serde_json::json!({"event": "send-message", "message": message}).to_string();
    send_json(socket, &json).await;
}
