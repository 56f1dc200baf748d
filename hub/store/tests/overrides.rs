//! Overrides: set, replace, clear, expire, history.

mod common;

use common::{key, pin, target};
use scalehub_store::{OverrideKind, PauseDirection, Store, StoreError};

async fn store_with_target(db: &common::TempDb) -> Store {
    let store = db.open().await;
    store.upsert_target(target("ns", "web")).await.unwrap();
    store
}

on_each_backend! {
    #[tokio::test]
    async fn a_set_override_is_readable_at_once_and_active_until_it_expires(db) {
        let store = store_with_target(&db).await;
        let k = key("ns", "web");
        let id = store.set_override(pin(&k, 7, 1_000, Some(5_000))).await.unwrap();

        // Read-your-writes: set_override returns after the commit.
        let open = store.override_for(&k).await.unwrap().unwrap();
        assert_eq!(open.id, id);
        assert_eq!(open.replicas, Some(7));
        assert_eq!(open.author, "alice");
        assert_eq!(store.active_overrides(4_999).await.unwrap().len(), 1);
        assert!(store.active_overrides(5_000).await.unwrap().is_empty(), "until is exclusive");
        assert!(open.is_active(4_999) && !open.is_active(5_000));
    }
}

on_each_backend! {
    #[tokio::test]
    async fn clearing_ends_the_override_and_keeps_it_in_history(db) {
        let store = store_with_target(&db).await;
        let k = key("ns", "web");
        store.set_override(pin(&k, 7, 1_000, None)).await.unwrap();
        assert!(store.clear_override(&k, "bob", 2_000).await.unwrap());
        assert!(!store.clear_override(&k, "bob", 2_500).await.unwrap(), "nothing left to clear");

        assert!(store.override_for(&k).await.unwrap().is_none());
        assert!(store.active_overrides(2_000).await.unwrap().is_empty());
        let history = store.override_history(&k, 10).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].ended_at, Some(2_000));
        assert_eq!(history[0].ended_by.as_deref(), Some("bob"));
    }
}

on_each_backend! {
    #[tokio::test]
    async fn a_new_override_replaces_the_open_one(db) {
        let store = store_with_target(&db).await;
        let k = key("ns", "web");
        store.set_override(pin(&k, 7, 1_000, None)).await.unwrap();
        let mut bounds = pin(&k, 0, 2_000, Some(9_000));
        bounds.kind = OverrideKind::Bounds;
        bounds.replicas = None;
        bounds.min_replicas = Some(2);
        bounds.max_replicas = Some(4);
        store.set_override(bounds).await.unwrap();

        let active = store.active_overrides(3_000).await.unwrap();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].kind, OverrideKind::Bounds);
        let history = store.override_history(&k, 10).await.unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[1].ended_by.as_deref(), Some("replaced"));
        assert_eq!(history[1].ended_at, Some(2_000));
    }
}

on_each_backend! {
    #[tokio::test]
    async fn a_lapsed_override_is_recorded_as_expired_not_cleared(db) {
        let store = store_with_target(&db).await;
        let k = key("ns", "web");
        let other = key("ns", "api");
        store.set_override(pin(&k, 7, 1_000, Some(2_000))).await.unwrap();
        store.set_override(pin(&other, 3, 1_000, Some(8_000))).await.unwrap();

        // Clearing after `until` credits nobody: it had already expired.
        assert!(!store.clear_override(&k, "bob", 3_000).await.unwrap());
        let history = store.override_history(&k, 10).await.unwrap();
        assert_eq!(history[0].ended_by.as_deref(), Some("expired"));
        assert_eq!(history[0].ended_at, Some(2_000));

        assert_eq!(store.expire_overrides(7_999).await.unwrap(), 0);
        assert_eq!(store.expire_overrides(8_000).await.unwrap(), 1);
        assert_eq!(store.override_history(&other, 1).await.unwrap()[0].ended_by.as_deref(), Some("expired"));
    }
}

on_each_backend! {
    #[tokio::test]
    async fn an_override_missing_its_fields_is_rejected_before_it_is_queued(db) {
        let store = store_with_target(&db).await;
        let k = key("ns", "web");
        let mut pause = pin(&k, 1, 1_000, None);
        pause.kind = OverrideKind::Pause;
        assert!(matches!(store.set_override(pause.clone()).await, Err(StoreError::InvalidOverride(_))));
        pause.pause_direction = Some(PauseDirection::Down);
        store.set_override(pause).await.unwrap();

        let mut bounds = pin(&k, 0, 1_000, None);
        bounds.kind = OverrideKind::Bounds;
        bounds.min_replicas = Some(5);
        bounds.max_replicas = Some(2);
        let error = store.set_override(bounds).await.unwrap_err();
        assert!(error.to_string().contains("minReplicas"), "{error}");
        let stale = pin(&k, 1, 1_000, Some(1_000));
        assert!(matches!(store.set_override(stale).await, Err(StoreError::InvalidOverride(_))));
    }
}

on_each_backend! {
    #[tokio::test]
    async fn overrides_survive_a_restart(db) {
        let k = key("ns", "web");
        let store = db.open().await;
        store.set_override(pin(&k, 4, 1_000, None)).await.unwrap();
        store.close().await.unwrap();
        let store = db.open().await;
        let active = store.active_overrides(1_000_000).await.unwrap();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].key, k);
        store.close().await.unwrap();
    }
}
