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
//!   channel, a join once the user has entered here with its page (so a
//!   greeting from anywhere reaches it live). Each process heartbeats; the users of one that stops are
//!   removed by whichever process notices first ([`keys::reap`]).
//!
//! The modules: [`keys`] (every key, channel and script), [`template`]
//! (the frame around its id), [`subscriber`] (the pub/sub connection),
//! [`archiver`] (the archive stream into PostgreSQL), [`history`] (pages
//! and resumes), [`presence`] (names and heartbeats), [`seeder`] (where
//! ids continue when Redis has no counters). This file holds the engine
//! itself: connecting, accepting a message, subscribing, shutting down.

mod archiver;
mod history;
mod keys;
mod presence;
mod seeder;
mod subscriber;
mod template;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use redis::{AsyncCommands, aio::ConnectionManager};
use tokio::sync::{mpsc, oneshot};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{info, warn};

pub(crate) use presence::Seat;
use seeder::Seeder;
use template::message_template;

use crate::server::{
    chat::room::Room,
    metrics,
    storage::{Append, StoreError, format_ts, now_ms, postgres::Postgres},
};

/// How often each process says it is alive.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);
/// A process silent this long is taken for dead, and its users removed.
const HEARTBEAT_EXPIRY: Duration = Duration::from_secs(10);
/// The longest a joiner waits for its room's subscription.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);
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

/// The cluster engine of one process. See the module docs.
pub(crate) struct Cluster {
    proc_id: Arc<str>,
    redis: ConnectionManager,
    postgres: Arc<Postgres>,
    subscriber: mpsc::UnboundedSender<subscriber::Command>,
    seats: AtomicU64,
    held: presence::Shared,
    healthy: Arc<AtomicBool>,
    publish: redis::Script,
    claim: redis::Script,
    announce: redis::Script,
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
            held: Default::default(),
            healthy,
            publish: keys::publish(),
            claim: keys::claim(),
            announce: keys::announce(),
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

    /// Gives the message its id and publishes it. `Ok` means accepted:
    /// in Redis (and, with AOF `always`, on its disk), in the archive, and
    /// on its way to every process.
    ///
    /// `seen`: the newest id this process has delivered in the room. The
    /// new id is above it even if Redis lost its counters, so an id a
    /// client has seen is never given to another message.
    pub(crate) async fn append(&self, append: Append, seen: u64) -> Result<(), StoreError> {
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
                .arg(seen)
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
        // While the subscription is being rebuilt the command waits; a
        // joiner is told to try again rather than kept waiting.
        match tokio::time::timeout(SUBSCRIBE_TIMEOUT, answer).await {
            Ok(Ok(Ok(()))) => Ok(()),
            _ => Err(StoreError::Unavailable),
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

fn unavailable(err: redis::RedisError) -> StoreError {
    tracing::debug!(%err, "Redis command failed");
    StoreError::Unavailable
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
