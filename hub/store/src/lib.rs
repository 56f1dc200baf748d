//! Persistence for scalehub: targets, decisions, policy state, overrides, in SQLite (embedded,
//! the default) or PostgreSQL (shared by several hubs).
//!
//! Layout, in the order data flows through it:
//! - [`store`]: opening the database (WAL, migrations), the read pool, and
//!   the queue to the writer; [`Store`] is the cheap-to-clone handle.
//! - `writer`: the one task that performs every write, many per transaction.
//! - `targets`, `decisions`, `policy`, `overrides`, [`series`]: one module per table,
//!   holding both the writer's statements and the readers' queries.
//! - [`rows`] and [`filter`]: the plain types callers exchange with the store.
//!
//! - `ownership`: which replica ticks a target when replicas shard them ([`Claim`], [`Fence`]).
//! - `backend`: the two databases, one statement text for both ([`Backend`]).
//!
//! All SQL of the project lives in this crate and in `migrations/` (`sqlite/` and
//! `postgres/`, the same versions in step).
//!
//! Write path. Every write is a message on a bounded channel
//! ([`StoreOptions::channel_capacity`], 4096 by default) to one writer task,
//! which commits up to 500 writes per transaction. A batch is committed as
//! soon as someone awaits it (an override from the API, `flush`), otherwise
//! after at most 50 ms of collecting. When the channel is full, callers wait in
//! `send().await`: the ticks slow down, decisions are never dropped. A write
//! the database rejects is answered with its error (or logged and counted in
//! [`WriterStats::rejected`] when nobody awaits it) while the rest of its
//! batch commits; a transaction that cannot commit after three attempts is
//! reported the same way and counted in [`WriterStats::failed`].
//!
//! Consistency. A decision and the policy state it produced commit in one
//! transaction. Writes that return after their commit (`upsert_target`,
//! `set_override`, `clear_override`, `record_decision_committed`, `flush`)
//! are visible to every read that starts afterwards.
//!
//! History. Targets are never deleted (`mark_target_removed` sets
//! `removed_at`); overrides are ended, never deleted (`ended_at`, `ended_by`);
//! only decisions and tick-series chunks are pruned, by `prune_decisions`.

mod backend;
pub mod filter;
pub mod rows;
pub mod store;

mod codec;
mod decisions;
mod error;
mod json;
mod overrides;
mod ownership;
mod policy;
mod resume;
pub mod series;
mod targets;
#[doc(hidden)]
pub mod testing;
mod writer;

pub use backend::{Backend, redact_url};
pub use decisions::{MAX_HISTORY, ReplicaPoint};
pub use error::{Result, StoreError};
pub use filter::{Page, TargetFilter, TargetSort};
pub use json::Json;
pub use ownership::Claim;
pub use resume::{DecisionSnapshot, TargetSnapshot, fingerprint};
pub use rows::{
    DecisionRow, Fence, Kind, OverrideKind, OverrideRow, PauseDirection, PolicyStateRow, TargetKey, TargetRow,
    WriterStats,
};
pub use series::{SeriesChunkRow, SeriesMetric, TickPoint};
pub use store::{Store, StoreOptions};
