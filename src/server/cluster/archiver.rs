//! Moving every accepted message from Redis into PostgreSQL, exactly once.
//!
//! The publish script appends each message to one archive stream in the
//! same atomic step that gives it its id, so a message anyone was shown is
//! in the archive. Every process reads that stream as a consumer of one
//! group: Redis hands each entry to one of them. A consumer inserts a
//! batch (idempotently, by room and id), then acknowledges and deletes it.
//! If it dies in between, its entries stay pending; any survivor claims
//! entries idle for [`CLAIM_IDLE`] and inserts them again, which the
//! primary key makes harmless.

use std::{sync::Arc, time::Duration};

use redis::{
    AsyncCommands, RedisResult,
    aio::ConnectionManager,
    streams::{
        StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply,
    },
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::keys;
use crate::server::{
    metrics,
    storage::postgres::{Postgres, Row},
};

/// Entries per batch.
const BATCH: usize = 512;
/// How long to wait when the stream is empty.
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// Entries pending this long with a consumer that does not acknowledge
/// them are taken over.
const CLAIM_IDLE: Duration = Duration::from_secs(10);
/// How often to look for such entries.
const CLAIM_EVERY: Duration = Duration::from_secs(5);
/// The wait after a failure (Redis or PostgreSQL) before trying again.
const RETRY: Duration = Duration::from_millis(500);

pub(crate) struct Archiver {
    pub(crate) redis: ConnectionManager,
    pub(crate) postgres: Arc<Postgres>,
    pub(crate) proc_id: Arc<str>,
    pub(crate) stop: CancellationToken,
}

impl Archiver {
    /// Archives until `stop`, and then what is left in the stream (so a
    /// graceful shutdown leaves nothing behind that it could have written).
    pub(crate) async fn run(mut self) {
        let mut claimed_at = tokio::time::Instant::now();
        let mut failing = false;
        loop {
            let stopping = self.stop.is_cancelled();
            let result = if claimed_at.elapsed() >= CLAIM_EVERY {
                claimed_at = tokio::time::Instant::now();
                self.claim().await
            } else {
                self.read_new().await
            };
            match result {
                Ok(n) => {
                    if failing {
                        failing = false;
                        tracing::info!("archiving to PostgreSQL again");
                    }
                    if n == 0 {
                        if stopping {
                            return;
                        }
                        tokio::select! {
                            _ = self.stop.cancelled() => {}
                            _ = tokio::time::sleep(IDLE_WAIT) => {}
                        }
                    }
                }
                Err(err) => {
                    if !failing {
                        warn!(%err, "cannot archive to PostgreSQL right now; retrying");
                        failing = true;
                    }
                    if stopping {
                        return;
                    }
                    tokio::select! {
                        _ = self.stop.cancelled() => {}
                        _ = tokio::time::sleep(RETRY) => {}
                    }
                }
            }
        }
    }

    /// Creates the group if it is missing (from the stream's start, so
    /// nothing accepted before any archiver ran is skipped).
    pub(crate) async fn ensure_group(redis: &mut ConnectionManager) -> RedisResult<()> {
        let created: RedisResult<()> = redis
            .xgroup_create_mkstream(keys::ARCHIVE, keys::ARCHIVERS, "0")
            .await;
        match created {
            Err(err) if err.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    async fn read_new(&mut self) -> Result<usize, super::ClusterError> {
        let options = StreamReadOptions::default()
            .group(keys::ARCHIVERS, &*self.proc_id)
            .count(BATCH);
        let reply: RedisResult<StreamReadReply> = self
            .redis
            .xread_options(&[keys::ARCHIVE], &[">"], &options)
            .await;
        let reply = match reply {
            Ok(reply) => reply,
            // The group vanished with the stream (Redis came back empty).
            Err(err) if err.code() == Some("NOGROUP") => {
                Self::ensure_group(&mut self.redis).await?;
                return Ok(0);
            }
            Err(err) => return Err(err.into()),
        };
        let entries: Vec<StreamId> = reply.keys.into_iter().flat_map(|k| k.ids).collect();
        self.archive(entries).await
    }

    async fn claim(&mut self) -> Result<usize, super::ClusterError> {
        let reply: StreamAutoClaimReply = self
            .redis
            .xautoclaim_options(
                keys::ARCHIVE,
                keys::ARCHIVERS,
                &*self.proc_id,
                CLAIM_IDLE.as_millis() as u64,
                "0-0",
                StreamAutoClaimOptions::default().count(BATCH),
            )
            .await?;
        if !reply.claimed.is_empty() {
            debug!(entries = reply.claimed.len(), "took over archive entries");
        }
        let backlog: u64 = self.redis.xlen(keys::ARCHIVE).await?;
        metrics::archive_backlog(backlog);
        self.archive(reply.claimed).await
    }

    async fn archive(&mut self, entries: Vec<StreamId>) -> Result<usize, super::ClusterError> {
        if entries.is_empty() {
            return Ok(0);
        }
        let rows: Vec<Row> = entries.iter().filter_map(row).collect();
        self.postgres.insert(&rows).await?;
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        let _: () = redis::pipe()
            .xack(keys::ARCHIVE, keys::ARCHIVERS, &ids)
            .ignore()
            .xdel(keys::ARCHIVE, &ids)
            .ignore()
            .query_async(&mut self.redis)
            .await?;
        Ok(entries.len())
    }
}

fn row(entry: &StreamId) -> Option<Row> {
    let client_id: String = entry.get("c").unwrap_or_default();
    Some(Row {
        room: entry.get("r")?,
        id: entry.get("i")?,
        username: entry.get("u")?,
        message: entry.get("m")?,
        client_id: (!client_id.is_empty()).then_some(client_id),
        ts: entry.get("t")?,
    })
}
