//! The durable history in cluster mode: one PostgreSQL database that every
//! process reads and the archivers write.
//!
//! Ids are not assigned here: Redis assigns them, atomically, when a
//! message is accepted; PostgreSQL keeps what Redis streamed, **by `(room,
//! id)`**. So writing is idempotent: an archiver that dies after inserting
//! but before acknowledging is taken over by another, which inserts the
//! same rows again, and `ON CONFLICT DO NOTHING` keeps each message once.
//!
//! The schema is migrated at start, like SQLite's: a version table and
//! one transaction per migration, under an advisory lock so that several
//! processes starting together migrate once.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use super::{StoreError, Stored};

/// The schema, one migration per change, applied in order.
const MIGRATIONS: &[&str] = &["CREATE TABLE messages (
        room TEXT NOT NULL,
        id BIGINT NOT NULL,
        username TEXT NOT NULL,
        body TEXT NOT NULL,
        client_id TEXT,
        -- Milliseconds since the Unix epoch, UTC.
        ts BIGINT NOT NULL,
        PRIMARY KEY (room, id)
    );
    -- Each room's latest message, kept with every insert, so listing rooms
    -- never scans the messages.
    CREATE TABLE rooms (
        room TEXT PRIMARY KEY,
        last_id BIGINT NOT NULL,
        last_ts BIGINT NOT NULL
    );"];

/// Any fixed number: the lock several starting processes queue on.
const MIGRATION_LOCK: i64 = 0x6261_6e74_6572;

/// Connections kept for history reads and archiving.
const POOL_SIZE: usize = 8;

/// One message for [`Postgres::insert`].
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) room: String,
    pub(crate) id: u64,
    pub(crate) username: String,
    pub(crate) message: String,
    pub(crate) client_id: Option<String>,
    pub(crate) ts: i64,
}

/// The database, behind a small pool.
pub(crate) struct Postgres {
    pool: Pool,
}

fn query_error(source: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Postgres(Box::new(source))
}

impl Postgres {
    /// Connects and migrates. Fails with the database's own sentence (which
    /// names what is wrong: refused, no such database, bad password).
    pub(crate) async fn open(url: &str) -> Result<Postgres, StoreError> {
        let config: tokio_postgres::Config = url.parse().map_err(|err| StoreError::Open {
            path: "database-url".into(),
            source: Box::new(err),
        })?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|err| StoreError::Open {
                path: "database-url".into(),
                source: Box::new(err),
            })?;
        let postgres = Postgres { pool };
        postgres.migrate().await?;
        Ok(postgres)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(query_error)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(query_error)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(query_error)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS banter_schema (version INT NOT NULL)")
            .await
            .map_err(query_error)?;
        let version: i32 = tx
            .query_opt("SELECT version FROM banter_schema", &[])
            .await
            .map_err(query_error)?
            .map_or(0, |row| row.get(0));
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.batch_execute(migration).await.map_err(query_error)?;
            tracing::info!(version = i + 1, "migrated the PostgreSQL schema");
        }
        tx.execute("DELETE FROM banter_schema", &[])
            .await
            .map_err(query_error)?;
        tx.execute(
            "INSERT INTO banter_schema (version) VALUES ($1)",
            &[&(MIGRATIONS.len() as i32)],
        )
        .await
        .map_err(query_error)?;
        tx.commit().await.map_err(query_error)
    }

    /// Inserts a batch; rows already present (same room and id) are left as
    /// they are. Returns how many were new.
    pub(crate) async fn insert(&self, rows: &[Row]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        // In one order, so two archivers upserting the same rooms never
        // deadlock; and without NUL, which PostgreSQL's text refuses (one
        // such message must not stop the archive).
        let mut rows: Vec<Row> = rows.to_vec();
        rows.sort_by(|a, b| (&a.room, a.id).cmp(&(&b.room, b.id)));
        for row in &mut rows {
            for text in [&mut row.username, &mut row.message] {
                if text.contains('\0') {
                    *text = text.replace('\0', "\u{fffd}");
                }
            }
            if let Some(id) = &mut row.client_id
                && id.contains('\0')
            {
                *id = id.replace('\0', "\u{fffd}");
            }
        }
        let rooms: Vec<&str> = rows.iter().map(|r| r.room.as_str()).collect();
        let ids: Vec<i64> = rows.iter().map(|r| to_sql_id(r.id)).collect();
        let users: Vec<&str> = rows.iter().map(|r| r.username.as_str()).collect();
        let bodies: Vec<&str> = rows.iter().map(|r| r.message.as_str()).collect();
        let client_ids: Vec<Option<&str>> = rows.iter().map(|r| r.client_id.as_deref()).collect();
        let ts: Vec<i64> = rows.iter().map(|r| r.ts).collect();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(query_error)?;
        let inserted = tx
            .execute(
                "INSERT INTO messages (room, id, username, body, client_id, ts)
                 SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[],
                                      $5::text[], $6::int8[])
                 ON CONFLICT DO NOTHING",
                &[&rooms, &ids, &users, &bodies, &client_ids, &ts],
            )
            .await
            .map_err(query_error)?;
        tx.execute(
            "INSERT INTO rooms (room, last_id, last_ts)
             SELECT room, max(id), max(ts) FROM UNNEST($1::text[], $2::int8[], $3::int8[])
                 AS batch(room, id, ts)
             GROUP BY room
             ON CONFLICT (room) DO UPDATE
             SET last_id = GREATEST(rooms.last_id, EXCLUDED.last_id),
                 last_ts = GREATEST(rooms.last_ts, EXCLUDED.last_ts)",
            &[&rooms, &ids, &ts],
        )
        .await
        .map_err(query_error)?;
        tx.commit().await.map_err(query_error)?;
        Ok(inserted)
    }

    /// The newest `limit` messages of `room` before `before` (or the newest
    /// of all), oldest first.
    pub(crate) async fn before(
        &self,
        room: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        let before = before.map_or(i64::MAX, to_sql_id);
        let rows = self
            .client()
            .await?
            .query(
                "SELECT id, username, body, client_id, ts FROM messages
                 WHERE room = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
                &[&room, &before, &(limit as i64)],
            )
            .await
            .map_err(query_error)?;
        let mut stored: Vec<Stored> = rows.iter().map(stored).collect();
        stored.reverse();
        Ok(stored)
    }

    /// The oldest `limit` messages of `room` after `since`, oldest first.
    pub(crate) async fn after(
        &self,
        room: &str,
        since: u64,
        limit: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT id, username, body, client_id, ts FROM messages
                 WHERE room = $1 AND id > $2 ORDER BY id LIMIT $3",
                &[&room, &to_sql_id(since), &(limit as i64)],
            )
            .await
            .map_err(query_error)?;
        Ok(rows.iter().map(stored).collect())
    }

    /// Rooms by latest message, newest first: `(room, last id, ts ms)`.
    pub(crate) async fn rooms(&self, limit: usize) -> Result<Vec<(String, u64, i64)>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT room, last_id, last_ts FROM rooms ORDER BY last_ts DESC LIMIT $1",
                &[&(limit as i64)],
            )
            .await
            .map_err(query_error)?;
        Ok(rows
            .iter()
            .map(|row| (row.get(0), from_sql_id(row.get(1)), row.get(2)))
            .collect())
    }

    /// Every room's highest stored id: where ids continue when Redis has
    /// lost its counters.
    pub(crate) async fn highest_ids(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = self
            .client()
            .await?
            .query("SELECT room, last_id FROM rooms", &[])
            .await
            .map_err(query_error)?;
        Ok(rows
            .iter()
            .map(|row| (row.get(0), from_sql_id(row.get(1))))
            .collect())
    }
}

fn stored(row: &tokio_postgres::Row) -> Stored {
    Stored {
        id: from_sql_id(row.get(0)),
        username: row.get(1),
        message: row.get(2),
        client_id: row.get(3),
        ts: row.get(4),
    }
}

/// Ids are positive and far below 2⁶³; saturate rather than wrap if not.
fn to_sql_id(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

fn from_sql_id(id: i64) -> u64 {
    u64::try_from(id).unwrap_or(0)
}
