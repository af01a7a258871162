//! WAL checkpoints off the commit path.
//!
//! In WAL mode a commit appends pages to the `-wal` file; a checkpoint
//! copies them back into the database file so the WAL can start over.
//! SQLite's default runs the checkpoint inside the commit that takes the
//! WAL past 1,000 pages. With `synchronous = FULL` that commit then also
//! writes the pages into the database and waits for two more fsyncs (the
//! WAL's, the database's): at a chat's pace, about one message in 250
//! reached its whole room several milliseconds late, and with 1,000
//! listeners that single message is a thousand of the slowest deliveries
//! a benchmark's p99 counts (issue 12).
//!
//! So the writer turns automatic checkpoints off (`wal_autocheckpoint =
//! 0`) and tells this module's thread after each commit how many messages
//! it held. The thread, on a connection of its own, runs a PASSIVE
//! checkpoint — one that never waits for, nor blocks, the writer or the
//! readers — once about as much has gathered as SQLite's default would let
//! gather, or once the writer has been quiet for [`QUIET`], so that an idle
//! server leaves a short WAL behind. Durability does not change: a commit
//! is on disk when its fsync of the WAL returns, checkpointed or not.
//!
//! The thread ends when the writer is dropped, after a last checkpoint.

use std::{
    path::Path,
    sync::mpsc::{self, RecvTimeoutError, SyncSender},
    time::Duration,
};

use rusqlite::Connection;
use tracing::{debug, warn};

use super::StoreError;

/// Commits that may gather in the WAL before a checkpoint: a message alone
/// writes about four pages, so this is SQLite's own 1,000-page default at
/// a chat's pace.
const MAX_COMMITS: usize = 250;
/// Messages that may gather before a checkpoint, for busy batches, whose
/// messages share pages (a batch of 1,024 writes far fewer than 4,096).
const MAX_MESSAGES: usize = 1_000;
/// A writer quiet this long has its WAL checkpointed.
pub(super) const QUIET: Duration = Duration::from_secs(1);
/// Commit notes the thread may lag behind by; beyond that the writer drops
/// them rather than ever waiting here (the next note or quiet spell still
/// triggers a checkpoint).
const NOTES: usize = 1_024;

/// The writer's side: tells the checkpoint thread what was committed.
pub(super) struct Committed {
    notes: SyncSender<usize>,
}

impl Committed {
    /// A commit of `messages` messages has returned.
    pub(super) fn note(&self, messages: usize) {
        let _ = self.notes.try_send(messages);
    }
}

/// Opens the checkpoint thread's own connection to the database at `path`
/// (already created and migrated) and starts the thread.
pub(super) fn start(path: &Path) -> Result<Committed, StoreError> {
    let conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source: Box::new(source),
    })?;
    let (notes, received) = mpsc::sync_channel(NOTES);
    std::thread::Builder::new()
        .name("checkpoint".into())
        .spawn(move || run(&conn, &received))
        .map_err(StoreError::Thread)?;
    Ok(Committed { notes })
}

fn run(conn: &Connection, notes: &mpsc::Receiver<usize>) {
    let (mut commits, mut messages) = (0, 0);
    loop {
        let note = if commits == 0 {
            // Nothing waits in the WAL: sleep until something does.
            notes.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            notes.recv_timeout(QUIET)
        };
        match note {
            Ok(held) => {
                commits += 1;
                messages += held;
                if commits < MAX_COMMITS && messages < MAX_MESSAGES {
                    continue;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                if commits > 0 {
                    checkpoint(conn);
                }
                return;
            }
        }
        checkpoint(conn);
        (commits, messages) = (0, 0);
    }
}

/// One PASSIVE checkpoint. A failure is logged and left for the next one:
/// the WAL only grows meanwhile, nothing is lost.
fn checkpoint(conn: &Connection) {
    let started = std::time::Instant::now();
    let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
    });
    match done {
        Ok((frames, copied)) => {
            debug!(frames, copied, took = ?started.elapsed(), "checkpointed the WAL");
        }
        Err(err) => warn!(%err, "could not checkpoint the WAL; will try again"),
    }
}

#[cfg(test)]
mod tests {
    use std::{path::Path, sync::Arc, time::Instant};

    use rusqlite::Connection;

    use super::super::{Append, sqlite};
    use crate::server::config::SqliteSync;

    /// How many messages a copy of the database file holds on its own,
    /// without the WAL beside it: what has been checkpointed (none, while
    /// even the schema is only in the WAL).
    fn in_file_alone(data: &Path, scratch: &Path) -> i64 {
        let copy = tempfile::tempdir_in(scratch).expect("scratch dir");
        let file = copy.path().join("alone.sqlite3");
        std::fs::copy(data.join(sqlite::FILE_NAME), &file).expect("copy the file");
        let conn = Connection::open(&file).expect("open the copy");
        conn.query_row("SELECT count(*) FROM messages", [], |row| row.get(0))
            .unwrap_or(0)
    }

    #[test]
    fn commits_stay_in_the_wal_until_the_writer_is_quiet_then_reach_the_file() {
        let data = tempfile::tempdir().expect("data dir");
        let scratch = tempfile::tempdir().expect("scratch dir");
        let (mut writer, _reader) = sqlite::open(data.path(), SqliteSync::Full).expect("open");
        let (reply, _replies) = tokio::sync::mpsc::channel(1);
        for n in 0..3 {
            let append = Append {
                room: Arc::from("lobby"),
                username: Arc::from("ada"),
                message: format!("message {n}"),
                client_id: None,
                reply: reply.clone(),
            };
            writer.append(&[append], 0).expect("append");
        }
        // No commit checkpointed itself: the file alone has none of them.
        assert_eq!(in_file_alone(data.path(), scratch.path()), 0);
        let deadline = Instant::now() + super::QUIET * 5;
        while in_file_alone(data.path(), scratch.path()) < 3 {
            assert!(
                Instant::now() < deadline,
                "no checkpoint after a quiet spell"
            );
            std::thread::sleep(super::QUIET / 10);
        }
    }
}
