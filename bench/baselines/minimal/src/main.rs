//! `banter-minimal`: the kernel's floor for Banter's benchmark. The Deno
//! tutorial's chat protocol with nothing a kernel does not have to do: one
//! thread, one epoll loop, and for every client message the broadcast is
//! framed once and `write(2)`n, the same bytes, to every connected socket in
//! one loop. No storage, no history, no rate limits, no rooms.
//!
//! A floor per message, not per frame delivered: one write per socket per
//! message is a syscall per delivery, so when messages come as fast as they
//! can, a server that puts several frames in one write delivers more.
//!
//! What it keeps of the protocol, and why:
//! - the handshake, and `Username X is already taken` (close 1008) as the
//!   tutorial server does;
//! - a joiner's first frame is `update-users` with everyone connected:
//!   banter-bench (and any tutorial client) takes the first frame after the
//!   upgrade as the join snapshot. Joiners in one turn of the loop share one
//!   encoded list. Nobody else is sent presence: the tutorial's whole list to
//!   everyone on every join costs O(N²) bytes per burst of N joins, the very
//!   cost that keeps the Deno and Node baselines from connecting 5,000
//!   clients, and it is not what this baseline measures;
//! - every message goes to everyone, its sender included (banter-bench's
//!   senders count their own messages coming back);
//! - pings are answered, a close is echoed and the socket closed.
//!
//! A socket the kernel will not take a frame for keeps the rest in its own
//! overflow buffer, flushed when it becomes writable; past `MAX_BACKLOG` it
//! is dropped. Benchmark clients read everything, so none of their frames
//! is lost.
//!
//!   banter-minimal 127.0.0.1:3000

use std::{
    borrow::Cow,
    collections::HashSet,
    io::{self, Read, Write},
    net::SocketAddr,
};

use base64::Engine;
use mio::{Events, Interest, Poll, Token, net::TcpListener, net::TcpStream};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha1::{Digest, Sha1};
use socket2::{Domain, Protocol, Socket, Type};

const LISTENER: Token = Token(0);
/// Handshakes the kernel may queue before `accept`: tokio's, so Banter's.
const LISTEN_BACKLOG: i32 = 1024;
/// An upgrade request longer than this is refused (the connection dropped).
const MAX_REQUEST: usize = 8 * 1024;
/// A client message longer than this closes the socket with 1009.
const MAX_MESSAGE: usize = 64 * 1024;
/// Bytes a socket may have waiting for the kernel before it is dropped.
const MAX_BACKLOG: usize = 8 * 1024 * 1024;
/// Read size: one syscall usually drains what a client sent.
const READ_CHUNK: usize = 16 * 1024;
/// Room before a broadcast's payload for its frame header (at most 10 bytes).
const HEADER_ROOM: usize = 10;
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

fn main() -> io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_string())
        .parse()
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
    let mut server = Server::bind(addr)?;
    println!("minimal chat on {addr}");
    server.run()
}

#[derive(PartialEq)]
enum State {
    /// Reading the upgrade request.
    Http,
    /// Upgraded as a free name; its snapshot goes out at the end of the turn.
    Joining,
    /// Receives every broadcast.
    Open,
    /// Sends what it has waiting, then is closed; reads nothing more.
    Closing,
    /// Closed; its slot is freed at the end of the turn (so that no later
    /// event of this turn can reach a new connection in it).
    Dead,
}

struct Conn {
    stream: TcpStream,
    state: State,
    /// Bytes read, not yet consumed.
    input: Vec<u8>,
    /// A fragmented message so far (unmasked).
    message: Vec<u8>,
    /// Bytes the kernel has not taken yet, from `backlog_pos`.
    backlog: Vec<u8>,
    backlog_pos: usize,
    /// The name as joined, and as a JSON string for the broadcasts.
    name: Option<(String, String)>,
}

struct Server {
    poll: Poll,
    listener: TcpListener,
    /// Slot `i` is `Token(i + 1)`.
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    dead: Vec<usize>,
    names: HashSet<String>,
    /// Everyone's JSON-encoded names, comma-separated, in join order;
    /// rebuilt after a leave, when next needed.
    list: Vec<u8>,
    list_stale: bool,
    joiners: Vec<usize>,
    /// The broadcast being sent: payload from `HEADER_ROOM`, header before.
    frame: Vec<u8>,
}

impl Server {
    fn bind(addr: SocketAddr) -> io::Result<Server> {
        let poll = Poll::new()?;
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(LISTEN_BACKLOG)?;
        socket.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(socket.into());
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Server {
            poll,
            listener,
            conns: Vec::new(),
            free: Vec::new(),
            dead: Vec::new(),
            names: HashSet::new(),
            list: Vec::new(),
            list_stale: false,
            joiners: Vec::new(),
            frame: Vec::new(),
        })
    }

    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            if let Err(err) = self.poll.poll(&mut events, None) {
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            for event in events.iter() {
                if event.token() == LISTENER {
                    self.accept();
                    continue;
                }
                let i = event.token().0 - 1;
                if event.is_writable() {
                    self.flush(i);
                }
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    self.read(i);
                }
            }
            self.send_snapshots();
            for i in self.dead.drain(..) {
                self.conns[i] = None;
                self.free.push(i);
            }
        }
    }

    fn accept(&mut self) {
        loop {
            let mut stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    // Out of descriptors, say: accept again on the next one.
                    eprintln!("accept: {err}");
                    return;
                }
            };
            // One write per frame: Nagle would hold frames back for ACKs.
            let _ = stream.set_nodelay(true);
            let i = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            // Writable as well, once: edge-triggered, it fires only when a
            // full send buffer has room again.
            if self
                .poll
                .registry()
                .register(
                    &mut stream,
                    Token(i + 1),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .is_err()
            {
                self.free.push(i);
                continue;
            }
            self.conns[i] = Some(Conn {
                stream,
                state: State::Http,
                input: Vec::new(),
                message: Vec::new(),
                backlog: Vec::new(),
                backlog_pos: 0,
                name: None,
            });
        }
    }

    /// Reads everything there is (edge-triggered), then acts on it.
    fn read(&mut self, i: usize) {
        let Some(conn) = self.conns[i].as_mut() else {
            return;
        };
        if matches!(conn.state, State::Closing | State::Dead) {
            return;
        }
        loop {
            let len = conn.input.len();
            conn.input.resize(len + READ_CHUNK, 0);
            match conn.stream.read(&mut conn.input[len..]) {
                Ok(0) => {
                    conn.input.truncate(len);
                    self.kill(i);
                    return;
                }
                Ok(n) => conn.input.truncate(len + n),
                Err(err) => {
                    conn.input.truncate(len);
                    match err.kind() {
                        io::ErrorKind::WouldBlock => break,
                        io::ErrorKind::Interrupted => continue,
                        _ => {
                            self.kill(i);
                            return;
                        }
                    }
                }
            }
        }
        if conn.state == State::Http {
            self.handshake(i);
        }
        self.frames(i);
    }

    fn handshake(&mut self, i: usize) {
        let Some(conn) = self.conns[i].as_mut() else {
            return;
        };
        let Some(end) = conn.input.windows(4).position(|w| w == b"\r\n\r\n") else {
            if conn.input.len() > MAX_REQUEST {
                self.kill(i);
            }
            return;
        };
        let request = String::from_utf8_lossy(&conn.input[..end]).into_owned();
        conn.input.drain(..end + 4);
        let (response, name) = match upgrade(&request) {
            Ok(upgraded) => upgraded,
            Err(refusal) => {
                conn.state = State::Closing;
                return self.send_or_kill(i, refusal.as_bytes());
            }
        };
        if !send(conn, response.as_bytes()) {
            return self.kill(i);
        }
        if self.names.contains(&name) {
            let reason = truncate(format!("Username {name} is already taken"), 123);
            return self.close(i, 1008, reason.as_bytes());
        }
        let json = serde_json::to_string(&name).expect("a string encodes");
        if !self.list_stale {
            if !self.list.is_empty() {
                self.list.push(b',');
            }
            self.list.extend_from_slice(json.as_bytes());
        }
        self.names.insert(name.clone());
        conn.name = Some((name, json));
        conn.state = State::Joining;
        self.joiners.push(i);
    }

    /// Acts on every complete frame in the input.
    fn frames(&mut self, i: usize) {
        let mut pos = 0;
        loop {
            let Some(conn) = self.conns[i].as_mut() else {
                return;
            };
            if !matches!(conn.state, State::Joining | State::Open) {
                return;
            }
            let Some(parsed) = parse_frame(&mut conn.input[pos..]) else {
                break;
            };
            let frame = match parsed {
                Ok(frame) => frame,
                Err(code) => return self.close(i, code, &[]),
            };
            let payload = pos + frame.header..pos + frame.header + frame.len;
            pos = payload.end;
            match frame.opcode {
                OP_TEXT | OP_BINARY | OP_CONTINUATION => {
                    let whole = if frame.fin && conn.message.is_empty() {
                        &conn.input[payload]
                    } else {
                        conn.message.extend_from_slice(&conn.input[payload]);
                        if conn.message.len() > MAX_MESSAGE {
                            return self.close(i, 1009, &[]);
                        }
                        if !frame.fin {
                            continue;
                        }
                        &conn.message[..]
                    };
                    let name = &conn.name.as_ref().expect("joined").1;
                    let start = frame_message(&mut self.frame, name, whole);
                    conn.message.clear();
                    if let Some(start) = start {
                        self.broadcast(start);
                    }
                }
                OP_PING => {
                    let pong = encode(OP_PONG, &conn.input[payload]);
                    if !send(conn, &pong) {
                        return self.kill(i);
                    }
                }
                OP_CLOSE => {
                    // Echo the client's code (none if it gave none).
                    let code = match conn.input[payload].get(..2) {
                        Some(code) => u16::from_be_bytes([code[0], code[1]]),
                        None => 0,
                    };
                    return self.close(i, code, &[]);
                }
                _ => {}
            }
        }
        if let Some(conn) = self.conns[i].as_mut() {
            conn.input.drain(..pos);
        }
    }

    /// Writes the frame in `self.frame[start..]` to every open socket, in
    /// one loop.
    fn broadcast(&mut self, start: usize) {
        let bytes = &self.frame[start..];
        let mut failed = Vec::new();
        for (i, slot) in self.conns.iter_mut().enumerate() {
            if let Some(conn) = slot
                && conn.state == State::Open
                && !send(conn, bytes)
            {
                failed.push(i);
            }
        }
        for i in failed {
            self.kill(i);
        }
    }

    /// Each joiner of this turn gets everyone's names: one frame for all.
    fn send_snapshots(&mut self) {
        if self.joiners.is_empty() {
            return;
        }
        if self.list_stale {
            self.list.clear();
            for conn in self.conns.iter().flatten() {
                if let (Some((_, json)), State::Joining | State::Open) = (&conn.name, &conn.state) {
                    if !self.list.is_empty() {
                        self.list.push(b',');
                    }
                    self.list.extend_from_slice(json.as_bytes());
                }
            }
            self.list_stale = false;
        }
        let mut payload = br#"{"event":"update-users","usernames":["#.to_vec();
        payload.extend_from_slice(&self.list);
        payload.extend_from_slice(b"]}");
        let frame = encode(OP_TEXT, &payload);
        for i in std::mem::take(&mut self.joiners) {
            let Some(conn) = self.conns[i].as_mut() else {
                continue;
            };
            if conn.state != State::Joining {
                continue;
            }
            conn.state = State::Open;
            if !send(conn, &frame) {
                self.kill(i);
            }
        }
    }

    /// Writes what a socket has waiting.
    fn flush(&mut self, i: usize) {
        let Some(conn) = self.conns[i].as_mut() else {
            return;
        };
        if conn.state == State::Dead || conn.backlog_pos == conn.backlog.len() {
            return;
        }
        while conn.backlog_pos < conn.backlog.len() {
            match conn.stream.write(&conn.backlog[conn.backlog_pos..]) {
                Ok(n) => conn.backlog_pos += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.kill(i),
            }
        }
        conn.backlog.clear();
        conn.backlog_pos = 0;
        self.close_if_done(i);
    }

    /// Sends a close frame with `code` (none if 0) and `reason`, gives the
    /// name up, and closes the socket once the frame is out.
    fn close(&mut self, i: usize, code: u16, reason: &[u8]) {
        let Some(conn) = self.conns[i].as_mut() else {
            return;
        };
        let mut payload = Vec::new();
        if code != 0 {
            payload.extend_from_slice(&code.to_be_bytes());
            payload.extend_from_slice(reason);
        }
        if let Some((name, _)) = conn.name.take() {
            self.names.remove(&name);
            self.list_stale = true;
        }
        conn.state = State::Closing;
        self.send_or_kill(i, &encode(OP_CLOSE, &payload));
    }

    /// `send`, then, for a socket that is closing, close it if that was the
    /// last of its bytes.
    fn send_or_kill(&mut self, i: usize, bytes: &[u8]) {
        if let Some(conn) = self.conns[i].as_mut()
            && send(conn, bytes)
        {
            self.close_if_done(i);
        } else {
            self.kill(i);
        }
    }

    fn close_if_done(&mut self, i: usize) {
        if let Some(conn) = self.conns[i].as_ref()
            && conn.state == State::Closing
            && conn.backlog_pos == conn.backlog.len()
        {
            self.kill(i);
        }
    }

    /// Gives the name up and closes the socket at the end of the turn.
    fn kill(&mut self, i: usize) {
        let Some(conn) = self.conns[i].as_mut() else {
            return;
        };
        if conn.state == State::Dead {
            return;
        }
        conn.state = State::Dead;
        if let Some((name, _)) = conn.name.take() {
            self.names.remove(&name);
            self.list_stale = true;
        }
        // The descriptor closes when the slot is freed; no more events now.
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.dead.push(i);
    }
}

/// Writes `bytes` to the socket, or queues them after what it already has
/// waiting. False if the socket failed or its backlog would outgrow
/// `MAX_BACKLOG`: the caller kills it.
fn send(conn: &mut Conn, bytes: &[u8]) -> bool {
    if conn.state == State::Dead {
        return true;
    }
    let mut written = 0;
    if conn.backlog_pos == conn.backlog.len() {
        while written < bytes.len() {
            match conn.stream.write(&bytes[written..]) {
                Ok(n) => written += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        if written == bytes.len() {
            return true;
        }
        conn.backlog.clear();
        conn.backlog_pos = 0;
    }
    if conn.backlog.len() - conn.backlog_pos + bytes.len() - written > MAX_BACKLOG {
        return false;
    }
    if conn.backlog_pos > conn.backlog.len() / 2 {
        conn.backlog.drain(..conn.backlog_pos);
        conn.backlog_pos = 0;
    }
    conn.backlog.extend_from_slice(&bytes[written..]);
    true
}

/// The upgrade response and the username, or the HTTP refusal to send.
fn upgrade(request: &str) -> Result<(String, String), &'static str> {
    const NOT_FOUND: &str =
        "HTTP/1.1 404 Not Found\r\ncontent-length: 10\r\nconnection: close\r\n\r\nnot found\n";
    const WEBSOCKET_ONLY: &str = "HTTP/1.1 426 Upgrade Required\r\ncontent-length: 15\r\n\
                                  connection: close\r\n\r\nWebSocket only\n";
    let mut lines = request.split("\r\n");
    let target = lines
        .next()
        .and_then(|line| line.strip_prefix("GET "))
        .and_then(|rest| rest.split(' ').next())
        .ok_or(NOT_FOUND)?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != "/start_web_socket" {
        return Err(NOT_FOUND);
    }
    let (mut key, mut websocket) = (None, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("sec-websocket-key") {
            key = Some(value);
        } else if name.eq_ignore_ascii_case("upgrade") {
            websocket = value.eq_ignore_ascii_case("websocket");
        }
    }
    let key = key.filter(|_| websocket).ok_or(WEBSOCKET_ONLY)?;
    let name = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("username="))
        .map(percent_decode)
        .unwrap_or_default();
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
         sec-websocket-accept: {}\r\n\r\n",
        accept_key(key)
    );
    Ok((response, name))
}

fn accept_key(key: &str) -> String {
    let digest = Sha1::new()
        .chain_update(key.as_bytes())
        .chain_update(GUID.as_bytes())
        .finalize();
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// A query value as URLSearchParams reads it: `+` is a space, `%XX` a byte.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `text` cut to at most `max` bytes on a character boundary.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// A client frame's header, its payload unmasked in place.
struct FrameHead {
    fin: bool,
    opcode: u8,
    header: usize,
    len: usize,
}

/// The first frame in `data`: `None` if it is not all there yet, `Err`
/// with a close code if it is not one to accept.
fn parse_frame(data: &mut [u8]) -> Option<Result<FrameHead, u16>> {
    if data.len() < 2 {
        return None;
    }
    let (fin, opcode) = (data[0] & 0x80 != 0, data[0] & 0x0f);
    if data[1] & 0x80 == 0 {
        return Some(Err(1002)); // clients must mask
    }
    let (len, mut header) = match data[1] & 0x7f {
        126 => (
            u16::from_be_bytes([*data.get(2)?, *data.get(3)?]) as usize,
            4,
        ),
        127 => {
            let bytes: [u8; 8] = data.get(2..10)?.try_into().expect("8 bytes");
            (
                usize::try_from(u64::from_be_bytes(bytes)).unwrap_or(usize::MAX),
                10,
            )
        }
        short => (short as usize, 2),
    };
    if len > MAX_MESSAGE {
        return Some(Err(1009));
    }
    let mask: [u8; 4] = data.get(header..header + 4)?.try_into().expect("4 bytes");
    header += 4;
    let payload = data.get_mut(header..header + len)?;
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
    Some(Ok(FrameHead {
        fin,
        opcode,
        header,
        len,
    }))
}

/// What a client sends: `{"event":"send-message","message":…}`.
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow)]
    message: Option<&'a RawValue>,
}

/// Frames the broadcast of a client's text into `out`: the payload from
/// `HEADER_ROOM`, the header just before it; returns where the frame
/// starts. `None` if the text is not a `send-message` event.
fn frame_message(out: &mut Vec<u8>, name_json: &str, text: &[u8]) -> Option<usize> {
    let incoming = serde_json::from_slice::<Incoming>(text).ok()?;
    if incoming.event != "send-message" {
        return None;
    }
    out.clear();
    out.resize(HEADER_ROOM, 0);
    out.extend_from_slice(br#"{"event":"send-message","username":"#);
    out.extend_from_slice(name_json.as_bytes());
    if let Some(message) = incoming.message {
        out.extend_from_slice(br#","message":"#);
        out.extend_from_slice(message.get().as_bytes());
    }
    out.push(b'}');
    let header = header(OP_TEXT, out.len() - HEADER_ROOM);
    let start = HEADER_ROOM - header.len();
    out[start..HEADER_ROOM].copy_from_slice(&header);
    Some(start)
}

/// An unmasked server frame header for a payload of `len` bytes.
fn header(opcode: u8, len: usize) -> Vec<u8> {
    let mut header = vec![0x80 | opcode];
    match len {
        n if n < 126 => header.push(n as u8),
        n if n <= u16::MAX as usize => {
            header.push(126);
            header.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            header.push(127);
            header.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    header
}

fn encode(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = header(opcode, payload.len());
    frame.extend_from_slice(payload);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_is_rfc_6455s_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn upgrades_only_the_chat_path_and_reads_the_name() {
        let request = "GET /start_web_socket?presence=delta&username=zo%C3%AB+b HTTP/1.1\r\n\
                       Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        let (response, name) = upgrade(request).unwrap();
        assert!(response.starts_with("HTTP/1.1 101"));
        assert!(response.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert_eq!(name, "zoë b");
        assert!(
            upgrade("GET /other HTTP/1.1\r\n")
                .unwrap_err()
                .contains("404")
        );
        assert!(
            upgrade("GET /start_web_socket HTTP/1.1\r\n")
                .unwrap_err()
                .contains("426")
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
    }

    #[test]
    fn frames_a_message_once_with_the_senders_name() {
        let mut out = Vec::new();
        let text = br#"{"event":"send-message","message":"hi \"there\""}"#;
        let start = frame_message(&mut out, r#""alice""#, text).unwrap();
        let payload = br#"{"event":"send-message","username":"alice","message":"hi \"there\""}"#;
        assert_eq!(out[start..], encode(OP_TEXT, payload)[..]);
        assert_eq!(
            frame_message(&mut out, "\"a\"", br#"{"event":"typing"}"#),
            None
        );
        assert_eq!(frame_message(&mut out, "\"a\"", b"not json"), None);
    }

    #[test]
    fn parses_and_unmasks_client_frames() {
        let mask = [1, 2, 3, 4];
        let mut frame = vec![0x81, 0x80 | 3];
        frame.extend_from_slice(&mask);
        frame.extend(b"abc".iter().zip(mask).map(|(b, m)| b ^ m));
        assert!(parse_frame(&mut frame[..5].to_vec()).is_none());
        let head = parse_frame(&mut frame).unwrap().unwrap();
        assert!(head.fin);
        assert_eq!((head.opcode, head.header, head.len), (OP_TEXT, 6, 3));
        assert_eq!(&frame[6..], b"abc");
        assert_eq!(
            parse_frame(&mut [0x81, 3, b'a', b'b', b'c']).unwrap().err(),
            Some(1002)
        );
        let mut long = vec![0x81, 0x80 | 127, 0, 0, 0, 0, 0, 2, 0, 0];
        assert_eq!(parse_frame(&mut long).unwrap().err(), Some(1009));
    }
}
