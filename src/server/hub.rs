//! The hub: who is connected, and the one stream of events they all read.
//!
//! Its interface is four operations — [`Hub::join`], leave (dropping the
//! [`Membership`]), [`Hub::publish`] and the subscription a membership
//! carries — so that storage and a shared backplane can later slot in behind
//! it without the WebSocket handler noticing.
//!
//! Fan-out is a single `tokio::sync::broadcast` ring: a message is
//! serialised once, and every connection's writer task receives the same
//! reference-counted bytes. Publishing never waits for a reader, so one slow
//! socket cannot hold up anyone else; a reader that falls a whole ring behind
//! is told so (`Lagged`) and is disconnected with 1013 rather than silently
//! skipping messages.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use axum::extract::ws::Utf8Bytes;
use time::{OffsetDateTime, format_description::FormatItem, macros::format_description};
use tokio::sync::broadcast;

use super::presence::{Change, PresenceLog};
use crate::protocol::{self, ChatMessage, MessageError, ServerEvent, UsernameError, close_code};

/// One serialised event, shared by every recipient without copying.
pub type Frame = Utf8Bytes;

/// How many events a connection may fall behind before it is disconnected
/// with 1013. At a few hundred bytes an event this bounds a stalled client's
/// cost to the shared ring, and covers several seconds of a busy room for a
/// client whose network merely hiccups.
pub const EVENT_BUFFER: usize = 4096;

/// Names per frame when a delta client is sent the user list on joining.
/// One frame of 10,000 names would leave every connection's write buffer
/// at ~150 KB for good (buffers keep their capacity); chunks keep it small.
const SNAPSHOT_CHUNK: usize = 128;

/// RFC 3339 in UTC with milliseconds: precise enough to order by eye, short
/// enough to cost little on every message.
const TIMESTAMP: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// How a client wants to hear about joins and leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceStyle {
    /// The tutorial's `update-users` with the whole list.
    List,
    /// `user-joined` / `user-left` deltas (Banter's own client).
    Delta,
}

/// Which connections an [`Outbound`] event is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Everyone,
    Only(PresenceStyle),
}

impl Audience {
    pub fn includes(self, style: PresenceStyle) -> bool {
        match self {
            Audience::Everyone => true,
            Audience::Only(only) => only == style,
        }
    }
}

/// An event on the broadcast ring.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub audience: Audience,
    pub frame: Frame,
}

/// Why a join was refused.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("Username {0} is already taken")]
    Taken(String),
    #[error(transparent)]
    InvalidName(#[from] UsernameError),
}

impl JoinError {
    /// Every refusal is a policy violation: the client may retry with
    /// another name.
    pub fn close_code(&self) -> u16 {
        close_code::POLICY
    }
}

/// Why a message was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Invalid(#[from] MessageError),
}

/// The people connected right now, and what changed since the last
/// presence broadcast. One lock covers both so a joiner's snapshot and the
/// change log can never disagree.
#[derive(Default)]
struct Members {
    names: BTreeSet<Arc<str>>,
    /// How many members want whole lists; when none do, a presence tick
    /// skips building one (at 10,000 users that is ~150 KB of JSON).
    list_clients: usize,
    changes: PresenceLog,
}

/// Shared state of the chat. See the module docs.
pub struct Hub {
    members: Mutex<Members>,
    /// The next message id. Held while a message is stamped *and* put on the
    /// ring, so ids reach every reader in increasing order.
    next_id: Mutex<u64>,
    events: broadcast::Sender<Outbound>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Hub {
            members: Mutex::default(),
            next_id: Mutex::new(1),
            events,
        }
    }

    /// How many users are connected.
    pub fn len(&self) -> usize {
        lock(&self.members).names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a user. The returned membership carries the subscription and the
    /// user list as of this instant; dropping it is leaving.
    pub fn join(
        self: &Arc<Self>,
        raw_name: &str,
        style: PresenceStyle,
    ) -> Result<Membership, JoinError> {
        let name = protocol::parse_username(raw_name)?;
        let mut members = lock(&self.members);
        if members.names.contains(name) {
            return Err(JoinError::Taken(name.to_owned()));
        }
        let name: Arc<str> = Arc::from(name);
        members.names.insert(name.clone());
        members.changes.push(Change::Joined(name.clone()));
        if style == PresenceStyle::List {
            members.list_clients += 1;
        }
        // Subscribe under the lock: every change after this snapshot reaches
        // the joiner through the ring, and replaying the earlier ones of the
        // same presence batch is harmless (see `presence`).
        let events = self.events.subscribe();
        let names: Vec<Arc<str>> = members.names.iter().cloned().collect();
        drop(members);
        let snapshot = snapshot_frames(names, style);
        Ok(Membership {
            hub: Arc::clone(self),
            name,
            style,
            events,
            snapshot,
        })
    }

    fn leave(&self, name: &Arc<str>, style: PresenceStyle) {
        let mut members = lock(&self.members);
        if members.names.remove(name) {
            members.changes.push(Change::Left(name.clone()));
            if style == PresenceStyle::List {
                members.list_clients -= 1;
            }
        }
    }

    /// Stamps a message with the next id and the time, and sends it to
    /// everyone (the sender included).
    pub fn publish(&self, username: &str, message: String) -> Result<u64, PublishError> {
        protocol::check_message(&message)?;
        let mut next_id = lock(&self.next_id);
        let id = *next_id;
        *next_id += 1;
        let ts = OffsetDateTime::now_utc()
            .format(TIMESTAMP)
            .unwrap_or_default();
        let frame = encode(&ServerEvent::SendMessage(ChatMessage {
            username: username.to_owned(),
            message,
            id,
            ts,
        }));
        // An error only means nobody is subscribed, which is not a failure.
        let _ = self.events.send(Outbound {
            audience: Audience::Everyone,
            frame,
        });
        Ok(id)
    }

    /// Sends the presence changes gathered since the last call: deltas to
    /// delta clients, the whole sorted list to list clients. Called by the
    /// presence task once per interval; does nothing when nothing changed.
    pub fn flush_presence(&self) {
        let mut members = lock(&self.members);
        let changes = members.changes.take();
        if changes.is_empty() {
            return;
        }
        let list =
            (members.list_clients > 0).then(|| members.names.iter().cloned().collect::<Vec<_>>());
        drop(members);

        for frame in super::presence::delta_frames(&changes) {
            let _ = self.events.send(Outbound {
                audience: Audience::Only(PresenceStyle::Delta),
                frame,
            });
        }
        if let Some(usernames) = list {
            let _ = self.events.send(Outbound {
                audience: Audience::Only(PresenceStyle::List),
                frame: encode(&ServerEvent::UpdateUsers { usernames }),
            });
        }
    }
}

/// A connected user's place in the hub. Dropping it removes the user.
pub struct Membership {
    hub: Arc<Hub>,
    name: Arc<str>,
    style: PresenceStyle,
    /// Every event published after the join.
    pub events: broadcast::Receiver<Outbound>,
    /// Who is online as of the join: one `update-users`, for a delta
    /// client followed by `user-joined` chunks. Send it before anything
    /// from `events`.
    pub snapshot: Vec<Frame>,
}

impl Membership {
    /// The username as joined (trimmed).
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    pub fn style(&self) -> PresenceStyle {
        self.style
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.hub.leave(&self.name, self.style);
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

/// The hub's locks guard plain data that no code path leaves half-updated,
/// so a panic elsewhere (poisoning) is no reason to stop serving.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(frame: &Frame) -> &str {
        frame.as_str()
    }

    #[test]
    fn join_snapshot_includes_the_joiner_sorted() {
        let hub = Arc::new(Hub::new());
        let _bob = hub.join("bob", PresenceStyle::List).unwrap();
        let alice = hub.join(" alice ", PresenceStyle::List).unwrap();
        assert_eq!(&**alice.name(), "alice");
        assert_eq!(alice.snapshot.len(), 1);
        assert_eq!(
            text(&alice.snapshot[0]),
            r#"{"event":"update-users","usernames":["alice","bob"]}"#
        );
    }

    #[test]
    fn a_taken_name_is_refused_until_its_holder_leaves() {
        let hub = Arc::new(Hub::new());
        let first = hub.join("alice", PresenceStyle::List).unwrap();
        let err = hub.join("alice", PresenceStyle::Delta).err().unwrap();
        assert_eq!(err.to_string(), "Username alice is already taken");
        assert_eq!(err.close_code(), 1008);
        drop(first);
        assert!(hub.join("alice", PresenceStyle::List).is_ok());
    }

    #[test]
    fn ids_increase_and_reach_subscribers_in_order() {
        let hub = Arc::new(Hub::new());
        let mut member = hub.join("alice", PresenceStyle::Delta).unwrap();
        let a = hub.publish("alice", "one".into()).unwrap();
        let b = hub.publish("alice", "two".into()).unwrap();
        assert!(b > a);
        let first = member.events.try_recv().unwrap();
        assert!(text(&first.frame).contains(r#""message":"one""#));
        let second = member.events.try_recv().unwrap();
        assert!(text(&second.frame).contains(r#""message":"two""#));
    }

    #[test]
    fn presence_is_coalesced_per_flush_and_split_by_style() {
        let hub = Arc::new(Hub::new());
        let mut watcher = hub.join("watcher", PresenceStyle::Delta).unwrap();
        let a = hub.join("a", PresenceStyle::List).unwrap();
        let _b = hub.join("b", PresenceStyle::List).unwrap();
        drop(a);
        hub.flush_presence();
        let mut frames = Vec::new();
        while let Ok(out) = watcher.events.try_recv() {
            frames.push((out.audience, out.frame.to_string()));
        }
        assert_eq!(
            frames,
            vec![
                (
                    Audience::Only(PresenceStyle::Delta),
                    r#"{"event":"user-joined","usernames":["watcher","a","b"]}"#.to_string()
                ),
                (
                    Audience::Only(PresenceStyle::Delta),
                    r#"{"event":"user-left","usernames":["a"]}"#.to_string()
                ),
                (
                    Audience::Only(PresenceStyle::List),
                    r#"{"event":"update-users","usernames":["b","watcher"]}"#.to_string()
                ),
            ]
        );
        hub.flush_presence();
        assert!(watcher.events.try_recv().is_err(), "nothing changed");
    }

    #[test]
    fn a_delta_joiner_gets_a_long_list_in_chunks_that_add_up() {
        let hub = Arc::new(Hub::new());
        let _others: Vec<_> = (0..600)
            .map(|i| hub.join(&format!("u{i:03}"), PresenceStyle::Delta).unwrap())
            .collect();
        let joiner = hub.join("zed", PresenceStyle::Delta).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for (i, frame) in joiner.snapshot.iter().enumerate() {
            let event: ServerEvent = serde_json::from_str(frame.as_str()).unwrap();
            let names = match (i, event) {
                (0, ServerEvent::UpdateUsers { usernames }) => usernames,
                (_, ServerEvent::UserJoined { usernames }) if i > 0 => usernames,
                (i, other) => panic!("frame {i}: {other:?}"),
            };
            assert!(names.len() <= SNAPSHOT_CHUNK);
            seen.extend(names.iter().map(|n| n.to_string()));
        }
        assert_eq!(joiner.snapshot.len(), 601usize.div_ceil(SNAPSHOT_CHUNK));
        assert_eq!(seen.len(), 601);
        // A tutorial client still gets one whole list.
        let listy = hub.join("lister", PresenceStyle::List).unwrap();
        assert_eq!(listy.snapshot.len(), 1);
    }

    #[test]
    fn invalid_messages_are_not_published() {
        let hub = Arc::new(Hub::new());
        let mut member = hub.join("alice", PresenceStyle::Delta).unwrap();
        assert!(hub.publish("alice", "   ".into()).is_err());
        assert!(member.events.try_recv().is_err());
    }
}
