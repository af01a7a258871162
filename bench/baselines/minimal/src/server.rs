//! The server: the listener, the one epoll loop, the connection slots, and
//! what each connection's events do to the chat.
//!
//! Everything happens on one thread in one turn of the loop per `epoll_wait`:
//! each event is acted on as it comes (a read parses and handles every
//! complete frame, a message is broadcast to every open socket before the
//! next event), then the turn's joiners get their snapshot, then the turn's
//! dead connections are freed. Nothing waits between reading a message and
//! writing it but what a socket's kernel buffer will not take (see `conn`):
//! the floor is a frame parsed, one broadcast encoded, and a `write(2)` per
//! socket.
//!
//! A connection lives in a slot of `conns`, its index (plus one) its mio
//! token. A closed connection's slot is only freed at the end of the turn,
//! so an event of that turn still aimed at it finds it dead rather than
//! reaching a new connection that took its slot.

use std::{io, net::SocketAddr};

use mio::{Events, Interest, Poll, Token, net::TcpListener};
use socket2::{Domain, Protocol, Socket, Type};

use crate::{
    conn::{Conn, State},
    event::{frame_message, frame_snapshot},
    frame::{
        MAX_MESSAGE, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT, encode,
        parse_frame,
    },
    handshake::{MAX_REQUEST, upgrade},
    roster::Roster,
};

const LISTENER: Token = Token(0);
/// Handshakes the kernel may queue before `accept`: tokio's, so Banter's.
const LISTEN_BACKLOG: i32 = 1024;

pub(crate) struct Server {
    poll: Poll,
    listener: TcpListener,
    /// Slot `i` is `Token(i + 1)`.
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    dead: Vec<usize>,
    roster: Roster,
    joiners: Vec<usize>,
    /// The broadcast being sent: payload from `event::HEADER_ROOM`, header
    /// before.
    frame: Vec<u8>,
}

impl Server {
    pub(crate) fn bind(addr: SocketAddr) -> io::Result<Server> {
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
            roster: Roster::new(),
            joiners: Vec::new(),
            frame: Vec::new(),
        })
    }

    pub(crate) fn run(&mut self) -> io::Result<()> {
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
            self.conns[i] = Some(Conn::new(stream));
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
        if !conn.read_available() {
            self.kill(i);
            return;
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
        if !conn.send(response.as_bytes()) {
            return self.kill(i);
        }
        if self.roster.contains(&name) {
            let reason = truncate(format!("Username {name} is already taken"), 123);
            return self.close(i, 1008, reason.as_bytes());
        }
        let json = serde_json::to_string(&name).expect("a string encodes");
        self.roster.join(name.clone(), &json);
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
                    if !conn.send(&pong) {
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
                && !conn.send(bytes)
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
        let frame = frame_snapshot(self.roster.list(self.conns.iter().flatten()));
        for i in std::mem::take(&mut self.joiners) {
            let Some(conn) = self.conns[i].as_mut() else {
                continue;
            };
            if conn.state != State::Joining {
                continue;
            }
            conn.state = State::Open;
            if !conn.send(&frame) {
                self.kill(i);
            }
        }
    }

    /// Writes what a socket has waiting.
    fn flush(&mut self, i: usize) {
        let Some(conn) = self.conns[i].as_mut() else {
            return;
        };
        if conn.state == State::Dead || conn.flushed() {
            return;
        }
        if !conn.flush() {
            return self.kill(i);
        }
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
            self.roster.leave(&name);
        }
        conn.state = State::Closing;
        self.send_or_kill(i, &encode(OP_CLOSE, &payload));
    }

    /// `send`, then, for a socket that is closing, close it if that was the
    /// last of its bytes.
    fn send_or_kill(&mut self, i: usize, bytes: &[u8]) {
        if let Some(conn) = self.conns[i].as_mut()
            && conn.send(bytes)
        {
            self.close_if_done(i);
        } else {
            self.kill(i);
        }
    }

    fn close_if_done(&mut self, i: usize) {
        if let Some(conn) = self.conns[i].as_ref()
            && conn.state == State::Closing
            && conn.flushed()
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
            self.roster.leave(&name);
        }
        // The descriptor closes when the slot is freed; no more events now.
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.dead.push(i);
    }
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
