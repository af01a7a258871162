//! The embedded engine: every message is committed before anyone is
//! shown it, and on the disk before its sender is told it was sent.
//!
//! Connections hand messages to one storage thread through a bounded
//! channel. The thread takes whatever has queued up (up to
//! [`MAX_BATCH`]), writes it in one transaction, and only after the commit
//! hands each message to its room for broadcast; the senders' own copies
//! wait for the fsync (see [`commit`]). So:
//!
//! - a message anyone saw on screen is committed (a crash of this process
//!   cannot take it back), and one its sender saw sent is on the disk;
//! - ids are assigned in commit order by one thread, and each room receives
//!   them in that order: strictly increasing, no reordering to undo;
//! - storage does not cap throughput: under load batches grow, and one
//!   commit (one fsync) carries hundreds of messages. When idle, a batch
//!   is one message and adds one commit's latency;
//! - a storage that cannot keep up fills the channel, and senders wait at
//!   `append` — backpressure on the senders, never unbounded memory.
//!
//! A plain thread rather than a task: SQLite calls block, and a thread
//! that owns its connection needs no locking around it.
//!
//! With `storage = off` the same thread assigns ids and delivers, keeping
//! nothing, so the cost of SQLite can be measured against exactly the same
//! path without it.

use std::{
    path::Path,
    sync::{Arc, Mutex},
    thread::JoinHandle,
};

use time::OffsetDateTime;
use tokio::sync::mpsc;
use tracing::{error, info};

use super::{Append, StoreError, Stored, format_ts, now_ms, sqlite};
use crate::{
    protocol::{ChatMessage, ServerEvent},
    server::{
        chat::{
            frame::{Reply, encode},
            rooms::{Delivery, Rooms},
        },
        config::{SqliteSync, StorageKind},
        metrics,
        send_ring::SendRing,
    },
};

/// Most messages in one transaction. Large enough that a commit's fixed
/// cost (the fsync) is shared widely under load, small enough that one
/// batch never holds the thread for long.
pub(crate) const MAX_BATCH: usize = 1024;
/// Messages waiting for the storage thread before senders are made to wait.
const QUEUE: usize = 8192;

enum Command {
    Append(Append),
    /// Store what is queued before this, then stop.
    Close,
}

/// What the storage thread writes with.
enum Writer {
    Sqlite(sqlite::Writer),
    /// Nothing is kept; ids only need to increase, also across restarts,
    /// so they continue from the clock (microseconds since the epoch).
    Off {
        next_id: u64,
    },
}

impl Writer {
    /// Whether [`Writer::sync`] does anything (`sqlite-sync = full`): the
    /// senders' own copies then wait for it.
    fn syncs(&self) -> bool {
        matches!(self, Writer::Sqlite(sqlite) if sqlite.syncs())
    }

    /// Waits until everything committed is on the disk.
    fn sync(&mut self) -> std::io::Result<()> {
        match self {
            Writer::Sqlite(sqlite) => sqlite.sync(),
            Writer::Off { .. } => Ok(()),
        }
    }
}

/// The embedded engine's handle. See the module docs.
pub(crate) struct Embedded {
    commands: mpsc::Sender<Command>,
    reader: Option<Arc<sqlite::Reader>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Embedded {
    /// Opens storage and starts its thread, which delivers each stored
    /// message to its room in `rooms`.
    pub(crate) fn open(
        kind: StorageKind,
        sync: SqliteSync,
        data_dir: &Path,
        rooms: Arc<Rooms>,
    ) -> Result<Self, StoreError> {
        let (writer, reader) = match kind {
            StorageKind::Sqlite => {
                let (writer, reader) = sqlite::open(data_dir, sync)?;
                (Writer::Sqlite(writer), Some(Arc::new(reader)))
            }
            StorageKind::Off => {
                let micros = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000;
                (
                    Writer::Off {
                        next_id: u64::try_from(micros).unwrap_or(1),
                    },
                    None,
                )
            }
        };
        let (commands, queue) = mpsc::channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("storage".into())
            .spawn(move || run(writer, queue, rooms))
            .map_err(StoreError::Thread)?;
        Ok(Embedded {
            commands,
            reader,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues a message for storage and broadcast. Waits while the queue
    /// is full.
    pub(crate) async fn append(&self, append: Append) -> Result<(), StoreError> {
        self.commands
            .send(Command::Append(append))
            .await
            .map_err(|_| StoreError::Closed)
    }

    /// The newest `limit` messages of `room` before `before` (or the
    /// newest of all), oldest first.
    pub(crate) async fn before(
        &self,
        room: &Arc<str>,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        let room = Arc::clone(room);
        self.read(move |reader| reader.before(&room, before, limit))
            .await
    }

    /// The oldest `limit` messages of `room` after `since`, oldest first.
    pub(crate) async fn after(
        &self,
        room: &Arc<str>,
        since: u64,
        limit: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        let room = Arc::clone(room);
        self.read(move |reader| reader.after(&room, since, limit))
            .await
    }

    /// Rooms by latest message, newest first: `(room, last id, ts ms)`.
    pub(crate) async fn rooms(&self, limit: usize) -> Result<Vec<(String, u64, i64)>, StoreError> {
        self.read(move |reader| reader.rooms(limit)).await
    }

    async fn read<T: Default + Send + 'static>(
        &self,
        query: impl FnOnce(&sqlite::Reader) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let Some(reader) = self.reader.clone() else {
            return Ok(T::default());
        };
        tokio::task::spawn_blocking(move || query(&reader))
            .await
            .map_err(|_| StoreError::Closed)?
    }

    /// Stores everything queued so far, then stops the thread. Later
    /// appends fail with [`StoreError::Closed`].
    pub(crate) async fn close(&self) {
        let _ = self.commands.send(Command::Close).await;
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            // Joined from a plain thread, not `spawn_blocking`: if shutdown's
            // deadline gives up on this wait, the runtime must not then wait
            // for the join at exit, with no deadline at all.
            let (joined, done) = tokio::sync::oneshot::channel();
            let spawned = std::thread::Builder::new()
                .name("storage-join".into())
                .spawn(move || {
                    let _ = thread.join();
                    let _ = joined.send(());
                });
            if spawned.is_ok() {
                let _ = done.await;
            }
        }
    }
}

/// The storage thread. See the module docs.
fn run(mut writer: Writer, mut commands: mpsc::Receiver<Command>, rooms: Arc<Rooms>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // This thread fans every message out: its sends go to the kernel a
    // room at a time through its own ring.
    let mut ring = SendRing::new();
    while let Some(command) = commands.blocking_recv() {
        let mut closing = false;
        match command {
            Command::Append(append) => batch.push(append),
            Command::Close => closing = true,
        }
        while !closing && batch.len() < MAX_BATCH {
            match commands.try_recv() {
                Ok(Command::Append(append)) => batch.push(append),
                Ok(Command::Close) => closing = true,
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit(&mut writer, &mut batch, &rooms, &mut ring);
        }
        if closing {
            if let Writer::Sqlite(sqlite) = &mut writer {
                sqlite.close();
            }
            info!("storage closed");
            return;
        }
    }
}

/// Writes one batch and delivers what was written; on failure tells each
/// sender that its message was not sent.
///
/// With `sqlite-sync = full` the room is shown the batch once it is
/// committed (written to the WAL, which a crash of this process cannot
/// undo), and the senders' own copies follow the fsync: the fsync's
/// latency, 1–2 ms and sometimes far more on a virtual disk, is then the
/// sender's alone, while a message its sender saw sent is on the disk (see
/// `super::sqlite`).
fn commit(writer: &mut Writer, batch: &mut Vec<Append>, rooms: &Rooms, ring: &mut SendRing) {
    let ts = now_ms();
    let started = std::time::Instant::now();
    let ids = match writer {
        Writer::Sqlite(sqlite) => sqlite.append(batch, ts),
        Writer::Off { next_id } => Ok(batch
            .iter()
            .map(|_| {
                *next_id += 1;
                Some(*next_id)
            })
            .collect()),
    };
    metrics::commit(started.elapsed());
    let ids = match ids {
        Ok(ids) => ids,
        Err(err) => {
            error!(%err, messages = batch.len(), "could not store messages; they were not sent");
            refuse(
                batch.drain(..).map(|append| append.reply),
                "Your message could not be saved, so it was not sent. Try again.",
            );
            return;
        }
    };
    let ts = format_ts(ts);
    let syncs = writer.syncs();
    let mut deliveries = Vec::with_capacity(batch.len());
    // Only needed to tell the senders if the fsync fails.
    let mut senders = Vec::new();
    for (append, id) in batch.drain(..).zip(ids) {
        // `None`: a resend of a message stored earlier. Its first copy was
        // delivered then; the sender gets it on resuming.
        let Some(id) = id else { continue };
        metrics::accepted();
        let message = ChatMessage {
            username: append.username.to_string(),
            message: append.message,
            id,
            ts: ts.clone(),
            client_id: append.client_id,
        };
        deliveries.push(Delivery {
            room: append.room,
            sender: append.username,
            message,
        });
        if syncs {
            senders.push(append.reply);
        }
    }
    // The batch as one delivery: a busy room's members then get its
    // messages in one write each, not one write per message.
    let echoes = rooms.deliver_all(deliveries, syncs, ring);
    if !syncs {
        echoes.send();
        return;
    }
    let started = std::time::Instant::now();
    let synced = writer.sync();
    metrics::sync(started.elapsed());
    match synced {
        Ok(()) => echoes.send(),
        Err(err) => {
            // The others have seen it, and SQLite has it; the disk may not.
            error!(%err, messages = senders.len(), "could not sync the message database");
            refuse(
                senders.into_iter(),
                "Your message was shown, but the server could not save it to disk: \
                 it may be lost if the server restarts.",
            );
        }
    }
}

/// Tells each sender, through its own queue, why its message failed.
fn refuse(senders: impl Iterator<Item = mpsc::Sender<Reply>>, message: &str) {
    let frame = encode(&ServerEvent::Error {
        message: message.to_string(),
    });
    for sender in senders {
        let _ = sender.try_send(Reply::Frame(frame.clone()));
    }
}
