//! The chat's JSON events, as the Deno tutorial has them: a client's
//! `send-message`, the broadcast framed from it, and the `update-users`
//! snapshot a joiner gets.
//!
//! A broadcast is built by copying bytes, never by serializing a value: the
//! sender's name was JSON-encoded once when it joined, and the message goes
//! out as the client wrote it (a `RawValue`). It is built after room left
//! for its frame header, so that header and payload end up one contiguous
//! slice, framed once and written as is to every socket.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::frame::{OP_TEXT, encode, header};

/// Room before a broadcast's payload for its frame header (at most 10 bytes).
const HEADER_ROOM: usize = 10;

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
pub(crate) fn frame_message(out: &mut Vec<u8>, name_json: &str, text: &[u8]) -> Option<usize> {
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

/// The `update-users` frame for a joiner: `list` is everyone's
/// JSON-encoded names, comma-separated.
pub(crate) fn frame_snapshot(list: &[u8]) -> Vec<u8> {
    let mut payload = br#"{"event":"update-users","usernames":["#.to_vec();
    payload.extend_from_slice(list);
    payload.extend_from_slice(b"]}");
    encode(OP_TEXT, &payload)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
