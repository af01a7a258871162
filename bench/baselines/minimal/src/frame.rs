//! WebSocket frames (RFC 6455): parsing what clients send and encoding what
//! the server sends.
//!
//! A client frame is always masked; it is unmasked in place, so its payload
//! is read where it lies in the connection's input, never copied out unless
//! it is one fragment of several. A server frame is never masked, so one
//! encoded frame is the same bytes for every socket it goes to.

/// A client message longer than this closes the socket with 1009.
pub(crate) const MAX_MESSAGE: usize = 64 * 1024;

pub(crate) const OP_CONTINUATION: u8 = 0x0;
pub(crate) const OP_TEXT: u8 = 0x1;
pub(crate) const OP_BINARY: u8 = 0x2;
pub(crate) const OP_CLOSE: u8 = 0x8;
pub(crate) const OP_PING: u8 = 0x9;
pub(crate) const OP_PONG: u8 = 0xA;

/// A client frame's header, its payload unmasked in place.
pub(crate) struct FrameHead {
    pub(crate) fin: bool,
    pub(crate) opcode: u8,
    pub(crate) header: usize,
    pub(crate) len: usize,
}

/// The first frame in `data`: `None` if it is not all there yet, `Err`
/// with a close code if it is not one to accept.
pub(crate) fn parse_frame(data: &mut [u8]) -> Option<Result<FrameHead, u16>> {
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

/// An unmasked server frame header for a payload of `len` bytes.
pub(crate) fn header(opcode: u8, len: usize) -> Vec<u8> {
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

pub(crate) fn encode(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = header(opcode, payload.len());
    frame.extend_from_slice(payload);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

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
