//! What a restarting hub reads to resume where it stopped without rewriting every row:
//! each target row's state and each target's last decision, in the compact form a loop
//! compares its next write with (JSON columns as fingerprints of their text).

use std::hash::{DefaultHasher, Hash, Hasher};

use crate::backend::{Cells as _, on_db};

use crate::error::{Result, query_err};
use crate::rows::TargetKey;
use crate::store::Store;

/// A fingerprint of a JSON column's text, as the store writes it (`serde_json::to_string`
/// of the value): equal texts give equal fingerprints within one process. Never persisted.
pub fn fingerprint(text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// What a target row says, without its spec document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSnapshot {
    /// The target.
    pub key: TargetKey,
    /// The workload's uid when the row was written.
    pub uid: Option<String>,
    /// `active`, `invalid`, ...
    pub state: String,
    /// Why the target is invalid or failing.
    pub error: Option<String>,
    /// Replicas the workload had.
    pub current_replicas: Option<i32>,
    /// Replicas the last decision asked for.
    pub desired_replicas: Option<i32>,
    /// Whether the target is marked removed.
    pub removed: bool,
    /// [`fingerprint`] of the spec column.
    pub spec: u64,
}

/// The parts of a target's newest decision that a loop compares its next decision with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionSnapshot {
    /// The target.
    pub key: TargetKey,
    /// `unchanged`, `scaled`, ...
    pub outcome: String,
    /// Why the tick failed, if it did.
    pub error: Option<String>,
    /// Replicas at the tick.
    pub current_replicas: Option<i32>,
    /// The evaluation before policy.
    pub raw_evaluation: Option<i64>,
    /// Replicas after policy.
    pub final_replicas: Option<i32>,
    /// Whether a scale call was made.
    pub scaled: bool,
    /// [`fingerprint`] of the reasons column.
    pub reasons: u64,
}

impl Store {
    /// Every target row, without its spec document (one scan of `targets`).
    pub async fn target_snapshots(&self) -> Result<Vec<TargetSnapshot>> {
        on_db!(self.pool(), pool => {
            let rows = sqlx::query(
                "SELECT namespace, kind, name, uid, state, error, current_replicas, desired_replicas, \
                        removed_at IS NOT NULL, spec FROM targets",
            )
            .fetch_all(pool)
            .await
            .map_err(query_err("read target snapshots"))?;
            let get = query_err("decode target snapshot");
            rows.iter()
                .map(|row| {
                    let spec: String = row.cell(9).map_err(get)?;
                    Ok(TargetSnapshot {
                        key: TargetKey {
                            namespace: row.cell(0).map_err(get)?,
                            kind: crate::codec::workload_kind(row.cell(1).map_err(get)?)?,
                            name: row.cell(2).map_err(get)?,
                        },
                        uid: row.cell(3).map_err(get)?,
                        state: row.cell(4).map_err(get)?,
                        error: row.cell(5).map_err(get)?,
                        current_replicas: row.cell(6).map_err(get)?,
                        desired_replicas: row.cell(7).map_err(get)?,
                        removed: row.cell(8).map_err(get)?,
                        spec: fingerprint(&spec),
                    })
                })
                .collect()
        })
    }

    /// The newest decision of every target that is not removed (one probe of
    /// decisions_by_target_time per target).
    pub async fn last_decision_snapshots(&self) -> Result<Vec<DecisionSnapshot>> {
        on_db!(self.pool(), pool => {
            let rows = sqlx::query(
                "SELECT t.namespace, t.kind, t.name, d.outcome, d.error, d.current_replicas, \
                        d.raw_evaluation, d.final_replicas, d.scaled, d.reasons \
                 FROM targets t JOIN decisions d ON d.id = \
                     (SELECT x.id FROM decisions x WHERE x.target_id = t.id ORDER BY x.time DESC, x.id DESC LIMIT 1) \
                 WHERE t.removed_at IS NULL",
            )
            .fetch_all(pool)
            .await
            .map_err(query_err("read decision snapshots"))?;
            let get = query_err("decode decision snapshot");
            rows.iter()
                .map(|row| {
                    let reasons: String = row.cell(9).map_err(get)?;
                    Ok(DecisionSnapshot {
                        key: TargetKey {
                            namespace: row.cell(0).map_err(get)?,
                            kind: crate::codec::workload_kind(row.cell(1).map_err(get)?)?,
                            name: row.cell(2).map_err(get)?,
                        },
                        outcome: row.cell(3).map_err(get)?,
                        error: row.cell(4).map_err(get)?,
                        current_replicas: row.cell(5).map_err(get)?,
                        raw_evaluation: row.cell(6).map_err(get)?,
                        final_replicas: row.cell(7).map_err(get)?,
                        scaled: row.cell(8).map_err(get)?,
                        reasons: fingerprint(&reasons),
                    })
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::rows::{DecisionRow, Kind, TargetRow};

    fn target(name: &str, state: &str) -> TargetRow {
        TargetRow {
            key: TargetKey::new("ns", Kind::Deployment, name),
            uid: Some(format!("uid-{name}")),
            state: state.into(),
            spec: json!({"minReplicas": 1}).into(),
            error: None,
            current_replicas: Some(2),
            desired_replicas: Some(3),
            first_seen: 1,
            last_seen: 1,
            removed_at: None,
            updated_at: 1,
        }
    }

    fn decision(name: &str, time: i64, outcome: &str) -> DecisionRow {
        DecisionRow {
            id: 0,
            key: TargetKey::new("ns", Kind::Deployment, name),
            time,
            run_type: "scaler".into(),
            metrics: json!([]).into(),
            raw_evaluation: Some(3),
            evaluation: json!({"targetReplicas": 3}).into(),
            reasons: json!([{"step": "clamp", "message": "within bounds"}]).into(),
            final_replicas: Some(3),
            current_replicas: Some(2),
            scaled: false,
            scale_result: None,
            error: None,
            hooks: json!([]).into(),
            outcome: outcome.into(),
        }
    }

    #[tokio::test]
    async fn snapshots_say_what_the_rows_say_with_json_as_fingerprints_of_its_text() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        store.upsert_target(target("web", "active")).await.unwrap();
        store.upsert_target(target("gone", "active")).await.unwrap();
        store.record_decision_committed(decision("web", 10, "unchanged"), None).await.unwrap();
        store.record_decision_committed(decision("web", 20, "held"), None).await.unwrap();
        store.record_decision_committed(decision("gone", 20, "held"), None).await.unwrap();
        store.mark_target_removed(&TargetKey::new("ns", Kind::Deployment, "gone"), 30).await.unwrap();

        let mut rows = store.target_snapshots().await.unwrap();
        rows.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(rows.len(), 2);
        assert!(rows[0].removed && rows[0].key.name == "gone");
        let web = &rows[1];
        assert_eq!(
            (web.state.as_str(), web.uid.as_deref(), web.current_replicas),
            ("active", Some("uid-web"), Some(2))
        );
        assert_eq!(web.spec, fingerprint(&serde_json::to_string(&json!({"minReplicas": 1})).unwrap()));

        let decisions = store.last_decision_snapshots().await.unwrap();
        assert_eq!(decisions.len(), 1, "removed targets are not resumed: {decisions:?}");
        assert_eq!(decisions[0].outcome, "held", "the newest decision");
        let reasons = json!([{"step": "clamp", "message": "within bounds"}]);
        assert_eq!(decisions[0].reasons, fingerprint(&serde_json::to_string(&reasons).unwrap()));
        assert_ne!(decisions[0].reasons, fingerprint("[]"));
    }
}
