//! The single writer task: drains the write queue and commits batches.
//!
//! One batch is one transaction of up to `max_batch` writes (`BEGIN IMMEDIATE` on SQLite,
//! which takes the write lock at once).
//! One bad write (a constraint violation) is rejected alone while the rest of
//! its batch commits (see `try_commit`). If the
//! transaction itself fails (disk full, lock timeout), the whole batch is
//! retried a few times and then reported as failed — to the waiting caller,
//! or in the log and `WriterStats::failed` for fire-and-forget writes — never
//! dropped silently.

mod apply;

use apply::{Deferred, apply, apply_tick_deferred};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::backend::{self, Backend, Conn, Db, on_db};
use crate::error::{Result, StoreError};
use crate::rows::{DecisionRow, Fence, OverrideRow, PolicyStateRow, TargetKey, TargetRow};
use crate::series::SeriesChunkRow;
use crate::targets;

/// Attempts at committing one batch before its writes are reported failed.
const MAX_ATTEMPTS: u32 = 3;

/// Where a waiting caller gets the result of its write.
pub(crate) type Ack = oneshot::Sender<Result<i64>>;

/// What the queue carries.
pub(crate) enum Command {
    /// A write, with an acknowledgement if the caller waits for the commit.
    Write { op: Write, ack: Option<Ack> },
    /// Answered once everything queued before it is committed.
    Flush(oneshot::Sender<()>),
    /// Commit what is queued, then stop.
    Close(oneshot::Sender<()>),
}

/// One write. Large rows are boxed to keep the queue's slots small.
pub(crate) enum Write {
    /// Insert or update a target; returns its id.
    UpsertTarget(Box<TargetRow>),
    /// Mark a target removed; returns rows changed.
    MarkRemoved { key: TargetKey, at: i64 },
    /// Put a managed target in state `error` with `error`; returns rows changed.
    TargetError { key: TargetKey, error: String, at: i64 },
    /// A decision and the policy state it produced, atomically; returns the decision id.
    Decision { decision: Box<DecisionRow>, policy: Option<Box<PolicyStateRow>> },
    /// A policy state alone, ahead of a scale call; returns 1.
    PolicyState(Box<PolicyStateRow>),
    /// Set (replace) the override of a target; returns its id.
    SetOverride(Box<OverrideRow>),
    /// End the active override of a target; returns rows changed.
    ClearOverride { key: TargetKey, by: String, at: i64 },
    /// End overrides whose `until` has passed; returns rows changed.
    ExpireOverrides { now: i64 },
    /// Delete up to `limit` decisions older than `older_than`; returns rows deleted.
    PruneDecisions { older_than: i64, limit: i64 },
    /// One tick, atomically: its decision row when something changed, the policy state it
    /// produced, and its series chunk; returns the decision id, or 0 without one.
    Tick {
        decision: Option<Box<DecisionRow>>,
        policy: Option<Box<PolicyStateRow>>,
        series: Option<Box<SeriesChunkRow>>,
    },
    /// Delete up to `limit` series chunks that ended before `older_than`; returns rows deleted.
    PruneTicks { older_than: i64, limit: i64 },
    /// Claim a target for replica `me`, which sees `live` live; returns the new epoch or 0.
    Claim { key: TargetKey, me: String, live: Vec<String>, at: i64 },
    /// Give a target up if `fence` still holds it; returns rows changed.
    Release { key: TargetKey, fence: Fence, at: i64 },
}

/// Counters shared with `Store::stats`.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) batches: AtomicU64,
    pub(crate) committed: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) last_batch: AtomicU64,
    /// Transaction attempts that failed (each retry counts).
    pub(crate) failed_attempts: AtomicU64,
    /// Whether the last attempt failed: set by a failure, cleared by the next commit.
    pub(crate) failing: std::sync::atomic::AtomicBool,
    /// Why the last attempt failed.
    pub(crate) last_error: std::sync::Mutex<Option<String>>,
}

/// What one turn of the loop collected.
#[derive(Default)]
struct Batch {
    writes: Vec<(Write, Option<Ack>)>,
    flushes: Vec<oneshot::Sender<()>>,
    close: Option<oneshot::Sender<()>>,
    /// Someone waits on this batch: commit without lingering.
    urgent: bool,
}

impl Batch {
    fn push(&mut self, command: Command) {
        match command {
            Command::Write { op, ack } => {
                self.urgent |= ack.is_some();
                self.writes.push((op, ack));
            }
            Command::Flush(ack) => {
                self.urgent = true;
                self.flushes.push(ack);
            }
            Command::Close(ack) => {
                self.urgent = true;
                self.close = Some(ack);
            }
        }
    }
}

/// The task that owns the only writing connection.
pub(crate) struct Writer {
    conn: Conn,
    /// How `conn` was opened, to open a fresh one after a failed transaction.
    options: Db<SqliteConnectOptions, PgConnectOptions>,
    rx: mpsc::Receiver<Command>,
    max_batch: usize,
    linger: Duration,
    /// Target ids by key: targets are never deleted, so an id once read stays
    /// valid; cleared whenever a rollback may have undone an insert.
    ids: HashMap<TargetKey, i64>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Prepares the writer; `run` starts it.
    pub(crate) fn new(
        conn: Conn,
        options: Db<SqliteConnectOptions, PgConnectOptions>,
        rx: mpsc::Receiver<Command>,
        max_batch: usize,
        linger: Duration,
        counters: Arc<Counters>,
    ) -> Self {
        Self { conn, options, rx, max_batch, linger, ids: HashMap::new(), counters }
    }

    /// Replaces the connection after a failed transaction. A failed `COMMIT` (a full disk)
    /// may leave SQLite's transaction rolled back behind sqlx's back, and the connection then
    /// refuses every later `BEGIN`; a PostgreSQL connection may have been lost with the
    /// server. A fresh connection starts clean. The new one is opened before the old one
    /// closes, so an in-memory database (tests) survives the swap.
    async fn reconnect(&mut self) {
        let fresh = match &self.options {
            Db::Sqlite(options) => options.connect().await.map(Db::Sqlite),
            Db::Postgres(options) => options.connect().await.map(Db::Postgres),
        };
        match fresh {
            Ok(fresh) => {
                let old = std::mem::replace(&mut self.conn, fresh);
                if let Err(error) = on_db!(old, c => c.close().await) {
                    tracing::debug!(%error, "closing the failed writer connection");
                }
            }
            Err(error) => tracing::warn!(%error, "the store's writer could not reconnect; retrying later"),
        }
    }

    /// Runs until `Close` arrives or every `Store` handle is dropped.
    pub(crate) async fn run(mut self) {
        // Know every existing target's id at once: a restarted hub's first write of each
        // target would otherwise look its id up, one query per target.
        match targets::all_ids(&mut self.conn).await {
            Ok(ids) => self.ids = ids,
            Err(e) => tracing::warn!(error = %e, "target ids not preloaded; they are read as needed"),
        }
        let mut closed_by = None;
        while let Some(first) = self.rx.recv().await {
            let mut batch = Batch::default();
            batch.push(first);
            self.fill(&mut batch).await;
            let close = batch.close.take();
            self.commit(batch).await;
            if let Some(ack) = close {
                closed_by = Some(ack);
                break;
            }
        }
        // Refuse new writes, then commit whatever was queued before the close.
        self.rx.close();
        loop {
            let mut batch = Batch::default();
            while batch.writes.len() < self.max_batch {
                match self.rx.recv().await {
                    Some(command) => batch.push(command),
                    None => break,
                }
            }
            if batch.writes.is_empty() && batch.flushes.is_empty() {
                // A second Close is answered below by dropping its sender.
                break;
            }
            self.commit(batch).await;
        }
        if let Err(error) = on_db!(self.conn, c => c.close().await) {
            tracing::warn!(%error, "closing the store's writer connection failed");
        }
        if let Some(ack) = closed_by {
            let _ = ack.send(());
        }
    }

    /// Adds queued commands to `batch` until it is full, someone waits on it,
    /// or the linger time has passed.
    async fn fill(&mut self, batch: &mut Batch) {
        let deadline = Instant::now() + self.linger;
        while batch.writes.len() < self.max_batch && batch.close.is_none() {
            match self.rx.try_recv() {
                Ok(command) => {
                    batch.push(command);
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => return,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            if batch.urgent {
                return;
            }
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(command)) => batch.push(command),
                Ok(None) | Err(_) => return,
            }
        }
    }

    /// Commits a batch, retrying the transaction, and answers everyone waiting.
    async fn commit(&mut self, mut batch: Batch) {
        if !batch.writes.is_empty() {
            let mut attempt = 0;
            loop {
                attempt += 1;
                match self.try_commit(&batch.writes).await {
                    Ok(results) => {
                        self.record_success(&mut batch.writes, results);
                        break;
                    }
                    Err(error) => {
                        self.ids.clear();
                        self.counters.failed_attempts.fetch_add(1, Ordering::Relaxed);
                        self.counters.failing.store(true, Ordering::Relaxed);
                        if let Ok(mut last) = self.counters.last_error.lock() {
                            *last = Some(error.to_string());
                        }
                        self.reconnect().await;
                        if attempt >= MAX_ATTEMPTS {
                            self.record_failure(&mut batch.writes, error);
                            break;
                        }
                        tracing::warn!(%error, attempt, size = batch.writes.len(), "store batch failed, retrying");
                        tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                    }
                }
            }
        }
        for ack in batch.flushes {
            let _ = ack.send(());
        }
    }

    /// One attempt. The fast path runs the writes straight in the
    /// transaction; if one of them fails, it is rolled back and rerun with a
    /// savepoint per write so that only the bad write is rejected. Savepoints
    /// cost two extra statements per write, so they are paid only when needed.
    async fn try_commit(&mut self, writes: &[(Write, Option<Ack>)]) -> Result<Vec<Result<i64>>, sqlx::Error> {
        match self.try_fast(writes).await? {
            Some(results) => Ok(results),
            None => {
                // The rollback may have undone inserts of targets we cached.
                self.ids.clear();
                self.try_isolated(writes).await
            }
        }
    }

    /// All writes in one transaction; `None` (rolled back) if any write fails. The policy
    /// states and series chunks of ticks, two per tick, are collected and written with one
    /// multi-row statement per kind: per statement, sqlx costs more than SQLite does.
    async fn try_fast(&mut self, writes: &[(Write, Option<Ack>)]) -> Result<Option<Vec<Result<i64>>>, sqlx::Error> {
        let mut results = Vec::with_capacity(writes.len());
        let conn = &mut self.conn;
        backend::execute(conn, conn.backend().begin()).await?;
        let mut deferred = Deferred::default();
        for (op, _) in writes {
            let result = match op {
                Write::Tick { decision, policy, series: chunk } => {
                    apply_tick_deferred(
                        conn,
                        decision.as_deref(),
                        policy.as_deref(),
                        chunk.as_deref(),
                        &mut self.ids,
                        &mut deferred,
                    )
                    .await
                }
                _ => apply(conn, op, &mut self.ids).await,
            };
            match result {
                Ok(value) => results.push(Ok(value)),
                Err(error) => return rolled_back(backend::execute(conn, "ROLLBACK").await, error),
            }
        }
        if let Err(error) = deferred.flush(conn).await {
            return rolled_back(backend::execute(conn, "ROLLBACK").await, error);
        }
        backend::execute(conn, "COMMIT").await?;
        Ok(Some(results))
    }

    /// All writes in one transaction, each in its own savepoint.
    async fn try_isolated(&mut self, writes: &[(Write, Option<Ack>)]) -> Result<Vec<Result<i64>>, sqlx::Error> {
        let mut results = Vec::with_capacity(writes.len());
        let conn = &mut self.conn;
        backend::execute(conn, conn.backend().begin()).await?;
        for (op, _) in writes {
            backend::execute(conn, "SAVEPOINT write").await?;
            match apply(conn, op, &mut self.ids).await {
                Ok(value) => {
                    backend::execute(conn, "RELEASE SAVEPOINT write").await?;
                    results.push(Ok(value));
                }
                Err(error) => {
                    // The disk, not the write, is at fault: fail the attempt, so that it is
                    // retried and the store says it cannot write, instead of rejecting every
                    // write one by one as if it were bad.
                    if is_storage_failure(conn.backend(), &error) {
                        return Err(into_sqlx(error));
                    }
                    backend::execute(conn, "ROLLBACK TO SAVEPOINT write").await?;
                    backend::execute(conn, "RELEASE SAVEPOINT write").await?;
                    self.ids.clear();
                    results.push(Err(error));
                }
            }
        }
        backend::execute(conn, "COMMIT").await?;
        Ok(results)
    }

    fn record_success(&self, writes: &mut [(Write, Option<Ack>)], results: Vec<Result<i64>>) {
        let size = writes.len() as u64;
        let mut rejected = 0;
        for ((_, ack), result) in writes.iter_mut().zip(results) {
            if result.is_err() {
                rejected += 1;
            }
            match (ack.take(), result) {
                (Some(ack), result) => {
                    let _ = ack.send(result);
                }
                (None, Err(error)) => tracing::error!(error = %error_chain(&error), "store write rejected"),
                (None, Ok(_)) => {}
            }
        }
        let c = &self.counters;
        c.failing.store(false, Ordering::Relaxed);
        c.batches.fetch_add(1, Ordering::Relaxed);
        c.committed.fetch_add(size - rejected, Ordering::Relaxed);
        c.rejected.fetch_add(rejected, Ordering::Relaxed);
        c.last_batch.store(size, Ordering::Relaxed);
    }

    fn record_failure(&self, writes: &mut [(Write, Option<Ack>)], error: sqlx::Error) {
        tracing::error!(%error, size = writes.len(), "store batch failed after retries; its writes are lost");
        self.counters.failed.fetch_add(writes.len() as u64, Ordering::Relaxed);
        let error = Arc::new(error);
        for (_, ack) in writes.iter_mut() {
            if let Some(ack) = ack.take() {
                let _ = ack.send(Err(StoreError::Batch(error.clone())));
            }
        }
    }
}

/// Whether a write failed for want of storage (a full, read-only, unopenable or failing disk;
/// a lost or refusing server) rather than for what it wrote.
fn is_storage_failure(backend: Backend, error: &StoreError) -> bool {
    let StoreError::Query { source, .. } = error else { return false };
    let sqlx::Error::Database(db) = source else {
        // No answer from the database at all (I/O, a closed connection, a protocol error).
        return matches!(source, sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::PoolTimedOut);
    };
    let code = db.code().unwrap_or_default();
    match backend {
        // SQLITE_READONLY 8, SQLITE_IOERR 10, SQLITE_FULL 13, SQLITE_CANTOPEN 14; extended
        // codes keep the primary code in their low byte.
        Backend::Sqlite => matches!(code.parse::<i64>().unwrap_or_default() & 0xff, 8 | 10 | 13 | 14),
        // SQLSTATE classes 08 connection exception, 53 insufficient resources (disk full,
        // out of memory), 57 operator intervention (shutdown), 58 system error (I/O), and
        // 25006 read-only transaction (a standby).
        Backend::Postgres => ["08", "53", "57", "58"].iter().any(|class| code.starts_with(class)) || code == "25006",
    }
}

/// The sqlx error inside a store error, to fail an attempt with.
fn into_sqlx(error: StoreError) -> sqlx::Error {
    match error {
        StoreError::Query { source, .. } => source,
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

/// After a write failed and its transaction was rolled back: `None` to rerun the writes one
/// by one. When the rollback failed too, SQLite had already rolled the transaction back (a
/// full disk does that) and the connection must be replaced: the write's own error is the
/// one worth reporting.
fn rolled_back<T>(rollback: Result<(), sqlx::Error>, error: StoreError) -> Result<Option<T>, sqlx::Error> {
    match rollback {
        Ok(()) => Ok(None),
        Err(_) => Err(into_sqlx(error)),
    }
}

/// The error and its sources on one line, for logs.
fn error_chain(error: &StoreError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::OverrideKind;
    use crate::store::Store;

    fn bad_override() -> OverrideRow {
        // A pin without replicas: the schema's CHECK rejects it.
        OverrideRow {
            id: 0,
            key: TargetKey::new("ns", crate::Kind::Deployment, "web"),
            kind: OverrideKind::Pin,
            replicas: None,
            min_replicas: None,
            max_replicas: None,
            pause_direction: None,
            until: None,
            reason: String::new(),
            author: "test".into(),
            created_at: 1,
            ended_at: None,
            ended_by: None,
        }
    }

    fn target(name: &str) -> TargetRow {
        TargetRow {
            key: TargetKey::new("ns", crate::Kind::Deployment, name),
            uid: None,
            state: "active".into(),
            spec: crate::Json::null(),
            error: None,
            current_replicas: None,
            desired_replicas: None,
            first_seen: 1,
            last_seen: 1,
            removed_at: None,
            updated_at: 1,
        }
    }

    #[tokio::test]
    async fn a_rejected_write_does_not_take_its_batch_down() {
        rejected_write_alone(Store::open("sqlite::memory:").await.unwrap()).await;
    }

    /// PostgreSQL aborts the whole transaction at the first failed statement, where SQLite
    /// only fails the statement: the savepoints must isolate the bad write there too.
    #[tokio::test]
    async fn a_rejected_write_does_not_take_its_batch_down_on_postgres() {
        if let Some(url) = crate::testing::postgres_schema_url().await {
            rejected_write_alone(Store::open(&url).await.unwrap()).await;
        }
    }

    async fn rejected_write_alone(store: Store) {
        let ops = vec![
            Write::UpsertTarget(Box::new(target("a"))),
            Write::SetOverride(Box::new(bad_override())),
            Write::UpsertTarget(Box::new(target("b"))),
        ];
        // write_all stops at the first error; the other writes still committed.
        let error = store.write_all(ops).await.unwrap_err();
        assert!(matches!(error, StoreError::Query { op: "insert override", .. }), "{error:?}");
        store.flush().await.unwrap();
        for name in ["a", "b"] {
            let key = TargetKey::new("ns", crate::Kind::Deployment, name);
            assert!(store.get_target(&key).await.unwrap().is_some(), "{name} was lost");
        }
        let stats = store.stats();
        assert_eq!(stats.rejected, 1);
        assert_eq!(stats.committed, 2);
        // The rolled-back placeholder of the bad write left no target behind.
        let web = TargetKey::new("ns", crate::Kind::Deployment, "web");
        assert!(store.get_target(&web).await.unwrap().is_none());
    }
}
