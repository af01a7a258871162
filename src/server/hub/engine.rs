//! What orders and keeps the messages: the part of the hub that differs
//! between one process and many.
//!
//! Everything above the hub (the WebSocket handler, connections) and
//! everything below it that is per process (the rooms and their rings) is
//! the same in every mode. What is not: who assigns a message its id, where
//! it is kept, and where history is read from. Each mode is one variant
//! here, with the same operations, so a second mode is one more variant and
//! one more arm per operation, and nothing outside this file changes.
//!
//! An enum rather than a trait object: the operations are async, the set of
//! modes is closed, and a `match` costs nothing on the message path.

use std::sync::Arc;

use crate::server::storage::{Append, StoreError, Stored, embedded::Embedded};

/// The mode this process runs in. See the module docs.
pub(crate) enum Engine {
    /// One process, one SQLite file (or nothing kept): the default.
    Embedded(Embedded),
}

impl Engine {
    /// Queues a message to be given an id, kept, and delivered to its room
    /// on every process. Waits while the engine is behind.
    pub(crate) async fn append(&self, append: Append) -> Result<(), StoreError> {
        match self {
            Engine::Embedded(embedded) => embedded.append(append).await,
        }
    }

    /// The newest `limit` messages of `room` before `before` (or the newest
    /// of all), oldest first.
    pub(crate) async fn before(
        &self,
        room: &Arc<str>,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        match self {
            Engine::Embedded(embedded) => embedded.before(room, before, limit).await,
        }
    }

    /// The oldest `limit` messages of `room` after `since`, oldest first.
    pub(crate) async fn after(
        &self,
        room: &Arc<str>,
        since: u64,
        limit: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        match self {
            Engine::Embedded(embedded) => embedded.after(room, since, limit).await,
        }
    }

    /// Rooms by latest message, newest first: `(room, last id, ts ms)`.
    pub(crate) async fn recent_rooms(
        &self,
        limit: usize,
    ) -> Result<Vec<(String, u64, i64)>, StoreError> {
        match self {
            Engine::Embedded(embedded) => embedded.rooms(limit).await,
        }
    }

    /// Keeps and delivers everything queued, then takes nothing more.
    pub(crate) async fn close(&self) {
        match self {
            Engine::Embedded(embedded) => embedded.close().await,
        }
    }
}
