//! Server frames out: RFC 6455 §5.2 as a server writes it — never masked,
//! never fragmented, so a frame is a header of 2, 4 or 10 bytes and the
//! payload as it is.
//!
//! A room's message is framed once, for every member alike (the frame's
//! bytes are shared, never copied per member), and goes out with one
//! `send(2)` per member: contiguous, so it skips the file layer a vectored
//! write would go through.

use crate::protocol::close_code;

pub(crate) const TEXT: u8 = 0x1;
pub(crate) const CLOSE: u8 = 0x8;
pub(crate) const PING: u8 = 0x9;
pub(crate) const PONG: u8 = 0xA;

/// A final frame's header for `len` bytes of payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    bytes: [u8; 10],
    len: u8,
}

impl Header {
    pub(crate) fn new(opcode: u8, len: usize) -> Self {
        let mut bytes = [0u8; 10];
        bytes[0] = 0x80 | opcode;
        let used = match len {
            0..=125 => {
                bytes[1] = len as u8;
                2
            }
            126..=0xFFFF => {
                bytes[1] = 126;
                bytes[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                4
            }
            _ => {
                bytes[1] = 127;
                bytes[2..10].copy_from_slice(&(len as u64).to_be_bytes());
                10
            }
        };
        Header { bytes, len: used }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// A whole frame in one buffer: for control frames and other small ones.
pub(crate) fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let header = Header::new(opcode, payload.len());
    let mut out = Vec::with_capacity(header.as_bytes().len() + payload.len());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(payload);
    out
}

/// A close frame. RFC 6455 allows 123 bytes of reason; a longer one (a long
/// non-ASCII name in "already taken") is cut at a character boundary.
pub(crate) fn close(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(close_code::MAX_REASON_BYTES);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    frame(CLOSE, &payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_take_the_shortest_form() {
        assert_eq!(Header::new(TEXT, 5).as_bytes(), [0x81, 5]);
        assert_eq!(Header::new(TEXT, 126).as_bytes(), [0x81, 126, 0, 126]);
        assert_eq!(
            Header::new(TEXT, 70_000).as_bytes(),
            [0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]
        );
    }

    #[test]
    fn close_reasons_fit_the_frame() {
        let long = format!("Username {} is already taken", "é".repeat(32));
        let frame = close(1008, &long);
        assert_eq!(&frame[..4], [0x88, frame.len() as u8 - 2, 0x03, 0xf0]);
        let reason = std::str::from_utf8(&frame[4..]).expect("cut at a boundary");
        assert!(reason.len() <= close_code::MAX_REASON_BYTES);
        assert!(long.starts_with(reason));
    }
}
