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
//! 0`), and this module's thread, on a connection of its own, runs a
//! PASSIVE checkpoint — one that never waits for, nor blocks, the writer or
//! the readers — once about as much has gathered as SQLite's default would
//! let gather, or once the writer has been quiet for [`QUIET`], so that an
//! idle server leaves a short WAL behind. Durability does not change: a
//! commit is on disk when its fsync of the WAL returns, checkpointed or
//! not.
//!
//! The writer counts what it commits itself and wakes the thread only
//! twice a cycle: at the first commit after a checkpoint (something now
//! waits in the WAL) and when a cycle's worth has gathered. A wake per
//! commit would be a context switch on every message's path, at a chat's
//! pace one per message; the thread tells quiet from busy by a counter the
//! writer bumps, which it reads once per [`QUIET`].
//!
//! The thread ends when the writer is dropped, after a last checkpoint,
//! and the drop waits for it: with every connection closed SQLite removes
//! the WAL, which is how the next start tells a clean stop from a crash
//! (`super::sqlite::MAX_UNSYNCED`).

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc::{self, RecvTimeoutError, SyncSender},
    },
    thread::JoinHandle,
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

/// Why the writer woke the checkpoint thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Note {
    /// The first commit since the last cycle: the WAL holds something.
    Started,
    /// A cycle's worth has gathered: checkpoint now.
    Full,
}

/// The writer's side: counts what is committed and wakes the checkpoint
/// thread when it has something to do (see the module docs).
pub(super) struct Committed {
    /// `None` only while dropping.
    notes: Option<SyncSender<Note>>,
    thread: Option<JoinHandle<()>>,
    /// Bumped at every commit: the thread's sign that the writer is busy.
    commits: Arc<AtomicU64>,
    /// This cycle's commits and messages, the writer's alone.
    cycle_commits: usize,
    cycle_messages: usize,
}

impl Committed {
    /// A commit of `messages` messages has returned.
    pub(super) fn note(&mut self, messages: usize) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        if self.cycle_commits == 0 {
            self.wake(Note::Started);
        }
        self.cycle_commits += 1;
        self.cycle_messages += messages;
        if self.cycle_commits >= MAX_COMMITS || self.cycle_messages >= MAX_MESSAGES {
            self.wake(Note::Full);
            (self.cycle_commits, self.cycle_messages) = (0, 0);
        }
    }

    /// Never waits: a thread that has two notes unread already has all
    /// it needs to know.
    fn wake(&self, note: Note) {
        if let Some(notes) = &self.notes {
            let _ = notes.try_send(note);
        }
    }
}

impl Drop for Committed {
    /// Tells the thread to finish, and waits while it checkpoints and
    /// closes its connection.
    fn drop(&mut self) {
        self.notes = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Opens the checkpoint thread's own connection to the database at `path`
/// (already created and migrated) and starts the thread.
pub(super) fn start(path: &Path) -> Result<Committed, StoreError> {
    let conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source: Box::new(source),
    })?;
    let (notes, received) = mpsc::sync_channel(2);
    let commits = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&commits);
    let thread = std::thread::Builder::new()
        .name("checkpoint".into())
        .spawn(move || run(&conn, &received, &counted))
        .map_err(StoreError::Thread)?;
    Ok(Committed {
        notes: Some(notes),
        thread: Some(thread),
        commits,
        cycle_commits: 0,
        cycle_messages: 0,
    })
}

fn run(conn: &Connection, notes: &mpsc::Receiver<Note>, commits: &AtomicU64) {
    // Idle: nothing waits in the WAL until the writer says so.
    while notes.recv().is_ok() {
        let mut seen = commits.load(Ordering::Relaxed);
        loop {
            match notes.recv_timeout(QUIET) {
                Ok(Note::Full) => break,
                Ok(Note::Started) => {}
                Err(RecvTimeoutError::Timeout) => {
                    let now = commits.load(Ordering::Relaxed);
                    if now == seen {
                        break;
                    }
                    seen = now;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    checkpoint(conn);
                    return;
                }
            }
        }
        checkpoint(conn);
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
    use std::{path::Path, time::Instant};

    use rusqlite::Connection;

    use super::super::sqlite;
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
        for n in 0..3 {
            sqlite::tests::say(&mut writer, &format!("message {n}"));
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
