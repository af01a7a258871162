//! The wire protocol, defined once and compiled into both halves.
//!
//! Every frame is a JSON object whose `event` field names its kind in
//! kebab-case. The names and required fields are those of the classic Deno
//! WebSocket chat tutorial, so a client written for it works against Banter
//! unchanged; Banter only *adds* fields (`id`, `ts`) and events (`user-joined`,
//! `user-left`, `error`), which such a client ignores.
//!
//! This module depends on serde alone: it is part of the WASM build, where a
//! server crate would not compile.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Path of the WebSocket endpoint, fixed by the tutorial protocol.
pub const WS_PATH: &str = "/start_web_socket";

/// Query parameter a client adds to the WebSocket URL to receive presence as
/// `user-joined` / `user-left` deltas instead of repeated `update-users` lists.
///
/// Why opt-in: the tutorial's clients only understand `update-users`, but a
/// full list sent to everyone on every change costs O(N²) bytes per join
/// burst. Banter's own client asks for deltas; everyone else gets the
/// compatible, coalesced lists.
pub const PRESENCE_PARAM: &str = "presence";
/// The value of [`PRESENCE_PARAM`] that selects deltas.
pub const PRESENCE_DELTA: &str = "delta";

/// Longest username, in characters (Unicode scalar values).
pub const MAX_USERNAME_CHARS: usize = 32;
/// Longest chat message, in characters (Unicode scalar values).
pub const MAX_MESSAGE_CHARS: usize = 4000;

/// Why a username was refused. Shared so the browser can check a name
/// before it connects and show the same words the server would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsernameError {
    Empty,
    TooLong,
    ControlCharacter,
}

impl std::fmt::Display for UsernameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => write!(f, "Username must not be empty"),
            Self::TooLong => write!(
                f,
                "Username must be at most {MAX_USERNAME_CHARS} characters"
            ),
            Self::ControlCharacter => write!(f, "Username must not contain control characters"),
        }
    }
}

impl std::error::Error for UsernameError {}

/// The username as Banter will use it (surrounding whitespace trimmed), or
/// why it cannot be used.
pub fn parse_username(raw: &str) -> Result<&str, UsernameError> {
    let name = raw.trim();
    if name.is_empty() {
        Err(UsernameError::Empty)
    } else if name.chars().count() > MAX_USERNAME_CHARS {
        Err(UsernameError::TooLong)
    } else if name.chars().any(char::is_control) {
        Err(UsernameError::ControlCharacter)
    } else {
        Ok(name)
    }
}

/// Why a chat message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageError {
    Blank,
    TooLong { chars: usize },
}

impl std::fmt::Display for MessageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Blank => write!(f, "Message must not be empty"),
            Self::TooLong { chars } => write!(
                f,
                "Message is {chars} characters long; the limit is {MAX_MESSAGE_CHARS}"
            ),
        }
    }
}

impl std::error::Error for MessageError {}

/// Checks a chat message before it is sent to everyone.
pub fn check_message(message: &str) -> Result<(), MessageError> {
    if message.trim().is_empty() {
        return Err(MessageError::Blank);
    }
    // Counting stops early: a huge message costs no more than the limit.
    let chars = message.chars().take(MAX_MESSAGE_CHARS + 1).count();
    if chars > MAX_MESSAGE_CHARS {
        return Err(MessageError::TooLong {
            chars: message.chars().count(),
        });
    }
    Ok(())
}

/// What a client may send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum ClientEvent {
    /// Post a chat message to everyone.
    SendMessage { message: String },
}

/// One chat message as everyone receives it, the sender included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub username: String,
    pub message: String,
    /// Server-assigned, strictly increasing: the order everyone sees.
    pub id: u64,
    /// When the server accepted it: RFC 3339, UTC.
    pub ts: String,
}

/// What the server sends. Names are `Arc<str>` so the server can list
/// thousands of users without copying a string per name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum ServerEvent {
    /// A chat message (the tutorial's name for it).
    SendMessage(ChatMessage),
    /// Everyone connected, sorted. Sent to a client when it joins, and to
    /// tutorial-style clients at most once per presence interval after that.
    UpdateUsers { usernames: Vec<Arc<str>> },
    /// These users joined (delta clients only), in the order they joined.
    UserJoined { usernames: Vec<Arc<str>> },
    /// These users left (delta clients only), in the order they left.
    UserLeft { usernames: Vec<Arc<str>> },
    /// The last client event could not be used; the connection stays open.
    Error { message: String },
}

/// WebSocket close codes Banter uses, with the meaning RFC 6455 gives them.
pub mod close_code {
    /// The server is shutting down or restarting.
    pub const GOING_AWAY: u16 = 1001;
    /// The client broke a rule (taken or invalid username).
    pub const POLICY: u16 = 1008;
    /// The client fell too far behind and should reconnect.
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

#[cfg(test)]
mod tests {
    //! Golden strings: these pin the exact JSON on the wire, so a refactor
    //! cannot silently break clients written against the tutorial protocol.
    use super::*;

    fn to_json(event: &ServerEvent) -> String {
        serde_json::to_string(event).expect("server events always serialise")
    }

    #[test]
    fn client_send_message_reads_the_tutorial_json() {
        let event: ClientEvent =
            serde_json::from_str(r#"{"event":"send-message","message":"hello"}"#).unwrap();
        assert_eq!(
            event,
            ClientEvent::SendMessage {
                message: "hello".into()
            }
        );
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"event":"send-message","message":"hello"}"#
        );
    }

    #[test]
    fn server_send_message_golden() {
        let event = ServerEvent::SendMessage(ChatMessage {
            username: "alice".into(),
            message: "hello".into(),
            id: 7,
            ts: "2026-11-23T19:30:00.123Z".into(),
        });
        assert_eq!(
            to_json(&event),
            r#"{"event":"send-message","username":"alice","message":"hello","id":7,"ts":"2026-11-23T19:30:00.123Z"}"#
        );
    }

    #[test]
    fn presence_goldens() {
        let names: Vec<Arc<str>> = vec!["alice".into(), "bob".into()];
        assert_eq!(
            to_json(&ServerEvent::UpdateUsers {
                usernames: names.clone()
            }),
            r#"{"event":"update-users","usernames":["alice","bob"]}"#
        );
        assert_eq!(
            to_json(&ServerEvent::UserJoined {
                usernames: names.clone()
            }),
            r#"{"event":"user-joined","usernames":["alice","bob"]}"#
        );
        assert_eq!(
            to_json(&ServerEvent::UserLeft { usernames: names }),
            r#"{"event":"user-left","usernames":["alice","bob"]}"#
        );
    }

    #[test]
    fn error_golden() {
        assert_eq!(
            to_json(&ServerEvent::Error {
                message: "nope".into()
            }),
            r#"{"event":"error","message":"nope"}"#
        );
    }

    #[test]
    fn unknown_and_malformed_client_events_are_errors_not_panics() {
        for input in [
            r#"{"event":"fly","message":"x"}"#,
            r#"{"event":"send-message","message":5}"#,
            r#"{"message":"no event"}"#,
            "not json",
            "",
        ] {
            assert!(
                serde_json::from_str::<ClientEvent>(input).is_err(),
                "{input}"
            );
        }
    }

    #[test]
    fn usernames_are_trimmed_and_checked() {
        assert_eq!(parse_username("  alice "), Ok("alice"));
        assert_eq!(parse_username("   "), Err(UsernameError::Empty));
        assert_eq!(parse_username(&"x".repeat(33)), Err(UsernameError::TooLong));
        assert_eq!(parse_username(&"é".repeat(32)), Ok("é".repeat(32).as_str()));
        assert_eq!(
            parse_username("a\u{7}b"),
            Err(UsernameError::ControlCharacter)
        );
    }

    #[test]
    fn messages_are_checked() {
        assert_eq!(check_message("hi"), Ok(()));
        assert_eq!(check_message(" \n\t"), Err(MessageError::Blank));
        assert_eq!(check_message(&"é".repeat(4000)), Ok(()));
        assert_eq!(
            check_message(&"x".repeat(4001)),
            Err(MessageError::TooLong { chars: 4001 })
        );
    }

    #[test]
    fn extra_fields_from_clients_are_ignored() {
        let event: ClientEvent =
            serde_json::from_str(r#"{"event":"send-message","message":"hi","client":"x"}"#)
                .unwrap();
        assert_eq!(
            event,
            ClientEvent::SendMessage {
                message: "hi".into()
            }
        );
    }
}
