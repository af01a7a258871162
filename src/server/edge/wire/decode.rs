//! Client frames in: RFC 6455 §5, as a server reads it.
//!
//! Sans-I/O: [`Decoder::next`] takes the bytes read so far and either
//! consumes one whole frame from their front or asks for more, so the rules
//! are tested here without a socket. Every rule a server MUST enforce ends
//! the connection with the code §7.4.1 gives it ([`Broken`]): 1002 for a
//! frame that breaks the framing (checked on the header, before its
//! payload is waited for), 1009 for a message over the limit (also checked
//! on the header, whole or summed over its fragments, so an oversized
//! message is never buffered), 1007 for text that is not UTF-8.

use bytes::{Buf, BytesMut};

use crate::protocol::close_code;

/// Opcodes (§5.2).
const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// Control frames carry at most this much (§5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;

/// One thing a client said, whole.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming {
    Text(String),
    /// A binary message; its bytes are not kept (Banter has no use for them).
    Binary,
    Ping(Vec<u8>),
    Pong,
    /// The client's close: its code, if it gave one, and its reason.
    Close(Option<u16>, String),
}

/// A frame the server must not accept, and the close that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Broken {
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
}

const fn protocol(reason: &'static str) -> Broken {
    Broken {
        code: close_code::PROTOCOL_ERROR,
        reason,
    }
}

pub(crate) const TOO_BIG: Broken = Broken {
    code: close_code::TOO_BIG,
    reason: "Message too big: the limit is 64 KiB",
};
const NOT_UTF8: Broken = Broken {
    code: close_code::INVALID_DATA,
    reason: "Text frames must be valid UTF-8",
};
const REASON_NOT_UTF8: Broken = Broken {
    code: close_code::INVALID_DATA,
    reason: "Close reasons must be valid UTF-8",
};

/// Reads client frames, joining fragments into messages.
#[derive(Debug)]
pub(crate) struct Decoder {
    max_message: usize,
    /// A fragmented message so far: whether it is text, and its bytes.
    partial: Option<(bool, Vec<u8>)>,
}

/// A frame header, once enough of it has arrived.
struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    /// Bytes of header, and of payload after it.
    header_len: usize,
    payload_len: usize,
}

impl Decoder {
    pub(crate) fn new(max_message: usize) -> Self {
        Decoder {
            max_message,
            partial: None,
        }
    }

    /// Consumes the next whole frame from the front of `buf`. `Ok(None)`:
    /// no whole message yet (wait for more bytes, or a fragment was taken
    /// and more are due; call again until `None` with the same `buf`).
    pub(crate) fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Incoming>, Broken> {
        loop {
            let Some(header) = self.header(buf)? else {
                return Ok(None);
            };
            let end = header.header_len + header.payload_len;
            if buf.len() < end {
                buf.reserve(end - buf.len());
                return Ok(None);
            }
            buf.advance(header.header_len);
            let mut payload = buf.split_to(header.payload_len);
            unmask(&mut payload, header.mask);
            if let Some(incoming) = self.take(header.fin, header.opcode, &payload)? {
                return Ok(Some(incoming));
            }
        }
    }

    /// Parses and checks the header at the front of `buf`, if it is all
    /// there; consumes nothing.
    fn header(&self, buf: &[u8]) -> Result<Option<Header>, Broken> {
        let [first, second, ..] = *buf else {
            return Ok(None);
        };
        let fin = first & 0x80 != 0;
        let opcode = first & 0x0F;
        if first & 0x70 != 0 {
            return Err(protocol("Reserved bits set without an extension"));
        }
        if !matches!(opcode, CONTINUATION | TEXT | BINARY | CLOSE | PING | PONG) {
            return Err(protocol("Reserved opcode"));
        }
        if second & 0x80 == 0 {
            return Err(protocol("Client frames must be masked"));
        }
        let control = opcode >= CLOSE;
        let (length_len, short) = match second & 0x7F {
            126 => (2, None),
            127 => (8, None),
            n => (0, Some(n as usize)),
        };
        if control && !fin {
            return Err(protocol("Control frames must not be fragmented"));
        }
        if control && short.is_none_or(|n| n > MAX_CONTROL_PAYLOAD) {
            return Err(protocol("Control frames carry at most 125 bytes"));
        }
        match (opcode, &self.partial) {
            (CONTINUATION, None) => return Err(protocol("Continuation with nothing to continue")),
            (TEXT | BINARY, Some(_)) => return Err(protocol("Expected a continuation frame")),
            _ => {}
        }
        let header_len = 2 + length_len + 4;
        if buf.len() < header_len {
            return Ok(None);
        }
        let payload_len = match short {
            Some(n) => n,
            None => {
                let mut length = [0u8; 8];
                length[8 - length_len..].copy_from_slice(&buf[2..2 + length_len]);
                let length = u64::from_be_bytes(length);
                // §5.2: the most significant bit must be 0.
                if length >> 63 != 0 {
                    return Err(protocol("Frame length out of range"));
                }
                usize::try_from(length).unwrap_or(usize::MAX)
            }
        };
        let so_far = self.partial.as_ref().map_or(0, |(_, data)| data.len());
        if !control && so_far.saturating_add(payload_len) > self.max_message {
            return Err(TOO_BIG);
        }
        let mut mask = [0u8; 4];
        mask.copy_from_slice(&buf[2 + length_len..header_len]);
        Ok(Some(Header {
            fin,
            opcode,
            mask,
            header_len,
            payload_len,
        }))
    }

    /// One checked, unmasked frame: a whole message, or `None` while a
    /// fragmented one is still coming.
    fn take(&mut self, fin: bool, opcode: u8, payload: &[u8]) -> Result<Option<Incoming>, Broken> {
        match opcode {
            PING => Ok(Some(Incoming::Ping(payload.to_vec()))),
            PONG => Ok(Some(Incoming::Pong)),
            CLOSE => close(payload).map(Some),
            _ => {
                let (text, data) = match self.partial.take() {
                    Some((text, mut data)) => {
                        data.extend_from_slice(payload);
                        (text, data)
                    }
                    None => (opcode == TEXT, payload.to_vec()),
                };
                if !fin {
                    self.partial = Some((text, data));
                    return Ok(None);
                }
                if !text {
                    return Ok(Some(Incoming::Binary));
                }
                String::from_utf8(data)
                    .map(|text| Some(Incoming::Text(text)))
                    .map_err(|_| NOT_UTF8)
            }
        }
    }
}

/// A close frame's body (§5.5.1): nothing, or a code and a UTF-8 reason.
fn close(payload: &[u8]) -> Result<Incoming, Broken> {
    let (code, reason) = match payload {
        [] => return Ok(Incoming::Close(None, String::new())),
        [_] => return Err(protocol("Malformed close frame")),
        [high, low, reason @ ..] => (u16::from_be_bytes([*high, *low]), reason),
    };
    if !may_be_sent(code) {
        return Err(protocol("Close code not allowed on the wire"));
    }
    let reason = std::str::from_utf8(reason).map_err(|_| REASON_NOT_UTF8)?;
    Ok(Incoming::Close(Some(code), reason.to_owned()))
}

/// The close codes an endpoint may send (§7.4.1, §7.4.2, and the IANA
/// registry's 1012–1014): not 1004–1006 nor 1015, which are reserved or
/// only ever reported locally.
fn may_be_sent(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// §5.3: XOR with the four-byte key, cycling.
fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A client frame as it goes on the wire.
    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![first];
        match payload.len() {
            n @ 0..=125 => out.push(0x80 | n as u8),
            n @ 126..=0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&KEY);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
        out
    }

    fn decode(bytes: &[u8]) -> Result<Vec<Incoming>, Broken> {
        let mut decoder = Decoder::new(64 * 1024);
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(incoming) = decoder.next(&mut buf)? {
            out.push(incoming);
        }
        Ok(out)
    }

    #[test]
    fn whole_and_fragmented_messages_and_control_frames_between_fragments() {
        let mut bytes = frame(0x81, b"hello");
        bytes.extend(frame(0x01, b"hel"));
        bytes.extend(frame(0x89, b"p"));
        bytes.extend(frame(0x80, b"lo"));
        bytes.extend(frame(0x88, &[0x03, 0xe8, b'o', b'k']));
        assert_eq!(
            decode(&bytes),
            Ok(vec![
                Incoming::Text("hello".into()),
                Incoming::Ping(b"p".to_vec()),
                Incoming::Text("hello".into()),
                Incoming::Close(Some(1000), "ok".into()),
            ])
        );
    }

    #[test]
    fn a_frame_split_anywhere_waits_for_the_rest() {
        let bytes = frame(0x81, &[b'x'; 300]);
        for cut in 0..bytes.len() {
            let mut decoder = Decoder::new(64 * 1024);
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert_eq!(decoder.next(&mut buf), Ok(None), "cut at {cut}");
            buf.extend_from_slice(&bytes[cut..]);
            assert_eq!(
                decoder.next(&mut buf),
                Ok(Some(Incoming::Text("x".repeat(300))))
            );
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn every_framing_error_is_a_1002_with_its_reason() {
        let unmasked = {
            let mut f = frame(0x81, b"hi");
            f[1] &= 0x7F;
            f.drain(2..6);
            f
        };
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("rsv1", frame(0xC1, b"x")),
            ("rsv2", frame(0xA1, b"x")),
            ("rsv3", frame(0x91, b"x")),
            ("unmasked", unmasked),
            ("opcode 3", frame(0x83, b"x")),
            ("opcode 0xB", frame(0x8B, b"x")),
            ("lone continuation", frame(0x80, b"x")),
            ("fragmented ping", frame(0x09, b"x")),
            ("126-byte ping", frame(0x89, &[0; 126])),
            ("close 999", frame(0x88, &999u16.to_be_bytes())),
            ("close 1005", frame(0x88, &1005u16.to_be_bytes())),
            ("close 1006", frame(0x88, &1006u16.to_be_bytes())),
            ("one-byte close", frame(0x88, &[3])),
            ("64-bit length with its top bit set", {
                let mut f = vec![0x81, 0x80 | 127];
                f.extend_from_slice(&(1u64 << 63).to_be_bytes());
                f.extend_from_slice(&KEY);
                f
            }),
            ("new message mid-fragments", {
                let mut f = frame(0x01, b"a");
                f.extend(frame(0x81, b"b"));
                f
            }),
        ];
        for (what, bytes) in cases {
            let err = decode(&bytes).expect_err(what);
            assert_eq!(err.code, 1002, "{what}");
            assert!(!err.reason.is_empty(), "{what}");
        }
    }

    #[test]
    fn too_big_is_refused_on_the_header_whole_or_in_fragments() {
        // Only the header: the payload is never waited for.
        let whole = frame(0x81, &vec![b'x'; 64 * 1024 + 1]);
        assert_eq!(decode(&whole[..14]), Err(TOO_BIG));
        let mut parts = frame(0x01, &vec![b'x'; 40 * 1024]);
        parts.extend(frame(0x80, &vec![b'x'; 40 * 1024]));
        assert_eq!(decode(&parts), Err(TOO_BIG));
        // Exactly the limit is fine.
        let limit = frame(0x81, &vec![b'x'; 64 * 1024]);
        assert_eq!(decode(&limit).map(|m| m.len()), Ok(1));
    }

    #[test]
    fn text_and_close_reasons_must_be_utf8_and_binary_is_reported() {
        assert_eq!(decode(&frame(0x81, &[0xff, 0xfe])), Err(NOT_UTF8));
        assert_eq!(
            decode(&frame(0x88, &[0x03, 0xe8, 0xff])),
            Err(REASON_NOT_UTF8)
        );
        assert_eq!(decode(&frame(0x82, &[0xff])), Ok(vec![Incoming::Binary]));
        assert_eq!(
            decode(&frame(0x88, &[])),
            Ok(vec![Incoming::Close(None, String::new())])
        );
    }
}
