//! Storage: where messages are kept, and the order they are kept in.
//!
//! - [`embedded`]: the embedded default's engine: one storage thread that
//!   group-commits to SQLite and only then hands each message to its room.
//! - [`sqlite`]: the SQLite file: schema migrations, inserts, queries.
//! - [`checkpoint`]: the SQLite WAL copied back into the file on a thread
//!   of its own, never inside a commit.
//! - [`postgres`]: cluster mode's durable history.
//! - [`import`]: copying the SQLite history into PostgreSQL.
//!
//! This module holds what they share: a message on its way in
//! ([`Append`]), one read back ([`Stored`]), and what can go wrong.

mod checkpoint;
pub(crate) mod embedded;
pub(crate) mod import;
pub(crate) mod postgres;
pub(crate) mod sqlite;

use std::{path::PathBuf, sync::Arc};

use time::{OffsetDateTime, format_description::FormatItem, macros::format_description};
use tokio::sync::mpsc;

use super::chat::frame::Reply;
use crate::protocol::ChatMessage;

/// RFC 3339 in UTC with milliseconds: precise enough to order by eye, short
/// enough to cost little on every message.
const TIMESTAMP: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// A message on its way to storage and then to its room.
pub(crate) struct Append {
    pub(crate) room: Arc<str>,
    pub(crate) username: Arc<str>,
    pub(crate) message: String,
    pub(crate) client_id: Option<String>,
    /// The sender's own queue, told if its message could not be stored.
    pub(crate) reply: mpsc::Sender<Reply>,
}

/// A message as read back from storage.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub(crate) id: u64,
    pub(crate) username: String,
    pub(crate) message: String,
    pub(crate) client_id: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub(crate) ts: i64,
}

impl Stored {
    pub(crate) fn into_message(self) -> ChatMessage {
        ChatMessage {
            username: self.username,
            message: self.message,
            id: self.id,
            ts: format_ts(self.ts),
            client_id: self.client_id,
        }
    }
}

/// What can go wrong with storage. Each says which file, because at start
/// it is all the user sees before the server exits.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("cannot open the message database {path}: {source}")]
    Open {
        path: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("message database {path}: {source}")]
    Query {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("PostgreSQL: {0}")]
    Postgres(Box<dyn std::error::Error + Send + Sync>),
    /// Cluster mode, Redis unreachable: nothing can be given an id.
    #[error("Delivery is paused: the message service is unreachable")]
    Unavailable,
    #[error("cannot start the storage thread: {0}")]
    Thread(std::io::Error),
    #[error("storage has stopped")]
    Closed,
}

pub(crate) fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Milliseconds since the epoch as the wire's RFC 3339 timestamp.
pub(crate) fn format_ts(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(TIMESTAMP).ok())
        .unwrap_or_default()
}
