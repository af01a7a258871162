//! One room: who is in it, where their events go, and its latest messages.
//!
//! Everything that must stay consistent for a joiner sits under one lock:
//! the member list, the presence change log and the page of latest
//! messages. A joiner is added, copies the list and reads the page in one
//! critical section, and a delivery appends to the page and hands the
//! message to every member in another, so a joiner sees every message
//! exactly once: either in its first page or handed to it, never both,
//! never neither. And a message said once the joiner is listed here (the
//! list changes in that same critical section) is handed to it, which a
//! client that does not read `history` (the tutorial's) relies on: for
//! that the page must be in memory before anyone enters, so the engine
//! reads it first ([`Room::prime`]), and in cluster mode announces the
//! join to the other processes only once it has entered.
//!
//! Fan-out is one loop under that lock ([`super::member`]): a message is
//! serialised once and every member's recipient gets the same
//! reference-counted bytes, in the same order for everyone. An offer never
//! waits (a member whose socket is full queues it, or, a whole
//! [`EVENT_BUFFER`] behind, is disconnected with 1013), so one slow socket
//! cannot hold up anyone else.

use std::{
    collections::{BTreeMap, HashSet},
    fmt,
    sync::{Arc, Mutex},
};

use slab::Slab;

use super::{
    frame::{Audience, Frame, Outbound, PresenceStyle, encode, encode_message},
    latest::Latest,
    lock,
    member::{Joiner, Place, Recipient},
    name_key::name_key,
    presence::{self, Change, ListPace, PresenceLog},
};
use crate::{
    protocol::{ChatMessage, ServerEvent},
    server::{metrics, send_ring::SendRing},
};

/// How many events a connection may have queued before it is disconnected
/// with 1013. The queue holds references to frames every member shares, so
/// this bounds a stalled client's cost to a few dozen bytes an event, and
/// covers several seconds of a busy room for a client whose network merely
/// hiccups.
pub(crate) const EVENT_BUFFER: usize = 4096;

/// What a joiner gets, taken atomically.
pub(crate) struct Entry {
    /// The joiner's place in the member list, to leave it by.
    pub(crate) place: Place,
    /// Everyone in the room, the joiner included, sorted regardless of case
    /// (by name key).
    pub(crate) names: Vec<Arc<str>>,
    /// The room's latest page as a ready `history` frame, with the id of
    /// its newest message; `None` until the page has been loaded from
    /// storage (see [`Room::prime`]: the engine does so before anyone
    /// enters).
    pub(crate) latest: Option<(Frame, u64)>,
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
    /// Members connected to this process. The room lives while it has
    /// any, or a joiner on its way in (`pending`).
    local: usize,
    pending: usize,
    /// Keys in `names` held by users on other processes (cluster mode):
    /// their joins and leaves arrive through the cluster, not from here.
    remote: HashSet<String>,
    /// Where this process's members' events go, with each one's name (to
    /// tell whose a place is).
    members: Slab<Member>,
    changes: PresenceLog,
    list_pace: ListPace,
    latest: Latest,
}

/// Why a user could not enter: someone in the room has a name with the
/// same [`name_key`]. Holds the name as the refused user typed it.
#[derive(Debug)]
pub(crate) struct NameTaken(pub(crate) String);

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

pub(crate) struct Room {
    name: Arc<str>,
    state: Mutex<State>,
}

/// One of this process's members, in its room's list.
struct Member {
    name: Arc<str>,
    style: PresenceStyle,
    recipient: Arc<dyn Recipient>,
}

impl State {
    /// Hands `event` to every member it is for, in one loop.
    fn fan_out(&self, event: &Outbound) {
        self.each_member(|_, member| {
            if event.audience.includes(member.style) {
                member.recipient.offer(event)
            } else {
                0
            }
        });
    }

    /// One delivery of stored messages: into the latest page, then, as
    /// `events` (theirs, in the same order), to every member but those
    /// named in `held`, timed as `banter_fan_out_seconds`. Returns the
    /// members held back, for [`Room::send_echoes`].
    ///
    /// A delivery of one message (a chat's pace) is one `round` of
    /// `ring`: every member's send handed to the kernel together.
    fn deliver(
        &mut self,
        messages: impl IntoIterator<Item = ChatMessage>,
        events: &[Outbound],
        held: &[Arc<str>],
        ring: &mut SendRing,
    ) -> Vec<(Place, Arc<str>)> {
        for message in messages {
            self.latest.push(message);
        }
        let this = &*self;
        let started = std::time::Instant::now();
        let mut waiting = Vec::new();
        let mut round = ring.round();
        this.each_member(|place, member| {
            // The sender's very name, not an equal one: the same `Arc`.
            if held.iter().any(|name| Arc::ptr_eq(name, &member.name)) {
                waiting.push((Place(place), Arc::clone(&member.name)));
                0
            } else if let [event] = events {
                member.recipient.offer_in(event, &mut round)
            } else {
                member.recipient.offer_all(events)
            }
        });
        metrics::delivered(round.finish());
        metrics::fan_out(started.elapsed());
        waiting
    }

    /// Runs `offer` for every member, telling each next one's recipient
    /// to fetch its state while the current one's write runs, and counts
    /// the frames written once for the whole loop.
    ///
    /// Why the prefetch: each write is a trip through the kernel's TCP
    /// path that touches more memory than the cache keeps between two
    /// members, so every member's own state (its connection's lock, a
    /// few flags) was a cache miss, and at 1,000 listeners that miss was
    /// the largest user-space cost of a message (perf, issue 12). Asked
    /// for one member ahead, it arrives during the previous `send(2)`.
    fn each_member<'s>(&'s self, mut offer: impl FnMut(usize, &'s Member) -> u64) {
        let mut written = 0;
        let mut members = self.members.iter().peekable();
        while let Some((place, member)) = members.next() {
            if let Some((_, next)) = members.peek() {
                next.recipient.prefetch();
            }
            written += offer(place, member);
        }
        metrics::delivered(written);
    }
}

/// A delivery's copies for its own senders, held back until their
/// messages are on the disk (see `storage::sqlite`): the senders are the
/// ones told "sent", so theirs is the copy that must not come too early.
/// Everyone else in the room already has them.
pub(crate) struct Echoes {
    events: Vec<Outbound>,
    /// The senders' places and names (a place is only theirs while the
    /// name there is the same `Arc`).
    senders: Vec<(Place, Arc<str>)>,
}

impl Room {
    pub(crate) fn new(name: Arc<str>) -> Self {
        Room {
            name,
            state: Mutex::default(),
        }
    }

    pub(crate) fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Everyone in the room, on every process.
    pub(crate) fn online(&self) -> usize {
        lock(&self.state).names.len()
    }

    /// The newest message id delivered here (0 if none yet).
    pub(crate) fn newest(&self) -> u64 {
        lock(&self.state).latest.newest()
    }

    /// Those connected to this process.
    pub(crate) fn local(&self) -> usize {
        lock(&self.state).local
    }

    /// Adds `name` unless someone in the room already has it, or one
    /// with the same key. `claimed`: the cluster has given this process the
    /// name, so a holder on another process still in the list is one whose
    /// leave has not arrived yet (its process stopped), and is replaced.
    pub(crate) fn enter(&self, joiner: &Joiner, claimed: bool) -> Result<Entry, NameTaken> {
        let Joiner { name, style, .. } = joiner;
        let style = *style;
        let key = name_key(name);
        let mut state = lock(&self.state);
        if let Some(held) = state.names.get(&key).cloned() {
            if !(claimed && state.remote.contains(&key)) {
                return Err(NameTaken(name.to_string()));
            }
            state.remote.remove(&key);
            state.names.remove(&key);
            state.changes.push(Change::Left(held));
        }
        state.names.insert(key, Arc::clone(name));
        state.changes.push(Change::Joined(Arc::clone(name)));
        state.local += 1;
        if style == PresenceStyle::List {
            state.list_clients += 1;
        }
        // A member under the lock: every change and message after this
        // instant is handed to the joiner; replaying earlier presence
        // changes of the same batch is harmless (see `presence`).
        let place = Place(state.members.insert(Member {
            name: Arc::clone(name),
            style,
            recipient: Arc::clone(&joiner.recipient),
        }));
        Ok(Entry {
            place,
            names: state.names.values().cloned().collect(),
            latest: state.latest.page(),
        })
    }

    /// Removes `name` (at `place`); true if the room now has nobody on
    /// this process.
    pub(crate) fn exit(&self, name: &Arc<str>, style: PresenceStyle, place: Place) -> bool {
        let key = name_key(name);
        let mut state = lock(&self.state);
        // Only its own place: a stale one may be someone else's by now.
        if state
            .members
            .get(place.0)
            .is_some_and(|member| Arc::ptr_eq(&member.name, name))
        {
            state.members.remove(place.0);
        }
        // Only the holder frees the key: `alice` leaving cannot take out
        // the `Alice` who is in (a refused joiner never calls this, but the
        // room does not rely on it).
        if !state.remote.contains(&key) && state.names.get(&key).is_some_and(|held| held == name) {
            state.names.remove(&key);
            state.changes.push(Change::Left(Arc::clone(name)));
            state.local -= 1;
            if style == PresenceStyle::List {
                state.list_clients -= 1;
            }
        }
        state.local == 0 && state.pending == 0
    }

    /// A joiner is on its way in (reading the room's page, and in cluster
    /// mode subscribing, take a round trip): the room must not be dropped.
    pub(crate) fn expect_joiner(&self) {
        lock(&self.state).pending += 1;
    }

    /// That joiner has entered, or given up; true if the room now has
    /// nobody on this process.
    pub(crate) fn joiner_arrived(&self) -> bool {
        let mut state = lock(&self.state);
        state.pending -= 1;
        state.local == 0 && state.pending == 0
    }

    /// A user on another process joined.
    pub(crate) fn add_remote(&self, name: &Arc<str>) {
        let key = name_key(name);
        let mut state = lock(&self.state);
        if state.names.contains_key(&key) {
            return;
        }
        state.names.insert(key.clone(), Arc::clone(name));
        state.remote.insert(key);
        state.changes.push(Change::Joined(Arc::clone(name)));
    }

    /// A user on another process left (matched by name key: a holder
    /// replaced under another spelling leaves under its own).
    pub(crate) fn remove_remote(&self, name: &Arc<str>) {
        let key = name_key(name);
        let mut state = lock(&self.state);
        if state.remote.remove(&key)
            && let Some(held) = state.names.remove(&key)
        {
            state.changes.push(Change::Left(held));
        }
    }

    /// The users on other processes are exactly `names` (read from the
    /// cluster when this process subscribes, and again after a reconnect).
    pub(crate) fn seed_remote(&self, names: Vec<Arc<str>>) {
        let mut state = lock(&self.state);
        let keyed: BTreeMap<String, Arc<str>> =
            names.into_iter().map(|n| (name_key(&n), n)).collect();
        let gone: Vec<String> = state
            .remote
            .iter()
            .filter(|key| !keyed.contains_key(*key))
            .cloned()
            .collect();
        for key in gone {
            state.remote.remove(&key);
            if let Some(name) = state.names.remove(&key) {
                state.changes.push(Change::Left(name));
            }
        }
        for (key, name) in keyed {
            if !state.names.contains_key(&key) {
                state.names.insert(key.clone(), Arc::clone(&name));
                state.remote.insert(key);
                state.changes.push(Change::Joined(name));
            }
        }
    }

    /// Whether the room's latest page has been read from storage: until
    /// then a joiner reads it, and [`Room::prime`]s the room, before it
    /// enters.
    pub(crate) fn primed(&self) -> bool {
        lock(&self.state).latest.primed()
    }

    /// Installs the latest page read from storage, merged with whatever was
    /// delivered meanwhile, and returns it like [`Entry::latest`].
    pub(crate) fn prime(&self, stored: Vec<ChatMessage>, more: bool) -> (Frame, u64) {
        lock(&self.state).latest.prime(stored, more)
    }

    /// Sends a stored message whose frame is already built to everyone in
    /// the room (cluster mode: the frame came from Redis as is).
    pub(crate) fn deliver_encoded(&self, message: ChatMessage, frame: Frame) {
        let event = Outbound::new(Audience::Everyone, message.id, frame);
        lock(&self.state).deliver(
            [message],
            std::slice::from_ref(&event),
            &[],
            &mut SendRing::direct(),
        );
    }

    /// Sends stored messages, in id order, to everyone in the room, as one
    /// delivery: each member gets them together (one write, when its
    /// socket takes them), which is what keeps a busy room's cost per
    /// message near the kernel's (a storage batch of 1,000 messages is one
    /// write per member, not 1,000).
    ///
    /// Members named in `held` (the batch's senders, by their own `Arc`)
    /// are skipped: their copies come back as [`Echoes`], for
    /// [`Room::send_echoes`] once the batch is on the disk (`None` if no
    /// member was held back).
    pub(crate) fn deliver_all(
        &self,
        messages: Vec<ChatMessage>,
        held: &[Arc<str>],
        ring: &mut SendRing,
    ) -> Option<Echoes> {
        // Encoded before the lock: a joiner waiting to enter should not
        // wait for JSON too.
        let events: Vec<Outbound> = messages
            .iter()
            .map(|message| Outbound::new(Audience::Everyone, message.id, encode_message(message)))
            .collect();
        let senders = lock(&self.state).deliver(messages, &events, held, ring);
        (!senders.is_empty()).then_some(Echoes { events, senders })
    }

    /// Gives held-back senders their copies of a delivery (see
    /// [`Room::deliver_all`]). A sender who has left meanwhile gets
    /// nothing; one who came back got the messages in its join page.
    pub(crate) fn send_echoes(&self, echoes: Echoes) {
        let state = lock(&self.state);
        let mut written = 0;
        for (place, name) in &echoes.senders {
            if let Some(member) = state.members.get(place.0)
                && Arc::ptr_eq(&member.name, name)
            {
                written += member.recipient.offer_all(&echoes.events);
            }
        }
        metrics::delivered(written);
    }

    /// Tells the room that `name` is typing. Nothing is kept.
    pub(crate) fn typing(&self, name: &Arc<str>) {
        let frame = encode(&ServerEvent::Typing {
            username: Arc::clone(name),
        });
        lock(&self.state).fan_out(&Outbound::new(Audience::Everyone, 0, frame));
    }

    /// Sends the presence changes gathered since the last call as deltas
    /// to delta clients, and the whole list (sorted by key) to list clients
    /// when it has changed and its pace allows (see
    /// [`presence::ListPace`]). Does nothing when nothing changed.
    pub(crate) fn flush_presence(&self) {
        let mut state = lock(&self.state);
        let changes = state.changes.take();
        if !changes.is_empty() {
            state.list_pace.changed();
        }
        let now = std::time::Instant::now();
        let recipients = state.list_clients;
        let list = (recipients > 0 && state.list_pace.is_due(now))
            .then(|| state.names.values().cloned().collect::<Vec<_>>());
        drop(state);
        // Encoded outside the lock: at 10,000 names a list is ~150 KB.
        let deltas = presence::delta_frames(&changes);
        let list = list.map(|usernames| encode(&ServerEvent::UpdateUsers { usernames }));

        let mut state = lock(&self.state);
        for frame in deltas {
            state.fan_out(&Outbound::new(
                Audience::Only(PresenceStyle::Delta),
                0,
                frame,
            ));
        }
        if let Some(frame) = list {
            state.list_pace.sent(now, frame.len(), recipients);
            state.fan_out(&Outbound::new(
                Audience::Only(PresenceStyle::List),
                0,
                frame,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
