//! What each write does: the statements one [`Write`] runs on the writer's connection, and
//! the policy states and series chunks a batch of ticks collects for one multi-row statement
//! each. The writer (`super`) decides when they run and in which transaction.

use std::collections::HashMap;

use super::Write;
use crate::backend::Conn;
use crate::error::Result;
use crate::rows::{DecisionRow, PolicyStateRow, TargetKey};
use crate::series::{self, SeriesChunkRow};
use crate::{decisions, overrides, ownership, targets};

/// Runs one write's statements on the writer's connection.
pub(super) async fn apply(conn: &mut Conn, op: &Write, ids: &mut HashMap<TargetKey, i64>) -> Result<i64> {
    match op {
        Write::UpsertTarget(row) => {
            let id = targets::upsert(conn, row).await?;
            ids.insert(row.key.clone(), id);
            Ok(id)
        }
        Write::MarkRemoved { key, at } => targets::mark_removed(conn, key, *at).await,
        Write::TargetError { key, error, at } => targets::set_error(conn, key, error, *at).await,
        Write::Decision { decision, policy } => {
            // A fenced decision is refused whole: a replica that lost the target records nothing.
            let policy_target = match policy {
                Some(policy) => Some(fenced_target(conn, ids, policy).await?),
                None => None,
            };
            let target = targets::resolve_id(conn, ids, &decision.key, decision.time).await?;
            let id = decisions::insert(conn, target, decision).await?;
            if let (Some(policy), Some(target)) = (policy, policy_target) {
                decisions::save_policy(conn, target, policy).await?;
            }
            Ok(id)
        }
        Write::PolicyState(row) => {
            let target = fenced_target(conn, ids, row).await?;
            decisions::save_policy(conn, target, row).await?;
            Ok(1)
        }
        Write::Claim { key, me, live, at } => {
            let target = targets::resolve_id(conn, ids, key, *at).await?;
            ownership::claim(conn, target, me, live, *at).await
        }
        Write::Release { key, fence, at } => {
            let target = targets::resolve_id(conn, ids, key, *at).await?;
            ownership::release(conn, target, fence, *at).await
        }
        Write::SetOverride(row) => {
            let target = targets::resolve_id(conn, ids, &row.key, row.created_at).await?;
            overrides::insert(conn, target, row).await
        }
        Write::ClearOverride { key, by, at } => overrides::clear(conn, key, by, *at).await,
        Write::ExpireOverrides { now } => overrides::expire(conn, *now).await,
        Write::PruneDecisions { older_than, limit } => decisions::prune_batch(conn, *older_than, *limit).await,
        Write::PruneTicks { older_than, limit } => series::prune_batch(conn, *older_than, *limit).await,
        Write::Tick { decision, policy, series: chunk } => {
            // Alone (the isolated path): the same statements as in a batch, for one tick.
            let mut deferred = Deferred::default();
            let id =
                apply_tick_deferred(conn, decision.as_deref(), policy.as_deref(), chunk.as_deref(), ids, &mut deferred)
                    .await?;
            deferred.flush(conn).await?;
            Ok(id)
        }
    }
}

/// A tick's decision row now, its policy state and series chunk into `deferred`.
pub(super) async fn apply_tick_deferred<'a>(
    conn: &mut Conn,
    decision: Option<&DecisionRow>,
    policy: Option<&'a PolicyStateRow>,
    chunk: Option<&'a SeriesChunkRow>,
    ids: &mut HashMap<TargetKey, i64>,
    deferred: &mut Deferred<'a>,
) -> Result<i64> {
    let mut id = 0;
    // The fence first: a tick of a replica that lost the target writes nothing at all.
    let policy_target = match policy {
        Some(policy) => Some(fenced_target(conn, ids, policy).await?),
        None => None,
    };
    if let Some(decision) = decision {
        let target = targets::resolve_id(conn, ids, &decision.key, decision.time).await?;
        id = decisions::insert(conn, target, decision).await?;
    }
    if let (Some(policy), Some(target)) = (policy, policy_target) {
        deferred.policies.insert(target, policy);
    }
    if let Some(chunk) = chunk {
        let target = targets::resolve_id(conn, ids, &chunk.key, chunk.chunk.start).await?;
        deferred.series.insert((target, chunk.chunk.start), chunk);
    }
    Ok(id)
}

/// The id of a policy state's target, once its fence (if any) is checked.
async fn fenced_target(conn: &mut Conn, ids: &mut HashMap<TargetKey, i64>, row: &PolicyStateRow) -> Result<i64> {
    let target = targets::resolve_id(conn, ids, &row.key, row.updated_at).await?;
    if let Some(fence) = &row.fence {
        ownership::check(conn, target, &row.key, fence).await?;
    }
    Ok(target)
}

/// Policy states and series chunks of one batch, by target (a later tick of the same
/// target in the batch replaces an earlier one, as its statement would have).
#[derive(Default)]
pub(super) struct Deferred<'a> {
    policies: HashMap<i64, &'a PolicyStateRow>,
    series: HashMap<(i64, i64), &'a SeriesChunkRow>,
}

impl Deferred<'_> {
    pub(super) async fn flush(self, conn: &mut Conn) -> Result<()> {
        let policies: Vec<(i64, &PolicyStateRow)> = self.policies.into_iter().collect();
        crate::policy::save_many(conn, &policies).await?;
        let chunks: Vec<(i64, &SeriesChunkRow)> = self.series.into_iter().map(|((id, _), row)| (id, row)).collect();
        series::upsert_many(conn, &chunks).await
    }
}
