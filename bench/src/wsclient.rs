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
            return Err(io::Error::other(UpgradeRefused::from_response(&buf)));
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
        self.make_room();
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n > 0)
    }

    /// [`Client::fill`] without waiting: `WouldBlock` if nothing is there.
    /// For a task that also writes, and so waits on `stream.readable()`
    /// and `stream.writable()` at once.
    pub fn try_fill(&mut self) -> io::Result<bool> {
        self.make_room();
        let n = self.stream.try_read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n > 0)
    }

    /// Makes space after `end`: rewinds an empty buffer, moves a partial
    /// frame to the front, or grows the buffer for a frame that fills it.
    fn make_room(&mut self) {
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

/// The server answered the upgrade with something other than 101 (e.g.
/// 429 when handshakes from one address come too fast).
#[derive(Debug)]
pub struct UpgradeRefused {
    /// The HTTP status, 0 if the status line could not be read.
    pub status: u16,
    pub status_line: String,
}

impl UpgradeRefused {
    fn from_response(response: &[u8]) -> Self {
        let line_end = memchr::memchr(b'\r', response).unwrap_or(response.len().min(80));
        let status_line = String::from_utf8_lossy(&response[..line_end]).into_owned();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        UpgradeRefused {
            status,
            status_line,
        }
    }

    /// The refusal inside an error from [`Client::connect`], if that is
    /// what it was.
    pub fn of(err: &io::Error) -> Option<&UpgradeRefused> {
        err.get_ref()?.downcast_ref()
    }
}

impl std::fmt::Display for UpgradeRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "upgrade refused: {}", self.status_line)
    }
}

impl std::error::Error for UpgradeRefused {}

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

/// Close reason of a close frame's payload (empty if it has none).
pub fn close_reason(payload: &[u8]) -> String {
    String::from_utf8_lossy(payload.get(2..).unwrap_or_default()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_status_of_a_refused_upgrade() {
        let refused = UpgradeRefused::from_response(
            b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\n\r\n",
        );
        assert_eq!(refused.status, 429);
        assert_eq!(refused.status_line, "HTTP/1.1 429 Too Many Requests");
        let err = io::Error::other(refused);
        assert_eq!(UpgradeRefused::of(&err).map(|r| r.status), Some(429));
        assert!(UpgradeRefused::of(&io::Error::other("other")).is_none());
    }

    #[test]
    fn close_frame_payloads() {
        let mut payload = 1008u16.to_be_bytes().to_vec();
        payload.extend_from_slice(b"Sending too fast: slow down");
        assert_eq!(close_code(&payload), Some(1008));
        assert_eq!(close_reason(&payload), "Sending too fast: slow down");
        assert_eq!(close_code(&[]), None);
        assert_eq!(close_reason(&[]), "");
    }
}
