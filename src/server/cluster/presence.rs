//! Presence in cluster mode: claiming and releasing names in Redis, and
//! the heartbeat that removes the users of a process that stopped.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, atomic::Ordering},
};

use redis::AsyncCommands;
use tracing::{info, warn};

use super::{Cluster, HEARTBEAT_EVERY, HEARTBEAT_EXPIRY, keys, seeder::Seeder, unavailable};
use crate::server::{
    chat::name_key::name_key,
    storage::{StoreError, now_ms},
};

/// The claims this process holds, by seat id: `(room, key, name)`. Kept so
/// they can be written again if Redis comes back empty.
pub(super) type Claims = Arc<Mutex<HashMap<String, (String, String, String)>>>;

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
        if claimed != 1 {
            return Ok(None);
        }
        if let Ok(mut claims) = self.claims.lock() {
            claims.insert(
                seat.id.clone(),
                (room.to_string(), seat.key.clone(), name.to_string()),
            );
        }
        Ok(Some(seat))
    }

    /// Gives a claimed name back (in the background: a leaving user waits
    /// for nothing).
    pub(crate) fn release(&self, room: &str, seat: Seat) {
        let mut redis = self.redis.clone();
        let release = self.release.clone();
        let room = room.to_string();
        let proc_id = Arc::clone(&self.proc_id);
        if let Ok(mut claims) = self.claims.lock() {
            claims.remove(&seat.id);
        }
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
        let claims = Arc::clone(&self.claims);
        async move {
            let mut ticks = tokio::time::interval(HEARTBEAT_EVERY);
            let mut failing = false;
            let mut epoch: Option<String> = None;
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
                // Redis came back empty (its epoch changed): this process's
                // users' names are written again, so no other process can
                // take them while they are here.
                let beat = match beat {
                    Ok(()) => reclaim_after_reset(&mut redis, &proc_id, &claims, &mut epoch)
                        .await
                        .map_err(|e| e.to_string()),
                    err => err,
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

/// Writes every claim of this process again if the epoch is not the one
/// last seen (Redis lost its data). Only where nobody holds the name now.
async fn reclaim_after_reset(
    redis: &mut redis::aio::ConnectionManager,
    proc_id: &str,
    claims: &Claims,
    epoch: &mut Option<String>,
) -> redis::RedisResult<()> {
    let now: Option<String> = redis.get(keys::EPOCH).await?;
    let reset = epoch.is_some() && *epoch != now;
    *epoch = now;
    if !reset {
        return Ok(());
    }
    let held: Vec<(String, (String, String, String))> = match claims.lock() {
        Ok(claims) => claims.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Err(_) => return Ok(()),
    };
    let mut pipe = redis::pipe();
    for (seat, (room, key, name)) in &held {
        pipe.hset_nx(keys::users(room), key, format!("{seat}\n{name}"))
            .ignore()
            .sadd(keys::seats(proc_id), format!("{room}\t{key}"))
            .ignore();
    }
    let _: () = pipe.query_async(redis).await?;
    warn!(
        names = held.len(),
        "Redis came back empty: this process's users' names are claimed again"
    );
    Ok(())
}
