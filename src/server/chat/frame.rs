//! A serialised event, and who it is for.
//!
//! The base of the server's chat side: everything above it (rooms,
//! presence, storage, the hub, connections) passes frames around, and this
//! module imports nothing of theirs. An event is serialised once, by
//! [`encode`], and the resulting [`Frame`] is reference-counted, so the same
//! bytes go to every recipient without a copy.
//!
//! A frame travels one of two ways: handed by its room to every member
//! ([`Outbound`], filtered by [`Audience`]), or to one client alone through
//! its writer ([`Reply`]).

use std::sync::OnceLock;

use bytes::Bytes;
use tungstenite::Utf8Bytes;

use serde::Serialize;

use crate::protocol::{ChatMessage, ServerEvent};

/// One serialised event, shared by every recipient without copying.
pub(crate) type Frame = Utf8Bytes;

/// Serialises an event for the wire.
pub(crate) fn encode(event: &ServerEvent) -> Frame {
    match serde_json::to_string(event) {
        Ok(json) => Frame::from(json),
        // Unreachable for these types (string keys, no custom Serialize);
        // logged rather than panicking a connection task if that changes.
        Err(err) => {
            tracing::error!(%err, "could not serialise a server event");
            Frame::from_static(r#"{"event":"error","message":"internal error"}"#)
        }
    }
}

/// A stored message's `send-message` frame, serialised from a borrow.
///
/// The same bytes as [`encode`] of [`ServerEvent::SendMessage`], without
/// first copying the message into an event that owns it: a room keeps the
/// message itself for its latest page, so the event only needs to look at
/// it. The tag comes from the same serde attributes, through
/// [`SendMessage`], and a test holds the two to the same output.
pub(crate) fn encode_message(message: &ChatMessage) -> Frame {
    /// `ServerEvent`'s one variant that a delivery serialises, borrowed.
    #[derive(Serialize)]
    #[serde(tag = "event", rename_all = "kebab-case")]
    enum SendMessage<'m> {
        SendMessage(&'m ChatMessage),
    }
    match serde_json::to_string(&SendMessage::SendMessage(message)) {
        Ok(json) => Frame::from(json),
        Err(err) => {
            tracing::error!(%err, "could not serialise a message");
            Frame::from_static(r#"{"event":"error","message":"internal error"}"#)
        }
    }
}

/// How a client wants to hear about joins and leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PresenceStyle {
    /// The tutorial's `update-users` with the whole list.
    List,
    /// `user-joined` / `user-left` deltas (Banter's own client).
    Delta,
}

/// Which connections an [`Outbound`] event is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    Everyone,
    Only(PresenceStyle),
}

impl Audience {
    pub(crate) fn includes(self, style: PresenceStyle) -> bool {
        match self {
            Audience::Everyone => true,
            Audience::Only(only) => only == style,
        }
    }
}

/// An event a room hands to its members.
#[derive(Debug, Clone)]
pub(crate) struct Outbound {
    pub(crate) audience: Audience,
    /// The chat message's id, or 0 for other events: lets a connection
    /// skip what a client already got from storage when it resumed.
    pub(crate) id: u64,
    pub(crate) frame: Frame,
    /// The frame as the wire sends it, made once, by the first member's
    /// connection that needs it, for every member alike: what it holds is
    /// the connection's business (`server::edge`), not the room's.
    pub(crate) wire: OnceLock<Bytes>,
}

impl Outbound {
    pub(crate) fn new(audience: Audience, id: u64, frame: Frame) -> Self {
        Outbound {
            audience,
            id,
            frame,
            wire: OnceLock::new(),
        }
    }
}

/// What goes to one client alone, through its writer.
#[derive(Debug)]
pub(crate) enum Reply {
    /// An event (an `error`, a `history` page).
    Frame(Frame),
    /// Close with this code and reason, then stop: the client sent
    /// something that ends the conversation (too big, not UTF-8, a broken
    /// frame).
    Close { code: u16, reason: &'static str },
    /// The client closed: answer with its code (RFC 6455 §5.5.1), then
    /// stop.
    AnswerClose(Option<u16>),
    /// The client pinged: answer with a pong carrying its payload.
    AnswerPing(Vec<u8>),
    /// The client answered a ping: it is still there.
    Pong,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_borrowed_message_encodes_as_its_event_does() {
        let mut message = ChatMessage {
            username: "Ada \"the\" first".into(),
            message: "hi ✓".into(),
            id: 42,
            ts: "2026-12-03T03:00:00.000Z".into(),
            client_id: Some("c-1".into()),
        };
        for _ in 0..2 {
            assert_eq!(
                encode_message(&message),
                encode(&ServerEvent::SendMessage(message.clone()))
            );
            message.client_id = None;
        }
    }
}
