//! The `Store` handle: opening the database, the read pool, and the queue to
//! the single writer.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sqlx::ConnectOptions as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::backend::{Backend, Conn, Db, Pool, on_db, redact_url};
use crate::error::{Result, StoreError};
use crate::rows::WriterStats;
use crate::writer::{Command, Counters, Write, Writer};

/// The SQLite schema, embedded at build time from the top-level `migrations/sqlite/`.
static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// The PostgreSQL schema, the same versions in `migrations/postgres/`.
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// Tuning knobs; the defaults suit one hub with up to tens of thousands of targets.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Writes that may wait for the writer. 4096 holds about six seconds of
    /// decisions from 10,000 targets ticking every 15 s (~670/s), enough to ride
    /// out a checkpoint or a slow disk. When it is full, writers wait in
    /// `send().await` (backpressure slows the ticks down); nothing is dropped.
    pub channel_capacity: usize,
    /// Most writes committed in one transaction.
    pub max_batch: usize,
    /// How long the writer waits for more writes before committing a batch that
    /// nobody is waiting on. Writes whose caller awaits the commit (and
    /// `flush`) end the wait at once.
    pub linger: Duration,
    /// Read connections. Readers never block the writer (SQLite's WAL mode, PostgreSQL's
    /// MVCC); a few suffice for the API on a small machine.
    pub read_connections: u32,
    /// How long a statement waits for a lock held by another process (SQLite's
    /// `busy_timeout`, PostgreSQL's `lock_timeout`).
    pub busy_timeout: Duration,
    /// A cap on the database's size, in pages (SQLite's `max_page_count`): a write that would
    /// grow it further fails as on a full disk. `None` leaves the size to the disk. PostgreSQL
    /// has no such setting: its size is the server's business.
    pub max_pages: Option<u64>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            channel_capacity: 4096,
            max_batch: 500,
            linger: Duration::from_millis(50),
            read_connections: 4,
            busy_timeout: Duration::from_secs(5),
            max_pages: None,
        }
    }
}

/// Handle to the database: cheap to clone, shared by every target loop and the API.
///
/// Reads go straight to a connection pool. Every write goes through one
/// bounded queue to one writer task that commits many writes per transaction,
/// because SQLite has a single writer and per-write transactions from
/// thousands of targets would queue on its lock. PostgreSQL takes the same path: a batch
/// per transaction is as much cheaper there, and one writer per hub keeps the order of a
/// target's writes.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("writer", &self.stats()).finish_non_exhaustive()
    }
}

struct Inner {
    /// Read-only connections for the API and startup restore.
    pool: Pool,
    /// The writer's queue.
    tx: mpsc::Sender<Command>,
    /// The writer task, taken by `close` to wait for it.
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Counters the writer updates, read by `stats`.
    counters: Arc<Counters>,
    /// Capacity of `tx`, to report the queue length.
    capacity: usize,
}

impl Store {
    /// Opens (creating if missing) the database at `url` and applies migrations.
    ///
    /// `url` is `sqlite://path/to/file.db`, `sqlite::memory:` (tests) or
    /// `postgres://user:password@host/database` (a server several hubs can share).
    pub async fn open(url: &str) -> Result<Store> {
        Self::open_with(url, StoreOptions::default()).await
    }

    /// Opens the database with explicit tuning.
    pub async fn open_with(url: &str, options: StoreOptions) -> Result<Store> {
        // sqlx would take any other URL for a SQLite file name.
        let (pool, conn, reconnect) = match Backend::of_url(url) {
            Some(Backend::Sqlite) => open_sqlite(url, &options).await?,
            Some(Backend::Postgres) => open_postgres(url, &options).await?,
            None => return Err(StoreError::UnsupportedUrl { url: redact_url(url) }),
        };
        let (tx, rx) = mpsc::channel(options.channel_capacity.max(1));
        let counters = Arc::new(Counters::default());
        let writer = Writer::new(conn, reconnect, rx, options.max_batch.max(1), options.linger, counters.clone());
        let handle = tokio::spawn(writer.run());
        let inner =
            Inner { pool, tx, writer: Mutex::new(Some(handle)), counters, capacity: options.channel_capacity.max(1) };
        Ok(Store { inner: Arc::new(inner) })
    }

    /// Which database the store runs on.
    pub fn backend(&self) -> Backend {
        self.inner.pool.backend()
    }

    /// The read pool, for the store's own queries.
    pub(crate) fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The SQLite read pool, for tests of SQLite's query plans.
    #[cfg(test)]
    pub(crate) fn sqlite_pool(&self) -> &sqlx::SqlitePool {
        match self.pool() {
            Db::Sqlite(pool) => pool,
            Db::Postgres(_) => panic!("not a SQLite store"),
        }
    }

    /// Queues a write without waiting for its commit.
    pub(crate) async fn enqueue(&self, op: Write) -> Result<()> {
        let command = Command::Write { op, ack: None };
        self.inner.tx.send(command).await.map_err(|_| StoreError::Closed)
    }

    /// Queues a write and waits until it is committed; returns its result value
    /// (a new id or a row count, depending on the write).
    pub(crate) async fn write(&self, op: Write) -> Result<i64> {
        let (ack, done) = oneshot::channel();
        let command = Command::Write { op, ack: Some(ack) };
        self.inner.tx.send(command).await.map_err(|_| StoreError::Closed)?;
        done.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues several writes, then waits for all their commits; they share
    /// batches instead of paying one transaction each. Returns their results
    /// in order, or the first error.
    pub(crate) async fn write_all(&self, ops: impl IntoIterator<Item = Write>) -> Result<Vec<i64>> {
        let mut pending = Vec::new();
        for op in ops {
            let (ack, done) = oneshot::channel();
            let command = Command::Write { op, ack: Some(ack) };
            self.inner.tx.send(command).await.map_err(|_| StoreError::Closed)?;
            pending.push(done);
        }
        let mut results = Vec::with_capacity(pending.len());
        for done in pending {
            results.push(done.await.map_err(|_| StoreError::Closed)??);
        }
        Ok(results)
    }

    /// Waits until every write queued before this call is committed (or failed).
    pub async fn flush(&self) -> Result<()> {
        let (ack, done) = oneshot::channel();
        self.inner.tx.send(Command::Flush(ack)).await.map_err(|_| StoreError::Closed)?;
        done.await.map_err(|_| StoreError::Closed)
    }

    /// Commits everything queued, stops the writer and closes the database.
    ///
    /// Later writes fail with [`StoreError::Closed`]; calling it twice is harmless.
    pub async fn close(&self) -> Result<()> {
        let (ack, done) = oneshot::channel();
        if self.inner.tx.send(Command::Close(ack)).await.is_ok() {
            // An error here means the writer already stopped: nothing to wait for.
            let _ = done.await;
        }
        let handle = self.inner.writer.lock().await.take();
        if let Some(handle) = handle
            && let Err(error) = handle.await
        {
            tracing::error!(%error, "store writer task ended abnormally");
        }
        on_db!(self.pool(), pool => pool.close().await);
        Ok(())
    }

    /// Counters of the writer, for metrics.
    pub fn stats(&self) -> WriterStats {
        let c = &self.inner.counters;
        let free = self.inner.tx.capacity();
        WriterStats {
            queued: self.inner.capacity.saturating_sub(free) as u64,
            batches: c.batches.load(Ordering::Relaxed),
            committed: c.committed.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            last_batch: c.last_batch.load(Ordering::Relaxed),
            failed_attempts: c.failed_attempts.load(Ordering::Relaxed),
            failing: c.failing.load(Ordering::Relaxed),
            last_error: c.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        on_db!(self.pool(), pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
            .map_err(crate::error::query_err("ping"))?;
        Ok(())
    }

    /// Bytes the database holds: SQLite's pages in use (WAL frames included, free pages
    /// not), so storage growth can be measured without waiting for a checkpoint; the
    /// PostgreSQL tables of the store's schema with their indexes and TOAST.
    pub async fn used_bytes(&self) -> Result<i64> {
        let err = crate::error::query_err("read page counts");
        match self.pool() {
            Db::Sqlite(pool) => {
                let pages: i64 = sqlx::query_scalar("PRAGMA page_count").fetch_one(pool).await.map_err(err)?;
                let free: i64 = sqlx::query_scalar("PRAGMA freelist_count").fetch_one(pool).await.map_err(err)?;
                let size: i64 = sqlx::query_scalar("PRAGMA page_size").fetch_one(pool).await.map_err(err)?;
                Ok((pages - free) * size)
            }
            Db::Postgres(pool) => sqlx::query_scalar(
                "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::BIGINT FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() AND c.relkind = 'r'",
            )
            .fetch_one(pool)
            .await
            .map_err(crate::error::query_err("read table sizes")),
        }
    }

    /// The journal mode in effect: SQLite's (`wal` for files, `memory` in memory);
    /// PostgreSQL always writes ahead (`wal`).
    pub async fn journal_mode(&self) -> Result<String> {
        match self.pool() {
            Db::Sqlite(pool) => sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(pool)
                .await
                .map_err(crate::error::query_err("read journal mode")),
            Db::Postgres(_) => Ok("wal".to_owned()),
        }
    }
}

/// What opening a database yields: the read pool, the writer's connection, and how to open
/// the writer a fresh one.
type Opened = (Pool, Conn, Db<SqliteConnectOptions, PgConnectOptions>);

/// Opens a SQLite file (or memory) and migrates it.
async fn open_sqlite(url: &str, options: &StoreOptions) -> Result<Opened> {
    let open_err = |source| StoreError::Open { url: redact_url(url), source };
    let base = SqliteConnectOptions::from_str(url)
        .map_err(|source| StoreError::InvalidUrl { url: redact_url(url), source })?
        .busy_timeout(options.busy_timeout)
        .foreign_keys(true)
        .synchronous(SqliteSynchronous::Normal);
    // WAL lets readers run while the writer commits; NORMAL sync is
    // durable at every checkpoint and never corrupts, which is the right
    // trade for decisions that recur every few seconds anyway.
    let writer_options = base
        .clone()
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // Truncate the WAL back to 64 MiB after a checkpoint, so a burst
        // of writes does not leave a big file behind for good.
        .pragma("journal_size_limit", "67108864")
        .optimize_on_close(true, None);
    let writer_options = match options.max_pages {
        Some(pages) => writer_options.pragma("max_page_count", pages.to_string()),
        None => writer_options,
    };
    let mut conn = writer_options.connect().await.map_err(open_err)?;
    SQLITE_MIGRATOR.run(&mut conn).await.map_err(StoreError::Migrate)?;

    // `query_only` makes the single-writer rule a guarantee, not a habit.
    let reader_options = base.pragma("query_only", "ON");
    let pool = SqlitePoolOptions::new()
        .max_connections(options.read_connections.max(1))
        .min_connections(0)
        // An in-process SQLite connection does not go stale: no ping (a round trip to the
        // connection's worker thread) before every statement.
        .test_before_acquire(false)
        .connect_with(reader_options)
        .await
        .map_err(open_err)?;
    Ok((Db::Sqlite(pool), Db::Sqlite(conn), Db::Sqlite(writer_options)))
}

/// Connects to a PostgreSQL database and migrates it (sqlx holds an advisory lock while it
/// migrates, so hubs that start together apply each migration once).
async fn open_postgres(url: &str, options: &StoreOptions) -> Result<Opened> {
    let open_err = |source| StoreError::Open { url: redact_url(url), source };
    let lock_timeout = options.busy_timeout.as_millis().to_string();
    let base = PgConnectOptions::from_str(url)
        .map_err(|source| StoreError::InvalidUrl { url: redact_url(url), source })?
        .application_name("scalehub")
        .options([("lock_timeout", lock_timeout.as_str())]);
    let mut conn = base.connect().await.map_err(open_err)?;
    POSTGRES_MIGRATOR.run(&mut conn).await.map_err(StoreError::Migrate)?;
    // Read-only transactions make the single-writer rule a guarantee here too.
    let reader_options = base.clone().options([("default_transaction_read_only", "on")]);
    let pool = PgPoolOptions::new()
        .max_connections(options.read_connections.max(1))
        .min_connections(0)
        .connect_with(reader_options)
        .await
        .map_err(open_err)?;
    Ok((Db::Postgres(pool), Db::Postgres(conn), Db::Postgres(base)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_read_pool_refuses_writes() {
        refuses_writes(Store::open("sqlite::memory:").await.unwrap()).await;
    }

    #[tokio::test]
    async fn the_read_pool_refuses_writes_on_postgres() {
        if let Some(url) = crate::testing::postgres_schema_url().await {
            refuses_writes(Store::open(&url).await.unwrap()).await;
        }
    }

    async fn refuses_writes(store: Store) {
        let result = on_db!(store.pool(), pool => sqlx::query("DELETE FROM targets").execute(pool).await.map(|_| ()));
        assert!(result.is_err(), "a reader connection could write");
    }
}
