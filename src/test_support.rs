//! Builders shared by the unit tests of both halves.

use crate::protocol::ChatMessage;

/// A message by "a" whose text is `m<id>`.
pub fn message(id: u64) -> ChatMessage {
    ChatMessage {
        username: "a".into(),
        message: format!("m{id}"),
        id,
        ts: String::new(),
        client_id: None,
    }
}
