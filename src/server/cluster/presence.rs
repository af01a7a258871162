//! Presence in cluster mode: claiming and releasing names in Redis, and
//! the heartbeat that removes the users of a process that stopped.

use std::sync::{Arc, atomic::Ordering};

use redis::AsyncCommands;
use tracing::{info, warn};

use super::{Cluster, HEARTBEAT_EVERY, HEARTBEAT_EXPIRY, keys, seeder::Seeder, unavailable};
use crate::server::{
    chat::name_key::name_key,
    storage::{StoreError, now_ms},
};

/// A user's claim on a name in a room, as held in Redis.
#[derive(Debug, Clone)]
pub(crate) struct Seat {
    key: String,
    /// `PROC:N`: which process, and which of its claims, so a late release
    /// cannot free a later claim of the same name.
    id: String,
}

impl Cluster {
    /// Claims `name` in `room` for this process. `Ok(None)`: someone on
    /// some process holds it.
    pub(crate) async fn claim(&self, room: &str, name: &str) -> Result<Option<Seat>, StoreError> {
        let n = self.seats.fetch_add(1, Ordering::Relaxed);
        let seat = Seat {
            key: name_key(name),
            id: format!("{}:{n}", self.proc_id),
        };
        let claimed: i64 = self
            .claim
            .key(keys::users(room))
            .key(keys::seats(&self.proc_id))
            .key(keys::PROCS)
            .arg(&seat.key)
            .arg(&seat.id)
            .arg(name)
            .arg(room)
            .arg(keys::channel(room))
            .arg(&*self.proc_id)
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(unavailable)?;
        Ok((claimed == 1).then_some(seat))
    }

    /// Gives a claimed name back (in the background: a leaving user waits
    /// for nothing).
    pub(crate) fn release(&self, room: &str, seat: Seat) {
        let mut redis = self.redis.clone();
        let release = self.release.clone();
        let room = room.to_string();
        let proc_id = Arc::clone(&self.proc_id);
        self.tasks.spawn(async move {
            let released: redis::RedisResult<i64> = release
                .key(keys::users(&room))
                .key(keys::seats(&proc_id))
                .arg(&seat.key)
                .arg(&seat.id)
                .arg(&room)
                .arg(keys::channel(&room))
                .arg(&*proc_id)
                .invoke_async(&mut redis)
                .await;
            if let Err(err) = released {
                // The heartbeat's reaper frees it if this process dies;
                // otherwise the next claim of this name by this process
                // replaces it.
                warn!(%err, room, "cannot release a name in Redis");
            }
        });
    }

    /// Heartbeats, and removes the users of processes that stopped.
    pub(super) fn heartbeat(&self, seeder: Seeder) -> impl Future<Output = ()> + Send + 'static {
        let mut redis = self.redis.clone();
        let proc_id = Arc::clone(&self.proc_id);
        let reap = self.reap.clone();
        let stop = self.stop.clone();
        async move {
            let mut ticks = tokio::time::interval(HEARTBEAT_EVERY);
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                let now = now_ms();
                let beat: redis::RedisResult<()> = async {
                    let _: () = redis.zadd(keys::PROCS, &*proc_id, now).await?;
                    let cutoff = now - HEARTBEAT_EXPIRY.as_millis() as i64;
                    let left: u64 = reap
                        .key(keys::PROCS)
                        .arg(cutoff)
                        .arg("")
                        .invoke_async(&mut redis)
                        .await?;
                    if left > 0 {
                        info!(users = left, "removed the users of a stopped process");
                    }
                    Ok(())
                }
                .await;
                let beat = match beat {
                    Ok(()) => seeder.seed_if_empty().await.map_err(|e| e.to_string()),
                    Err(err) => Err(err.to_string()),
                };
                match beat {
                    Ok(()) if failing => {
                        failing = false;
                        info!("Redis heartbeat back");
                    }
                    Ok(()) => {}
                    Err(err) if !failing => {
                        failing = true;
                        warn!(%err, "Redis heartbeat failed");
                    }
                    Err(_) => {}
                }
            }
        }
    }
}
