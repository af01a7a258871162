//! One connection: where it is in its life, what it has read and not yet
//! acted on, and its overflow buffer.
//!
//! The overflow buffer is what lets one thread write to every socket without
//! ever waiting on one. A write the kernel takes only part of leaves the rest
//! here, and every later frame for that socket queues behind it, so frames
//! never interleave; the socket's writable event drains it. While it is
//! empty a frame goes straight to `write(2)`, never copied. A client
//! that stops reading would make it grow without end, so past `MAX_BACKLOG`
//! the caller drops the connection instead.

use std::io::{self, Read, Write};

use mio::net::TcpStream;

/// Bytes a socket may have waiting for the kernel before it is dropped.
const MAX_BACKLOG: usize = 8 * 1024 * 1024;
/// Read size: one syscall usually drains what a client sent.
const READ_CHUNK: usize = 16 * 1024;

#[derive(PartialEq)]
pub(crate) enum State {
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

pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    pub(crate) state: State,
    /// Bytes read, not yet consumed.
    pub(crate) input: Vec<u8>,
    /// A fragmented message so far (unmasked).
    pub(crate) message: Vec<u8>,
    /// Bytes the kernel has not taken yet, from `backlog_pos`.
    backlog: Vec<u8>,
    backlog_pos: usize,
    /// The name as joined, and as a JSON string for the broadcasts.
    pub(crate) name: Option<(String, String)>,
}

impl Conn {
    /// A connection just accepted, before its upgrade request.
    pub(crate) fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            state: State::Http,
            input: Vec::new(),
            message: Vec::new(),
            backlog: Vec::new(),
            backlog_pos: 0,
            name: None,
        }
    }

    /// Reads everything there is into `input` (edge-triggered: until the
    /// kernel has no more). False if the client closed or the socket
    /// failed: the caller kills it, without acting on what was read.
    pub(crate) fn read_available(&mut self) -> bool {
        loop {
            let len = self.input.len();
            self.input.resize(len + READ_CHUNK, 0);
            match self.stream.read(&mut self.input[len..]) {
                Ok(0) => {
                    self.input.truncate(len);
                    return false;
                }
                Ok(n) => self.input.truncate(len + n),
                Err(err) => {
                    self.input.truncate(len);
                    match err.kind() {
                        io::ErrorKind::WouldBlock => return true,
                        io::ErrorKind::Interrupted => continue,
                        _ => return false,
                    }
                }
            }
        }
    }

    /// Writes `bytes` to the socket, or queues them after what it already has
    /// waiting. False if the socket failed or its backlog would outgrow
    /// `MAX_BACKLOG`: the caller kills it.
    pub(crate) fn send(&mut self, bytes: &[u8]) -> bool {
        if self.state == State::Dead {
            return true;
        }
        let mut written = 0;
        if self.backlog_pos == self.backlog.len() {
            while written < bytes.len() {
                match self.stream.write(&bytes[written..]) {
                    Ok(n) => written += n,
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return false,
                }
            }
            if written == bytes.len() {
                return true;
            }
            self.backlog.clear();
            self.backlog_pos = 0;
        }
        if self.backlog.len() - self.backlog_pos + bytes.len() - written > MAX_BACKLOG {
            return false;
        }
        if self.backlog_pos > self.backlog.len() / 2 {
            self.backlog.drain(..self.backlog_pos);
            self.backlog_pos = 0;
        }
        self.backlog.extend_from_slice(&bytes[written..]);
        true
    }

    /// Writes what the socket has waiting, as much as the kernel takes.
    /// False if the socket failed: the caller kills it.
    pub(crate) fn flush(&mut self) -> bool {
        while self.backlog_pos < self.backlog.len() {
            match self.stream.write(&self.backlog[self.backlog_pos..]) {
                Ok(n) => self.backlog_pos += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return true,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        self.backlog.clear();
        self.backlog_pos = 0;
        true
    }

    /// Whether the kernel has taken everything sent so far.
    pub(crate) fn flushed(&self) -> bool {
        self.backlog_pos == self.backlog.len()
    }
}
