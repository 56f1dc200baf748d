//! The store's error type.

use std::sync::Arc;

/// Everything that can go wrong in the store. None of these panic the caller.
///
/// `Query` and `Batch` are usually transient (disk full, lock timeout) and worth
/// retrying on the next tick; `BadCursor` and `InvalidOverride` are bad input
/// (HTTP 400); `Closed` means the hub is shutting down.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL could not be parsed.
    #[error("invalid database url {url:?}")]
    InvalidUrl {
        /// The URL as given, its password hidden.
        url: String,
        /// Why sqlx rejected it.
        #[source]
        source: sqlx::Error,
    },
    /// The database URL names neither SQLite nor PostgreSQL.
    #[error(
        "database url {url:?} is neither a sqlite: nor a postgres:// url \
         (e.g. sqlite://scalehub.db or postgres://scalehub@db.example/scalehub)"
    )]
    UnsupportedUrl {
        /// The URL as given, its password hidden.
        url: String,
    },
    /// The database could not be opened or configured.
    #[error("cannot open database {url:?}")]
    Open {
        /// The URL as given, its password hidden.
        url: String,
        /// The underlying failure.
        #[source]
        source: sqlx::Error,
    },
    /// The schema migrations failed.
    #[error("cannot migrate database schema")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A statement failed.
    #[error("{op} failed")]
    Query {
        /// What the store was doing, e.g. `list targets`.
        op: &'static str,
        /// The underlying failure.
        #[source]
        source: sqlx::Error,
    },
    /// A batch transaction could not be committed even after retries; shared by
    /// every write of the batch, hence the `Arc`.
    #[error("write transaction failed")]
    Batch(#[source] Arc<sqlx::Error>),
    /// A JSON column could not be encoded or decoded.
    #[error("invalid json in column {column}")]
    Json {
        /// The column.
        column: &'static str,
        /// The serde failure.
        #[source]
        source: serde_json::Error,
    },
    /// A packed column (the tick series) could not be encoded or decoded.
    #[error("invalid packed data in column {what}: {detail}")]
    Encode {
        /// The column.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A stored enum column holds a value this version does not know.
    #[error("unknown value {value:?} in column {column}")]
    UnknownValue {
        /// The column.
        column: &'static str,
        /// The stored value.
        value: String,
    },
    /// A pagination cursor was not produced by this store for this sort order.
    #[error("invalid pagination cursor")]
    BadCursor,
    /// An override lacks the fields its kind needs.
    #[error("invalid override: {0}")]
    InvalidOverride(&'static str),
    /// A write under a claim the writer no longer holds: another replica owns the target now.
    #[error("target {key} is no longer owned by {owner} at epoch {epoch}: its write was refused")]
    Fenced {
        /// The target.
        key: String,
        /// Who wrote.
        owner: String,
        /// The epoch it wrote under.
        epoch: i64,
    },
    /// The writer has stopped: the store was closed.
    #[error("the store is closed")]
    Closed,
}

/// Short form for the store's results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Maps a sqlx error to [`StoreError::Query`] naming the operation.
pub(crate) fn query_err(op: &'static str) -> impl Fn(sqlx::Error) -> StoreError + Copy {
    move |source| StoreError::Query { op, source }
}
