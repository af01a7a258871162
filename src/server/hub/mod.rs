//! The hub: the one seam between connections and the shared chat.
//!
//! Connections (`edge/connection`) see only [`Hub`] and the [`Membership`]
//! it hands out: join (leave is dropping the membership), publish, typing,
//! load history. Behind it are two parts they never see: this process's
//! [`Rooms`] (who is where, and each room's fan-out), the same in every
//! mode, and the [`Engine`], which assigns ids, keeps messages and answers
//! history — the part that differs between one process and a cluster. The
//! site's endpoints (`/api/rooms`, `/healthz`) read through the hub too.

mod engine;
mod membership;

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{
    chat::{
        frame::{Frame, PresenceStyle, Reply, encode},
        member::{Joiner, Place, Recipient},
        room::{NameTaken, Room},
        rooms::Rooms,
    },
    cluster::Cluster,
    config::Config,
    storage::{Append, StoreError, embedded::Embedded},
};
use crate::protocol::{
    self, DEFAULT_ROOM, MAX_CLIENT_ID_BYTES, MessageError, RoomError, ServerEvent, UsernameError,
    close_code,
};
pub(crate) use engine::Engine;
pub(crate) use membership::Membership;
use membership::snapshot_frames;

/// Messages read from storage per query when a client resumes.
const RESUME_PAGE: usize = 1000;
/// Most messages a resuming client is sent one by one. Past this it is
/// sent the latest page instead, as if it were joining afresh: replaying a
/// day of a busy room would take longer than reading the page.
const RESUME_MAX: usize = 10_000;

/// What a client asked for when it connected.
#[derive(Debug, Clone)]
pub(crate) struct JoinRequest {
    pub(crate) username: String,
    /// `None`: the default room.
    pub(crate) room: Option<String>,
    pub(crate) style: PresenceStyle,
    /// The last message id the client has, if it is resuming.
    pub(crate) since: Option<String>,
}

/// Why a join was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JoinError {
    #[error(transparent)]
    Taken(#[from] NameTaken),
    #[error(transparent)]
    InvalidName(#[from] UsernameError),
    #[error(transparent)]
    InvalidRoom(#[from] RoomError),
    #[error("since must be a message id (a whole number), got {0:?}")]
    InvalidSince(String),
    #[error("The chat history is unavailable right now; try again shortly")]
    Storage(#[from] StoreError),
}

impl JoinError {
    /// A bad request is a policy violation the client can fix; a storage
    /// failure is the server's (1011) and worth retrying.
    pub(crate) fn close_code(&self) -> u16 {
        match self {
            JoinError::Storage(StoreError::Unavailable) => close_code::TRY_AGAIN_LATER,
            JoinError::Storage(_) => close_code::INTERNAL_ERROR,
            _ => close_code::POLICY,
        }
    }
}

/// Why the hub could not be opened at start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cluster mode: {0}")]
    Cluster(#[from] crate::server::cluster::ClusterError),
}

/// Why a message was not published.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PublishError {
    #[error(transparent)]
    Invalid(#[from] MessageError),
    #[error("client_id must be at most {MAX_CLIENT_ID_BYTES} bytes")]
    ClientIdTooLong,
    #[error("The server is shutting down; your message was not sent")]
    Closed,
    /// Cluster mode with Redis unreachable. Banter's page keeps the message
    /// in its outbox and sends it again once it reconnects.
    #[error(
        "{} (the message service is unreachable); your message was not sent yet",
        protocol::DELIVERY_PAUSED
    )]
    Paused,
}

/// Shared state of the chat. See the module docs.
pub(crate) struct Hub {
    rooms: Arc<Rooms>,
    engine: Engine,
    /// Whether messages are still taken. Each publish holds a read lock
    /// while it queues its message; shutdown takes the write lock, so it
    /// knows every message being queued has been, and none comes after.
    accepting: tokio::sync::RwLock<bool>,
}

impl Hub {
    /// Opens the engine the configuration asks for — the embedded store
    /// (creating the database on first start), or the cluster's Redis and
    /// PostgreSQL — and an empty set of rooms.
    pub(crate) async fn open(config: &Config) -> Result<Self, StartError> {
        let rooms = Arc::new(Rooms::default());
        let engine = match &config.cluster {
            Some(cluster) => Engine::Cluster(Box::new(
                Cluster::connect(&cluster.redis_url, &cluster.database_url).await?,
            )),
            None => Engine::Embedded(Embedded::open(
                config.storage,
                config.sqlite_sync,
                &config.data_dir,
                Arc::clone(&rooms),
            )?),
        };
        Ok(Hub {
            rooms,
            engine,
            accepting: tokio::sync::RwLock::new(true),
        })
    }

    /// How many users are connected to this process, over all rooms.
    pub(crate) fn len(&self) -> usize {
        self.rooms.len()
    }

    /// Every room with people in it: `(name, online)`.
    pub(crate) fn online_rooms(&self) -> Vec<(Arc<str>, usize)> {
        self.rooms.online()
    }

    /// Rooms by latest message, newest first: `(room, last id, ts ms)`.
    pub(crate) async fn recent_rooms(
        &self,
        limit: usize,
    ) -> Result<Vec<(String, u64, i64)>, StoreError> {
        self.engine.recent_rooms(limit).await
    }

    /// Adds a user to a room, whose events go to `recipient` from then on.
    /// The membership carries, in `snapshot`, what to send before anything
    /// handed to the recipient: the room's user list, then either the
    /// latest page of history or — when resuming — exactly the messages
    /// after `since` (and `seen_through`, the newest of those: messages
    /// handed over up to it were sent already).
    pub(crate) async fn join(
        self: &Arc<Self>,
        request: JoinRequest,
        recipient: Arc<dyn Recipient>,
    ) -> Result<Membership, JoinError> {
        let room = protocol::parse_room(request.room.as_deref().unwrap_or(DEFAULT_ROOM))?;
        let name: Arc<str> = Arc::from(protocol::parse_username(&request.username)?);
        let since = match request.since.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(
                raw.parse::<u64>()
                    .map_err(|_| JoinError::InvalidSince(raw.to_owned()))?,
            ),
        };
        let style = request.style;
        let joiner = Joiner {
            name,
            style,
            recipient,
        };
        let (room, entry, seat) = self
            .engine
            .enter(&self.rooms, &room, &joiner, since.is_none())
            .await?;
        // From here on, dropping the membership (an error below, or the
        // caller giving up) takes the user out again.
        let mut membership = Membership {
            hub: Arc::clone(self),
            room,
            name: joiner.name,
            style,
            place: entry.place,
            seat,
            snapshot: snapshot_frames(entry.names, style),
            seen_through: 0,
        };
        let resumed = match since {
            Some(since) => self.resume(&mut membership, since).await?,
            None => false,
        };
        if !resumed {
            // A joiner that is not resuming entered with the room's page
            // (see `Engine::enter`). One whose resume fell back to a page
            // may find none, and reads it now: still exactly once, but a
            // message said meanwhile comes inside the page rather than as
            // its own event — which a resuming client (it reads `history`)
            // shows all the same.
            let (frame, newest) = match entry.latest {
                Some(latest) => latest,
                None => {
                    let (messages, more) = self.engine.page(membership.room.name(), None).await?;
                    membership.room.prime(messages, more)
                }
            };
            membership.snapshot.push(frame);
            membership.seen_through = newest;
        }
        Ok(membership)
    }

    /// Queues every message after `since` for a resuming client. False if
    /// there are too many, and it should get the latest page instead.
    async fn resume(&self, membership: &mut Membership, since: u64) -> Result<bool, StoreError> {
        let room = Arc::clone(membership.room.name());
        let mut frames = Vec::new();
        let mut after = since;
        loop {
            let page = self.engine.after(&room, after, RESUME_PAGE).await?;
            let full = page.len() == RESUME_PAGE;
            for message in page {
                after = message.id;
                frames.push(encode(&ServerEvent::SendMessage(message)));
            }
            if frames.len() > RESUME_MAX {
                return Ok(false);
            }
            if !full {
                break;
            }
        }
        // Nothing after `since`, and `since` is beyond the newest message:
        // it is not an id of this room's history (another server's, or one
        // lost when a cluster's Redis came back empty). A fresh page, then.
        if frames.is_empty() {
            let newest = self.engine.before(&room, None, 1).await?;
            if newest.last().is_none_or(|m| m.id < since) {
                return Ok(false);
            }
        }
        membership.snapshot.extend(frames);
        membership.seen_through = after;
        Ok(true)
    }

    /// Checks a message and queues it for storage; once stored it is sent
    /// to everyone in the room, the sender included. Waits while storage is
    /// behind.
    pub(crate) async fn publish(
        &self,
        room: &Arc<Room>,
        username: &Arc<str>,
        message: String,
        client_id: Option<String>,
        reply: &mpsc::Sender<Reply>,
    ) -> Result<(), PublishError> {
        protocol::check_message(&message)?;
        if client_id
            .as_ref()
            .is_some_and(|id| id.len() > MAX_CLIENT_ID_BYTES)
        {
            return Err(PublishError::ClientIdTooLong);
        }
        let accepting = self.accepting.read().await;
        if !*accepting {
            return Err(PublishError::Closed);
        }
        self.engine
            .append(
                room,
                Append {
                    room: Arc::clone(room.name()),
                    username: Arc::clone(username),
                    message,
                    client_id,
                    reply: reply.clone(),
                },
            )
            .await
            .map_err(|err| match err {
                StoreError::Unavailable => PublishError::Paused,
                _ => PublishError::Closed,
            })
    }

    /// Tells the room that `name` is typing. Nothing is kept.
    pub(crate) async fn typing(&self, room: &Room, name: &Arc<str>) {
        self.engine.typing(room, name).await;
    }

    /// The page of messages before `before` in `room`, as a `history`
    /// frame.
    pub(crate) async fn load_history(
        &self,
        room: &Arc<Room>,
        before: u64,
    ) -> Result<Frame, StoreError> {
        let (messages, more) = self.engine.page(room.name(), Some(before)).await?;
        Ok(encode(&ServerEvent::History { messages, more }))
    }

    /// Takes `name` out of `room` (a [`Membership`] being dropped).
    fn leave(
        &self,
        room: &Arc<Room>,
        name: &Arc<str>,
        style: PresenceStyle,
        place: Place,
        seat: Option<crate::server::cluster::Seat>,
    ) {
        self.engine
            .leave(&self.rooms, room, name, style, place, seat);
    }

    /// A dependency that is down, if any (`/healthz`).
    pub(crate) fn degraded(&self) -> Option<&'static str> {
        self.engine.degraded()
    }

    /// Sends every room's presence changes gathered since the last call.
    pub(crate) fn flush_presence(&self) {
        self.rooms.flush_presence();
    }

    /// Shutdown, first half: takes no more messages, waits for those being
    /// queued, then stores and delivers everything queued and stops
    /// storage. When this returns every accepted message is on disk and
    /// handed to its room's members (written, or queued for their writers),
    /// ready for the writers' goodbyes.
    pub(crate) async fn close(&self) {
        *self.accepting.write().await = false;
        self.engine.close().await;
    }
}
