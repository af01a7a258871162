//! One room: who is in it, its broadcast ring, and its latest messages.
//!
//! Everything that must stay consistent for a joiner sits under one lock:
//! the member list, the presence change log, the page of latest messages
//! and the ring. A joiner subscribes, copies the list and reads the page in
//! one critical section, and a delivery appends to the page and sends on the
//! ring in another, so a joiner sees every message exactly once: either in
//! its first page or on its ring, never both, never neither.
//!
//! Fan-out is a `tokio::sync::broadcast` ring: a message is serialised once
//! and every connection's writer gets the same reference-counted bytes.
//! Publishing never waits for a reader, so one slow socket cannot hold up
//! anyone else; a reader that falls a whole ring behind is told so
//! (`Lagged`) and is disconnected with 1013 rather than silently skipping.

mod name_key;

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    fmt,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use tokio::sync::broadcast;

use super::{
    hub::{Frame, encode},
    presence::{Change, PresenceLog},
};
use crate::protocol::{ChatMessage, HISTORY_PAGE, ServerEvent};
use name_key::name_key;

/// How many events a connection may fall behind before it is disconnected
/// with 1013. At a few hundred bytes an event this bounds a stalled client's
/// cost to the shared ring, and covers several seconds of a busy room for a
/// client whose network merely hiccups.
pub const EVENT_BUFFER: usize = 4096;

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

/// An event on a room's ring.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub audience: Audience,
    /// The chat message's id, or 0 for other events: lets a writer skip
    /// what a client already got from storage when it resumed.
    pub id: u64,
    pub frame: Frame,
}

/// What a joiner gets, taken atomically.
pub struct Entry {
    pub events: broadcast::Receiver<Outbound>,
    /// Everyone in the room, the joiner included, sorted regardless of case
    /// (by name key).
    pub names: Vec<Arc<str>>,
    /// The room's latest page as a ready `history` frame, with the id of
    /// its newest message; `None` until the page has been loaded from
    /// storage (see [`Room::prime`]).
    pub latest: Option<(Frame, u64)>,
}

/// The latest messages, kept so a join burst reads no storage.
#[derive(Default)]
struct Latest {
    /// At most [`HISTORY_PAGE`] messages, oldest first.
    messages: VecDeque<ChatMessage>,
    /// Whether `messages` is known to hold the room's newest messages (it
    /// was loaded from storage, then kept up by every delivery).
    primed: bool,
    /// Older messages exist than the first in `messages`.
    more: bool,
    /// The `history` frame for `messages`, built once per change.
    frame: Option<Frame>,
}

impl Latest {
    fn push(&mut self, message: ChatMessage) {
        if self.messages.len() == HISTORY_PAGE {
            self.messages.pop_front();
            self.more = true;
        }
        self.messages.push_back(message);
        self.frame = None;
    }

    /// The page as a `history` frame and its newest id, once primed.
    fn page(&mut self) -> Option<(Frame, u64)> {
        self.primed.then(|| self.frame())
    }

    fn frame(&mut self) -> (Frame, u64) {
        let newest = self.messages.back().map_or(0, |m| m.id);
        let frame = self.frame.get_or_insert_with(|| {
            encode(&ServerEvent::History {
                messages: self.messages.iter().cloned().collect(),
                more: self.more,
            })
        });
        (frame.clone(), newest)
    }
}

#[derive(Default)]
struct State {
    /// Everyone in the room: each name's [`name_key`] → the name as its
    /// holder typed it. Keyed so `Alice` and `alice` cannot both be in;
    /// ordered by key, so the list reads alphabetically whatever the case.
    names: BTreeMap<String, Arc<str>>,
    /// How many members want whole lists; when none do, a presence tick
    /// skips building one (at 10,000 users that is ~150 KB of JSON).
    list_clients: usize,
    changes: PresenceLog,
    latest: Latest,
}

/// Why a user could not enter: someone in the room has a name with the
/// same [`name_key`]. Holds the name as the refused user typed it.
#[derive(Debug)]
pub struct NameTaken(pub String);

impl std::error::Error for NameTaken {}

impl fmt::Display for NameTaken {
    /// The sentence goes out as a close reason, which the join screen
    /// shows; a long non-ASCII name (32 emoji are 128 bytes) is shortened
    /// with `…` so the sentence still ends in "is already taken".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const WORDS: usize = "Username  is already taken".len();
        let mut name = self.0.as_str();
        // The connection would cut anything longer mid-sentence.
        let budget = crate::protocol::close_code::MAX_REASON_BYTES - WORDS;
        if name.len() > budget {
            let mut end = budget - '…'.len_utf8();
            while !name.is_char_boundary(end) {
                end -= 1;
            }
            name = &name[..end];
            return write!(f, "Username {name}… is already taken");
        }
        write!(f, "Username {name} is already taken")
    }
}

pub struct Room {
    name: Arc<str>,
    state: Mutex<State>,
    events: broadcast::Sender<Outbound>,
}

impl Room {
    fn new(name: Arc<str>) -> Self {
        Room {
            name,
            state: Mutex::default(),
            events: broadcast::channel(EVENT_BUFFER).0,
        }
    }

    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    pub fn online(&self) -> usize {
        lock(&self.state).names.len()
    }

    /// Adds `name` unless someone in the room already has it, or one
    /// with the same key.
    pub fn enter(&self, name: &Arc<str>, style: PresenceStyle) -> Result<Entry, NameTaken> {
        let key = name_key(name);
        let mut state = lock(&self.state);
        if state.names.contains_key(&key) {
            return Err(NameTaken(name.to_string()));
        }
        state.names.insert(key, Arc::clone(name));
        state.changes.push(Change::Joined(Arc::clone(name)));
        if style == PresenceStyle::List {
            state.list_clients += 1;
        }
        // Subscribed under the lock: every change and message after this
        // instant reaches the joiner through the ring; replaying earlier
        // presence changes of the same batch is harmless (see `presence`).
        Ok(Entry {
            events: self.events.subscribe(),
            names: state.names.values().cloned().collect(),
            latest: state.latest.page(),
        })
    }

    /// Removes `name`; true if the room is now empty.
    fn exit(&self, name: &Arc<str>, style: PresenceStyle) -> bool {
        let key = name_key(name);
        let mut state = lock(&self.state);
        // Only the holder frees the key: `alice` leaving cannot take out
        // the `Alice` who is in (a refused joiner never calls this, but the
        // room does not rely on it).
        if state.names.get(&key).is_some_and(|held| held == name) {
            state.names.remove(&key);
            state.changes.push(Change::Left(Arc::clone(name)));
            if style == PresenceStyle::List {
                state.list_clients -= 1;
            }
        }
        state.names.is_empty()
    }

    /// Installs the latest page read from storage, merged with whatever was
    /// delivered meanwhile, and returns it like [`Entry::latest`].
    pub fn prime(&self, stored: Vec<ChatMessage>, more: bool) -> (Frame, u64) {
        let mut state = lock(&self.state);
        let latest = &mut state.latest;
        if !latest.primed {
            let delivered = std::mem::take(&mut latest.messages);
            let mut merged: Vec<ChatMessage> = stored;
            let newest_stored = merged.last().map_or(0, |m| m.id);
            merged.extend(delivered.into_iter().filter(|m| m.id > newest_stored));
            let skip = merged.len().saturating_sub(HISTORY_PAGE);
            latest.more = more || skip > 0;
            latest.messages = merged.into_iter().skip(skip).collect();
            latest.primed = true;
            latest.frame = None;
        }
        latest.frame()
    }

    /// Sends a stored message to everyone in the room.
    fn deliver(&self, message: ChatMessage) {
        let id = message.id;
        let frame = encode(&ServerEvent::SendMessage(message.clone()));
        let mut state = lock(&self.state);
        state.latest.push(message);
        // An error only means nobody is subscribed, which is not a failure.
        let _ = self.events.send(Outbound {
            audience: Audience::Everyone,
            id,
            frame,
        });
    }

    /// Tells the room that `name` is typing. Nothing is kept.
    pub fn typing(&self, name: &Arc<str>) {
        let frame = encode(&ServerEvent::Typing {
            username: Arc::clone(name),
        });
        let _ = self.events.send(Outbound {
            audience: Audience::Everyone,
            id: 0,
            frame,
        });
    }

    /// Sends the presence changes gathered since the last call: deltas to
    /// delta clients, the whole list (sorted by key) to list clients. Does
    /// nothing when nothing changed.
    pub fn flush_presence(&self) {
        let mut state = lock(&self.state);
        let changes = state.changes.take();
        if changes.is_empty() {
            return;
        }
        let list =
            (state.list_clients > 0).then(|| state.names.values().cloned().collect::<Vec<_>>());
        drop(state);

        for frame in super::presence::delta_frames(&changes) {
            let _ = self.events.send(Outbound {
                audience: Audience::Only(PresenceStyle::Delta),
                id: 0,
                frame,
            });
        }
        if let Some(usernames) = list {
            let _ = self.events.send(Outbound {
                audience: Audience::Only(PresenceStyle::List),
                id: 0,
                frame: encode(&ServerEvent::UpdateUsers { usernames }),
            });
        }
    }
}

/// Every room with someone in it, by name.
///
/// A room is created by its first joiner and dropped with its last leaver;
/// what was said in it stays in storage. Deliveries look rooms up by name at
/// the moment of delivery, so a message stored just as its room emptied and
/// was re-created still reaches the new room.
#[derive(Default)]
pub struct Rooms {
    rooms: Mutex<HashMap<Arc<str>, Arc<Room>>>,
}

impl Rooms {
    /// The room named `name` (canonical), created if needed, and the user
    /// entered into it — in one step, so the room cannot be dropped between.
    pub fn enter(
        &self,
        room: &str,
        name: &Arc<str>,
        style: PresenceStyle,
    ) -> Result<(Arc<Room>, Entry), NameTaken> {
        let mut rooms = lock(&self.rooms);
        let room = match rooms.get(room) {
            Some(room) => Arc::clone(room),
            None => {
                let room = Arc::new(Room::new(Arc::from(room)));
                rooms.insert(Arc::clone(&room.name), Arc::clone(&room));
                room
            }
        };
        match room.enter(name, style) {
            Ok(entry) => Ok((room, entry)),
            Err(taken) => Err(taken),
        }
    }

    /// Takes `name` out of `room`, dropping the room if it is now empty.
    pub fn exit(&self, room: &Arc<Room>, name: &Arc<str>, style: PresenceStyle) {
        let mut rooms = lock(&self.rooms);
        if room.exit(name, style) {
            // Only if the registered room is this one: a room that emptied
            // earlier may already have been replaced.
            if rooms.get(&room.name).is_some_and(|r| Arc::ptr_eq(r, room)) {
                rooms.remove(&room.name);
            }
        }
    }

    /// Hands a stored message to its room, if anyone is in it.
    pub fn deliver(&self, room: &str, message: ChatMessage) {
        let room = lock(&self.rooms).get(room).cloned();
        if let Some(room) = room {
            room.deliver(message);
        }
    }

    /// Every room with people in it: `(name, online)`.
    pub fn online(&self) -> Vec<(Arc<str>, usize)> {
        let rooms: Vec<Arc<Room>> = lock(&self.rooms).values().cloned().collect();
        rooms
            .into_iter()
            .map(|room| (Arc::clone(&room.name), room.online()))
            .filter(|(_, online)| *online > 0)
            .collect()
    }

    /// How many people are connected, over all rooms.
    pub fn len(&self) -> usize {
        self.online().iter().map(|(_, n)| n).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Flushes every room's presence changes.
    pub fn flush_presence(&self) {
        let rooms: Vec<Arc<Room>> = lock(&self.rooms).values().cloned().collect();
        for room in rooms {
            room.flush_presence();
        }
    }
}

/// These locks guard plain data that no code path leaves half-updated, so
/// a panic elsewhere (poisoning) is no reason to stop serving.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> Arc<str> {
        Arc::from(n)
    }

    use crate::test_support::message;

    fn frames(entry: &mut Entry) -> Vec<(Audience, String)> {
        let mut out = Vec::new();
        while let Ok(event) = entry.events.try_recv() {
            out.push((event.audience, event.frame.to_string()));
        }
        out
    }

    #[test]
    fn a_name_is_taken_in_its_room_only_until_its_holder_leaves() {
        let rooms = Rooms::default();
        let (red, first) = rooms
            .enter("red", &name("alice"), PresenceStyle::List)
            .unwrap();
        assert_eq!(first.names, [name("alice")]);
        let err = rooms
            .enter("red", &name("alice"), PresenceStyle::Delta)
            .err()
            .unwrap();
        assert_eq!(err.to_string(), "Username alice is already taken");
        assert!(
            rooms
                .enter("blue", &name("alice"), PresenceStyle::List)
                .is_ok()
        );
        rooms.exit(&red, &name("alice"), PresenceStyle::List);
        let (_, again) = rooms
            .enter("red", &name("alice"), PresenceStyle::List)
            .unwrap();
        assert_eq!(again.names, [name("alice")]);
    }

    #[test]
    fn names_that_differ_only_in_case_or_width_are_one_name() {
        let rooms = Rooms::default();
        let (red, _) = rooms
            .enter("red", &name("Alice"), PresenceStyle::List)
            .unwrap();
        for same in ["alice", "ALICE", "Ａlice", " alice"] {
            let err = rooms
                .enter("red", &name(same), PresenceStyle::List)
                .err()
                .expect(same);
            assert_eq!(err.to_string(), format!("Username {same} is already taken"));
        }
        // Leaving under another spelling frees nothing; the holder's own
        // leave does, and the room's presence log says who left.
        rooms.exit(&red, &name("alice"), PresenceStyle::List);
        assert_eq!(red.online(), 1);
        rooms.exit(&red, &name("Alice"), PresenceStyle::List);
        assert_eq!(red.online(), 0);
        assert!(
            rooms
                .enter("red", &name("alice"), PresenceStyle::List)
                .is_ok()
        );
    }

    #[test]
    fn the_user_list_is_sorted_regardless_of_case_and_shows_names_as_typed() {
        let rooms = Rooms::default();
        let (_, mut watcher) = rooms.enter("r", &name("bob"), PresenceStyle::List).unwrap();
        let _zed = rooms.enter("r", &name("Zed"), PresenceStyle::List).unwrap();
        let (_, carol) = rooms
            .enter("r", &name("Carol"), PresenceStyle::List)
            .unwrap();
        assert_eq!(carol.names, [name("bob"), name("Carol"), name("Zed")]);
        rooms.flush_presence();
        assert_eq!(
            frames(&mut watcher).last().map(|(_, f)| f.clone()),
            Some(r#"{"event":"update-users","usernames":["bob","Carol","Zed"]}"#.to_string())
        );
    }

    #[test]
    fn a_taken_reason_fits_a_close_frame_and_still_ends_its_sentence() {
        let short = NameTaken("alice".into()).to_string();
        assert_eq!(short, "Username alice is already taken");
        for long in ["😀".repeat(32), "é".repeat(60), "x".repeat(100)] {
            let reason = NameTaken(long.clone()).to_string();
            assert!(
                reason.len() <= crate::protocol::close_code::MAX_REASON_BYTES,
                "{} bytes",
                reason.len()
            );
            assert!(reason.ends_with("… is already taken"), "{reason}");
            let shown = &reason["Username ".len()..reason.len() - "… is already taken".len()];
            assert!(long.starts_with(shown));
        }
        // The longest name that fits is kept whole.
        let fits = "x".repeat(
            crate::protocol::close_code::MAX_REASON_BYTES - "Username  is already taken".len(),
        );
        assert_eq!(
            NameTaken(fits.clone()).to_string(),
            format!("Username {fits} is already taken")
        );
    }

    #[test]
    fn deliveries_reach_members_in_order_and_fill_the_latest_page() {
        let rooms = Rooms::default();
        let (room, mut entry) = rooms.enter("r", &name("a"), PresenceStyle::Delta).unwrap();
        assert!(entry.latest.is_none(), "not primed from storage yet");
        rooms.deliver("r", message(5));
        rooms.deliver("nowhere", message(6));
        rooms.deliver("r", message(7));
        let ids: Vec<_> = std::iter::from_fn(|| entry.events.try_recv().ok())
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, [5, 7]);
        // Priming merges what storage had with what was delivered since.
        let (_, newest) = room.prime(vec![message(2), message(5)], true);
        assert_eq!(newest, 7);
        let (_, joiner) = rooms.enter("r", &name("b"), PresenceStyle::Delta).unwrap();
        let (frame, newest) = joiner.latest.expect("primed");
        assert_eq!(newest, 7);
        let ServerEvent::History { messages, more } =
            ServerEvent::from_json(frame.as_str()).unwrap()
        else {
            panic!("not a history page")
        };
        assert_eq!(messages.iter().map(|m| m.id).collect::<Vec<_>>(), [2, 5, 7]);
        assert!(more);
    }

    #[test]
    fn the_latest_page_keeps_the_newest_messages() {
        let rooms = Rooms::default();
        let (room, _entry) = rooms.enter("r", &name("a"), PresenceStyle::Delta).unwrap();
        room.prime(Vec::new(), false);
        for id in 1..=(HISTORY_PAGE as u64 + 3) {
            rooms.deliver("r", message(id));
        }
        let (_, joiner) = rooms.enter("r", &name("b"), PresenceStyle::Delta).unwrap();
        let (frame, _) = joiner.latest.expect("primed");
        let ServerEvent::History { messages, more } =
            ServerEvent::from_json(frame.as_str()).unwrap()
        else {
            panic!("not a history page")
        };
        assert_eq!(messages.len(), HISTORY_PAGE);
        assert_eq!(messages[0].id, 4);
        assert!(more, "older ones were pushed out");
    }

    #[test]
    fn presence_is_coalesced_per_flush_and_split_by_style() {
        let rooms = Rooms::default();
        let (_, mut watcher) = rooms
            .enter("r", &name("watcher"), PresenceStyle::Delta)
            .unwrap();
        let (room, _) = rooms.enter("r", &name("a"), PresenceStyle::List).unwrap();
        let _b = rooms.enter("r", &name("b"), PresenceStyle::List).unwrap();
        rooms.exit(&room, &name("a"), PresenceStyle::List);
        rooms.flush_presence();
        assert_eq!(
            frames(&mut watcher),
            [
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
        rooms.flush_presence();
        assert!(frames(&mut watcher).is_empty(), "nothing changed");
    }

    #[test]
    fn an_emptied_room_is_dropped_and_counts_stay_right() {
        let rooms = Rooms::default();
        let (red, _) = rooms.enter("red", &name("a"), PresenceStyle::List).unwrap();
        let _blue = rooms
            .enter("blue", &name("b"), PresenceStyle::List)
            .unwrap();
        assert_eq!(rooms.len(), 2);
        rooms.exit(&red, &name("a"), PresenceStyle::List);
        assert_eq!(rooms.len(), 1);
        assert_eq!(rooms.online(), [(name("blue"), 1)]);
    }
}
