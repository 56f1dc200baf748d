//! Targets: upserts, removal, keyset pagination, counts.

mod common;

use std::collections::HashSet;

use common::{TempDb, key, target};
use scalehub_store::{Page, Store, StoreError, TargetFilter, TargetRow, TargetSort};

/// 2,500 targets over 5 namespaces and 3 states, some removed.
async fn populated(db: &TempDb) -> Store {
    let store = db.open().await;
    let rows = (0..2_500).map(|i| {
        let mut row = target(&format!("ns{}", i % 5), &format!("app-{i:04}"));
        row.state = ["active", "shadow", "invalid"][i % 3].into();
        row.updated_at = 10_000 + (i as i64 % 97); // many ties, to test tie-breaking
        row
    });
    store.upsert_targets(rows.collect()).await.unwrap();
    for i in (0..2_500).step_by(10) {
        store.mark_target_removed(&key(&format!("ns{}", i % 5), &format!("app-{i:04}")), 20_000).await.unwrap();
    }
    store
}

/// Follows the cursors of `filter` to the end.
async fn all_pages(store: &Store, mut filter: TargetFilter) -> Vec<TargetRow> {
    let mut rows = Vec::new();
    loop {
        let Page { items, next_cursor } = store.list_targets(&filter).await.unwrap();
        assert!(items.len() <= filter.limit as usize);
        rows.extend(items);
        match next_cursor {
            Some(cursor) => filter.cursor = Some(cursor),
            None => return rows,
        }
    }
}

fn sort_key(sort: TargetSort, row: &TargetRow) -> (String, i64, String, String, String) {
    let k = &row.key;
    match sort {
        TargetSort::Key => (String::new(), 0, k.namespace.clone(), k.kind.as_str().to_owned(), k.name.clone()),
        TargetSort::Name => (String::new(), 0, k.name.clone(), k.namespace.clone(), k.kind.as_str().to_owned()),
        TargetSort::State => (row.state.clone(), 0, k.namespace.clone(), k.kind.as_str().to_owned(), k.name.clone()),
        TargetSort::Updated => (String::new(), -row.updated_at, neg(&k.namespace), neg(k.kind.as_str()), neg(&k.name)),
    }
}

/// A string that sorts in the reverse order of `s` (for our ASCII test names).
fn neg(s: &str) -> String {
    s.bytes().map(|b| char::from(255 - b)).collect()
}

on_each_backend! {
    #[tokio::test]
    async fn keyset_pages_return_every_target_once_in_order_for_every_sort(db) {
        let store = populated(&db).await;
        for sort in [TargetSort::Key, TargetSort::Name, TargetSort::State, TargetSort::Updated] {
            let filter = TargetFilter { sort, limit: 97, include_removed: true, ..TargetFilter::default() };
            let rows = all_pages(&store, filter).await;
            assert_eq!(rows.len(), 2_500, "{sort:?}");
            let unique: HashSet<_> = rows.iter().map(|r| r.key.clone()).collect();
            assert_eq!(unique.len(), 2_500, "{sort:?} repeated a target");
            let keys: Vec<_> = rows.iter().map(|r| sort_key(sort, r)).collect();
            assert!(keys.windows(2).all(|w| w[0] < w[1]), "{sort:?} out of order");
        }
    }
}

on_each_backend! {
    #[tokio::test]
    async fn filters_combine_with_pagination(db) {
        let store = populated(&db).await;
        let filter = TargetFilter {
            namespace: Some("ns1".into()),
            state: Some("shadow".into()),
            sort: TargetSort::Name,
            limit: 33,
            ..TargetFilter::default()
        };
        let rows = all_pages(&store, filter).await;
        let expected: Vec<_> =
            (0..2_500).filter(|i| i % 5 == 1 && i % 3 == 1 && i % 10 != 0).map(|i| format!("app-{i:04}")).collect();
        let names: Vec<_> = rows.iter().map(|r| r.key.name.clone()).collect();
        assert_eq!(names, expected);
    }
}

on_each_backend! {
    #[tokio::test]
    async fn removed_targets_are_hidden_unless_asked_for(db) {
        let store = populated(&db).await;
        let visible = all_pages(&store, TargetFilter { limit: 500, ..TargetFilter::default() }).await;
        assert_eq!(visible.len(), 2_250);
        assert!(visible.iter().all(|r| r.removed_at.is_none()));
        let removed = store.get_target(&key("ns0", "app-0000")).await.unwrap().unwrap();
        assert_eq!(removed.state, "removed");
        assert_eq!(removed.removed_at, Some(20_000));
    }
}

on_each_backend! {
    #[tokio::test]
    async fn search_matches_substrings_and_treats_wildcards_literally(db) {
        let store = populated(&db).await;
        let filter = TargetFilter { search: Some("APP-012".into()), limit: 100, ..TargetFilter::default() };
        let rows = all_pages(&store, filter).await;
        // app-0120..app-0129 minus the removed app-0120; LIKE is case-insensitive.
        assert_eq!(rows.len(), 9);
        let filter = TargetFilter { search: Some("app_0".into()), ..TargetFilter::default() };
        assert!(store.list_targets(&filter).await.unwrap().items.is_empty());
    }
}

on_each_backend! {
    #[tokio::test]
    async fn a_foreign_or_corrupt_cursor_is_bad_input(db) {
        let store = populated(&db).await;
        let page = store.list_targets(&TargetFilter { limit: 10, ..TargetFilter::default() }).await.unwrap();
        let cursor = page.next_cursor.unwrap();
        let wrong_sort = TargetFilter { sort: TargetSort::Updated, cursor: Some(cursor), ..TargetFilter::default() };
        assert!(matches!(store.list_targets(&wrong_sort).await, Err(StoreError::BadCursor)));
        let garbage = TargetFilter { cursor: Some("!!!".into()), ..TargetFilter::default() };
        assert!(matches!(store.list_targets(&garbage).await, Err(StoreError::BadCursor)));
    }
}

on_each_backend! {
    #[tokio::test]
    async fn an_upsert_keeps_first_seen_and_brings_a_removed_target_back(db) {
        let store = db.open().await;
        let k = key("ns", "web");
        store.upsert_target(target("ns", "web")).await.unwrap();
        assert!(store.mark_target_removed(&k, 2_000).await.unwrap());
        assert!(!store.mark_target_removed(&k, 2_500).await.unwrap(), "already removed");

        let mut again = target("ns", "web");
        again.first_seen = 3_000;
        again.last_seen = 3_000;
        again.updated_at = 3_000;
        again.current_replicas = Some(7);
        store.upsert_target(again).await.unwrap();
        let row = store.get_target(&k).await.unwrap().unwrap();
        assert_eq!(row.first_seen, 1_000);
        assert_eq!(row.last_seen, 3_000);
        assert_eq!(row.removed_at, None);
        assert_eq!(row.state, "active");
        assert_eq!(row.current_replicas, Some(7));
    }
}

on_each_backend! {
    #[tokio::test]
    async fn counts_by_state_skip_removed_targets(db) {
        let store = populated(&db).await;
        let counts = store.counts_by_state().await.unwrap();
        assert_eq!(counts.values().sum::<u64>(), 2_250);
        assert_eq!(counts.get("removed"), None);
        assert_eq!(counts["active"] + counts["shadow"] + counts["invalid"], 2_250);
    }
}

on_each_backend! {
    #[tokio::test]
    async fn listing_stays_fast_at_ten_thousand_targets(db) {
        let store = db.open().await;
        let rows = (0..10_000).map(|i| target(&format!("ns{}", i % 20), &format!("svc-{i:05}")));
        let started = std::time::Instant::now();
        store.upsert_targets(rows.collect()).await.unwrap();
        println!("benchmark: 10,000 target upserts in {:?}", started.elapsed());
        let filter = TargetFilter { limit: 100, ..TargetFilter::default() };
        let first = store.list_targets(&filter).await.unwrap();
        // Jump deep into the listing: the last page costs what the first does.
        let mut filter = filter;
        for _ in 0..90 {
            filter.cursor = store.list_targets(&filter).await.unwrap().next_cursor;
        }
        let started = std::time::Instant::now();
        let deep = store.list_targets(&filter).await.unwrap();
        println!("benchmark: page 91 of 10,000 targets in {:?}", started.elapsed());
        assert_eq!(first.items.len(), 100);
        assert_eq!(deep.items.len(), 100);
    }
}

on_each_backend! {
    #[tokio::test]
    async fn counts_follow_every_insert_state_change_removal_and_return(db) {
        // SQLite keeps the counts with three triggers, PostgreSQL with one trigger function:
        // both must agree with a count of the listing after every kind of change.
        let store = db.open().await;
        let named = |name: &str, state: &str| TargetRow { state: state.into(), ..target("ns", name) };
        let recount = |store: Store| async move {
            let rows = all_pages(&store, TargetFilter { limit: 2, ..TargetFilter::default() }).await;
            let mut counts = std::collections::BTreeMap::new();
            for row in rows {
                *counts.entry(row.state).or_insert(0u64) += 1;
            }
            counts
        };
        let expect = |pairs: &[(&str, u64)]| pairs.iter().map(|(s, n)| (s.to_string(), *n)).collect::<std::collections::BTreeMap<_, _>>();
        for (i, state) in ["pending", "active", "active", "invalid"].iter().enumerate() {
            store.upsert_target(named(&format!("w{i}"), state)).await.unwrap();
        }
        assert_eq!(store.counts_by_state().await.unwrap(), expect(&[("active", 2), ("invalid", 1), ("pending", 1)]));
        // A state change moves one count; rewriting the same state moves none.
        store.upsert_target(named("w0", "active")).await.unwrap();
        store.upsert_target(named("w0", "active")).await.unwrap();
        assert_eq!(store.counts_by_state().await.unwrap(), expect(&[("active", 3), ("invalid", 1)]));
        // Removal uncounts; removing twice changes nothing; coming back counts again.
        store.mark_target_removed(&key("ns", "w3"), 9).await.unwrap();
        store.mark_target_removed(&key("ns", "w3"), 10).await.unwrap();
        assert_eq!(store.counts_by_state().await.unwrap(), expect(&[("active", 3)]));
        store.upsert_target(named("w3", "error")).await.unwrap();
        store.set_target_error(&key("ns", "w1"), "boom", 11).await.unwrap();
        assert_eq!(store.counts_by_state().await.unwrap(), expect(&[("active", 2), ("error", 2)]));
        assert_eq!(store.counts_by_state().await.unwrap(), recount(store.clone()).await);
    }
}
