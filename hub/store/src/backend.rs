//! The two databases the store runs on: SQLite (embedded, the default) and PostgreSQL (shared
//! by several hubs), and the few places where their SQL differs.
//!
//! Every statement of the store is written once, in the SQL both understand (`$1`-style
//! parameters, `ON CONFLICT`, `RETURNING`, row values), and compiled once per driver by
//! [`on_db!`]: the text is shared, the types are each driver's own, so nothing is converted
//! through a type-erased row on the hot path.

use sqlx::postgres::{PgConnection, PgPool, PgRow};
use sqlx::sqlite::{SqliteConnection, SqlitePool, SqliteRow};
use sqlx::{Executor as _, Row as _};

/// One value per backend: a pool, a connection, their options.
pub(crate) enum Db<S, P> {
    /// SQLite.
    Sqlite(S),
    /// PostgreSQL.
    Postgres(P),
}

/// The read pool.
pub(crate) type Pool = Db<SqlitePool, PgPool>;

/// The writer's connection.
pub(crate) type Conn = Db<SqliteConnection, PgConnection>;

impl<S, P> Db<S, P> {
    /// Which database this is.
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }
}

/// Runs `$body` with `$db` bound to the SQLite or the PostgreSQL value of a [`Db`]: the body
/// is written once and compiled for each driver.
macro_rules! on_db {
    ($value:expr, $db:ident => $body:expr) => {
        match $value {
            $crate::backend::Db::Sqlite($db) => $body,
            $crate::backend::Db::Postgres($db) => $body,
        }
    };
}
pub(crate) use on_db;

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file (or memory, in tests).
    Sqlite,
    /// A PostgreSQL server, which several hubs can share.
    Postgres,
}

impl Backend {
    /// Which backend a database URL names, if any.
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }

    /// The statement that opens the writer's transactions. SQLite takes the write lock at
    /// once, so a batch never fails half-way for want of it; PostgreSQL locks rows as it goes.
    pub(crate) fn begin(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }

    /// The case-insensitive `LIKE` of a search: SQLite's `LIKE` already ignores ASCII case.
    pub(crate) fn ilike(self) -> &'static str {
        match self {
            Backend::Sqlite => "LIKE",
            Backend::Postgres => "ILIKE",
        }
    }
}

/// Runs a statement without parameters or results (transaction control) on the writer's
/// connection.
pub(crate) async fn execute(conn: &mut Conn, sql: &'static str) -> Result<(), sqlx::Error> {
    on_db!(conn, c => c.execute(sql).await.map(|_| ()))
}

/// `$first, $first+1, …` for `count` rows of `width` columns each:
/// `($1, $2), ($3, $4)` for two rows of two.
pub(crate) fn values(rows: usize, width: usize, first: usize) -> String {
    let mut out = String::with_capacity(rows * width * 5);
    for row in 0..rows {
        if row > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for column in 0..width {
            if column > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(first + row * width + column).to_string());
        }
        out.push(')');
    }
    out
}

/// A column value the store reads, from either driver's rows.
pub(crate) trait Cell: Sized {
    fn sqlite(row: &SqliteRow, index: usize) -> Result<Self, sqlx::Error>;
    fn postgres(row: &PgRow, index: usize) -> Result<Self, sqlx::Error>;
}

macro_rules! cells {
    ($($t:ty),* $(,)?) => {$(
        impl Cell for $t {
            fn sqlite(row: &SqliteRow, index: usize) -> Result<Self, sqlx::Error> {
                row.try_get(index)
            }
            fn postgres(row: &PgRow, index: usize) -> Result<Self, sqlx::Error> {
                row.try_get(index)
            }
        }
    )*};
}

cells!(i64, i32, bool, String, Vec<u8>, Option<i64>, Option<i32>, Option<String>);

/// A row of either driver, read by column index.
pub(crate) trait Cells {
    fn cell<T: Cell>(&self, index: usize) -> Result<T, sqlx::Error>;
}

impl Cells for SqliteRow {
    fn cell<T: Cell>(&self, index: usize) -> Result<T, sqlx::Error> {
        T::sqlite(self, index)
    }
}

impl Cells for PgRow {
    fn cell<T: Cell>(&self, index: usize) -> Result<T, sqlx::Error> {
        T::postgres(self, index)
    }
}

/// The URL without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            let query = redact_query(tail);
            format!("{scheme}://{user}{hidden}@{host}{query}")
        }
        None => format!("{scheme}://{authority}{}", redact_query(tail)),
    }
}

/// A URL tail with any `password=` parameter hidden.
fn redact_query(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else { return tail.to_owned() };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((name, _)) if name.eq_ignore_ascii_case("password") => format!("{name}=***"),
            _ => param.to_owned(),
        })
        .collect();
    format!("{path}?{}", params.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_number_parameters_row_by_row() {
        assert_eq!(values(2, 2, 1), "($1, $2), ($3, $4)");
        assert_eq!(values(1, 3, 4), "($4, $5, $6)");
        assert_eq!(values(0, 3, 1), "");
    }

    #[test]
    fn urls_lose_their_passwords_and_keep_the_rest() {
        assert_eq!(redact_url("postgres://hub:s3cret@db:5432/scalehub"), "postgres://hub:***@db:5432/scalehub");
        assert_eq!(
            redact_url("postgres://hub@db/scalehub?sslmode=require"),
            "postgres://hub@db/scalehub?sslmode=require"
        );
        assert_eq!(
            redact_url("postgresql://db/scalehub?user=hub&password=s3cret"),
            "postgresql://db/scalehub?user=hub&password=***"
        );
        assert_eq!(redact_url("postgres://a:b@c@d/x"), "postgres://a:***@d/x");
        assert_eq!(redact_url("sqlite://data/scalehub.db"), "sqlite://data/scalehub.db");
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
        assert!(!redact_url("postgres://u:p%40ss@h/d").contains("p%40ss"));
    }

    #[test]
    fn urls_name_their_backend() {
        assert_eq!(Backend::of_url("sqlite://x.db"), Some(Backend::Sqlite));
        assert_eq!(Backend::of_url("sqlite::memory:"), Some(Backend::Sqlite));
        assert_eq!(Backend::of_url("postgres://h/d"), Some(Backend::Postgres));
        assert_eq!(Backend::of_url("postgresql://h/d"), Some(Backend::Postgres));
        assert_eq!(Backend::of_url("mysql://h/d"), None);
        assert_eq!(Backend::of_url("scalehub.db"), None);
    }
}
