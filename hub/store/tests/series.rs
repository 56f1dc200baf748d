//! The tick series: chunks grow in place, survive a restart, read back by time range, and
//! retention removes the chunks that ended before the cutoff.

mod common;

use common::{key, target};
use scalehub_store::series::{SeriesWriter, encode};
use scalehub_store::{SeriesChunkRow, SeriesMetric, TickPoint};

fn row(key: &scalehub_store::TargetKey, points: &[TickPoint]) -> SeriesChunkRow {
    SeriesChunkRow { key: key.clone(), chunk: encode(points).unwrap() }
}

fn point(time: i64, replicas: i32) -> TickPoint {
    TickPoint {
        time,
        current_replicas: Some(replicas),
        raw_evaluation: Some(replicas),
        final_replicas: Some(replicas),
        predicted: None,
        ratio_ppm: None,
        usage: Vec::new(),
        outcome: "unchanged".into(),
        metrics: vec![SeriesMetric { resource: "cpu".into(), value: format!("{}m over 2 ready pods", 600 + time % 7) }],
    }
}

on_each_backend! {
    #[tokio::test]
    async fn a_growing_chunk_is_rewritten_in_place_and_survives_a_restart(db) {
        let k = key("ns", "web");
        let store = db.open().await;
        store.upsert_target(target("ns", "web")).await.unwrap();
        let mut points = Vec::new();
        let mut writer = SeriesWriter::default();
        for t in 0..10 {
            points.push(point(1_000 + t * 15_000, 2));
            let chunk = writer.push(points[points.len() - 1].clone()).unwrap().clone();
            store.record_tick(None, None, Some(SeriesChunkRow { key: k.clone(), chunk })).await.unwrap();
        }
        store.flush().await.unwrap();
        drop(store);

        let store = db.open().await;
        let read = store.ticks(&k, 0, i64::MAX, 100).await.unwrap();
        assert_eq!(read, points, "one chunk, rewritten ten times, holds all ten points");
        store.close().await.unwrap();
    }
}

on_each_backend! {
    #[tokio::test]
    async fn ticks_are_read_by_time_range_across_chunks_newest_kept_at_the_limit(db) {
        let store = db.open().await;
        let k = key("ns", "web");
        let other = key("ns", "other");
        for chunk in 0..3 {
            let points: Vec<TickPoint> = (0..5).map(|i| point((chunk * 5 + i) * 1_000, 2)).collect();
            store.record_tick(None, None, Some(row(&k, &points))).await.unwrap();
        }
        store.record_tick(None, None, Some(row(&other, &[point(3_000, 9)]))).await.unwrap();
        store.flush().await.unwrap();
        let times = |points: Vec<TickPoint>| points.iter().map(|p| p.time / 1_000).collect::<Vec<_>>();
        assert_eq!(times(store.ticks(&k, 3_000, 7_000, 100).await.unwrap()), [3, 4, 5, 6]);
        assert_eq!(times(store.ticks(&k, 0, i64::MAX, 4).await.unwrap()), [11, 12, 13, 14]);
        assert_eq!(store.ticks(&other, 0, i64::MAX, 100).await.unwrap()[0].final_replicas, Some(9));
        assert!(store.ticks(&key("ns", "nobody"), 0, i64::MAX, 100).await.unwrap().is_empty());
    }
}

on_each_backend! {
    #[tokio::test]
    async fn retention_removes_series_chunks_that_ended_before_the_cutoff(db) {
        let store = db.open().await;
        let k = key("ns", "web");
        store.record_tick(None, None, Some(row(&k, &[point(1_000, 2), point(2_000, 2)]))).await.unwrap();
        store.record_tick(None, None, Some(row(&k, &[point(5_000, 2), point(9_000, 3)]))).await.unwrap();
        store.flush().await.unwrap();
        let pruned = store.prune_decisions(6_000).await.unwrap();
        assert_eq!(pruned, 1, "only the chunk that ended at 2 s is older than the cutoff");
        let left = store.ticks(&k, 0, i64::MAX, 100).await.unwrap();
        assert_eq!(left.iter().map(|p| p.time).collect::<Vec<_>>(), [5_000, 9_000]);
    }
}

on_each_backend! {
    #[tokio::test]
    async fn a_batch_of_ticks_writes_every_policy_state_and_chunk_and_the_last_tick_of_a_target_wins(db) {
        use scalehub_store::PolicyStateRow;
        use serde_json::json;
        let store = db.open().await;
        // More targets than one multi-row statement takes, each ticking twice in the same batch.
        let keys: Vec<_> = (0..600).map(|i| key("ns", &format!("w{i}"))).collect();
        let mut writers: Vec<SeriesWriter> = keys.iter().map(|_| SeriesWriter::default()).collect();
        for round in 0..2i64 {
            for (k, w) in keys.iter().zip(writers.iter_mut()) {
                let chunk = w.push(point(1_000 + round * 15_000, 2)).unwrap().clone();
                let policy = PolicyStateRow { key: k.clone(), state: json!({"round": round}), updated_at: round, fence: None };
                store.record_tick(None, Some(policy), Some(SeriesChunkRow { key: k.clone(), chunk })).await.unwrap();
            }
        }
        store.flush().await.unwrap();
        let states = store.load_policy_states().await.unwrap();
        assert_eq!(states.len(), 600);
        assert!(states.values().all(|s| *s == json!({"round": 1})), "a state from the first round survived");
        for k in [&keys[0], &keys[299], &keys[599]] {
            assert_eq!(store.ticks(k, 0, i64::MAX, 10).await.unwrap().len(), 2, "{k:?}");
        }
    }
}
