//! What orders and keeps the messages: the part of the hub that differs
//! between one process and many.
//!
//! Everything above the hub (the WebSocket handler, connections) and
//! everything below it that is per process (the rooms and their members) is
//! the same in every mode. What is not: who assigns a message its id, where
//! it is kept, where history is read from, and who else must agree before a
//! name is taken. Each mode is one variant here, with the same operations.
//!
//! An enum rather than a trait object: the operations are async, the set of
//! modes is closed, and a `match` costs nothing on the message path.
//!
//! The cluster's futures are boxed. A connection's task is one state
//! machine as large as the largest future it may ever await, so an unboxed
//! Redis round trip would make every idle connection bigger in every mode
//! (measured: +1.6 KiB per idle client at 10,000). Boxed, the embedded
//! default pays nothing and the cluster one allocation per operation.

use std::sync::Arc;

use super::JoinError;
use crate::{
    protocol::{ChatMessage, HISTORY_PAGE},
    server::{
        chat::{
            frame::PresenceStyle,
            member::{Joiner, Place},
            room::{Entry, NameTaken, Room},
            rooms::Rooms,
        },
        cluster::{Cluster, Seat},
        storage::{Append, StoreError, Stored, embedded::Embedded},
    },
};

/// The mode this process runs in. See the module docs.
pub(crate) enum Engine {
    /// One process, one SQLite file (or nothing kept): the default.
    Embedded(Embedded),
    /// Several processes through Redis and PostgreSQL (boxed: it is the
    /// larger by far, and there is one per process).
    Cluster(Box<Cluster>),
}

impl Engine {
    /// Puts `name` into `room` — in cluster mode only once every process
    /// agrees the name is free — and returns what the joiner gets. With
    /// `with_page` (the joiner is not resuming) its page is in
    /// [`Entry::latest`], taken with its entry; a resuming joiner reads
    /// what it missed instead, as its own events, and needs no page.
    ///
    /// Why the page is read before the joiner enters, not after: a joiner
    /// is listed the moment it enters, and someone who sees it listed and
    /// greets it must reach it as a `send-message`. Read afterwards, a
    /// page could already hold the greeting (the read runs on a blocking
    /// thread, and under load after the next commit), and the copy handed
    /// to the joiner was then dropped as a duplicate: shown inside
    /// `history`, which the tutorial's client never reads. In cluster
    /// mode the join is announced to the other processes only once it has
    /// entered here, for the same reason (a process that subscribes to the
    /// room meanwhile reads the user hash, and may list it a moment early).
    pub(crate) async fn enter(
        &self,
        rooms: &Rooms,
        room: &str,
        joiner: &Joiner,
        with_page: bool,
    ) -> Result<(Arc<Room>, Entry, Option<Seat>), JoinError> {
        match self {
            Engine::Embedded(_) => {
                let opened = rooms.open(room);
                if let Err(err) = self.prime(&opened, with_page).await {
                    rooms.abandon(&opened);
                    return Err(err.into());
                }
                match rooms.enter_opened(&opened, joiner, false) {
                    Ok(entry) => Ok((opened, entry, None)),
                    Err((taken, _)) => Err(taken.into()),
                }
            }
            Engine::Cluster(cluster) => {
                Box::pin(enter_cluster(self, cluster, rooms, room, joiner, with_page)).await
            }
        }
    }

    /// Reads `room`'s latest page into it, if `wanted` and it has none
    /// yet. Two joiners of a fresh room may both read; the first page
    /// installed counts (see [`Room::prime`]).
    async fn prime(&self, room: &Room, wanted: bool) -> Result<(), StoreError> {
        if wanted && !room.primed() {
            let (messages, more) = self.page(room.name(), None).await?;
            room.prime(messages, more);
        }
        Ok(())
    }

    /// The [`HISTORY_PAGE`] messages before `before` (the newest, if
    /// `None`), oldest first, and whether older ones exist: one more is
    /// read to find out.
    pub(crate) async fn page(
        &self,
        room: &Arc<str>,
        before: Option<u64>,
    ) -> Result<(Vec<ChatMessage>, bool), StoreError> {
        let mut messages = self.before(room, before, HISTORY_PAGE + 1).await?;
        let more = messages.len() > HISTORY_PAGE;
        if more {
            messages.remove(0);
        }
        Ok((messages, more))
    }

    /// Takes `name` out of `room` here and, in cluster mode, everywhere.
    pub(crate) fn leave(
        &self,
        rooms: &Rooms,
        room: &Arc<Room>,
        name: &Arc<str>,
        style: PresenceStyle,
        place: Place,
        seat: Option<Seat>,
    ) {
        let emptied = rooms.exit(room, name, style, place);
        if let Engine::Cluster(cluster) = self {
            if let Some(seat) = seat {
                cluster.release(room.name(), seat);
            }
            if emptied {
                cluster.unsubscribe(room);
            }
        }
    }

    /// Tells `room` (on every process) that `name` is typing.
    pub(crate) async fn typing(&self, room: &Room, name: &Arc<str>) {
        match self {
            Engine::Embedded(_) => room.typing(name),
            Engine::Cluster(cluster) => Box::pin(cluster.typing(room.name(), name)).await,
        }
    }

    /// Queues a message to be given an id, kept, and delivered to its room
    /// on every process. Waits while the engine is behind.
    pub(crate) async fn append(&self, room: &Room, append: Append) -> Result<(), StoreError> {
        match self {
            Engine::Embedded(embedded) => embedded.append(append).await,
            // The id goes above the newest this process has shown in the
            // room (see `Cluster::append`); the embedded store needs no such
            // floor, so only the cluster takes the room's lock for it.
            Engine::Cluster(cluster) => Box::pin(cluster.append(append, room.newest())).await,
        }
    }

    /// The newest `limit` messages of `room` before `before` (or the newest
    /// of all), oldest first.
    pub(crate) async fn before(
        &self,
        room: &Arc<str>,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        match self {
            Engine::Embedded(embedded) => messages(embedded.before(room, before, limit).await),
            Engine::Cluster(cluster) => Box::pin(cluster.before(room, before, limit)).await,
        }
    }

    /// The oldest `limit` messages of `room` after `since`, oldest first.
    pub(crate) async fn after(
        &self,
        room: &Arc<str>,
        since: u64,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        match self {
            Engine::Embedded(embedded) => messages(embedded.after(room, since, limit).await),
            Engine::Cluster(cluster) => Box::pin(cluster.after(room, since, limit)).await,
        }
    }

    /// Rooms by latest message, newest first: `(room, last id, ts ms)`.
    pub(crate) async fn recent_rooms(
        &self,
        limit: usize,
    ) -> Result<Vec<(String, u64, i64)>, StoreError> {
        match self {
            Engine::Embedded(embedded) => embedded.rooms(limit).await,
            Engine::Cluster(cluster) => Box::pin(cluster.recent_rooms(limit)).await,
        }
    }

    /// What `/healthz` reports beyond "ok": a dependency that is down.
    pub(crate) fn degraded(&self) -> Option<&'static str> {
        match self {
            Engine::Embedded(_) => None,
            Engine::Cluster(cluster) => (!cluster.healthy()).then_some("redis"),
        }
    }

    /// Keeps and delivers everything queued, then takes nothing more.
    pub(crate) async fn close(&self) {
        match self {
            Engine::Embedded(embedded) => embedded.close().await,
            Engine::Cluster(cluster) => Box::pin(cluster.close()).await,
        }
    }
}

/// [`Engine::enter`] in cluster mode: claim the name everywhere, subscribe
/// to the room, read its page if it has none (after subscribing: what is
/// published from then on is delivered into the room, what was before is
/// in the log the page is read from), enter it here, then announce the
/// join to the other processes.
async fn enter_cluster(
    engine: &Engine,
    cluster: &Cluster,
    rooms: &Rooms,
    room: &str,
    joiner: &Joiner,
    with_page: bool,
) -> Result<(Arc<Room>, Entry, Option<Seat>), JoinError> {
    let Some(seat) = cluster.claim(room, &joiner.name).await? else {
        return Err(NameTaken(joiner.name.to_string()).into());
    };
    let opened = rooms.open(room);
    let ready = match cluster.subscribe(&opened).await {
        Ok(()) => engine.prime(&opened, with_page).await,
        Err(err) => Err(err),
    };
    if let Err(err) = ready {
        cluster.release(room, seat);
        if rooms.abandon(&opened) {
            cluster.unsubscribe(&opened);
        }
        return Err(err.into());
    }
    let entry = match rooms.enter_opened(&opened, joiner, true) {
        Ok(entry) => entry,
        Err((taken, dropped)) => {
            cluster.release(room, seat);
            if dropped {
                cluster.unsubscribe(&opened);
            }
            return Err(taken.into());
        }
    };
    let announced = match cluster.announce(room, &joiner.name, &seat).await {
        Ok(true) => Ok(()),
        // The seat was freed meanwhile (this process shutting down, or a
        // takeover while its subscription reconnected).
        Ok(false) => Err(StoreError::Unavailable),
        Err(err) => Err(err),
    };
    if let Err(err) = announced {
        // Unlisted elsewhere, it would hear the others but be invisible to
        // them: out again, and the client tries later (1013).
        engine.leave(
            rooms,
            &opened,
            &joiner.name,
            joiner.style,
            entry.place,
            Some(seat),
        );
        return Err(err.into());
    }
    Ok((opened, entry, Some(seat)))
}

fn messages(stored: Result<Vec<Stored>, StoreError>) -> Result<Vec<ChatMessage>, StoreError> {
    Ok(stored?.into_iter().map(Stored::into_message).collect())
}
