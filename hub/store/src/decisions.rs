//! The `decisions` table: recording, history paging and retention.

use std::collections::HashMap;

use crate::backend::{Cells, Conn, on_db, values};
use crate::codec::text;
use crate::error::{Result, query_err};
use crate::json::Json;
use crate::rows::{DecisionRow, PolicyStateRow, TargetKey};
use crate::store::Store;
use crate::writer::Write;

pub(crate) use crate::policy::save as save_policy;

/// Decisions deleted per transaction by retention: small enough that the
/// writer's other batches wait only milliseconds between two chunks.
const PRUNE_CHUNK: i64 = 2000;

/// Largest history page served.
pub const MAX_HISTORY: u32 = 1000;

/// Selected columns of `d` (decisions) and `t` (targets), in `decision_from_row` order.
const COLUMNS: &str = "d.id, t.namespace, t.kind, t.name, d.time, d.run_type, d.metrics, \
     d.raw_evaluation, d.evaluation, d.reasons, d.final_replicas, d.current_replicas, d.scaled, \
     d.scale_result, d.error, d.hooks, d.outcome";

/// The usual FROM clause for [`COLUMNS`].
const FROM: &str = "FROM decisions d JOIN targets t ON t.id = d.target_id";

/// The newest decision of each of `keys` (namespace, kind, name) bound in order. Each key
/// is one probe of the targets' unique index and one of decisions_by_target_time
/// (`(…) IN (VALUES …)` would scan every target).
fn last_decisions_sql(keys: usize) -> String {
    let values = values(keys, 3, 1);
    format!(
        "WITH k(namespace, kind, name) AS (VALUES {values}) \
         SELECT {COLUMNS} FROM k \
         JOIN targets t ON t.namespace = k.namespace AND t.kind = k.kind AND t.name = k.name \
         JOIN decisions d ON d.id = (SELECT x.id FROM decisions x WHERE x.target_id = t.id \
                                     ORDER BY x.time DESC, x.id DESC LIMIT 1)"
    )
}

/// Keys looked up per `last_decisions` statement (three variables each).
const KEYS_PER_QUERY: usize = 200;

/// Inserts a decision for the target with id `target`; returns the decision id.
pub(crate) async fn insert(conn: &mut Conn, target: i64, d: &DecisionRow) -> Result<i64> {
    on_db!(conn, c => sqlx::query_scalar(
        "INSERT INTO decisions (target_id, time, run_type, metrics, raw_evaluation, evaluation, \
             reasons, final_replicas, current_replicas, scaled, scale_result, error, hooks, outcome) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
    )
    .bind(target)
    .bind(d.time)
    .bind(&d.run_type)
    .bind(d.metrics.text())
    .bind(d.raw_evaluation)
    .bind(d.evaluation.text())
    .bind(d.reasons.text())
    .bind(d.final_replicas)
    .bind(d.current_replicas)
    .bind(d.scaled)
    .bind(d.scale_result.as_deref().map(text))
    .bind(d.error.as_deref().map(text))
    .bind(d.hooks.text())
    .bind(&d.outcome)
    .fetch_one(c)
    .await)
    .map_err(query_err("insert decision"))
}

/// Deletes up to `limit` decisions older than `older_than`, oldest first.
pub(crate) async fn prune_batch(conn: &mut Conn, older_than: i64, limit: i64) -> Result<i64> {
    let deleted = on_db!(conn, c => sqlx::query(
        "DELETE FROM decisions WHERE id IN \
             (SELECT id FROM decisions WHERE time < $1 ORDER BY time LIMIT $2)",
    )
    .bind(older_than)
    .bind(limit)
    .execute(c)
    .await
    .map(|done| done.rows_affected()))
    .map_err(query_err("prune decisions"))?;
    Ok(deleted as i64)
}

/// Reads a [`DecisionRow`] from a row selected with [`COLUMNS`].
fn decision_from_row(row: &impl Cells) -> Result<DecisionRow> {
    let get = query_err("decode decision");
    let json = |i: usize, column| -> Result<Json> {
        Json::from_column(column, row.cell(i).map_err(query_err("decode decision"))?)
    };
    Ok(DecisionRow {
        id: row.cell(0).map_err(get)?,
        key: TargetKey {
            namespace: row.cell(1).map_err(get)?,
            kind: crate::codec::workload_kind(row.cell(2).map_err(get)?)?,
            name: row.cell(3).map_err(get)?,
        },
        time: row.cell(4).map_err(get)?,
        run_type: row.cell(5).map_err(get)?,
        metrics: json(6, "decisions.metrics")?,
        raw_evaluation: row.cell(7).map_err(get)?,
        evaluation: json(8, "decisions.evaluation")?,
        reasons: json(9, "decisions.reasons")?,
        final_replicas: row.cell(10).map_err(get)?,
        current_replicas: row.cell(11).map_err(get)?,
        scaled: row.cell(12).map_err(get)?,
        scale_result: row.cell(13).map_err(get)?,
        error: row.cell(14).map_err(get)?,
        hooks: json(15, "decisions.hooks")?,
        outcome: row.cell(16).map_err(get)?,
    })
}

/// The history query: $1..$3 the key, $4 the limit, $5 the `before` id.
/// One decision's replicas (see [`Store::recent_replicas`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaPoint {
    /// When, unix ms.
    pub time: i64,
    /// Replicas the workload had.
    pub current_replicas: Option<i32>,
    /// Replicas the decision settled on.
    pub final_replicas: Option<i32>,
}

fn history_sql(before: bool) -> String {
    let target = "d.target_id = (SELECT id FROM targets WHERE namespace = $1 AND kind = $2 AND name = $3)";
    let order = "ORDER BY d.time DESC, d.id DESC LIMIT $4";
    match before {
        false => format!("SELECT {COLUMNS} {FROM} WHERE {target} {order}"),
        true => format!(
            "SELECT {COLUMNS} {FROM} WHERE {target} AND (d.time, d.id) < \
                 (SELECT time, id FROM decisions WHERE id = $5) {order}"
        ),
    }
}

impl Store {
    /// Queues a decision and the policy state it produced; both are committed
    /// in one transaction. Returns once queued (waiting while the queue is
    /// full), not once committed: use [`Store::flush`] to wait.
    pub async fn record_decision(&self, decision: DecisionRow, policy: Option<PolicyStateRow>) -> Result<()> {
        let op = Write::Decision { decision: Box::new(decision), policy: policy.map(Box::new) };
        self.enqueue(op).await
    }

    /// Like [`Store::record_decision`] but waits for the commit and returns the
    /// new decision's id (for API calls that answer with the decision).
    pub async fn record_decision_committed(
        &self,
        decision: DecisionRow,
        policy: Option<PolicyStateRow>,
    ) -> Result<i64> {
        let op = Write::Decision { decision: Box::new(decision), policy: policy.map(Box::new) };
        self.write(op).await
    }

    /// A target's decisions, newest first: `limit` of them (capped at
    /// [`MAX_HISTORY`]) older than the decision `before_id`, or the newest
    /// when `before_id` is `None`. A `before_id` that no longer exists
    /// (pruned) yields an empty page.
    pub async fn decisions(&self, key: &TargetKey, before_id: Option<i64>, limit: u32) -> Result<Vec<DecisionRow>> {
        let limit = i64::from(limit.clamp(1, MAX_HISTORY));
        let sql = history_sql(before_id.is_some());
        on_db!(self.pool(), pool => {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&key.namespace)
                .bind(key.kind.as_str())
                .bind(&key.name)
                .bind(limit);
            if let Some(before) = before_id {
                query = query.bind(before);
            }
            let rows = query.fetch_all(pool).await.map_err(query_err("read decisions"))?;
            rows.iter().map(decision_from_row).collect()
        })
    }

    /// One decision by id.
    pub async fn decision(&self, id: i64) -> Result<Option<DecisionRow>> {
        on_db!(self.pool(), pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} {FROM} WHERE d.id = $1")))
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(query_err("read decision"))?;
            row.as_ref().map(decision_from_row).transpose()
        })
    }

    /// The newest decision of each of `keys` that has one (for target lists).
    pub async fn last_decisions(&self, keys: &[TargetKey]) -> Result<HashMap<TargetKey, DecisionRow>> {
        let mut found = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(KEYS_PER_QUERY) {
            let sql = last_decisions_sql(chunk.len());
            let decisions: Vec<DecisionRow> = on_db!(self.pool(), pool => {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for key in chunk {
                    query = query.bind(&key.namespace).bind(key.kind.as_str()).bind(&key.name);
                }
                let rows = query.fetch_all(pool).await.map_err(query_err("read last decisions"))?;
                rows.iter().map(decision_from_row).collect::<Result<_>>()?
            });
            for decision in decisions {
                found.insert(decision.key.clone(), decision);
            }
        }
        Ok(found)
    }

    /// The replicas of the newest `limit` decisions of each of `keys`, oldest first, in the
    /// order of `keys` (empty for a target without decisions): what a list's sparklines draw,
    /// in one call instead of one request per row. Each is an index range scan; one
    /// connection serves them all.
    pub async fn recent_replicas(&self, keys: &[TargetKey], limit: u32) -> Result<Vec<Vec<ReplicaPoint>>> {
        let limit = i64::from(limit.clamp(1, MAX_HISTORY));
        on_db!(self.pool(), pool => {
        let mut conn = pool.acquire().await.map_err(query_err("read recent replicas"))?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let rows = sqlx::query(
                "SELECT d.time, d.current_replicas, d.final_replicas FROM decisions d \
                 WHERE d.target_id = (SELECT id FROM targets WHERE namespace = $1 AND kind = $2 AND name = $3) \
                 ORDER BY d.time DESC, d.id DESC LIMIT $4",
            )
            .bind(&key.namespace)
            .bind(key.kind.as_str())
            .bind(&key.name)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await
            .map_err(query_err("read recent replicas"))?;
            let mut points = rows
                .iter()
                .map(|row| {
                    Ok(ReplicaPoint {
                        time: row.cell(0)?,
                        current_replicas: row.cell(1)?,
                        final_replicas: row.cell(2)?,
                    })
                })
                .collect::<std::result::Result<Vec<_>, sqlx::Error>>()
                .map_err(query_err("decode recent replicas"))?;
            points.reverse();
            out.push(points);
        }
        Ok(out)
        })
    }

    /// Deletes decisions older than `older_than_ms`, and tick-series chunks that ended
    /// before it, in chunks, each its own transaction through the writer so decisions keep
    /// landing in between. Returns how many rows were deleted.
    pub async fn prune_decisions(&self, older_than_ms: i64) -> Result<u64> {
        let mut total = 0u64;
        for series in [false, true] {
            loop {
                let op = match series {
                    false => Write::PruneDecisions { older_than: older_than_ms, limit: PRUNE_CHUNK },
                    true => Write::PruneTicks { older_than: older_than_ms, limit: PRUNE_CHUNK },
                };
                let deleted = self.write(op).await?;
                total += deleted.max(0) as u64;
                if deleted < PRUNE_CHUNK {
                    break;
                }
            }
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Row as _;

    #[tokio::test]
    async fn history_pages_walk_the_target_time_index_without_sorting() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        for before in [false, true] {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {}", history_sql(before))))
                .bind("ns")
                .bind("Deployment")
                .bind("web")
                .bind(10)
                .bind(5)
                .fetch_all(store.sqlite_pool())
                .await
                .unwrap();
            let plan: Vec<String> = rows.iter().map(|r| r.get(3)).collect();
            let plan = plan.join("; ");
            assert!(plan.contains("decisions_by_target_time"), "{plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{plan}");
        }
    }

    #[tokio::test]
    async fn last_decisions_probe_each_key_instead_of_scanning_the_targets() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {}", last_decisions_sql(3))));
        for i in 0..3 {
            query = query.bind("ns").bind("Deployment").bind(format!("web-{i}"));
        }
        let rows = query.fetch_all(store.sqlite_pool()).await.unwrap();
        let plan: Vec<String> = rows.iter().map(|r| r.get(3)).collect();
        let plan = plan.join("; ");
        assert!(plan.contains("SEARCH t USING COVERING INDEX sqlite_autoindex_targets_1"), "{plan}");
        assert!(!plan.contains("SCAN t"), "{plan}");
        assert!(plan.contains("decisions_by_target_time"), "{plan}");
    }
}
