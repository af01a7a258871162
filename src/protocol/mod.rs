//! The wire protocol, defined once and compiled into both halves.
//!
//! Every frame is a JSON object whose `event` field names its kind in
//! kebab-case. The names and required fields are those of the classic Deno
//! WebSocket chat tutorial, so a client written for it works against Banter
//! unchanged; Banter only *adds* fields (`id`, `ts`, `client_id`), query
//! parameters (`room`, `since`, `presence`) and events (`history`,
//! `typing`, `user-joined`, `user-left`, `error`, `load-history`), which
//! such a client never sends and ignores when received.
//!
//! This module depends on serde alone: it is part of the WASM build, where a
//! server crate would not compile.

mod rules;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use rules::{
    MessageError, RoomError, UsernameError, check_message, parse_room, parse_username,
};

/// Path of the WebSocket endpoint, fixed by the tutorial protocol.
pub const WS_PATH: &str = "/start_web_socket";

/// Query parameter naming the user (the tutorial's).
pub const USERNAME_PARAM: &str = "username";
/// Query parameter naming the room; without it a client is in
/// [`DEFAULT_ROOM`], which is where every tutorial client chats.
pub const ROOM_PARAM: &str = "room";
/// The room of clients that name none.
pub const DEFAULT_ROOM: &str = "general";
/// Query parameter a reconnecting client sets to the last message id it
/// has: the server then sends exactly the messages after it, and no
/// `history` page.
pub const SINCE_PARAM: &str = "since";

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

/// Query parameter carrying the access token, when the server is set up to
/// need one. A query parameter because browsers cannot set headers on a
/// WebSocket; other clients may send `Authorization: Bearer T` instead.
pub const ACCESS_TOKEN_PARAM: &str = "accessToken";
/// The page's origin, stated by the page when it asks why its socket was
/// refused: a same-origin `fetch` GET carries no `Origin` header, and the
/// answer must be the one the socket got. Used only when the header is absent.
pub const ORIGIN_PARAM: &str = "origin";

/// Longest username, in characters (Unicode scalar values).
pub const MAX_USERNAME_CHARS: usize = 32;
/// Longest room name, in characters (ASCII letters, digits, `-`, `_`).
pub const MAX_ROOM_CHARS: usize = 40;
/// Longest chat message, in characters (Unicode scalar values).
pub const MAX_MESSAGE_CHARS: usize = 4000;
/// Longest client-chosen message id, in bytes.
pub const MAX_CLIENT_ID_BYTES: usize = 64;
/// A delta client's user list on joining comes in chunks of at most this
/// many names: `update-users` with the first, `user-joined` with the rest.
/// A full chunk means more may follow; until a shorter one (or another
/// event), a `user-joined` is part of the list, not news.
pub const USER_LIST_CHUNK: usize = 128;
/// Messages in one `history` page: on joining, and per `load-history`.
pub const HISTORY_PAGE: usize = 50;
/// The server's default flood limit: client events per second per socket,
/// and how many at once. Banter's client paces itself just under it, so a
/// fast typist or a burst of queued messages is slowed, never refused.
pub const DEFAULT_MESSAGE_RATE: u32 = 10;
pub const DEFAULT_MESSAGE_BURST: u32 = 20;
/// How the `error` for a message a cluster could not accept yet begins
/// (its Redis is unreachable). Banter's page keeps such a message in its
/// outbox and sends it again a moment later, until it is accepted.
pub const DELIVERY_PAUSED: &str = "Delivery is paused";
/// How the `error` for a message over the flood limit begins. It was not
/// taken; Banter's clients keep it in the outbox and send it again a
/// moment later.
pub const SLOW_DOWN: &str = "Slow down";

/// What a client may send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum ClientEvent {
    /// Post a chat message to everyone in the room.
    SendMessage {
        message: String,
        /// Chosen by the client, unique per message (Banter's client uses a
        /// random UUID). A message resent after a reconnect with the same
        /// id is stored and shown once; the echo carries it back, so the
        /// sender knows which of its queued messages arrived.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
    /// Ask for the page of messages just before `before` (an id); answered
    /// with a `history` event.
    LoadHistory { before: u64 },
    /// The user is typing; the room is told, the server keeps nothing.
    Typing,
}

/// One chat message as everyone receives it, the sender included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub username: String,
    pub message: String,
    /// Server-assigned, strictly increasing within the room (and across
    /// restarts): the order everyone sees, and what `since` refers to.
    pub id: u64,
    /// When the server accepted it: RFC 3339, UTC.
    pub ts: String,
    /// The sender's id for it, if it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// What the server sends. Names are `Arc<str>` so the server can list
/// thousands of users without copying a string per name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum ServerEvent {
    /// A chat message (the tutorial's name for it).
    SendMessage(ChatMessage),
    /// A page of earlier messages, oldest first: the room's latest on
    /// joining, or the page asked for by `load-history`. `more` says whether
    /// older messages exist.
    History {
        messages: Vec<ChatMessage>,
        more: bool,
    },
    /// Someone in the room is typing (shown for a few seconds).
    Typing { username: Arc<str> },
    /// Everyone in the room, sorted regardless of case. Sent to a client
    /// when it joins, and to tutorial-style clients at most once per
    /// presence interval after that.
    UpdateUsers { usernames: Vec<Arc<str>> },
    /// These users joined (delta clients only), in the order they joined.
    UserJoined { usernames: Vec<Arc<str>> },
    /// These users left (delta clients only), in the order they left.
    UserLeft { usernames: Vec<Arc<str>> },
    /// The last client event could not be used; the connection stays open.
    Error { message: String },
}

impl ServerEvent {
    /// Parses one frame from the server: the same event as
    /// `serde_json::from_str::<ServerEvent>` for every frame the server
    /// sends (the tests check every event both ways), decoded through one
    /// flat struct. On other input it may refuse more (it reads every field
    /// it knows, used or not); it accepts more only in one case, an
    /// unknown field nested past serde_json's depth limit, which it skips
    /// without descending (see `tests/fuzz.rs`).
    ///
    /// Why not the derive: serde decodes an internally tagged enum by first
    /// buffering the object into its generic `Content` tree and then
    /// decoding each variant from that, which generates code for every
    /// field twice over. In the browser bundle that was ~20 KB of WASM;
    /// this is a fraction of it.
    pub fn from_json(text: &str) -> Result<ServerEvent, DecodeError> {
        #[derive(Deserialize)]
        struct Flat {
            event: String,
            username: Option<String>,
            message: Option<String>,
            id: Option<u64>,
            ts: Option<String>,
            client_id: Option<String>,
            usernames: Option<Vec<Arc<str>>>,
            messages: Option<Vec<ChatMessage>>,
            more: Option<bool>,
        }
        fn need<T>(field: Option<T>, name: &'static str) -> Result<T, DecodeError> {
            field.ok_or(DecodeError::MissingField(name))
        }

        let flat: Flat = serde_json::from_str(text).map_err(DecodeError::Json)?;
        Ok(match flat.event.as_str() {
            "send-message" => ServerEvent::SendMessage(ChatMessage {
                username: need(flat.username, "username")?,
                message: need(flat.message, "message")?,
                id: need(flat.id, "id")?,
                ts: need(flat.ts, "ts")?,
                client_id: flat.client_id,
            }),
            "history" => ServerEvent::History {
                messages: need(flat.messages, "messages")?,
                more: need(flat.more, "more")?,
            },
            "typing" => ServerEvent::Typing {
                username: Arc::from(need(flat.username, "username")?),
            },
            "update-users" => ServerEvent::UpdateUsers {
                usernames: need(flat.usernames, "usernames")?,
            },
            "user-joined" => ServerEvent::UserJoined {
                usernames: need(flat.usernames, "usernames")?,
            },
            "user-left" => ServerEvent::UserLeft {
                usernames: need(flat.usernames, "usernames")?,
            },
            "error" => ServerEvent::Error {
                message: need(flat.message, "message")?,
            },
            _ => return Err(DecodeError::UnknownEvent(flat.event)),
        })
    }
}

/// Why [`ServerEvent::from_json`] could not read a frame.
#[derive(Debug)]
pub enum DecodeError {
    Json(serde_json::Error),
    MissingField(&'static str),
    UnknownEvent(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Json(err) => err.fmt(f),
            Self::MissingField(name) => write!(f, "missing field `{name}`"),
            Self::UnknownEvent(event) => write!(f, "unknown event `{event}`"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Where the room list is served.
pub const ROOMS_API_PATH: &str = "/api/rooms";

/// One entry of `GET /api/rooms` (see the server's `room_list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSummary {
    pub name: String,
    /// People in it right now.
    pub online: usize,
    /// Its newest message, if it has any.
    pub last_id: Option<u64>,
    pub last_ts: Option<String>,
}

/// WebSocket close codes Banter uses, with the meaning RFC 6455 gives them.
pub mod close_code {
    /// The server is shutting down or restarting.
    pub const GOING_AWAY: u16 = 1001;
    /// A frame broke the WebSocket framing rules (reserved bits or opcode,
    /// an unmasked client frame, a fragmented or oversized control frame).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text frame was not valid UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// The client broke a rule (taken or invalid username).
    pub const POLICY: u16 = 1008;
    /// A message was larger than the server accepts.
    pub const TOO_BIG: u16 = 1009;
    /// The server failed (storage unavailable); retrying may work.
    pub const INTERNAL_ERROR: u16 = 1011;
    /// The client fell too far behind and should reconnect.
    pub const TRY_AGAIN_LATER: u16 = 1013;

    /// Longest reason a close frame can carry: RFC 6455 allows 125 bytes of
    /// payload, less the two of the code.
    pub const MAX_REASON_BYTES: usize = 123;
}

#[cfg(test)]
mod tests {
    //! Golden strings: these pin the exact JSON on the wire, so a refactor
    //! cannot silently break clients written against the tutorial protocol.
    use super::*;

    fn to_json(event: &ServerEvent) -> String {
        serde_json::to_string(event).expect("server events always serialise")
    }

    fn bobs_message() -> ChatMessage {
        ChatMessage {
            username: "bob".into(),
            message: "yo".into(),
            id: 3,
            ts: "2026-11-23T19:30:00.000Z".into(),
            client_id: Some("c9".into()),
        }
    }

    #[test]
    fn client_send_message_reads_the_tutorial_json() {
        let event: ClientEvent =
            serde_json::from_str(r#"{"event":"send-message","message":"hello"}"#).unwrap();
        assert_eq!(
            event,
            ClientEvent::SendMessage {
                message: "hello".into(),
                client_id: None,
            }
        );
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"event":"send-message","message":"hello"}"#
        );
    }

    #[test]
    fn banter_client_events_golden() {
        let cases = [
            (
                ClientEvent::SendMessage {
                    message: "hi".into(),
                    client_id: Some("c1".into()),
                },
                r#"{"event":"send-message","message":"hi","client_id":"c1"}"#,
            ),
            (
                ClientEvent::LoadHistory { before: 42 },
                r#"{"event":"load-history","before":42}"#,
            ),
            (ClientEvent::Typing, r#"{"event":"typing"}"#),
        ];
        for (event, json) in cases {
            assert_eq!(serde_json::to_string(&event).unwrap(), json);
            assert_eq!(serde_json::from_str::<ClientEvent>(json).unwrap(), event);
        }
    }

    #[test]
    fn server_send_message_golden() {
        let event = ServerEvent::SendMessage(ChatMessage {
            username: "alice".into(),
            message: "hello".into(),
            id: 7,
            ts: "2026-11-23T19:30:00.123Z".into(),
            client_id: None,
        });
        assert_eq!(
            to_json(&event),
            r#"{"event":"send-message","username":"alice","message":"hello","id":7,"ts":"2026-11-23T19:30:00.123Z"}"#
        );
    }

    #[test]
    fn history_and_typing_goldens() {
        let message = bobs_message();
        assert_eq!(
            to_json(&ServerEvent::History {
                messages: vec![message],
                more: false
            }),
            r#"{"event":"history","messages":[{"username":"bob","message":"yo","id":3,"ts":"2026-11-23T19:30:00.000Z","client_id":"c9"}],"more":false}"#
        );
        assert_eq!(
            to_json(&ServerEvent::Typing {
                username: "bob".into()
            }),
            r#"{"event":"typing","username":"bob"}"#
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
    fn the_flat_decoder_agrees_with_the_derive() {
        let message = bobs_message();
        let events = [
            ServerEvent::SendMessage(message.clone()),
            ServerEvent::SendMessage(ChatMessage {
                client_id: None,
                ..message.clone()
            }),
            ServerEvent::History {
                messages: vec![message],
                more: true,
            },
            ServerEvent::Typing {
                username: "bob".into(),
            },
            ServerEvent::UpdateUsers {
                usernames: vec!["a".into(), "b".into()],
            },
            ServerEvent::UserJoined {
                usernames: vec!["c".into()],
            },
            ServerEvent::UserLeft { usernames: vec![] },
            ServerEvent::Error {
                message: "nope".into(),
            },
        ];
        for event in events {
            let json = to_json(&event);
            assert_eq!(ServerEvent::from_json(&json).unwrap(), event, "{json}");
            assert_eq!(serde_json::from_str::<ServerEvent>(&json).unwrap(), event);
        }
        for bad in [
            r#"{"event":"send-message","username":"a","message":"b","ts":"t"}"#,
            r#"{"event":"history","messages":[]}"#,
            r#"{"event":"fly"}"#,
            r#"{"usernames":[]}"#,
            "[]",
        ] {
            assert!(ServerEvent::from_json(bad).is_err(), "{bad}");
            assert!(serde_json::from_str::<ServerEvent>(bad).is_err(), "{bad}");
        }
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
    fn extra_fields_from_clients_are_ignored() {
        let event: ClientEvent =
            serde_json::from_str(r#"{"event":"send-message","message":"hi","client":"x"}"#)
                .unwrap();
        assert_eq!(
            event,
            ClientEvent::SendMessage {
                message: "hi".into(),
                client_id: None,
            }
        );
    }
}
