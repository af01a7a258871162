//! Cluster mode: several Banter processes serving one chat through Redis
//! (the live path) and PostgreSQL (the durable history).
//!
//! Each process keeps its own rooms and sockets exactly as in the embedded
//! default (`chat/`); what changes is who orders and keeps the messages:
//!
//! - **Ids** come from one Redis script ([`keys::publish`]) that, in one
//!   atomic step, takes the room's next id, appends the message to the
//!   room's bounded log stream and to the archive stream, and publishes it
//!   on the room's channel. One order, on every screen, with no gaps.
//! - **Fan-out**: each process subscribes to the channels of the rooms it
//!   has members in ([`subscriber`]), fills any gap from the log, and hands
//!   each message to its room, which serialised nothing: the frame was
//!   built once, by the process that accepted the message.
//! - **History**: joins and resumes read the room's log; what is older
//!   comes from PostgreSQL, which [`archiver`]s fill from the archive
//!   stream, exactly once per message.
//! - **Presence** is global: a name is claimed in the room's user hash in
//!   Redis ([`keys::claim`]) before the user enters, so it is refused on
//!   every process while one holds it; joins and leaves travel the room's
//!   channel. Each process heartbeats; the users of one that stops are
//!   removed by whichever process notices first ([`keys::reap`]).

mod archiver;
mod keys;
mod subscriber;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use redis::{AsyncCommands, aio::ConnectionManager, streams::StreamRangeReply};
use tokio::sync::{mpsc, oneshot};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{info, warn};

use crate::{
    protocol::{ChatMessage, ServerEvent},
    server::{
        chat::{
            frame::{Frame, encode},
            name_key::name_key,
            room::Room,
        },
        metrics,
        storage::{Append, StoreError, Stored, format_ts, now_ms, postgres::Postgres},
    },
};

/// How often each process says it is alive.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);
/// A process silent this long is taken for dead, and its users removed.
const HEARTBEAT_EXPIRY: Duration = Duration::from_secs(10);
/// The longest each step of a shutdown may take.
const CLOSE_STEP: Duration = Duration::from_secs(1);
/// The longest one Redis command may take before it counts as failed.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// What can go wrong in cluster mode.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClusterError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Redis subscription lost: {0}")]
    Lost(String),
}

/// A user's claim on a name in a room, as held in Redis.
#[derive(Debug, Clone)]
pub(crate) struct Seat {
    key: String,
    /// `PROC:N`: which process, and which of its claims, so a late release
    /// cannot free a later claim of the same name.
    id: String,
}

/// The cluster engine of one process. See the module docs.
pub(crate) struct Cluster {
    proc_id: Arc<str>,
    redis: ConnectionManager,
    postgres: Arc<Postgres>,
    subscriber: mpsc::UnboundedSender<subscriber::Command>,
    seats: AtomicU64,
    healthy: Arc<AtomicBool>,
    publish: redis::Script,
    claim: redis::Script,
    release: redis::Script,
    reap: redis::Script,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Cluster {
    /// Connects to both, migrates PostgreSQL, and starts the subscriber,
    /// the archiver and the heartbeat. Fails if either cannot be reached
    /// at start: a cluster process that cannot serve should say so at once.
    pub(crate) async fn connect(
        redis_url: &str,
        database_url: &str,
    ) -> Result<Cluster, ClusterError> {
        let client = redis::Client::open(redis_url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_max_delay(Duration::from_secs(1))
            // A command while Redis is down fails within seconds (and the
            // next one tries again), so a sender hears "paused" promptly.
            .set_number_of_retries(2);
        let mut redis = ConnectionManager::new_with_config(client.clone(), config).await?;
        let postgres = Arc::new(Postgres::open(database_url).await?);
        let proc_id: Arc<str> = Arc::from(format!("{:016x}", rand_u64()));
        let healthy = Arc::new(AtomicBool::new(false));
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();

        archiver::Archiver::ensure_group(&mut redis).await?;
        let cluster_seed = Seeder {
            redis: redis.clone(),
            postgres: Arc::clone(&postgres),
        };
        cluster_seed.seed_if_empty().await?;
        let _: () = redis.zadd(keys::PROCS, &*proc_id, now_ms()).await?;

        let (commands, queue) = mpsc::unbounded_channel();
        tasks.spawn(
            subscriber::Subscriber {
                client,
                redis: redis.clone(),
                proc_id: Arc::clone(&proc_id),
                commands: queue,
                healthy: Arc::clone(&healthy),
                stop: stop.clone(),
            }
            .run(),
        );
        tasks.spawn(
            archiver::Archiver {
                redis: redis.clone(),
                postgres: Arc::clone(&postgres),
                proc_id: Arc::clone(&proc_id),
                stop: stop.clone(),
            }
            .run(),
        );
        let cluster = Cluster {
            proc_id,
            redis,
            postgres,
            subscriber: commands,
            seats: AtomicU64::new(0),
            healthy,
            publish: keys::publish(),
            claim: keys::claim(),
            release: keys::release(),
            reap: keys::reap(),
            stop,
            tasks,
        };
        cluster.tasks.spawn(cluster.heartbeat(cluster_seed));
        // Serve once the subscription is up: until then this process's
        // probe channel is empty, and its users' names would look free.
        let up = tokio::time::timeout(Duration::from_secs(5), async {
            while !cluster.healthy() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        if up.is_err() {
            warn!("the Redis subscription is not up yet; serving anyway");
        }
        info!(proc = %cluster.proc_id, "cluster mode: Redis and PostgreSQL connected");
        Ok(cluster)
    }

    /// Whether the live path through Redis works right now.
    pub(crate) fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Heartbeats, and removes the users of processes that stopped.
    fn heartbeat(&self, seeder: Seeder) -> impl Future<Output = ()> + Send + 'static {
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

    /// Gives the message its id and publishes it. `Ok` means accepted:
    /// in Redis (and, with AOF `always`, on its disk), in the archive, and
    /// on its way to every process.
    pub(crate) async fn append(&self, append: Append) -> Result<(), StoreError> {
        let Append {
            room,
            username,
            message,
            client_id,
            ..
        } = append;
        let ts = now_ms();
        let (head, tail) = message_template(&username, &message, &format_ts(ts), &client_id);
        let client_key = client_id
            .as_deref()
            .map(|id| keys::client_id(&room, &username, id))
            .unwrap_or_default();
        let mut redis = self.redis.clone();
        for _ in 0..2 {
            let started = std::time::Instant::now();
            let (status, _id): (i64, u64) = self
                .publish
                .key(keys::EPOCH)
                .key(keys::seq(&room))
                .key(keys::log(&room))
                .key(keys::ARCHIVE)
                .key(&client_key)
                .arg(keys::channel(&room))
                .arg(&head)
                .arg(&tail)
                .arg(keys::LOG_LEN)
                .arg(&*room)
                .arg(&*username)
                .arg(&message)
                .arg(client_id.as_deref().unwrap_or(""))
                .arg(ts)
                .invoke_async(&mut redis)
                .await
                .map_err(unavailable)?;
            metrics::redis_publish(started.elapsed());
            if status > 0 {
                metrics::accepted();
            }
            if status >= 0 {
                return Ok(());
            }
            // Redis came back empty: ids continue above PostgreSQL's.
            Seeder {
                redis: redis.clone(),
                postgres: Arc::clone(&self.postgres),
            }
            .seed_if_empty()
            .await
            .map_err(|err| {
                warn!(%err, "cannot seed Redis's counters from PostgreSQL");
                StoreError::Unavailable
            })?;
        }
        Err(StoreError::Unavailable)
    }

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

    /// Starts delivering `room`'s events here; its users elsewhere are in
    /// its list when this returns.
    pub(crate) async fn subscribe(&self, room: &Arc<Room>) -> Result<(), StoreError> {
        let (done, answer) = oneshot::channel();
        self.subscriber
            .send(subscriber::Command::Subscribe {
                room: Arc::clone(room),
                done,
            })
            .map_err(|_| StoreError::Closed)?;
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(StoreError::Unavailable),
        }
    }

    /// `room` has no members on this process any more.
    pub(crate) fn unsubscribe(&self, room: &Arc<Room>) {
        let _ = self.subscriber.send(subscriber::Command::Unsubscribe {
            room: Arc::clone(room),
        });
    }

    /// Tells the room on every process that `name` is typing.
    pub(crate) async fn typing(&self, room: &str, name: &str) {
        let sent: redis::RedisResult<()> = self
            .redis
            .clone()
            .publish(keys::channel(room), format!("t{name}"))
            .await;
        if let Err(err) = sent {
            tracing::debug!(%err, "typing not sent");
        }
    }

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

    /// Graceful shutdown: this process's users leave every list at once,
    /// what is waiting in the archive is written, and the tasks stop.
    ///
    /// Each step has a deadline of its own ([`CLOSE_STEP`]), so a Redis or
    /// PostgreSQL that is gone cannot eat the whole shutdown: the sockets'
    /// goodbyes come after this.
    pub(crate) async fn close(&self) {
        let mut redis = self.redis.clone();
        let removed = tokio::time::timeout(
            CLOSE_STEP,
            self.reap
                .key(keys::PROCS)
                .arg(0)
                .arg(&*self.proc_id)
                .invoke_async::<u64>(&mut redis),
        )
        .await;
        if !matches!(removed, Ok(Ok(_))) {
            warn!("cannot remove this process's users from Redis; they expire within 12 s");
        }
        self.stop.cancel();
        self.tasks.close();
        if tokio::time::timeout(CLOSE_STEP, self.tasks.wait())
            .await
            .is_err()
        {
            warn!("the cluster's tasks did not finish in time");
        }
    }
}

/// Seeds Redis's counters from PostgreSQL when Redis has none (first
/// start, or a Redis that came back empty), so ids always continue above
/// every stored one.
struct Seeder {
    redis: ConnectionManager,
    postgres: Arc<Postgres>,
}

impl Seeder {
    async fn seed_if_empty(&self) -> Result<(), ClusterError> {
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

fn unavailable(err: redis::RedisError) -> StoreError {
    tracing::debug!(%err, "Redis command failed");
    StoreError::Unavailable
}

/// A message from a room's log stream.
fn logged(entry: &redis::streams::StreamId) -> Option<ChatMessage> {
    let frame: String = entry.get("f")?;
    match ServerEvent::from_json(&frame) {
        Ok(ServerEvent::SendMessage(message)) => Some(message),
        _ => None,
    }
}

/// The `send-message` frame around its id: everything before the id and
/// everything after, so the publish script can put the id it assigns in
/// between without anyone serialising the message again.
fn message_template(
    username: &str,
    message: &str,
    ts: &str,
    client_id: &Option<String>,
) -> (String, String) {
    let frame: Frame = encode(&ServerEvent::SendMessage(ChatMessage {
        username: username.to_string(),
        message: message.to_string(),
        id: 0,
        ts: ts.to_string(),
        client_id: client_id.clone(),
    }));
    // Every `"` inside a JSON string is escaped, so this key sequence can
    // only be the structural one.
    const ID_AT: &str = "\"id\":0,";
    match frame.as_str().find(ID_AT) {
        Some(at) => {
            let head = &frame.as_str()[..at + "\"id\":".len()];
            let tail = &frame.as_str()[at + ID_AT.len() - 1..];
            (head.to_string(), tail.to_string())
        }
        None => {
            tracing::error!("a send-message frame without an id field");
            (frame.to_string(), String::new())
        }
    }
}

/// A process id: random enough that two processes never share one.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_around_the_id_is_the_frame_serde_writes() {
        for (message, client_id) in [
            ("hello", None),
            (r#"tricky "id":0, and \ quotes"#, Some("c-1".to_string())),
            ("ünïcödé 😀", Some(r#""id":0,"#.to_string())),
        ] {
            let (head, tail) =
                message_template("al\"ice", message, "2026-12-01T00:00:00.000Z", &client_id);
            let expected = encode(&ServerEvent::SendMessage(ChatMessage {
                username: "al\"ice".into(),
                message: message.into(),
                id: 4711,
                ts: "2026-12-01T00:00:00.000Z".into(),
                client_id,
            }));
            assert_eq!(format!("{head}4711{tail}"), expected.as_str());
        }
    }
}
