//! The embedded message store: one SQLite file in the data directory.
//!
//! Two connections, because SQLite in WAL mode lets readers run beside one
//! writer but never two writers: the [`Writer`] belongs to the storage
//! thread and does nothing but group commits; the [`Reader`] answers history
//! queries from tasks, behind a mutex, on the blocking pool.
//!
//! By default (`sqlite-sync = full`) a message's sender is told it was sent
//! only once the WAL holding it is on the disk, so "sent" means stored even
//! across a power cut, not just a crash of this process. Group commit is
//! what makes that affordable in throughput: one fsync per batch, however
//! many messages the batch holds.
//!
//! Latency is another matter, and the reason the fsync is the writer's own
//! step ([`Writer::sync`]) rather than SQLite's: a virtual disk's flush
//! takes 1–2 ms, and one in ten takes 5 ms or more. The commit itself
//! writes the WAL (`synchronous = NORMAL`), which a crash of this process
//! cannot undo; the room is shown the batch at once, and the fsync runs
//! after, before the senders' own copies go out (see
//! `super::embedded`). Only a power cut in those few milliseconds could
//! take back a message others saw — and then its sender never saw it sent,
//! Banter's client sends it again, and ids after such a restart start past
//! any that can have been shown ([`MAX_UNSYNCED`]), so none is reused.
//!
//! `sqlite-sync = normal` skips the fsync (written to the OS, synced at
//! checkpoints) for those who prefer it; see the README.

use std::{
    fs::File,
    io,
    path::{Path, PathBuf},
    sync::Mutex,
};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};

use super::{Append, StoreError, Stored, checkpoint};
use crate::server::config::SqliteSync;

/// The database file inside the data directory.
pub(crate) const FILE_NAME: &str = "banter.sqlite3";

/// Ids a restart after a crash skips: at most one batch is ever committed
/// but not yet synced (the storage thread syncs each before it takes the
/// next), so this many covers every id that a power cut can have taken back
/// after the room was shown it. Ids only need to increase; a gap is
/// harmless, a reused id would make a resuming client skip a message.
pub(crate) const MAX_UNSYNCED: i64 = 1024;

/// The schema, one migration per change, applied in order at start. The
/// version lives in SQLite's `user_version`, so there is no table to keep.
const MIGRATIONS: &[M<'static>] = &[M::up(
    "CREATE TABLE messages (
        -- AUTOINCREMENT: an id is never reused, even after the newest rows
        -- are deleted, so ids keep increasing across restarts and `since`
        -- can never point at a different message.
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        room TEXT NOT NULL,
        username TEXT NOT NULL,
        body TEXT NOT NULL,
        client_id TEXT,
        -- Milliseconds since the Unix epoch, UTC.
        ts INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX messages_by_room ON messages (room, id);
    -- A message resent after a reconnect carries the same client id and
    -- is dropped here, atomically with the insert that would duplicate it.
    CREATE UNIQUE INDEX messages_once ON messages (room, username, client_id)
        WHERE client_id IS NOT NULL;
    -- Each room's latest message, kept with every insert, so listing rooms
    -- never scans the messages.
    CREATE TABLE rooms (
        room TEXT PRIMARY KEY,
        last_id INTEGER NOT NULL,
        last_ts INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;",
)];

/// Opens (creating if needed) and migrates the database, returning the
/// storage thread's writer and the query side.
pub(crate) fn open(data_dir: &Path, sync: SqliteSync) -> Result<(Writer, Reader), StoreError> {
    let path = data_dir.join(FILE_NAME);
    let wal = data_dir.join(format!("{FILE_NAME}-wal"));
    let at = |source: rusqlite::Error| StoreError::Open {
        path: path.clone(),
        source: Box::new(source),
    };
    // A WAL with something in it: the last run did not stop cleanly (a
    // clean stop empties it, `Writer::close`).
    let crashed = std::fs::metadata(&wal).is_ok_and(|meta| meta.len() > 0);
    let mut conn = Connection::open(&path).map_err(at)?;
    // The commit only writes; `Writer::sync` does FULL's fsync itself.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA busy_timeout = 5000;
         PRAGMA wal_autocheckpoint = 0;",
    )
    .map_err(at)?;
    Migrations::from_slice(MIGRATIONS)
        .to_latest(&mut conn)
        .map_err(|source| StoreError::Open {
            path: path.clone(),
            source: Box::new(source),
        })?;
    if crashed {
        conn.execute(
            "UPDATE sqlite_sequence SET seq = seq + ?1 WHERE name = 'messages'",
            [MAX_UNSYNCED],
        )
        .map_err(at)?;
    }
    let reader = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(at)?;
    reader
        .busy_timeout(std::time::Duration::from_secs(5))
        .map_err(at)?;
    let committed = checkpoint::start(&path)?;
    let durable = match sync {
        SqliteSync::Full => Some(Wal {
            path: wal,
            file: None,
        }),
        SqliteSync::Normal => None,
    };
    Ok((
        Writer {
            conn,
            committed,
            durable,
        },
        Reader {
            conn: Mutex::new(reader),
            path,
        },
    ))
}

/// The WAL, as the writer syncs it: opened at the first sync (SQLite
/// creates it at the first commit) and kept. An fsync on any descriptor
/// of a file flushes the whole file, whoever wrote it.
struct Wal {
    path: PathBuf,
    file: Option<File>,
}

/// The storage thread's connection.
pub(crate) struct Writer {
    conn: Connection,
    /// Checkpoints happen on their own thread, not in a commit (see
    /// [`checkpoint`]).
    committed: checkpoint::Committed,
    /// `sqlite-sync = full`: the WAL to sync after each commit.
    durable: Option<Wal>,
}

impl Writer {
    /// Inserts a batch in one transaction. Per message: its new id, or
    /// `None` for a duplicate client id (already stored, not stored again).
    ///
    /// `BEGIN` and `COMMIT` are cached statements like the inserts, not
    /// rusqlite's `transaction()`, which parses both anew every time: at a
    /// chat's pace a batch is one message, and the parsing was a tenth of
    /// SQLite's time per commit (perf, issue 12).
    pub(crate) fn append(
        &mut self,
        batch: &[Append],
        ts: i64,
    ) -> rusqlite::Result<Vec<Option<u64>>> {
        self.conn.prepare_cached("BEGIN")?.execute([])?;
        let ids = self
            .insert(batch, ts)
            .and_then(|ids| self.conn.prepare_cached("COMMIT")?.execute([]).map(|_| ids));
        match ids {
            Ok(ids) => {
                self.committed.note(batch.len());
                Ok(ids)
            }
            Err(err) => {
                if !self.conn.is_autocommit()
                    && let Err(rollback) = self.conn.execute_batch("ROLLBACK")
                {
                    tracing::warn!(%rollback, "could not roll back a failed commit");
                }
                Err(err)
            }
        }
    }

    /// The inserts of [`Writer::append`], inside its transaction.
    fn insert(&self, batch: &[Append], ts: i64) -> rusqlite::Result<Vec<Option<u64>>> {
        let mut ids = Vec::with_capacity(batch.len());
        let mut insert = self.conn.prepare_cached(
            "INSERT INTO messages (room, username, body, client_id, ts)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT DO NOTHING
             RETURNING id",
        )?;
        for item in batch {
            let id: Option<i64> = insert
                .query_row(
                    params![
                        &*item.room,
                        &*item.username,
                        item.message,
                        item.client_id,
                        ts
                    ],
                    |row| row.get(0),
                )
                .optional()?;
            ids.push(id.map(|id| id as u64));
        }
        let mut touch = self.conn.prepare_cached(
            "INSERT INTO rooms (room, last_id, last_ts) VALUES (?1, ?2, ?3)
             ON CONFLICT (room) DO UPDATE SET last_id = excluded.last_id,
                 last_ts = excluded.last_ts",
        )?;
        // A room's row keeps only its newest id, and ids grow in batch
        // order: one upsert per room in the batch, its last message's, not
        // one per message (a busy room's batch holds hundreds).
        let mut touched = std::collections::HashSet::new();
        for (item, id) in batch.iter().zip(&ids).rev() {
            if let Some(id) = id
                && touched.insert(&*item.room)
            {
                touch.execute(params![&*item.room, *id as i64, ts])?;
            }
        }
        Ok(ids)
    }

    /// The last thing before stopping: copies the WAL into the file and
    /// empties it, which is how the next start knows this one stopped
    /// cleanly. If a reader is in the way the WAL stays, and the next
    /// start skips ids as after a crash: harmless.
    pub(crate) fn close(&mut self) {
        if let Err(err) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        {
            tracing::warn!(%err, "could not empty the WAL at stop");
        }
    }

    /// Whether [`Writer::sync`] syncs (`sqlite-sync = full`).
    pub(crate) fn syncs(&self) -> bool {
        self.durable.is_some()
    }

    /// Waits until what has been committed is on the disk (with
    /// `sqlite-sync = full`; a no-op with `normal`).
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        let Some(wal) = &mut self.durable else {
            return Ok(());
        };
        let file = match &mut wal.file {
            Some(file) => file,
            None => wal.file.insert(File::open(&wal.path)?),
        };
        file.sync_data()
    }
}

/// The query side.
pub(crate) struct Reader {
    conn: Mutex<Connection>,
    path: PathBuf,
}

/// The columns every history query selects, in [`row`]'s order.
const COLUMNS: &str = "id, username, body, client_id, ts";

fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Stored> {
    Ok(Stored {
        id: row.get::<_, i64>(0)? as u64,
        username: row.get(1)?,
        message: row.get(2)?,
        client_id: row.get(3)?,
        ts: row.get(4)?,
    })
}

impl Reader {
    fn query<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let run = || -> rusqlite::Result<Vec<T>> {
            let mut stmt = conn.prepare_cached(sql)?;
            let rows = stmt.query_map(params, map)?;
            rows.collect()
        };
        run().map_err(|source| StoreError::Query {
            path: self.path.clone(),
            source,
        })
    }

    /// The newest `limit` messages before `before` (all, if `None`),
    /// oldest first.
    pub(crate) fn before(
        &self,
        room: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        let before = before.map_or(i64::MAX, |id| id.min(i64::MAX as u64) as i64);
        let mut rows = self.query(
            &format!(
                "SELECT {COLUMNS} FROM messages WHERE room = ?1 AND id < ?2
                 ORDER BY id DESC LIMIT ?3"
            ),
            params![room, before, limit as i64],
            row,
        )?;
        rows.reverse();
        Ok(rows)
    }

    /// The oldest `limit` messages after `since`, oldest first.
    pub(crate) fn after(
        &self,
        room: &str,
        since: u64,
        limit: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        self.query(
            &format!(
                "SELECT {COLUMNS} FROM messages WHERE room = ?1 AND id > ?2
                 ORDER BY id LIMIT ?3"
            ),
            params![room, since.min(i64::MAX as u64) as i64, limit as i64],
            row,
        )
    }

    /// Up to `limit` messages of every room with an id above `after`, in
    /// id order, with their rooms: for copying the whole file elsewhere.
    pub(crate) fn all_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(String, Stored)>, StoreError> {
        self.query(
            &format!("SELECT room, {COLUMNS} FROM messages WHERE id > ?1 ORDER BY id LIMIT ?2"),
            params![after.min(i64::MAX as u64) as i64, limit as i64],
            |r| {
                Ok((
                    r.get(0)?,
                    Stored {
                        id: r.get::<_, i64>(1)? as u64,
                        username: r.get(2)?,
                        message: r.get(3)?,
                        client_id: r.get(4)?,
                        ts: r.get(5)?,
                    },
                ))
            },
        )
    }

    /// Rooms by their latest message, newest first: `(room, last id, ts)`.
    pub(crate) fn rooms(&self, limit: usize) -> Result<Vec<(String, u64, i64)>, StoreError> {
        self.query(
            "SELECT room, last_id, last_ts FROM rooms ORDER BY last_id DESC LIMIT ?1",
            params![limit as i64],
            |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?)),
        )
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::{path::Path, sync::Arc};

    use super::{FILE_NAME, MAX_UNSYNCED, open};
    use crate::server::{config::SqliteSync, storage::Append};

    /// Stores `text` as one batch and syncs it: its id.
    pub(in crate::server::storage) fn say(writer: &mut super::Writer, text: &str) -> u64 {
        let (reply, _replies) = tokio::sync::mpsc::channel(1);
        let append = Append {
            room: Arc::from("lobby"),
            username: Arc::from("ada"),
            message: text.to_string(),
            client_id: None,
            reply,
        };
        let ids = writer.append(&[append], 0).expect("append");
        writer.sync().expect("sync");
        ids[0].expect("a new id")
    }

    /// The data directory as a crash leaves it: the file and its WAL,
    /// copied while the server still has them open.
    fn crash_copy(data: &Path, to: &Path) {
        for name in [FILE_NAME.to_string(), format!("{FILE_NAME}-wal")] {
            std::fs::copy(data.join(&name), to.join(&name)).expect("copy");
        }
    }

    #[test]
    fn ids_after_a_crash_start_past_any_that_an_unsynced_batch_can_have_shown() {
        let data = tempfile::tempdir().expect("data dir");
        let (mut writer, _reader) = open(data.path(), SqliteSync::Full).expect("open");
        say(&mut writer, "one");
        let last = say(&mut writer, "two");
        let crashed = tempfile::tempdir().expect("crash dir");
        crash_copy(data.path(), crashed.path());

        let (mut writer, _reader) = open(crashed.path(), SqliteSync::Full).expect("reopen");
        let next = say(&mut writer, "after the crash");
        assert_eq!(next, last + MAX_UNSYNCED as u64 + 1);
    }

    #[test]
    fn ids_after_a_clean_close_carry_straight_on() {
        let data = tempfile::tempdir().expect("data dir");
        let (mut writer, reader) = open(data.path(), SqliteSync::Full).expect("open");
        let last = say(&mut writer, "before");
        // As the server stops: the writer closes, a reader may stay open.
        writer.close();
        drop(writer);
        let (mut writer, _reader) = open(data.path(), SqliteSync::Full).expect("reopen");
        drop(reader);
        assert_eq!(say(&mut writer, "after"), last + 1);
    }

    #[test]
    fn each_room_in_a_batch_lists_its_newest_message() {
        let data = tempfile::tempdir().expect("data dir");
        let (mut writer, reader) = open(data.path(), SqliteSync::Full).expect("open");
        let (reply, _replies) = tokio::sync::mpsc::channel(1);
        let batch: Vec<Append> = ["red", "blue", "red", "red", "blue", "green"]
            .into_iter()
            .map(|room| Append {
                room: Arc::from(room),
                username: Arc::from("ada"),
                message: format!("in {room}"),
                client_id: None,
                reply: reply.clone(),
            })
            .collect();
        let ids = writer.append(&batch, 7).expect("append");
        assert_eq!(ids, (1..=6).map(Some).collect::<Vec<_>>());
        let mut rooms = reader.rooms(10).expect("rooms");
        rooms.sort();
        assert_eq!(
            rooms,
            [
                ("blue".to_string(), 5, 7),
                ("green".to_string(), 6, 7),
                ("red".to_string(), 4, 7)
            ]
        );
    }

    #[test]
    fn at_most_one_batch_is_ever_unsynced() {
        assert!(MAX_UNSYNCED as usize >= super::super::embedded::MAX_BATCH);
    }
}
