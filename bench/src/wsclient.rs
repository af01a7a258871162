//! A deliberately small WebSocket client: just enough RFC 6455 to join a
//! chat, send text frames and read the server's frames in bulk.
//!
//! Why not tungstenite: the generator must never be the bottleneck. Server
//! frames are unmasked, so reading is "fill a buffer with one
//! syscall, then walk the frame headers in it" — no per-frame allocation,
//! no UTF-8 validation, no copy of payloads we only scan.

use std::io;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Initial read buffer per connection; it grows for a frame that does not
/// fit. Small, because a run holds 10,000 of them.
const READ_BUFFER: usize = 16 * 1024;

pub const OP_TEXT: u8 = 0x1;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;

/// An upgraded connection with a read buffer.
pub struct Client {
    pub stream: TcpStream,
    /// Initialised once; `pos..end` holds bytes read but not yet consumed.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
}

/// One frame, borrowed from the client's buffer.
pub struct Frame<'a> {
    pub opcode: u8,
    pub payload: &'a [u8],
}

impl Client {
    /// Connects to `host:port` and upgrades `path` (with query).
    pub async fn connect(addr: &str, path: &str) -> io::Result<Client> {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut buf = Vec::with_capacity(1024);
        let header_end = loop {
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed during handshake",
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = memchr::memmem::find(&buf, b"\r\n\r\n") {
                break end + 4;
            }
            if buf.len() > 16 * 1024 {
                return Err(io::Error::other("handshake response too long"));
            }
        };
        if !buf.starts_with(b"HTTP/1.1 101") {
            let line = String::from_utf8_lossy(&buf[..buf.len().min(80)]).into_owned();
            return Err(io::Error::other(format!("upgrade refused: {line}")));
        }
        let end = buf.len();
        buf.resize(end.max(READ_BUFFER), 0);
        Ok(Client {
            stream,
            buf,
            pos: header_end,
            end,
        })
    }

    /// Reads more bytes; `Ok(false)` at end of stream.
    pub async fn fill(&mut self) -> io::Result<bool> {
        if self.pos == self.end {
            (self.pos, self.end) = (0, 0);
        } else if self.end == self.buf.len() {
            if self.pos > 0 {
                self.buf.copy_within(self.pos..self.end, 0);
                (self.pos, self.end) = (0, self.end - self.pos);
            } else {
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n > 0)
    }

    /// The next complete frame already in the buffer, if any.
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        let data = &self.buf[self.pos..self.end];
        if data.len() < 2 {
            return None;
        }
        let opcode = data[0] & 0x0f;
        let masked = data[1] & 0x80 != 0;
        let (len, mut offset) = match data[1] & 0x7f {
            126 => {
                if data.len() < 4 {
                    return None;
                }
                (u16::from_be_bytes([data[2], data[3]]) as usize, 4)
            }
            127 => {
                if data.len() < 10 {
                    return None;
                }
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&data[2..10]);
                (u64::from_be_bytes(bytes) as usize, 10)
            }
            short => (short as usize, 2),
        };
        if masked {
            offset += 4; // servers never mask; skip a key if one is there
        }
        if data.len() < offset + len {
            return None;
        }
        let start = self.pos + offset;
        self.pos = start + len;
        Some(Frame {
            opcode,
            payload: &self.buf[start..start + len],
        })
    }

    pub async fn send_text(&mut self, payload: &[u8]) -> io::Result<()> {
        let frame = encode(OP_TEXT, payload);
        self.stream.write_all(&frame).await
    }

    pub async fn send_pong(&mut self, payload: &[u8]) -> io::Result<()> {
        let frame = encode(0xA, payload);
        self.stream.write_all(&frame).await
    }
}

/// A masked client frame. The mask key is all zeros: valid per RFC 6455 (the
/// bit is set and a key is sent) and it leaves the payload as is.
pub fn encode(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(payload.len() + 14);
    frame.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= u16::MAX as usize => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(payload);
    frame
}

/// Close code of a close frame's payload, if it has one.
pub fn close_code(payload: &[u8]) -> Option<u16> {
    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))
}
