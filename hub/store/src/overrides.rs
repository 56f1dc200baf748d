//! The `overrides` table: operator overrides and their history.
//!
//! History is kept in the table itself: an override is never deleted, it is
//! ended with `ended_at`/`ended_by` — by a user clearing it, by `replaced`
//! when a new one is set, or by `expired` once its `until` has passed and a
//! later write noticed. The decisions a target makes under an override carry
//! it in their reason chain; that is the hub's part.

use crate::backend::{Cells, Conn, on_db};
use crate::codec::{direction_from, direction_text, kind_from, kind_text, text};
use crate::error::{Result, StoreError, query_err};
use crate::rows::{OverrideKind, OverrideRow, TargetKey};
use crate::store::Store;
use crate::writer::Write;

/// Selected columns, in `override_from_row` order.
const SELECT: &str = "SELECT o.id, t.namespace, t.kind, t.name, o.kind, o.replicas, o.min_replicas, \
     o.max_replicas, o.pause_direction, o.until, o.reason, o.author, o.created_at, o.ended_at, \
     o.ended_by FROM overrides o JOIN targets t ON t.id = o.target_id";

/// Checks that an override carries the fields its kind needs.
pub(crate) fn validate(row: &OverrideRow) -> Result<()> {
    let non_negative = |n: Option<i32>| n.is_some_and(|n| n >= 0);
    match row.kind {
        OverrideKind::Pin if !non_negative(row.replicas) => {
            Err(StoreError::InvalidOverride("a pin needs replicas >= 0"))
        }
        OverrideKind::Bounds if !(non_negative(row.min_replicas) && non_negative(row.max_replicas)) => {
            Err(StoreError::InvalidOverride("bounds need minReplicas and maxReplicas >= 0"))
        }
        OverrideKind::Bounds if row.min_replicas > row.max_replicas => {
            Err(StoreError::InvalidOverride("minReplicas is greater than maxReplicas"))
        }
        OverrideKind::Pause if row.pause_direction.is_none() => {
            Err(StoreError::InvalidOverride("a pause needs a direction"))
        }
        _ if row.until.is_some_and(|until| until <= row.created_at) => {
            Err(StoreError::InvalidOverride("until is not after the time it was set"))
        }
        _ => Ok(()),
    }
}

/// Ends the open override of `target` (if any) and inserts `row`; returns its id.
pub(crate) async fn insert(conn: &mut Conn, target: i64, row: &OverrideRow) -> Result<i64> {
    // An open override past its `until` ended by expiring, not by this one.
    on_db!(&mut *conn, c => sqlx::query(
        "UPDATE overrides SET \
             ended_at = CASE WHEN until IS NOT NULL AND until <= $2 THEN until ELSE $2 END, \
             ended_by = CASE WHEN until IS NOT NULL AND until <= $2 THEN 'expired' ELSE 'replaced' END \
         WHERE target_id = $1 AND ended_at IS NULL",
    )
    .bind(target)
    .bind(row.created_at)
    .execute(c)
    .await
    .map(|_| ()))
    .map_err(query_err("end previous override"))?;
    on_db!(conn, c => sqlx::query_scalar(
        "INSERT INTO overrides (target_id, kind, replicas, min_replicas, max_replicas, \
             pause_direction, until, reason, author, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(target)
    .bind(kind_text(row.kind))
    .bind(row.replicas)
    .bind(row.min_replicas)
    .bind(row.max_replicas)
    .bind(row.pause_direction.map(direction_text))
    .bind(row.until)
    .bind(text(&row.reason))
    .bind(text(&row.author))
    .bind(row.created_at)
    .fetch_one(c)
    .await)
    .map_err(query_err("insert override"))
}

/// Ends the active override of `key`; returns how many were ended (0 or 1).
pub(crate) async fn clear(conn: &mut Conn, key: &TargetKey, by: &str, at: i64) -> Result<i64> {
    let target = "(SELECT id FROM targets WHERE namespace = $1 AND kind = $2 AND name = $3)";
    // Close a lapsed one as expired first, so the user is credited only with
    // ending an override that was still in force.
    expire_where(conn, &format!("target_id = {target}"), key, at).await?;
    let sql =
        format!("UPDATE overrides SET ended_at = $4, ended_by = $5 WHERE target_id = {target} AND ended_at IS NULL");
    let cleared = on_db!(conn, c => sqlx::query(sqlx::AssertSqlSafe(sql))
    .bind(&key.namespace)
    .bind(key.kind.as_str())
    .bind(&key.name)
    .bind(at)
    .bind(text(by))
    .execute(c)
    .await
    .map(|done| done.rows_affected()))
    .map_err(query_err("clear override"))?;
    Ok(cleared as i64)
}

/// Ends every open override whose `until` is at or before `now`.
pub(crate) async fn expire(conn: &mut Conn, now: i64) -> Result<i64> {
    let expired = on_db!(conn, c => sqlx::query(
        "UPDATE overrides SET ended_at = until, ended_by = 'expired' \
         WHERE ended_at IS NULL AND until IS NOT NULL AND until <= $1",
    )
    .bind(now)
    .execute(c)
    .await
    .map(|done| done.rows_affected()))
    .map_err(query_err("expire overrides"))?;
    Ok(expired as i64)
}

/// Expires the lapsed open overrides of one target (`condition` uses $1..$3).
async fn expire_where(conn: &mut Conn, condition: &str, key: &TargetKey, now: i64) -> Result<()> {
    let sql = format!(
        "UPDATE overrides SET ended_at = until, ended_by = 'expired' \
         WHERE {condition} AND ended_at IS NULL AND until IS NOT NULL AND until <= $4"
    );
    on_db!(conn, c => sqlx::query(sqlx::AssertSqlSafe(sql))
    .bind(&key.namespace)
    .bind(key.kind.as_str())
    .bind(&key.name)
    .bind(now)
    .execute(c)
    .await
    .map(|_| ()))
    .map_err(query_err("expire override"))?;
    Ok(())
}

/// Reads an [`OverrideRow`] from a row selected with [`SELECT`].
fn override_from_row(row: &impl Cells) -> Result<OverrideRow> {
    let get = query_err("decode override");
    let direction: Option<String> = row.cell(8).map_err(get)?;
    Ok(OverrideRow {
        id: row.cell(0).map_err(get)?,
        key: TargetKey {
            namespace: row.cell(1).map_err(get)?,
            kind: crate::codec::workload_kind(row.cell(2).map_err(get)?)?,
            name: row.cell(3).map_err(get)?,
        },
        kind: kind_from(row.cell(4).map_err(get)?)?,
        replicas: row.cell(5).map_err(get)?,
        min_replicas: row.cell(6).map_err(get)?,
        max_replicas: row.cell(7).map_err(get)?,
        pause_direction: direction.map(direction_from).transpose()?,
        until: row.cell(9).map_err(get)?,
        reason: row.cell(10).map_err(get)?,
        author: row.cell(11).map_err(get)?,
        created_at: row.cell(12).map_err(get)?,
        ended_at: row.cell(13).map_err(get)?,
        ended_by: row.cell(14).map_err(get)?,
    })
}

impl Store {
    /// Sets the override of `row.key` (replacing any open one), waits for the
    /// commit and returns its id; a read right after sees it.
    ///
    /// The store does not check that the target exists (an unknown key gets a
    /// placeholder target); the API should answer 404 first.
    pub async fn set_override(&self, row: OverrideRow) -> Result<i64> {
        validate(&row)?;
        self.write(Write::SetOverride(Box::new(row))).await
    }

    /// Ends the active override of `key`, crediting `by`; waits for the commit.
    /// Returns whether an override was in force.
    pub async fn clear_override(&self, key: &TargetKey, by: &str, at: i64) -> Result<bool> {
        let op = Write::ClearOverride { key: key.clone(), by: by.to_owned(), at };
        Ok(self.write(op).await? > 0)
    }

    /// Records as `expired` every open override whose `until` is at or before
    /// `now`; returns how many. Optional housekeeping: reads already treat them
    /// as inactive.
    pub async fn expire_overrides(&self, now: i64) -> Result<u64> {
        Ok(self.write(Write::ExpireOverrides { now }).await?.max(0) as u64)
    }

    /// Every override in force at `now`.
    pub async fn active_overrides(&self, now: i64) -> Result<Vec<OverrideRow>> {
        let sql = format!("{SELECT} WHERE o.ended_at IS NULL AND (o.until IS NULL OR o.until > $1)");
        on_db!(self.pool(), pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(now)
                .fetch_all(pool)
                .await
                .map_err(query_err("read active overrides"))?;
            rows.iter().map(override_from_row).collect()
        })
    }

    /// The open (not cleared, not replaced) override of `key`. It may have
    /// lapsed: check [`OverrideRow::is_active`].
    pub async fn override_for(&self, key: &TargetKey) -> Result<Option<OverrideRow>> {
        let sql = format!("{SELECT} WHERE t.namespace = $1 AND t.kind = $2 AND t.name = $3 AND o.ended_at IS NULL");
        on_db!(self.pool(), pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&key.namespace)
                .bind(key.kind.as_str())
                .bind(&key.name)
                .fetch_optional(pool)
                .await
                .map_err(query_err("read override"))?;
            row.as_ref().map(override_from_row).transpose()
        })
    }

    /// The overrides of `key`, newest first, ended ones included.
    pub async fn override_history(&self, key: &TargetKey, limit: u32) -> Result<Vec<OverrideRow>> {
        let sql = format!(
            "{SELECT} WHERE t.namespace = $1 AND t.kind = $2 AND t.name = $3 \
             ORDER BY o.created_at DESC, o.id DESC LIMIT $4"
        );
        on_db!(self.pool(), pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&key.namespace)
                .bind(key.kind.as_str())
                .bind(&key.name)
                .bind(i64::from(limit.clamp(1, 1000)))
                .fetch_all(pool)
                .await
                .map_err(query_err("read override history"))?;
            rows.iter().map(override_from_row).collect()
        })
    }
}
