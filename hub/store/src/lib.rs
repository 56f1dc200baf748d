//! SQLite persistence for scalehub: targets, decisions, policy state, overrides.
//!
//! Layout, in the order data flows through it:
//! - [`store`]: opening the database (WAL, migrations), the read pool, and
//!   the queue to the writer; [`Store`] is the cheap-to-clone handle.
//! - `writer`: the one task that performs every write, many per transaction.
//! - `targets`, `decisions`, `policy`, `overrides`: one module per table,
//!   holding both the writer's statements and the readers' queries.
//! - [`rows`] and [`filter`]: the plain types callers exchange with the store.
//!
//! All SQL of the project lives in this crate and in `migrations/`.

pub mod filter;
pub mod rows;
pub mod store;

mod codec;
mod decisions;
mod error;
mod overrides;
mod policy;
mod targets;
mod writer;

pub use decisions::MAX_HISTORY;
pub use error::{Result, StoreError};
pub use filter::{Page, TargetFilter, TargetSort};
pub use rows::{
    DecisionRow, OverrideKind, OverrideRow, PauseDirection, PolicyStateRow, TargetKey, TargetRow, WriterStats,
};
pub use store::{Store, StoreOptions};
