//! Where ids continue when Redis has no counters.

use std::sync::Arc;

use redis::{AsyncCommands, aio::ConnectionManager};
use tracing::warn;

use super::{ClusterError, archiver, keys};
use crate::server::storage::{now_ms, postgres::Postgres};

/// Seeds Redis's counters from PostgreSQL when Redis has none (first
/// start, or a Redis that came back empty), so ids always continue above
/// every stored one.
pub(super) struct Seeder {
    pub(super) redis: ConnectionManager,
    pub(super) postgres: Arc<Postgres>,
}

impl Seeder {
    pub(super) async fn seed_if_empty(&self) -> Result<(), ClusterError> {
        let mut redis = self.redis.clone();
        let present: bool = redis.exists(keys::EPOCH).await?;
        if present {
            return Ok(());
        }
        let highest = self.postgres.highest_ids().await?;
        let mut pipe = redis::pipe();
        for (room, id) in &highest {
            // NX: never move a live counter back.
            pipe.set_nx(keys::seq(room), id).ignore();
        }
        pipe.set_nx(keys::EPOCH, now_ms()).ignore();
        let _: () = pipe.query_async(&mut redis).await?;
        archiver::Archiver::ensure_group(&mut redis).await?;
        if !highest.is_empty() {
            warn!(
                rooms = highest.len(),
                "Redis had no message counters: continuing each room's ids above PostgreSQL's"
            );
        }
        Ok(())
    }
}
