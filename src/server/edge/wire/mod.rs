//! WebSocket on the wire: the handshake, client frames in, server frames
//! out (RFC 6455), with nothing between a connection and its `TcpStream`.
//!
//! - [`upgrade`]: the opening handshake and the stream it hands over.
//! - [`decode`]: client frames → whole messages, every MUST of §5 checked,
//!   each broken rule answered with its close code.
//! - [`encode`]: server frames, header and payload in one buffer, so a
//!   frame goes out with one `send(2)`.
//!
//! The read side's I/O is small and lives here: [`Inbound`] reads a
//! socket's half into the decoder (generic over `AsyncRead`, so it runs as
//! well over an in-memory pipe in a unit test as over TCP). The write side
//! is the connection's (`super::connection::peer`): a room writes frames
//! straight into the socket.

pub(crate) mod decode;
pub(crate) mod encode;
pub(crate) mod upgrade;

use bytes::BytesMut;
use tokio::{
    io::{AsyncRead, AsyncReadExt},
    net::tcp::OwnedWriteHalf,
};

pub(crate) use decode::{Broken, Incoming};

/// How much is asked of the kernel per read. Chat frames are small; a big
/// one just takes a few reads.
const READ_CHUNK: usize = 4 * 1024;

/// Why reading a socket stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The client broke a rule: close with this code.
    #[error("{}: {}", .0.code, .0.reason)]
    Broken(Broken),
    #[error("connection lost: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed TCP without a close frame.
    #[error("connection ended without a close frame")]
    Ended,
}

/// The read side: bytes from the socket, whole messages out.
pub(crate) struct Inbound<R> {
    read: R,
    buf: BytesMut,
    decoder: decode::Decoder,
}

impl<R: AsyncRead + Unpin> Inbound<R> {
    /// `early`: what the client sent past its handshake, read already.
    pub(crate) fn new(read: R, early: &[u8], max_message: usize) -> Self {
        Inbound {
            read,
            // Nothing, not an empty buffer, when the client waited.
            buf: if early.is_empty() {
                BytesMut::new()
            } else {
                BytesMut::from(early)
            },
            decoder: decode::Decoder::new(max_message),
        }
    }

    /// The next whole message. Cancel-safe: a read cut short loses nothing
    /// (bytes already read stay in the buffer for the next call).
    pub(crate) async fn next(&mut self) -> Result<Incoming, ReadError> {
        loop {
            if let Some(incoming) = self
                .decoder
                .next(&mut self.buf)
                .map_err(ReadError::Broken)?
            {
                if self.buf.is_empty() && self.buf.capacity() > READ_CHUNK {
                    // A big message grew it; an idle socket keeps nothing.
                    self.buf = BytesMut::new();
                }
                return Ok(incoming);
            }
            self.buf.reserve(READ_CHUNK);
            if self.read.read_buf(&mut self.buf).await? == 0 {
                return Err(ReadError::Ended);
            }
        }
    }

    /// Reads and discards bytes, undecoded, until the end: after a close
    /// for a frame the decoder refused on its header (1002, 1009), whose
    /// payload may still be arriving and can no longer be framed.
    pub(crate) async fn discard(&mut self) {
        self.buf = BytesMut::new();
        // On the heap: an array here would make every connection's task
        // this much bigger for its whole life.
        let mut scratch = vec![0u8; READ_CHUNK];
        while let Ok(n) = self.read.read(&mut scratch).await {
            if n == 0 {
                return;
            }
        }
    }

    /// Reads and discards until the client's close frame, the end, or an
    /// error: after the server's close, so the kernel does not reset a
    /// socket with unread bytes (which would discard that close frame).
    pub(crate) async fn drain(&mut self) {
        loop {
            match self.next().await {
                Ok(Incoming::Close(..)) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

/// Writes all of `bytes`, waiting while the socket is full: for the one
/// close frame a refused joiner gets, before any writer exists.
pub(crate) async fn write_all(socket: &OwnedWriteHalf, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        socket.writable().await?;
        match socket.try_write(bytes) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
