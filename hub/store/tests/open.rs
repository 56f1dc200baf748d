//! Opening the database: migrations, pragmas, reopening, closing.

mod common;

use common::{TempDb, decision, key, target};
use scalehub_store::{Store, StoreError};

#[tokio::test]
async fn migrations_apply_on_a_fresh_file_and_again_on_reopen() {
    let db = TempDb::new();
    let store = db.open().await;
    store.upsert_target(target("ns", "web")).await.unwrap();
    store.close().await.unwrap();

    // A second open finds the schema current and keeps the data.
    let store = db.open().await;
    assert!(store.get_target(&key("ns", "web")).await.unwrap().is_some());
    store.close().await.unwrap();
    let store = db.open().await;
    assert_eq!(store.counts_by_state().await.unwrap().get("active"), Some(&1));
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_file_database_runs_in_wal_mode() {
    let db = TempDb::new();
    let store = db.open().await;
    assert_eq!(store.journal_mode().await.unwrap(), "wal");
    store.close().await.unwrap();
}

#[tokio::test]
async fn an_in_memory_database_is_shared_by_the_writer_and_the_readers() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    store.upsert_target(target("ns", "web")).await.unwrap();
    let row = store.get_target(&key("ns", "web")).await.unwrap().unwrap();
    assert_eq!(row.state, "active");
}

#[tokio::test]
async fn two_in_memory_stores_do_not_share_data() {
    let a = Store::open("sqlite::memory:").await.unwrap();
    let b = Store::open("sqlite::memory:").await.unwrap();
    a.upsert_target(target("ns", "web")).await.unwrap();
    assert!(b.get_target(&key("ns", "web")).await.unwrap().is_none());
}

#[tokio::test]
async fn a_malformed_url_is_a_readable_error() {
    let error = Store::open("mysql://hub:s3cret@db/scalehub").await.err().unwrap();
    assert!(matches!(error, StoreError::UnsupportedUrl { .. }), "{error:?}");
    assert!(error.to_string().contains("mysql://hub:***@db/scalehub"), "{error}");
    assert!(!format!("{error:?}").contains("s3cret"));
    let error = Store::open("sqlite://hub.db?mode=sideways").await.err().unwrap();
    assert!(matches!(error, StoreError::InvalidUrl { .. }), "{error:?}");
    let error = Store::open("postgres://hub:s3cret@127.0.0.1:1/db?sslmode=sideways").await.err().unwrap();
    assert!(matches!(error, StoreError::InvalidUrl { .. }), "{error:?}");
    assert!(!format!("{error} {error:?}").contains("s3cret"), "{error:?}");
}

#[tokio::test]
async fn a_postgres_server_that_does_not_answer_is_a_readable_error_without_the_password() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let error = Store::open("postgres://hub:s3cret@127.0.0.1:1/scalehub").await.err().unwrap();
    assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
    assert!(error.to_string().contains("postgres://hub:***@127.0.0.1:1/scalehub"), "{error}");
    let mut chain = format!("{error:?}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    assert!(!chain.contains("s3cret"), "{chain}");
}

#[tokio::test]
async fn a_directory_that_does_not_exist_fails_to_open() {
    let db = TempDb::new();
    let url = format!("sqlite://{}", db.dir.path().join("missing/dir/hub.db").display());
    let error = Store::open(&url).await.err().unwrap();
    assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
}

#[tokio::test]
async fn close_commits_queued_writes_and_later_writes_fail() {
    let db = TempDb::new();
    let store = db.open().await;
    let k = key("ns", "web");
    store.upsert_target(target("ns", "web")).await.unwrap();
    for t in 0..100 {
        store.record_decision(decision(&k, t), None).await.unwrap();
    }
    store.close().await.unwrap();
    let error = store.record_decision(decision(&k, 500), None).await.err().unwrap();
    assert!(matches!(error, StoreError::Closed));
    store.close().await.unwrap();

    let store = db.open().await;
    assert_eq!(store.decisions(&k, None, 1000).await.unwrap().len(), 100);
    store.close().await.unwrap();
}
