//! A full disk: writes fail while there is no room, the store says so, and it writes again
//! as soon as there is room, without a restart. The disk is made "full" with SQLite's
//! `max_page_count` (no root needed), and room is made by pruning, as an operator would.

mod common;

use scalehub_store::{Store, StoreOptions};
use serde_json::json;

use common::{TempDb, decision, key, target};

#[tokio::test]
async fn the_writer_recovers_once_there_is_room_again() {
    let db = TempDb::new();
    let options = StoreOptions { max_pages: Some(80), ..StoreOptions::default() };
    let store = Store::open_with(&db.url, options).await.unwrap();
    store.upsert_target(target("ns", "web")).await.unwrap();

    // Fill the database with decisions carrying a large metrics document until one fails.
    let padding = "x".repeat(8_000);
    let mut written: i64 = 0;
    let failure = loop {
        let mut d = decision(&key("ns", "web"), 10_000 + written);
        d.metrics = json!([{"resource": "web", "value": padding}]).into();
        match store.record_decision_committed(d, None).await {
            Ok(_) => written += 1,
            Err(e) => break e,
        }
        assert!(written < 1_000, "the page cap never filled the database");
    };
    assert!(written > 0, "nothing was written before the disk filled: {failure}");
    let stats = store.stats();
    assert!(stats.failing, "the store does not say it cannot write: {stats:?}");
    assert!(stats.last_error.as_deref().unwrap_or_default().contains("full"), "{stats:?}");

    // Make room: prune the old decisions (their pages go to the free list).
    let pruned = store.prune_decisions(i64::MAX).await.expect("pruning works on a full database");
    assert!(pruned >= written as u64, "pruned {pruned} of {written}");

    // The writer writes again, on its own, and says so.
    let id = store.record_decision_committed(decision(&key("ns", "web"), 99_000), None).await.unwrap();
    assert!(id > 0);
    assert!(!store.stats().failing);
    let last = store.decisions(&key("ns", "web"), None, 1).await.unwrap();
    assert_eq!(last[0].time, 99_000);
    store.close().await.unwrap();
}
