//! Decisions: atomic recording with policy state, history, retention, batching.

mod common;

use std::time::Instant;

use common::{decision, key, policy, target};
use scalehub_store::StoreOptions;
use serde_json::json;

on_each_backend! {
    #[tokio::test]
    async fn a_decision_and_its_policy_state_survive_a_restart_together(db) {
        let k = key("ns", "web");
        let store = db.open().await;
        store.upsert_target(target("ns", "web")).await.unwrap();
        for t in 1..=3 {
            store.record_decision(decision(&k, t * 1000), Some(policy(&k, t * 1000))).await.unwrap();
        }
        store.flush().await.unwrap();
        // No close: the next open sees what a crash after flush would leave.
        drop(store);

        let store = db.open().await;
        let history = store.decisions(&k, None, 10).await.unwrap();
        assert_eq!(history.len(), 3);
        assert_eq!(history[0].time, 3000);
        assert_eq!(history[0].reasons.to_value(), json!([{"step": "clamp", "from": 5, "to": 5}]));
        assert_eq!(history[0].hooks.to_value()[0]["exit"], json!(0));
        assert!(history[0].scaled);
        let states = store.load_policy_states().await.unwrap();
        assert_eq!(states.len(), 1);
        // The policy state is the one written with the newest decision.
        assert_eq!(states[&k], json!({"recommendations": [[3000, 5]]}));
        let state = store.policy_state(&k).await.unwrap().unwrap();
        assert_eq!(state.updated_at, history[0].time);
        store.close().await.unwrap();
    }
}

on_each_backend! {
    #[tokio::test]
    async fn a_decision_for_an_unknown_target_is_kept_under_a_placeholder(db) {
        let store = db.open().await;
        let k = key("ns", "ghost");
        let id = store.record_decision_committed(decision(&k, 5), None).await.unwrap();
        let row = store.get_target(&k).await.unwrap().unwrap();
        assert_eq!(row.state, "unknown");
        assert_eq!(store.decision(id).await.unwrap().unwrap().key, k);
        // The watch's upsert then fills the placeholder in.
        store.upsert_target(target("ns", "ghost")).await.unwrap();
        assert_eq!(store.get_target(&k).await.unwrap().unwrap().state, "active");
        assert_eq!(store.decisions(&k, None, 10).await.unwrap().len(), 1);
    }
}

on_each_backend! {
    #[tokio::test]
    async fn history_pages_newest_first_with_before(db) {
        let store = db.open().await;
        let k = key("ns", "web");
        let other = key("ns", "other");
        for t in 0..25 {
            store.record_decision(decision(&k, t * 10), None).await.unwrap();
            store.record_decision(decision(&other, t * 10), None).await.unwrap();
        }
        // Two decisions in the same millisecond are ordered by id.
        store.record_decision(decision(&k, 240), None).await.unwrap();
        store.flush().await.unwrap();

        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = store.decisions(&k, before, 10).await.unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.iter().all(|d| d.key == k));
            before = page.last().map(|d| d.id);
            seen.extend(page.into_iter().map(|d| (d.time, d.id)));
        }
        assert_eq!(seen.len(), 26);
        let mut sorted = seen.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(seen, sorted, "pages must run newest first without gaps");
        assert_eq!(seen[0].0, 240);
        assert_eq!(seen[1].0, 240);
    }
}

on_each_backend! {
    #[tokio::test]
    async fn pruning_deletes_only_decisions_older_than_the_retention(db) {
        let store = db.open().await;
        let k = key("ns", "web");
        store.upsert_target(target("ns", "web")).await.unwrap();
        for t in 0..5_000 {
            store.record_decision(decision(&k, t), Some(policy(&k, t))).await.unwrap();
        }
        store.flush().await.unwrap();

        // More than one prune chunk, so the chunk loop is exercised.
        let deleted = store.prune_decisions(4_500).await.unwrap();
        assert_eq!(deleted, 4_500);
        let left = store.decisions(&k, None, 1000).await.unwrap();
        assert_eq!(left.len(), 500);
        assert!(left.iter().all(|d| d.time >= 4_500));
        // The target and its policy state are not history: they stay.
        assert!(store.get_target(&k).await.unwrap().is_some());
        assert!(store.policy_state(&k).await.unwrap().is_some());
        assert_eq!(store.prune_decisions(4_500).await.unwrap(), 0);
    }
}

on_each_backend! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ten_thousand_decisions_from_many_tasks_all_land(db) {
        let store = db.open().await;
        let targets = 200;
        let per_target = 50;
        for i in 0..targets {
            store.upsert_target(target("load", &format!("t{i}"))).await.unwrap();
        }

        let started = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..targets {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let k = key("load", &format!("t{i}"));
                for t in 0..per_target {
                    store.record_decision(decision(&k, t), Some(policy(&k, t))).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        store.flush().await.unwrap();
        let elapsed = started.elapsed();

        let total = targets * per_target;
        let stats = store.stats();
        println!(
            "benchmark: {total} decisions (+ policy state) from {targets} tasks in {:.3}s = {:.0} decisions/s, \
             {} batches, last batch {}",
            elapsed.as_secs_f64(),
            total as f64 / elapsed.as_secs_f64(),
            stats.batches,
            stats.last_batch,
        );
        assert_eq!(stats.committed, (total + targets) as u64);
        assert_eq!(stats.failed + stats.rejected, 0);
        for i in [0, targets / 2, targets - 1] {
            let k = key("load", &format!("t{i}"));
            let history = store.decisions(&k, None, 1000).await.unwrap();
            assert_eq!(history.len(), per_target as usize);
        }
        assert_eq!(store.load_policy_states().await.unwrap().len(), targets as usize);
        store.close().await.unwrap();
    }
}

on_each_backend! {
    #[tokio::test]
    async fn a_small_queue_applies_backpressure_instead_of_dropping(db) {
        let options = StoreOptions { channel_capacity: 4, max_batch: 3, ..StoreOptions::default() };
        let store = db.open_with(options).await;
        let k = key("ns", "web");
        for t in 0..300 {
            store.record_decision(decision(&k, t), None).await.unwrap();
        }
        store.flush().await.unwrap();
        assert_eq!(store.decisions(&k, None, 1000).await.unwrap().len(), 300);
        assert!(store.stats().last_batch <= 3);
    }
}

on_each_backend! {
    #[tokio::test]
    async fn last_decisions_returns_the_newest_decision_of_each_target(db) {
        let store = db.open().await;
        let keys: Vec<_> = (0..450).map(|i| key("ns", &format!("t{i}"))).collect();
        for (i, k) in keys.iter().enumerate() {
            if i % 3 == 0 {
                continue; // never decided
            }
            for t in 0..3 {
                store.record_decision(decision(k, t * 100 + i as i64), None).await.unwrap();
            }
        }
        store.flush().await.unwrap();
        let last = store.last_decisions(&keys).await.unwrap();
        assert_eq!(last.len(), 300);
        assert_eq!(last[&keys[1]].time, 201);
        assert!(!last.contains_key(&keys[0]));
    }
}

on_each_backend! {
    #[tokio::test]
    async fn a_policy_state_saved_ahead_of_a_scale_is_committed_when_the_call_returns(db) {
        let k = key("ns", "web");
        let store = db.open().await;
        store.upsert_target(target("ns", "web")).await.unwrap();
        store.record_decision(decision(&k, 1000), Some(policy(&k, 1000))).await.unwrap();
        store.save_policy_state(policy(&k, 2000)).await.unwrap();
        // No flush and no close: what a kill -9 right after the scale call would leave.
        drop(store);

        let store = db.open().await;
        let state = store.policy_state(&k).await.unwrap().unwrap();
        assert_eq!(state.updated_at, 2000);
        assert_eq!(store.load_policy_states().await.unwrap()[&k], policy(&k, 2000).state);
    }
}
