//! The `policy_state` table: stabilisation and rate windows per target.

use std::collections::HashMap;

use crate::backend::{Conn, on_db, values};
use serde_json::Value;

use crate::codec::{json_text, json_value};
use crate::error::{Result, query_err};
use crate::rows::{PolicyStateRow, TargetKey};
use crate::store::Store;

/// Replaces the policy state of the target with id `target`. Called only
/// inside the transaction that records the decision producing the state.
pub(crate) async fn save(conn: &mut Conn, target: i64, row: &PolicyStateRow) -> Result<()> {
    let state = json_text("policy_state.state", &row.state)?;
    on_db!(conn, c => sqlx::query(
        "INSERT INTO policy_state (target_id, state, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (target_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
    )
    .bind(target)
    .bind(&state)
    .bind(row.updated_at)
    .execute(c)
    .await
    .map(|_| ()))
    .map_err(query_err("save policy state"))?;
    Ok(())
}

/// Rows per multi-row statement: well under SQLite's limit of 32,766 bound variables.
const ROWS_PER_STATEMENT: usize = 250;

/// [`save`] for many targets at once, one statement per [`ROWS_PER_STATEMENT`] rows.
pub(crate) async fn save_many(conn: &mut Conn, rows: &[(i64, &PolicyStateRow)]) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let values = values(chunk.len(), 3, 1);
        let sql = format!(
            "INSERT INTO policy_state (target_id, state, updated_at) VALUES {values} \
             ON CONFLICT (target_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at"
        );
        let states =
            chunk.iter().map(|(_, row)| json_text("policy_state.state", &row.state)).collect::<Result<Vec<_>>>()?;
        on_db!(&mut *conn, c => {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for ((target, row), state) in chunk.iter().zip(&states) {
                query = query.bind(*target).bind(state).bind(row.updated_at);
            }
            query.execute(c).await.map(|_| ())
        })
        .map_err(query_err("save policy states"))?;
    }
    Ok(())
}

impl Store {
    /// Writes a target's policy state and waits for the commit. The hub calls it before a
    /// scale call, so a crash between the scale and the decision's commit can never restore
    /// windows that miss the recommendation the scale acted on.
    pub async fn save_policy_state(&self, row: PolicyStateRow) -> Result<()> {
        self.write(crate::writer::Write::PolicyState(Box::new(row))).await.map(|_| ())
    }

    /// Every target's policy state, to restore the policy windows at startup.
    pub async fn load_policy_states(&self) -> Result<HashMap<TargetKey, Value>> {
        let rows: Vec<(String, String, String, String)> = on_db!(self.pool(), pool => sqlx::query_as(
            "SELECT t.namespace, t.kind, t.name, p.state \
             FROM policy_state p JOIN targets t ON t.id = p.target_id",
        )
        .fetch_all(pool)
        .await)
        .map_err(query_err("load policy states"))?;
        rows.into_iter()
            .map(|(namespace, kind, name, state)| {
                Ok((
                    TargetKey { namespace, kind: crate::codec::workload_kind(kind)?, name },
                    json_value("policy_state.state", &state)?,
                ))
            })
            .collect()
    }

    /// One target's policy state, if it has one.
    pub async fn policy_state(&self, key: &TargetKey) -> Result<Option<PolicyStateRow>> {
        let row: Option<(String, i64)> = on_db!(self.pool(), pool => sqlx::query_as(
            "SELECT p.state, p.updated_at FROM policy_state p JOIN targets t ON t.id = p.target_id \
             WHERE t.namespace = $1 AND t.kind = $2 AND t.name = $3",
        )
        .bind(&key.namespace)
        .bind(key.kind.as_str())
        .bind(&key.name)
        .fetch_optional(pool)
        .await)
        .map_err(query_err("read policy state"))?;
        row.map(|(state, updated_at)| {
            let state = json_value("policy_state.state", &state)?;
            Ok(PolicyStateRow { key: key.clone(), state, updated_at, fence: None })
        })
        .transpose()
    }
}
