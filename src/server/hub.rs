//! The hub: the one interface connections talk to.
//!
//! Four operations — [`Hub::join`] (leave is dropping the [`Membership`]),
//! [`Hub::publish`], [`Hub::load_history`] and typing through the
//! membership's room — over two parts that connections never see:
//! [`Rooms`] (who is where, and each room's broadcast ring) and [`Store`]
//! (the storage pipeline that writes each message before its room is given
//! it). A shared backplane slots in behind the same interface.

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{broadcast, mpsc};

use super::{
    config::{SqliteSync, StorageKind},
    room::{NameTaken, Outbound, PresenceStyle, Room, Rooms},
    storage::{Append, Store, StoreError, Stored},
};
use crate::protocol::{
    self, ChatMessage, DEFAULT_ROOM, HISTORY_PAGE, MAX_CLIENT_ID_BYTES, MessageError, RoomError,
    ServerEvent, UsernameError, close_code,
};

/// One serialised event, shared by every recipient without copying.
pub type Frame = Utf8Bytes;

/// What goes to one client alone, through its writer.
#[derive(Debug)]
pub enum Reply {
    /// An event (an `error`, a `history` page).
    Frame(Frame),
    /// Close with this code and reason, then stop: the client sent
    /// something that ends the conversation (too big, not UTF-8).
    Close { code: u16, reason: &'static str },
    /// The client answered a ping: it is still there.
    Pong,
}

/// Names per frame when a delta client is sent the user list on joining.
/// One frame of 10,000 names would leave every connection's write buffer
/// at ~150 KB for good (buffers keep their capacity); chunks keep it small.
const SNAPSHOT_CHUNK: usize = 128;

/// Messages read from storage per query when a client resumes.
const RESUME_PAGE: usize = 1000;
/// Most messages a resuming client is sent one by one. Past this it is
/// sent the latest page instead, as if it were joining afresh: replaying a
/// day of a busy room would take longer than reading the page.
const RESUME_MAX: usize = 10_000;

/// What a client asked for when it connected.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub username: String,
    /// `None`: the default room.
    pub room: Option<String>,
    pub style: PresenceStyle,
    /// The last message id the client has, if it is resuming.
    pub since: Option<String>,
}

/// Why a join was refused.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
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
    pub fn close_code(&self) -> u16 {
        match self {
            JoinError::Storage(_) => close_code::INTERNAL_ERROR,
            _ => close_code::POLICY,
        }
    }
}

/// Why a message was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Invalid(#[from] MessageError),
    #[error("client_id must be at most {MAX_CLIENT_ID_BYTES} bytes")]
    ClientIdTooLong,
    #[error("The server is shutting down; your message was not sent")]
    Closed,
}

/// Shared state of the chat. See the module docs.
pub struct Hub {
    rooms: Arc<Rooms>,
    store: Store,
    /// Whether messages are still taken. Each publish holds a read lock
    /// while it queues its message; shutdown takes the write lock, so it
    /// knows every message being queued has been, and none comes after.
    accepting: tokio::sync::RwLock<bool>,
}

impl Hub {
    /// Opens storage (creating the database on first start) and an empty
    /// set of rooms.
    pub fn open(
        storage: StorageKind,
        sync: SqliteSync,
        data_dir: &std::path::Path,
    ) -> Result<Self, StoreError> {
        let rooms = Arc::new(Rooms::default());
        let store = Store::open(storage, sync, data_dir, Arc::clone(&rooms))?;
        Ok(Hub {
            rooms,
            store,
            accepting: tokio::sync::RwLock::new(true),
        })
    }

    /// How many users are connected, over all rooms.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    pub fn rooms(&self) -> &Rooms {
        &self.rooms
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Adds a user to a room. The membership carries the subscription and,
    /// in `snapshot`, what to send before anything from it: the room's user
    /// list, then either the latest page of history or — when resuming —
    /// exactly the messages after `since`.
    pub async fn join(self: &Arc<Self>, request: JoinRequest) -> Result<Membership, JoinError> {
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
        let (room, entry) = self.rooms.enter(&room, &name, style)?;
        // From here on, dropping the membership (an error below, or the
        // caller giving up) takes the user out again.
        let mut membership = Membership {
            hub: Arc::clone(self),
            room,
            name,
            style,
            events: entry.events,
            snapshot: snapshot_frames(entry.names, style),
            seen_through: 0,
        };
        let resumed = match since {
            Some(since) => self.resume(&mut membership, since).await?,
            None => false,
        };
        if !resumed {
            let (frame, newest) = match entry.latest {
                Some(latest) => latest,
                None => {
                    let (messages, more) = self.page(membership.room.name(), None).await?;
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
            let page = self.store.after(&room, after, RESUME_PAGE).await?;
            let full = page.len() == RESUME_PAGE;
            for stored in page {
                after = stored.id;
                frames.push(encode(&ServerEvent::SendMessage(stored.into_message())));
            }
            if frames.len() > RESUME_MAX {
                return Ok(false);
            }
            if !full {
                break;
            }
        }
        membership.snapshot.extend(frames);
        membership.seen_through = after;
        Ok(true)
    }

    /// Checks a message and queues it for storage; once stored it is sent
    /// to everyone in the room, the sender included. Waits while storage is
    /// behind.
    pub async fn publish(
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
        self.store
            .append(Append {
                room: Arc::clone(room.name()),
                username: Arc::clone(username),
                message,
                client_id,
                reply: reply.clone(),
            })
            .await
            .map_err(|_| PublishError::Closed)
    }

    /// The page of messages before `before` in `room`, as a `history`
    /// frame.
    pub async fn load_history(&self, room: &Arc<Room>, before: u64) -> Result<Frame, StoreError> {
        let (messages, more) = self.page(room.name(), Some(before)).await?;
        Ok(encode(&ServerEvent::History { messages, more }))
    }

    /// The [`HISTORY_PAGE`] messages before `before` (the newest, if
    /// `None`), oldest first, and whether older ones exist: one more is
    /// read to find out.
    async fn page(
        &self,
        room: &Arc<str>,
        before: Option<u64>,
    ) -> Result<(Vec<ChatMessage>, bool), StoreError> {
        let mut stored = self.store.before(room, before, HISTORY_PAGE + 1).await?;
        let more = stored.len() > HISTORY_PAGE;
        if more {
            stored.remove(0);
        }
        Ok((stored.into_iter().map(Stored::into_message).collect(), more))
    }

    /// Sends every room's presence changes gathered since the last call.
    pub fn flush_presence(&self) {
        self.rooms.flush_presence();
    }

    /// Shutdown, first half: takes no more messages, waits for those being
    /// queued, then stores and delivers everything queued and stops
    /// storage. When this returns every accepted message is on disk and in
    /// its room's ring, ready for the writers' goodbyes.
    pub async fn close(&self) {
        *self.accepting.write().await = false;
        self.store.close().await;
    }
}

/// A connected user's place in a room. Dropping it removes the user.
pub struct Membership {
    hub: Arc<Hub>,
    room: Arc<Room>,
    name: Arc<str>,
    style: PresenceStyle,
    /// Every event in the room after the join.
    pub events: broadcast::Receiver<Outbound>,
    /// What to send first, in order: the user list, then history.
    pub snapshot: Vec<Frame>,
    /// The newest message id in `snapshot`: messages on `events` up to it
    /// were already sent from storage and are skipped.
    pub seen_through: u64,
}

impl Membership {
    /// The username as joined (trimmed).
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    pub fn room(&self) -> &Arc<Room> {
        &self.room
    }

    pub fn style(&self) -> PresenceStyle {
        self.style
    }

    /// The frame of a ring event if this client is to get it: meant for its
    /// presence style, and not a message it was already sent from storage.
    pub fn wanted(&self, event: Outbound) -> Option<Frame> {
        let Outbound {
            audience,
            id,
            frame,
        } = event;
        (audience.includes(self.style) && (id == 0 || id > self.seen_through)).then_some(frame)
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.hub.rooms.exit(&self.room, &self.name, self.style);
    }
}

/// The user list for a joiner. Tutorial clients understand only one whole
/// `update-users`; delta clients get the list in chunks (`update-users` with
/// the first, `user-joined` with the rest), which they merge the same way.
fn snapshot_frames(names: Vec<Arc<str>>, style: PresenceStyle) -> Vec<Frame> {
    if style == PresenceStyle::List || names.len() <= SNAPSHOT_CHUNK {
        return vec![encode(&ServerEvent::UpdateUsers { usernames: names })];
    }
    names
        .chunks(SNAPSHOT_CHUNK)
        .enumerate()
        .map(|(i, chunk)| {
            let usernames = chunk.to_vec();
            encode(&if i == 0 {
                ServerEvent::UpdateUsers { usernames }
            } else {
                ServerEvent::UserJoined { usernames }
            })
        })
        .collect()
}

/// Serialises an event for the wire.
pub fn encode(event: &ServerEvent) -> Frame {
    match serde_json::to_string(event) {
        Ok(json) => Frame::from(json),
        // Unreachable for these types (string keys, no custom Serialize);
        // logged rather than panicking a connection task if that changes.
        Err(err) => {
            tracing::error!(%err, "could not serialise a server event");
            Frame::from_static(r#"{"event":"error","message":"internal error"}"#)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delta_joiner_gets_a_long_list_in_chunks_that_add_up() {
        let names: Vec<Arc<str>> = (0..601).map(|i| Arc::from(format!("u{i:03}"))).collect();
        let frames = snapshot_frames(names.clone(), PresenceStyle::Delta);
        assert_eq!(frames.len(), 601usize.div_ceil(SNAPSHOT_CHUNK));
        let mut seen = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            let usernames = match (i, ServerEvent::from_json(frame.as_str()).unwrap()) {
                (0, ServerEvent::UpdateUsers { usernames }) => usernames,
                (i, ServerEvent::UserJoined { usernames }) if i > 0 => usernames,
                (i, other) => panic!("frame {i}: {other:?}"),
            };
            assert!(usernames.len() <= SNAPSHOT_CHUNK);
            seen.extend(usernames);
        }
        assert_eq!(seen, names);
        // A tutorial client still gets one whole list.
        assert_eq!(snapshot_frames(names, PresenceStyle::List).len(), 1);
    }
}
