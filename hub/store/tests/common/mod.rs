//! Fixtures shared by the store's integration tests.
#![allow(dead_code)]

use scalehub_store::{DecisionRow, OverrideKind, OverrideRow, PolicyStateRow, Store, TargetKey, TargetRow};
use serde_json::json;
use tempfile::TempDir;

/// A fresh, empty database: a SQLite file in its own temporary directory, or a schema of its
/// own in the tests' PostgreSQL database.
pub struct TempDb {
    pub dir: TempDir,
    pub url: String,
}

impl TempDb {
    /// A SQLite file.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("hub.db").display());
        Self { dir, url }
    }

    /// A new schema in the tests' PostgreSQL database, or `None` when there is no server.
    pub async fn postgres() -> Option<Self> {
        let url = scalehub_store::testing::postgres_schema_url().await?;
        Some(Self { dir: tempfile::tempdir().unwrap(), url })
    }

    pub async fn open(&self) -> Store {
        Store::open(&self.url).await.unwrap()
    }

    pub async fn open_with(&self, options: scalehub_store::StoreOptions) -> Store {
        Store::open_with(&self.url, options).await.unwrap()
    }
}

/// One test, run once on SQLite (`NAME::sqlite`) and once on PostgreSQL (`NAME::postgres`):
/// `$db` is a fresh [`TempDb`] of each. The attributes are the tokio test's.
#[macro_export]
macro_rules! on_each_backend {
    ($(#[$attr:meta])* async fn $name:ident($db:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($db: $crate::common::TempDb) $body

            $(#[$attr])*
            async fn sqlite() {
                run($crate::common::TempDb::new()).await
            }

            $(#[$attr])*
            async fn postgres() {
                if let Some(db) = $crate::common::TempDb::postgres().await {
                    run(db).await
                }
            }
        }
    };
}

pub fn key(namespace: &str, name: &str) -> TargetKey {
    TargetKey::new(namespace, scalehub_store::Kind::Deployment, name)
}

pub fn target(namespace: &str, name: &str) -> TargetRow {
    TargetRow {
        key: key(namespace, name),
        uid: Some(format!("uid-{namespace}-{name}")),
        state: "active".into(),
        spec: json!({"minReplicas": 1, "maxReplicas": 10}).into(),
        error: None,
        current_replicas: Some(2),
        desired_replicas: Some(2),
        first_seen: 1_000,
        last_seen: 1_000,
        removed_at: None,
        updated_at: 1_000,
    }
}

pub fn decision(key: &TargetKey, time: i64) -> DecisionRow {
    DecisionRow {
        id: 0,
        key: key.clone(),
        time,
        run_type: "scaler".into(),
        metrics: json!([{"resource": "web", "value": "42"}]).into(),
        raw_evaluation: Some(5),
        evaluation: json!({"targetReplicas": 5}).into(),
        reasons: json!([{"step": "clamp", "from": 5, "to": 5}]).into(),
        final_replicas: Some(5),
        current_replicas: Some(2),
        scaled: true,
        scale_result: Some("ok".into()),
        error: None,
        hooks: json!([{"hook": "evaluate", "exit": 0, "durationMs": 12}]).into(),
        outcome: "scaled".into(),
    }
}

pub fn policy(key: &TargetKey, time: i64) -> PolicyStateRow {
    PolicyStateRow { key: key.clone(), state: json!({"recommendations": [[time, 5]]}), updated_at: time, fence: None }
}

pub fn pin(key: &TargetKey, replicas: i32, at: i64, until: Option<i64>) -> OverrideRow {
    OverrideRow {
        id: 0,
        key: key.clone(),
        kind: OverrideKind::Pin,
        replicas: Some(replicas),
        min_replicas: None,
        max_replicas: None,
        pause_direction: None,
        until,
        reason: "incident 42".into(),
        author: "alice".into(),
        created_at: at,
        ended_at: None,
        ended_by: None,
    }
}
