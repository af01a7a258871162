//! Presence in cluster mode: claiming and releasing names in Redis, and
//! the heartbeat that removes the users of a process that stopped.
//!
//! The process keeps what it holds in Redis in memory too ([`Held`]):
//! - its claims, so they can be written again when Redis has lost them
//!   (it came back empty, or this process was taken for dead and reaped
//!   while it was only cut off);
//! - its releases that have not reached Redis yet, so a name given back
//!   and taken again at once (a page reload) is not refused by its own
//!   stale seat, and a release that failed is tried again.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, atomic::Ordering},
};

use redis::{AsyncCommands, aio::ConnectionManager};
use tracing::{info, warn};

use super::{Cluster, HEARTBEAT_EVERY, HEARTBEAT_EXPIRY, keys, seeder::Seeder, unavailable};
use crate::server::{
    chat::name_key::name_key,
    storage::{StoreError, now_ms},
};

/// What this process holds in Redis. See the module docs.
#[derive(Default)]
pub(super) struct Held {
    /// Seat id → (room, name key, name).
    claims: HashMap<String, (String, String, String)>,
    /// (room, name key) → the seat given back, until Redis has it.
    releasing: HashMap<(String, String), String>,
}

pub(super) type Shared = Arc<Mutex<Held>>;

fn held(shared: &Shared) -> std::sync::MutexGuard<'_, Held> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

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
        let mut claimed = self.try_claim(room, name, &seat).await?;
        if claimed == 2 {
            // Held on another process that may have just died: see
            // `keys::CLAIM_RECHECK`.
            tokio::time::sleep(keys::CLAIM_RECHECK).await;
            claimed = self.try_claim(room, name, &seat).await?;
        }
        if claimed != 1 {
            return Ok(None);
        }
        let mut held = held(&self.held);
        held.releasing.remove(&(room.to_string(), seat.key.clone()));
        held.claims.insert(
            seat.id.clone(),
            (room.to_string(), seat.key.clone(), name.to_string()),
        );
        Ok(Some(seat))
    }

    /// Tells every other process that `name` has joined `room` on `seat`:
    /// sent once the joiner has entered here, so whoever sees it listed and
    /// greets it reaches it live (its page was taken as it entered), never
    /// only inside that page. `Ok(false)`: the seat was freed meanwhile
    /// (see [`keys::announce`]) and nothing was published.
    pub(crate) async fn announce(
        &self,
        room: &str,
        name: &str,
        seat: &Seat,
    ) -> Result<bool, StoreError> {
        let announced: i64 = self
            .announce
            .key(keys::users(room))
            .arg(&seat.key)
            .arg(&seat.id)
            .arg(name)
            .arg(keys::channel(room))
            .arg(&*self.proc_id)
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(unavailable)?;
        Ok(announced == 1)
    }

    /// One run of the claim script (see [`keys::claim`]): 1 claimed, 0
    /// held here, 2 held on another process that looks alive. Which of
    /// this process's seats is being released is read afresh each time.
    async fn try_claim(&self, room: &str, name: &str, seat: &Seat) -> Result<i64, StoreError> {
        let released = held(&self.held)
            .releasing
            .get(&(room.to_string(), seat.key.clone()))
            .cloned()
            .unwrap_or_default();
        self.claim
            .key(keys::users(room))
            .key(keys::seats(&self.proc_id))
            .key(keys::PROCS)
            .arg(&seat.key)
            .arg(&seat.id)
            .arg(name)
            .arg(room)
            .arg(keys::channel(room))
            .arg(&*self.proc_id)
            .arg(&released)
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(unavailable)
    }

    /// Gives a claimed name back (in the background: a leaving user waits
    /// for nothing; a release that fails is tried again by the heartbeat).
    pub(crate) fn release(&self, room: &str, seat: Seat) {
        {
            let mut held = held(&self.held);
            held.claims.remove(&seat.id);
            held.releasing
                .insert((room.to_string(), seat.key.clone()), seat.id.clone());
        }
        let mut redis = self.redis.clone();
        let release = self.release.clone();
        let shared = Arc::clone(&self.held);
        let proc_id = Arc::clone(&self.proc_id);
        let room = room.to_string();
        self.tasks.spawn(async move {
            if let Err(err) = release_one(&mut redis, &release, &proc_id, &room, &seat).await {
                warn!(%err, room, "cannot release a name in Redis; retrying with the heartbeat");
                return;
            }
            let mut held = held(&shared);
            if held.releasing.get(&(room.clone(), seat.key.clone())) == Some(&seat.id) {
                held.releasing.remove(&(room, seat.key));
            }
        });
    }

    /// Heartbeats, and removes the users of processes that stopped.
    pub(super) fn heartbeat(&self, seeder: Seeder) -> impl Future<Output = ()> + Send + 'static {
        let mut redis = self.redis.clone();
        let proc_id = Arc::clone(&self.proc_id);
        let reap = self.reap.clone();
        let release = self.release.clone();
        let stop = self.stop.clone();
        let shared = Arc::clone(&self.held);
        async move {
            let mut ticks = tokio::time::interval(HEARTBEAT_EVERY);
            let mut failing = false;
            let mut epoch: Option<String> = None;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                let beat = async {
                    let now = now_ms();
                    // 1: newly added. This process was in the set before, so
                    // it was taken for dead (cut off for longer than the
                    // expiry) and its users removed while it kept them.
                    let added: u64 = redis.zadd(keys::PROCS, &*proc_id, now).await?;
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
                    if let Err(err) = seeder.seed_if_empty().await {
                        warn!(%err, "cannot seed Redis's counters from PostgreSQL");
                    }
                    // Redis lost this process's claims (it came back empty:
                    // its epoch changed), or reaped them: write them again.
                    let now_epoch: Option<String> = redis.get(keys::EPOCH).await?;
                    let reset = epoch.is_some() && epoch != now_epoch;
                    epoch = now_epoch;
                    if reset || (added == 1 && !holds_nothing(&shared)) {
                        reclaim(&mut redis, &proc_id, &shared).await?;
                    }
                    retry_releases(&mut redis, &release, &proc_id, &shared).await;
                    Ok::<(), redis::RedisError>(())
                }
                .await;
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

/// Whether this process holds no claim (as right after start, when its
/// first heartbeat adds it too): then there is nothing to write again.
fn holds_nothing(shared: &Shared) -> bool {
    held(shared).claims.is_empty()
}

async fn release_one(
    redis: &mut ConnectionManager,
    release: &redis::Script,
    proc_id: &str,
    room: &str,
    seat: &Seat,
) -> redis::RedisResult<i64> {
    release
        .key(keys::users(room))
        .key(keys::seats(proc_id))
        .arg(&seat.key)
        .arg(&seat.id)
        .arg(room)
        .arg(keys::channel(room))
        .arg(proc_id)
        .invoke_async(redis)
        .await
}

/// Releases that did not reach Redis, tried again.
async fn retry_releases(
    redis: &mut ConnectionManager,
    release: &redis::Script,
    proc_id: &str,
    shared: &Shared,
) {
    let pending: Vec<((String, String), String)> = held(shared)
        .releasing
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for ((room, key), id) in pending {
        let seat = Seat {
            key: key.clone(),
            id: id.clone(),
        };
        if release_one(redis, release, proc_id, &room, &seat)
            .await
            .is_ok()
        {
            let mut held = held(shared);
            if held.releasing.get(&(room.clone(), key.clone())) == Some(&id) {
                held.releasing.remove(&(room, key));
            }
        }
    }
}

/// Writes every claim of this process again, where nobody holds the name
/// now, and announces each, so every process lists these users again.
async fn reclaim(
    redis: &mut ConnectionManager,
    proc_id: &str,
    shared: &Shared,
) -> redis::RedisResult<()> {
    let claims: Vec<(String, (String, String, String))> = held(shared)
        .claims
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut pipe = redis::pipe();
    for (seat, (room, key, name)) in &claims {
        pipe.hset_nx(keys::users(room), key, format!("{seat}\n{name}"))
            .ignore()
            .sadd(keys::seats(proc_id), format!("{room}\t{key}"))
            .ignore()
            .publish(keys::channel(room), format!("j{proc_id}\t{name}"))
            .ignore();
    }
    let _: () = pipe.query_async(redis).await?;
    warn!(
        names = claims.len(),
        "Redis had lost this process's users (it came back empty, or took this process for \
         dead): their names are claimed again"
    );
    Ok(())
}
