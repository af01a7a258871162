//! Reading history in cluster mode: a room's recent messages from its log
//! stream in Redis, anything older from PostgreSQL.

use redis::{AsyncCommands, streams::StreamRangeReply};

use super::{Cluster, keys, unavailable};
use crate::{
    protocol::{ChatMessage, ServerEvent},
    server::storage::{StoreError, Stored},
};

impl Cluster {
    /// The newest `limit` messages of `room` before `before`, oldest first:
    /// from the room's log, and from PostgreSQL past its start.
    pub(crate) async fn before(
        &self,
        room: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        let end = before.map_or_else(|| "+".to_string(), |b| format!("({b}-0"));
        let page: StreamRangeReply = self
            .redis
            .clone()
            .xrevrange_count(keys::log(room), end, "-", limit)
            .await
            .map_err(unavailable)?;
        let mut messages: Vec<ChatMessage> = page.ids.iter().rev().filter_map(logged).collect();
        let oldest = messages.first().map(|m| m.id).or(before);
        if messages.len() < limit && oldest.is_none_or(|id| id > 1) {
            let older = self
                .postgres
                .before(room, oldest, limit - messages.len())
                .await?;
            let mut all: Vec<ChatMessage> = older.into_iter().map(Stored::into_message).collect();
            all.append(&mut messages);
            messages = all;
        }
        Ok(messages)
    }

    /// The oldest `limit` messages of `room` after `since`, oldest first.
    pub(crate) async fn after(
        &self,
        room: &str,
        since: u64,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        let page: StreamRangeReply = self
            .redis
            .clone()
            .xrange_count(keys::log(room), format!("({since}-0"), "+", limit)
            .await
            .map_err(unavailable)?;
        let logged: Vec<ChatMessage> = page.ids.iter().filter_map(logged).collect();
        // Nothing after `since` and the room's counter is not past it: the
        // client is up to date (the usual reconnect), and PostgreSQL need
        // not be asked, nor be up.
        if logged.is_empty() {
            let newest: Option<u64> = self
                .redis
                .clone()
                .get(keys::seq(room))
                .await
                .map_err(unavailable)?;
            if newest.unwrap_or(0) <= since {
                return Ok(logged);
            }
        }
        // The log starts after `since`: what lies between is older than
        // the log keeps, and is read from PostgreSQL.
        if logged.first().is_none_or(|m| m.id > since + 1) {
            let stored = self.postgres.after(room, since, limit).await?;
            if !stored.is_empty() {
                let mut messages: Vec<ChatMessage> =
                    stored.into_iter().map(Stored::into_message).collect();
                let newest = messages.last().map_or(since, |m| m.id);
                messages.extend(logged.into_iter().filter(|m| m.id > newest));
                messages.truncate(limit);
                return Ok(messages);
            }
        }
        Ok(logged)
    }

    /// Rooms by latest message, newest first: `(room, last id, ts ms)`.
    pub(crate) async fn recent_rooms(
        &self,
        limit: usize,
    ) -> Result<Vec<(String, u64, i64)>, StoreError> {
        self.postgres.rooms(limit).await
    }
}

/// A message from a room's log stream.
fn logged(entry: &redis::streams::StreamId) -> Option<ChatMessage> {
    let frame: String = entry.get("f")?;
    match ServerEvent::from_json(&frame) {
        Ok(ServerEvent::SendMessage(message)) => Some(message),
        _ => None,
    }
}
