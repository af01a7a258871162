//! How a socket speaks: Banter's JSON events, or plain text lines.
//!
//! The JSON endpoint (`/start_web_socket`) speaks the tutorial's events. A
//! WebSocket opened on a page address (`/`, `/r/ROOM`) speaks plain text,
//! for `websocat`, shell scripts and the Deno tutorials' smallest clients,
//! which send a string and print whatever comes back:
//! - every text frame the client sends is a chat message;
//! - every message in the room comes back as one line, `author: text`;
//! - joins and leaves come as `* alice joined (3 online)`;
//! - a refused message comes back as the same sentence as the `error`
//!   event, and the first line says who the client is and who is there.
//!
//! Both are the same connection underneath: the same hub, rules, limits
//! and room. Only the two ends differ, and they differ here: [`Dialect::read`]
//! turns a client frame into a [`ClientEvent`], and [`Speech`] turns each
//! JSON frame on its way out into what the client understands (the lines
//! are `crate::transcript`'s, which `banter-cli` prints too). Rendering
//! parses the frame back, which costs a plain-text client one JSON parse per
//! event; the room still serialises each event once, and it is framed once
//! for every JSON member, the path that has to scale.

use crate::{
    protocol::{ClientEvent, ServerEvent},
    server::chat::frame::Frame,
    transcript::{Transcript, list},
};

/// What a socket's frames mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// JSON events (`/start_web_socket`).
    Json,
    /// Plain text lines (a WebSocket on a page address).
    Text,
}

impl Dialect {
    /// The event one client text frame carries, or the sentence to answer
    /// with when it carries none.
    pub(super) fn read(self, text: &str) -> Result<ClientEvent, String> {
        match self {
            Dialect::Json => {
                serde_json::from_str(text).map_err(|err| format!("Could not use that event: {err}"))
            }
            // A line from a terminal tool may keep its line ending.
            Dialect::Text => Ok(ClientEvent::SendMessage {
                message: text.trim_end_matches(['\r', '\n']).to_owned(),
                client_id: None,
            }),
        }
    }

    /// The answer to a binary frame.
    pub(super) fn binary_refused(self) -> &'static str {
        match self {
            Dialect::Json => "Binary frames are not supported; send JSON text frames",
            Dialect::Text => "Binary frames are not supported; send text",
        }
    }
}

/// One connection's outgoing side of its dialect. A plain-text client's
/// [`Transcript`] is who is in its room, so that join and leave lines are
/// exact.
pub(super) enum Speech {
    Json,
    Text(Transcript),
}

impl Speech {
    pub(super) fn new(dialect: Dialect) -> Self {
        match dialect {
            Dialect::Json => Speech::Json,
            Dialect::Text => Speech::Text(Transcript::default()),
        }
    }

    /// What to send in place of the join snapshot (the user list, then
    /// history). A plain-text client gets one greeting line and no history:
    /// it is a live view, as the tutorial servers gave.
    pub(super) fn snapshot(&mut self, frames: Vec<Frame>, me: &str, room: &str) -> Vec<Frame> {
        let Speech::Text(transcript) = self else {
            return frames;
        };
        for frame in &frames {
            if let Ok(event) = ServerEvent::from_json(frame.as_str()) {
                transcript.seed(&event);
            }
        }
        let online = transcript.online();
        vec![Frame::from(format!(
            "* Welcome to #{room}, {me}. {} online: {}",
            online.len(),
            list(&online)
        ))]
    }

    /// What to send in place of one frame, if anything.
    pub(super) fn say(&mut self, frame: Frame) -> Option<Frame> {
        let Speech::Text(transcript) = self else {
            return Some(frame);
        };
        let event = match ServerEvent::from_json(frame.as_str()) {
            Ok(event) => event,
            Err(err) => {
                tracing::warn!(%err, "cannot render a frame as text");
                return None;
            }
        };
        let line = transcript.line(&event)?.to_string();
        Some(Frame::from(line))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::server::chat::frame::encode;

    #[test]
    fn a_text_client_is_greeted_then_reads_lines() {
        let mut speech = Speech::new(Dialect::Text);
        let users = ServerEvent::UpdateUsers {
            usernames: vec![Arc::from("bob"), Arc::from("guest-1")],
        };
        let history = ServerEvent::History {
            messages: vec![],
            more: false,
        };
        let hello = speech.snapshot(vec![encode(&users), encode(&history)], "guest-1", "general");
        assert_eq!(
            hello.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
            ["* Welcome to #general, guest-1. 2 online: bob, guest-1"]
        );
        let left = ServerEvent::UserLeft {
            usernames: vec![Arc::from("bob")],
        };
        assert_eq!(
            speech.say(encode(&left)).as_deref(),
            Some("* bob left (1 online)")
        );
        let typing = ServerEvent::Typing {
            username: "bob".into(),
        };
        assert_eq!(speech.say(encode(&typing)), None);
        // A JSON client's frames pass untouched.
        assert_eq!(
            Speech::new(Dialect::Json).say(encode(&left)),
            Some(encode(&left))
        );
    }

    #[test]
    fn a_text_frame_is_a_message_and_json_is_parsed() {
        assert_eq!(
            Dialect::Text.read("hello\r\n"),
            Ok(ClientEvent::SendMessage {
                message: "hello".into(),
                client_id: None
            })
        );
        assert_eq!(
            Dialect::Text.read(r#"{"event":"typing"}"#),
            Ok(ClientEvent::SendMessage {
                message: r#"{"event":"typing"}"#.into(),
                client_id: None
            })
        );
        assert_eq!(
            Dialect::Json.read(r#"{"event":"typing"}"#),
            Ok(ClientEvent::Typing)
        );
        assert!(Dialect::Json.read("hello").is_err());
    }
}
