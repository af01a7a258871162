//! WebSocket on the wire: the handshake, client frames in, server frames
//! out (RFC 6455), with nothing between a connection and its `TcpStream`.
//!
//! - [`upgrade`]: the opening handshake and the stream it hands over.
//! - [`decode`]: client frames → whole messages, every MUST of §5 checked,
//!   each broken rule answered with its close code.
//! - [`encode`]: server frames: a header beside an untouched payload.
//!
//! The I/O around them is small and lives here: [`Inbound`] reads a
//! socket's half into the decoder, [`Outbound`] gathers frames and writes
//! them in as few `write` calls as it can. Both are generic over tokio's
//! `AsyncRead` / `AsyncWrite`, so the connection logic above them runs as
//! well over an in-memory pipe in a unit test as over TCP.

pub(crate) mod decode;
pub(crate) mod encode;
pub(crate) mod upgrade;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub(crate) use decode::{Broken, Incoming};

/// How much is asked of the kernel per read. Chat frames are small; a big
/// one just takes a few reads.
const READ_CHUNK: usize = 4 * 1024;

/// Gathered output is written once it holds this much.
const WRITE_CHUNK: usize = 16 * 1024;

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
            buf: BytesMut::from(early),
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

/// The write side: frames gathered, then written together.
pub(crate) struct Outbound<W> {
    write: W,
    buf: Vec<u8>,
    /// How much of `buf` is already written: a flush cut short (by the
    /// stall timeout) resumes where it was, never sending a byte twice.
    written: usize,
}

impl<W: AsyncWrite + Unpin> Outbound<W> {
    pub(crate) fn new(write: W) -> Self {
        Outbound {
            write,
            buf: Vec::new(),
            written: 0,
        }
    }

    /// Adds a text frame; writes out what is gathered if that is a lot.
    pub(crate) async fn feed_text(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let header = encode::Header::new(encode::TEXT, payload.len());
        self.buf.extend_from_slice(header.as_bytes());
        self.buf.extend_from_slice(payload);
        if self.buf.len() >= WRITE_CHUNK {
            self.flush().await?;
        }
        Ok(())
    }

    /// Adds a whole frame (a control frame from [`encode`]).
    pub(crate) fn feed_raw(&mut self, frame: &[u8]) {
        self.buf.extend_from_slice(frame);
    }

    /// Writes out everything gathered. Cancel-safe: what was written is
    /// remembered, and the next flush goes on from there.
    pub(crate) async fn flush(&mut self) -> std::io::Result<()> {
        while self.written < self.buf.len() {
            match self.write.write(&self.buf[self.written..]).await? {
                0 => return Err(std::io::ErrorKind::WriteZero.into()),
                n => self.written += n,
            }
        }
        self.written = 0;
        // Let go of it: an idle connection keeps no buffer, and one
        // allocation per batch costs little beside its write(2).
        self.buf = Vec::new();
        Ok(())
    }

    /// Sends a control frame at once.
    pub(crate) async fn send_raw(&mut self, frame: impl AsRef<[u8]>) -> std::io::Result<()> {
        self.feed_raw(frame.as_ref());
        self.flush().await
    }

    /// Ends the sending direction (TCP FIN) once everything is out.
    pub(crate) async fn shutdown(&mut self) -> std::io::Result<()> {
        self.flush().await?;
        self.write.shutdown().await
    }
}
