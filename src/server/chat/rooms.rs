//! Every room with someone in it, on this process.
//!
//! The registry connections enter through. It is the same in every mode:
//! whatever decides ids and stores messages hands each message to its
//! room (the storage thread through [`Rooms::deliver_all`], a cluster's
//! subscriber through `Room::deliver_encoded`), and the room fans it out
//! to this process's sockets.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use super::{
    frame::PresenceStyle,
    lock,
    member::{Joiner, Place},
    room::{self, Entry, NameTaken, Room},
};
use crate::{protocol::ChatMessage, server::send_ring::SendRing};

/// A stored message on its way to its room, with who sent it.
pub(crate) struct Delivery {
    pub(crate) room: Arc<str>,
    /// The sender's name as its connection holds it (the same `Arc` as in
    /// the room's member list), so the room can tell the sender's socket.
    pub(crate) sender: Arc<str>,
    pub(crate) message: ChatMessage,
}

/// The senders' own copies of a delivery, held back until their messages
/// are on the disk (see [`Room::deliver_all`]). Dropping them unsent is
/// allowed: a sender then gets its messages when it next resumes.
#[must_use = "the senders get their messages only when these are sent"]
pub(crate) struct Echoes(Vec<(Arc<Room>, room::Echoes)>);

impl Echoes {
    /// Hands each sender its copies.
    pub(crate) fn send(self) {
        for (room, echoes) in self.0 {
            room.send_echoes(echoes);
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
pub(crate) struct Rooms {
    rooms: Mutex<HashMap<Arc<str>, Arc<Room>>>,
}

impl Rooms {
    /// The room named `name` (canonical), created if needed, with a joiner
    /// on its way in, so it stays while that joiner is busy elsewhere
    /// (reading the room's first page from storage, and in cluster mode
    /// subscribing to it first). The joiner then calls
    /// [`Rooms::enter_opened`] or [`Rooms::abandon`].
    pub(crate) fn open(&self, room: &str) -> Arc<Room> {
        let mut rooms = lock(&self.rooms);
        let room = get_or_create(&mut rooms, room);
        room.expect_joiner();
        room
    }

    /// The joiner of an [`Rooms::open`]ed room enters it (`claimed`: the
    /// cluster has given it the name, see [`Room::enter`]). On a refusal
    /// the room may be dropped (true).
    pub(crate) fn enter_opened(
        &self,
        room: &Arc<Room>,
        joiner: &Joiner,
        claimed: bool,
    ) -> Result<Entry, (NameTaken, bool)> {
        let entered = room.enter(joiner, claimed);
        let mut rooms = lock(&self.rooms);
        let empty = room.joiner_arrived();
        match entered {
            Ok(entry) => Ok(entry),
            Err(taken) => Err((taken, empty && unregister(&mut rooms, room))),
        }
    }

    /// The joiner of an [`Rooms::open`]ed room gave up; true if the room
    /// was dropped.
    pub(crate) fn abandon(&self, room: &Arc<Room>) -> bool {
        let mut rooms = lock(&self.rooms);
        room.joiner_arrived() && unregister(&mut rooms, room)
    }

    /// Takes `name` out of `room`, dropping the room if nobody on this
    /// process is in it any more; true if it was dropped.
    pub(crate) fn exit(
        &self,
        room: &Arc<Room>,
        name: &Arc<str>,
        style: PresenceStyle,
        place: Place,
    ) -> bool {
        let mut rooms = lock(&self.rooms);
        room.exit(name, style, place) && unregister(&mut rooms, room)
    }

    /// Hands stored messages, in id order, to their rooms: each room's run
    /// of them as one delivery (see [`Room::deliver_all`]). With
    /// `hold_echoes`, each message's sender is skipped, and gets the run
    /// when the returned [`Echoes`] are sent; without, everyone gets it
    /// now.
    /// `ring`: the calling thread's, for the rooms' fan-outs.
    pub(crate) fn deliver_all(
        &self,
        deliveries: Vec<Delivery>,
        hold_echoes: bool,
        ring: &mut SendRing,
    ) -> Echoes {
        let mut echoes = Vec::new();
        let mut deliveries = deliveries.into_iter().peekable();
        while let Some(first) = deliveries.next() {
            let name = first.room;
            let mut senders = Vec::new();
            let mut hold = |sender: Arc<str>| {
                if hold_echoes && !senders.iter().any(|s| Arc::ptr_eq(s, &sender)) {
                    senders.push(sender);
                }
            };
            hold(first.sender);
            let mut run = vec![first.message];
            while let Some(next) = deliveries.next_if(|next| next.room == name) {
                hold(next.sender);
                run.push(next.message);
            }
            let room = lock(&self.rooms).get(&name).cloned();
            if let Some(room) = room
                && let Some(held) = room.deliver_all(run, &senders, ring)
            {
                echoes.push((room, held));
            }
        }
        Echoes(echoes)
    }

    /// Every room with people in it: `(name, online)`.
    pub(crate) fn online(&self) -> Vec<(Arc<str>, usize)> {
        let rooms: Vec<Arc<Room>> = lock(&self.rooms).values().cloned().collect();
        rooms
            .into_iter()
            .map(|room| (Arc::clone(room.name()), room.online()))
            .filter(|(_, online)| *online > 0)
            .collect()
    }

    /// How many people are connected, over all rooms.
    pub(crate) fn len(&self) -> usize {
        let rooms: Vec<Arc<Room>> = lock(&self.rooms).values().cloned().collect();
        rooms.iter().map(|room| room.local()).sum()
    }

    /// Flushes every room's presence changes.
    pub(crate) fn flush_presence(&self) {
        let rooms: Vec<Arc<Room>> = lock(&self.rooms).values().cloned().collect();
        for room in rooms {
            room.flush_presence();
        }
    }
}

/// The registered room named `name`, created and registered if there is
/// none.
fn get_or_create(rooms: &mut HashMap<Arc<str>, Arc<Room>>, name: &str) -> Arc<Room> {
    if let Some(room) = rooms.get(name) {
        return Arc::clone(room);
    }
    let room = Arc::new(Room::new(Arc::from(name)));
    rooms.insert(Arc::clone(room.name()), Arc::clone(&room));
    room
}

/// Unregisters `room` — only if the registered room is this one: a room
/// that emptied earlier may already have been replaced. True if it was.
fn unregister(rooms: &mut HashMap<Arc<str>, Arc<Room>>, room: &Arc<Room>) -> bool {
    if rooms.get(room.name()).is_some_and(|r| Arc::ptr_eq(r, room)) {
        rooms.remove(room.name());
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        protocol::{HISTORY_PAGE, ServerEvent},
        server::chat::{
            frame::{Audience, Outbound},
            member::Recipient,
        },
    };

    fn name(n: &str) -> Arc<str> {
        Arc::from(n)
    }

    use crate::test_support::message;

    /// How a joiner enters: opens the room, then enters it (the page, if
    /// any, is primed in between by the engine, which these tests do by
    /// hand).
    fn enter(rooms: &Rooms, room: &str, joiner: &Joiner) -> Result<(Arc<Room>, Entry), NameTaken> {
        let opened = rooms.open(room);
        let entry = rooms
            .enter_opened(&opened, joiner, false)
            .map_err(|(taken, _)| taken)?;
        Ok((opened, entry))
    }

    /// Delivers message `id` to `room`, from someone not in it.
    fn deliver(rooms: &Rooms, room: &str, id: u64) {
        let delivery = Delivery {
            room: name(room),
            sender: name("someone"),
            message: message(id),
        };
        rooms
            .deliver_all(vec![delivery], false, &mut SendRing::new())
            .send();
    }

    /// A member that keeps what it is handed.
    #[derive(Default)]
    struct Inbox(Mutex<Vec<Outbound>>);

    impl Recipient for Inbox {
        fn offer(&self, event: &Outbound) -> u64 {
            lock(&self.0).push(event.clone());
            1
        }
    }

    /// A member of `style` whose events land in `inbox`.
    struct Member {
        joiner: Joiner,
        inbox: Arc<Inbox>,
    }

    fn member(n: &str, style: PresenceStyle) -> Member {
        let inbox = Arc::new(Inbox::default());
        Member {
            joiner: Joiner {
                name: name(n),
                style,
                recipient: Arc::clone(&inbox) as Arc<dyn Recipient>,
            },
            inbox,
        }
    }

    fn list(n: &str) -> Joiner {
        member(n, PresenceStyle::List).joiner
    }

    fn delta(n: &str) -> Joiner {
        member(n, PresenceStyle::Delta).joiner
    }

    /// What `member` was handed since the last call.
    fn frames(member: &Member) -> Vec<(Audience, String)> {
        std::mem::take(&mut *lock(&member.inbox.0))
            .into_iter()
            .map(|event| (event.audience, event.frame.to_string()))
            .collect()
    }

    #[test]
    fn a_name_is_taken_in_its_room_only_until_its_holder_leaves() {
        let rooms = Rooms::default();
        let (red, first) = enter(&rooms, "red", &list("alice")).unwrap();
        assert_eq!(first.names, [name("alice")]);
        let err = enter(&rooms, "red", &delta("alice")).err().unwrap();
        assert_eq!(err.to_string(), "Username alice is already taken");
        assert!(enter(&rooms, "blue", &list("alice")).is_ok());
        rooms.exit(&red, &name("alice"), PresenceStyle::List, first.place);
        let (_, again) = enter(&rooms, "red", &list("alice")).unwrap();
        assert_eq!(again.names, [name("alice")]);
    }

    #[test]
    fn names_that_differ_only_in_case_or_width_are_one_name() {
        let rooms = Rooms::default();
        let (red, alice) = enter(&rooms, "red", &list("Alice")).unwrap();
        for same in ["alice", "ALICE", "Ａlice", " alice"] {
            let err = enter(&rooms, "red", &list(same)).err().expect(same);
            assert_eq!(err.to_string(), format!("Username {same} is already taken"));
        }
        // Leaving under another spelling frees nothing; the holder's own
        // leave does, and the room's presence log says who left.
        let (_, other) = enter(&rooms, "blue", &list("alice")).unwrap();
        rooms.exit(&red, &name("alice"), PresenceStyle::List, other.place);
        assert_eq!(red.online(), 1);
        rooms.exit(&red, &name("Alice"), PresenceStyle::List, alice.place);
        assert_eq!(red.online(), 0);
        assert!(enter(&rooms, "red", &list("alice")).is_ok());
    }

    #[test]
    fn the_user_list_is_sorted_regardless_of_case_and_shows_names_as_typed() {
        let rooms = Rooms::default();
        let watcher = member("bob", PresenceStyle::List);
        enter(&rooms, "r", &watcher.joiner).unwrap();
        let _zed = enter(&rooms, "r", &list("Zed")).unwrap();
        let (_, carol) = enter(&rooms, "r", &list("Carol")).unwrap();
        assert_eq!(carol.names, [name("bob"), name("Carol"), name("Zed")]);
        rooms.flush_presence();
        assert_eq!(
            frames(&watcher).last().map(|(_, f)| f.clone()),
            Some(r#"{"event":"update-users","usernames":["bob","Carol","Zed"]}"#.to_string())
        );
    }

    #[test]
    fn deliveries_reach_members_in_order_and_fill_the_latest_page() {
        let rooms = Rooms::default();
        let a = member("a", PresenceStyle::Delta);
        let (room, entry) = enter(&rooms, "r", &a.joiner).unwrap();
        assert!(entry.latest.is_none(), "not primed from storage yet");
        deliver(&rooms, "r", 5);
        deliver(&rooms, "nowhere", 6);
        deliver(&rooms, "r", 7);
        let ids: Vec<_> = lock(&a.inbox.0).iter().map(|e| e.id).collect();
        assert_eq!(ids, [5, 7]);
        // Priming merges what storage had with what was delivered since.
        let (_, newest) = room.prime(vec![message(2), message(5)], true);
        assert_eq!(newest, 7);
        let (_, joiner) = enter(&rooms, "r", &delta("b")).unwrap();
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
    fn senders_get_their_batch_when_its_echoes_are_sent_and_in_order() {
        let rooms = Rooms::default();
        let alice = member("alice", PresenceStyle::Delta);
        let bob = member("bob", PresenceStyle::List);
        let carol = member("carol", PresenceStyle::Delta);
        let (room, alice_in) = enter(&rooms, "r", &alice.joiner).unwrap();
        enter(&rooms, "r", &bob.joiner).unwrap();
        enter(&rooms, "r", &carol.joiner).unwrap();
        let from = |sender: &Arc<str>, id| Delivery {
            room: name("r"),
            sender: Arc::clone(sender),
            message: message(id),
        };
        let ids = |m: &Member| -> Vec<u64> { lock(&m.inbox.0).iter().map(|e| e.id).collect() };
        // Bob and Alice sent; an equal name that is not a member's own
        // holds nobody back.
        let batch = vec![
            from(&bob.joiner.name, 1),
            from(&alice.joiner.name, 2),
            from(&name("carol"), 3),
        ];
        let echoes = rooms.deliver_all(batch, true, &mut SendRing::new());
        assert_eq!(ids(&carol), [1, 2, 3], "the others get it at once");
        assert!(ids(&alice).is_empty() && ids(&bob).is_empty());
        echoes.send();
        assert_eq!(ids(&alice), [1, 2, 3], "the whole batch, in order");
        assert_eq!(ids(&bob), [1, 2, 3]);

        // A sender who left before its echoes were sent gets nothing.
        let echoes = rooms.deliver_all(
            vec![from(&alice.joiner.name, 4)],
            true,
            &mut SendRing::new(),
        );
        rooms.exit(
            &room,
            &alice.joiner.name,
            PresenceStyle::Delta,
            alice_in.place,
        );
        echoes.send();
        assert_eq!(ids(&alice), [1, 2, 3]);
        assert_eq!(ids(&bob), [1, 2, 3, 4]);
    }

    #[test]
    fn the_latest_page_keeps_the_newest_messages() {
        let rooms = Rooms::default();
        let (room, _entry) = enter(&rooms, "r", &delta("a")).unwrap();
        room.prime(Vec::new(), false);
        for id in 1..=(HISTORY_PAGE as u64 + 3) {
            deliver(&rooms, "r", id);
        }
        let (_, joiner) = enter(&rooms, "r", &delta("b")).unwrap();
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
        let deltas = member("watcher", PresenceStyle::Delta);
        let lists = member("lister", PresenceStyle::List);
        enter(&rooms, "r", &deltas.joiner).unwrap();
        enter(&rooms, "r", &lists.joiner).unwrap();
        let (room, a) = enter(&rooms, "r", &list("a")).unwrap();
        let _b = enter(&rooms, "r", &list("b")).unwrap();
        rooms.exit(&room, &name("a"), PresenceStyle::List, a.place);
        rooms.flush_presence();
        let delta = Audience::Only(PresenceStyle::Delta);
        assert_eq!(
            frames(&deltas),
            [
                (
                    delta,
                    r#"{"event":"user-joined","usernames":["watcher","lister","a","b"]}"#
                        .to_string()
                ),
                (
                    delta,
                    r#"{"event":"user-left","usernames":["a"]}"#.to_string()
                ),
            ]
        );
        assert_eq!(
            frames(&lists),
            [(
                Audience::Only(PresenceStyle::List),
                r#"{"event":"update-users","usernames":["b","lister","watcher"]}"#.to_string()
            )]
        );
        rooms.flush_presence();
        assert!(frames(&deltas).is_empty(), "nothing changed");
        assert!(frames(&lists).is_empty(), "nothing changed");
    }

    #[test]
    fn an_emptied_room_is_dropped_and_counts_stay_right() {
        let rooms = Rooms::default();
        let (red, a) = enter(&rooms, "red", &list("a")).unwrap();
        let _blue = enter(&rooms, "blue", &list("b")).unwrap();
        assert_eq!(rooms.len(), 2);
        rooms.exit(&red, &name("a"), PresenceStyle::List, a.place);
        assert_eq!(rooms.len(), 1);
        assert_eq!(rooms.online(), [(name("blue"), 1)]);
    }
}
