//! Test support: a fresh PostgreSQL schema per test, for the store's tests and the hub's.
//! Not part of the store's interface.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Connection as _;

/// The PostgreSQL server the tests may use: a URL whose user may create schemas
/// (scripts/test.sh starts one). Without it the PostgreSQL half of each test is skipped with
/// a note, except under CI, where it must run.
pub const POSTGRES_URL_VAR: &str = "SCALEHUB_TEST_POSTGRES_URL";

/// The URL of a new, empty schema in the tests' PostgreSQL database (its name unique to this
/// process and call), or `None` when the tests have no server.
///
/// # Panics
///
/// Under CI (`CI` set) without a server, or when the server refuses the schema: a test that
/// must run on PostgreSQL never passes by skipping there.
pub async fn postgres_schema_url() -> Option<String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let Ok(base) = std::env::var(POSTGRES_URL_VAR) else {
        assert!(std::env::var_os("CI").is_none(), "{POSTGRES_URL_VAR} must be set under CI");
        eprintln!("{POSTGRES_URL_VAR} is not set: the PostgreSQL half of this test is skipped");
        return None;
    };
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let schema = format!("t_{}_{n}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&base).await.expect("connect to the tests' PostgreSQL server");
    let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await.expect("create a test schema");
    let _ = admin.close().await;
    let separator = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{separator}options=-c%20search_path%3D{schema}"))
}
