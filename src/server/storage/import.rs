//! Growing up: copying the embedded default's SQLite history into the
//! cluster's PostgreSQL (`banter --import-sqlite`).
//!
//! Ids are kept as they are, so links and `since` values stay meaningful,
//! and rows go in by `(room, id)` with `ON CONFLICT DO NOTHING`, so running
//! it twice (or after an interrupted run) imports each message once. The
//! first cluster start then finds Redis without counters and continues each
//! room's ids above the highest stored (see `cluster`). Run it before that
//! first start: a cluster that is already running has counters of its own.

use std::path::Path;

use super::{
    StoreError,
    postgres::{Postgres, Row},
    sqlite,
};
use crate::server::config::SqliteSync;

/// Messages copied per batch.
const BATCH: usize = 5000;

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Imported {
    /// Messages read from the SQLite file.
    pub(crate) read: u64,
    /// Of those, the ones PostgreSQL did not have yet.
    pub(crate) new: u64,
}

/// Copies every message of `DATA-DIR/banter.sqlite3` into `database_url`.
pub(crate) async fn import(data_dir: &Path, database_url: &str) -> Result<Imported, StoreError> {
    let path = data_dir.join(sqlite::FILE_NAME);
    if !path.is_file() {
        return Err(StoreError::Open {
            path,
            source: "no such file (is --data-dir the embedded server's?)".into(),
        });
    }
    // Opening migrates an older file to the current schema first, which is
    // what the embedded server would do on its next start anyway.
    let (_writer, reader) = sqlite::open(data_dir, SqliteSync::Normal)?;
    let postgres = Postgres::open(database_url).await?;
    let reader = std::sync::Arc::new(reader);
    let mut done = Imported { read: 0, new: 0 };
    let mut after = 0;
    loop {
        let from = std::sync::Arc::clone(&reader);
        let batch = tokio::task::spawn_blocking(move || from.all_after(after, BATCH))
            .await
            .map_err(|_| StoreError::Closed)??;
        let Some((_, last)) = batch.last() else {
            return Ok(done);
        };
        after = last.id;
        let rows: Vec<Row> = batch
            .into_iter()
            .map(|(room, stored)| Row {
                room,
                id: stored.id,
                username: stored.username,
                message: stored.message,
                client_id: stored.client_id,
                ts: stored.ts,
            })
            .collect();
        done.read += rows.len() as u64;
        done.new += postgres.insert(&rows).await?;
    }
}
