//! The process's one pub/sub connection: each room's live events, in id
//! order, into this process's rooms.
//!
//! The process subscribes to a room's channel while it has members there,
//! and only then: a message crosses Redis once per process that needs it,
//! never once per recipient, and is fanned out here by the room itself.
//!
//! **No holes.** Pub/sub is fire-and-forget: a message published while the
//! connection was being re-established is simply not delivered. So each
//! room remembers the last id it delivered; a message whose id is not the
//! next one is preceded by the missing ones, read from the room's log
//! stream, and one already delivered is dropped. The same catch-up runs for
//! every room after a reconnect. Clients therefore never see a gap or a
//! double, whatever the connection did.
//!
//! **Alive, end to end.** Pub/sub connections are known to go silent after
//! a failover while looking healthy. Every [`PROBE_EVERY`] the task
//! publishes a probe to itself through Redis; if it has not come back
//! within [`PROBE_TIMEOUT`], the connection is rebuilt.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use redis::{AsyncCommands, aio::ConnectionManager, streams::StreamRangeReply};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{ClusterError, keys};
use crate::{
    protocol::ServerEvent,
    server::{
        chat::{frame::Frame, room::Room},
        metrics,
    },
};

/// How often the subscription is checked end to end.
const PROBE_EVERY: Duration = Duration::from_secs(2);
/// How long a probe may take before the connection is rebuilt.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// The wait before connecting again after a failure (doubling, capped).
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// Messages read from a room's log per catch-up query.
const CATCH_UP_PAGE: usize = 1000;

pub(crate) enum Command {
    /// Start delivering `room`'s events; answered once subscribed, with
    /// the room's users from other processes seeded into it.
    Subscribe {
        room: Arc<Room>,
        done: oneshot::Sender<Result<(), ClusterError>>,
    },
    /// `room` has no members here any more.
    Unsubscribe { room: Arc<Room> },
}

/// One subscribed room.
struct Subscribed {
    room: Arc<Room>,
    /// The last message id delivered into it.
    last: u64,
}

pub(crate) struct Subscriber {
    pub(crate) client: redis::Client,
    pub(crate) redis: ConnectionManager,
    pub(crate) proc_id: Arc<str>,
    pub(crate) commands: mpsc::UnboundedReceiver<Command>,
    /// Whether the live path works right now (for `/healthz`).
    pub(crate) healthy: Arc<AtomicBool>,
    pub(crate) stop: CancellationToken,
}

impl Subscriber {
    /// Runs until `stop`: connects, serves, and on any failure connects
    /// again with backoff and catches every room up.
    pub(crate) async fn run(mut self) {
        let mut rooms: HashMap<String, Subscribed> = HashMap::new();
        let mut retry = RETRY_MIN;
        let stop = self.stop.clone();
        loop {
            let outcome = tokio::select! {
                _ = stop.cancelled() => return,
                outcome = self.serve(&mut rooms) => outcome,
            };
            let was_healthy = self.healthy.swap(false, Ordering::Relaxed);
            match outcome {
                Ok(()) => return,
                Err(err) if was_healthy => warn!(%err, "Redis subscription lost; reconnecting"),
                Err(err) => debug!(%err, "Redis subscription still down"),
            }
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(retry) => {}
            }
            retry = (retry * 2).min(RETRY_MAX);
        }
    }

    /// One connection's life. Returns `Ok` only when the commands channel
    /// closed (the hub is gone).
    async fn serve(&mut self, rooms: &mut HashMap<String, Subscribed>) -> Result<(), ClusterError> {
        let (mut sink, mut stream) = self.client.get_async_pubsub().await?.split();
        let probe = keys::probe(&self.proc_id);
        sink.subscribe(&probe).await?;
        // Everything subscribed before the connection was lost, again, and
        // whatever was missed meanwhile read from the logs.
        for (name, subscribed) in rooms.iter_mut() {
            sink.subscribe(keys::channel(name)).await?;
            self.seed(name, &subscribed.room).await?;
            self.catch_up(name, subscribed, None).await?;
        }
        if !self.healthy.swap(true, Ordering::Relaxed) {
            info!("Redis subscription up");
        }
        let mut probes = tokio::time::interval(PROBE_EVERY);
        probes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut probe_sent: Option<(u64, tokio::time::Instant)> = None;
        let mut probe_seq = 0u64;
        loop {
            tokio::select! {
                command = self.commands.recv() => {
                    let Some(command) = command else { return Ok(()) };
                    match command {
                        Command::Subscribe { room, done } => {
                            let result = self.subscribe(&mut sink, rooms, room).await;
                            let failed = result.as_ref().err().map(ToString::to_string);
                            let _ = done.send(result);
                            if let Some(err) = failed {
                                return Err(ClusterError::Lost(err));
                            }
                        }
                        Command::Unsubscribe { room } => {
                            let name = room.name().to_string();
                            if rooms.get(&name).is_some_and(|s| Arc::ptr_eq(&s.room, &room)) {
                                rooms.remove(&name);
                                sink.unsubscribe(keys::channel(&name)).await?;
                            }
                        }
                    }
                }
                message = stream.next() => {
                    let Some(message) = message else {
                        return Err(ClusterError::Lost("pub/sub connection closed".into()));
                    };
                    let channel = message.get_channel_name().to_string();
                    let payload: String = message.get_payload()?;
                    if channel == probe {
                        if let Some((sent, at)) = probe_sent
                            && payload == format!("p{}\t{sent}", self.proc_id)
                        {
                            metrics::probe(at.elapsed());
                            probe_sent = None;
                        }
                        continue;
                    }
                    if let Some(room) = keys::room_of(&channel)
                        && let Some(subscribed) = rooms.get_mut(room)
                    {
                        self.handle(room, subscribed, &payload).await?;
                    }
                }
                _ = probes.tick() => {
                    if let Some((_, at)) = probe_sent && at.elapsed() > PROBE_TIMEOUT {
                        return Err(ClusterError::Lost("the probe did not come back".into()));
                    }
                    if probe_sent.is_none() {
                        probe_seq += 1;
                        let payload = format!("p{}\t{probe_seq}", self.proc_id);
                        let _: () = self.redis.publish(&probe, payload).await?;
                        probe_sent = Some((probe_seq, tokio::time::Instant::now()));
                    }
                }
            }
        }
    }

    async fn subscribe(
        &mut self,
        sink: &mut redis::aio::PubSubSink,
        rooms: &mut HashMap<String, Subscribed>,
        room: Arc<Room>,
    ) -> Result<(), ClusterError> {
        let name = room.name().to_string();
        if let Some(subscribed) = rooms.get_mut(&name) {
            if !Arc::ptr_eq(&subscribed.room, &room) {
                // The room emptied and was made anew here: same channel,
                // same position, a fresh member list.
                subscribed.room = Arc::clone(&room);
                self.seed(&name, &room).await?;
            }
            return Ok(());
        }
        sink.subscribe(keys::channel(&name)).await?;
        // Subscribed first, then read: anything after `last` arrives on
        // the channel (and what is at most `last` is in the log, where the
        // joiner's page is read from).
        let last: Option<u64> = self.redis.get(keys::seq(&name)).await?;
        self.seed(&name, &room).await?;
        rooms.insert(
            name,
            Subscribed {
                room,
                last: last.unwrap_or(0),
            },
        );
        Ok(())
    }

    /// Puts the room's users on other processes into its list.
    async fn seed(&mut self, name: &str, room: &Room) -> Result<(), ClusterError> {
        let held: Vec<String> = self.redis.hvals(keys::users(name)).await?;
        let mine = format!("{}:", self.proc_id);
        let others = held
            .iter()
            .filter(|value| !value.starts_with(&mine))
            .filter_map(|value| {
                value
                    .split_once('\n')
                    .map(|(_, name)| Arc::<str>::from(name))
            })
            .collect();
        room.seed_remote(others);
        Ok(())
    }

    async fn handle(
        &mut self,
        name: &str,
        subscribed: &mut Subscribed,
        payload: &str,
    ) -> Result<(), ClusterError> {
        let mut chars = payload.chars();
        let Some(kind) = chars.next() else {
            return Ok(());
        };
        let rest = chars.as_str();
        match kind {
            'm' => {
                let Some((id, frame)) = rest.split_once(' ') else {
                    return Ok(());
                };
                let Ok(id) = id.parse::<u64>() else {
                    return Ok(());
                };
                if id <= subscribed.last {
                    return Ok(());
                }
                if id > subscribed.last + 1 {
                    self.catch_up(name, subscribed, Some(id)).await?;
                }
                deliver(subscribed, id, frame);
            }
            'j' | 'l' => {
                let Some((proc_id, user)) = rest.split_once('\t') else {
                    return Ok(());
                };
                // This process's own joins and leaves are in its rooms
                // already.
                if proc_id != &*self.proc_id {
                    let user = Arc::<str>::from(user);
                    if kind == 'j' {
                        subscribed.room.add_remote(&user);
                    } else {
                        subscribed.room.remove_remote(&user);
                    }
                }
            }
            't' => subscribed.room.typing(&Arc::from(rest)),
            _ => {}
        }
        Ok(())
    }

    /// Delivers what the room's log holds after `last` (and before
    /// `until`, when a newer message is waiting).
    async fn catch_up(
        &mut self,
        name: &str,
        subscribed: &mut Subscribed,
        until: Option<u64>,
    ) -> Result<(), ClusterError> {
        loop {
            let end = until.map_or_else(|| "+".to_string(), |until| format!("{}-0", until - 1));
            let start = format!("{}-0", subscribed.last + 1);
            let page: StreamRangeReply = self
                .redis
                .xrange_count(keys::log(name), start, end, CATCH_UP_PAGE)
                .await?;
            let full = page.ids.len() == CATCH_UP_PAGE;
            for entry in page.ids {
                let Some(id) = entry.id.split('-').next().and_then(|id| id.parse().ok()) else {
                    continue;
                };
                let Some(frame) = entry.get::<String>("f") else {
                    continue;
                };
                if id > subscribed.last {
                    deliver(subscribed, id, &frame);
                }
            }
            if !full {
                return Ok(());
            }
        }
    }
}

fn deliver(subscribed: &mut Subscribed, id: u64, frame: &str) {
    subscribed.last = id;
    match ServerEvent::from_json(frame) {
        Ok(ServerEvent::SendMessage(message)) => {
            subscribed
                .room
                .deliver_encoded(message, Frame::from(frame.to_string()));
        }
        _ => warn!(
            id,
            "a message in Redis is not a send-message event; skipped"
        ),
    }
}
