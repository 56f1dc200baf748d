//! Overrides: the store's rows mirrored into memory for the ticks, their expiry, and the
//! decisions (run type `override`) that record every change in the target's history.

use std::collections::HashMap;

use serde_json::json;

use scalehub_core::policy::{Override, OverrideAction, PauseDirection};
use scalehub_store::{DecisionRow, Json, OverrideKind, OverrideRow, Store};

use crate::hub::Context;
use crate::telemetry::OutcomeLabels;
use crate::workload::TargetKey;

/// Converts a stored override into the policy's.
pub fn from_row(row: &OverrideRow) -> Option<Override> {
    let action = match row.kind {
        OverrideKind::Pin => OverrideAction::Pin { replicas: row.replicas? },
        OverrideKind::Bounds => {
            OverrideAction::Bounds { min_replicas: row.min_replicas, max_replicas: row.max_replicas }
        }
        OverrideKind::Pause => OverrideAction::Pause { direction: row.pause_direction? },
    };
    Some(Override {
        action,
        until: row.until,
        reason: row.reason.clone(),
        set_by: row.author.clone(),
        set_at: row.created_at,
    })
}

/// Active overrides from the store, by target.
pub async fn load(store: &Store, now: i64) -> anyhow::Result<HashMap<TargetKey, Override>> {
    let mut out = HashMap::new();
    for row in store.active_overrides(now).await? {
        if let Some(o) = from_row(&row) {
            out.insert(row.key.clone(), o);
        }
    }
    Ok(out)
}

/// Ends overrides whose `until` has passed, in the store and in memory.
pub async fn expire(ctx: &Context, now: i64) {
    let expired: Vec<TargetKey> = match ctx.overrides.read() {
        // Sharded, each replica ends the overrides of its own targets only: one record each.
        Ok(map) => map
            .iter()
            .filter(|(k, o)| !o.active_at(now) && ctx.shard.as_ref().is_none_or(|shard| shard.assigned(k)))
            .map(|(k, _)| k.clone())
            .collect(),
        Err(_) => return,
    };
    if expired.is_empty() {
        return;
    }
    if let Err(e) = ctx.store.expire_overrides(now).await {
        tracing::warn!(error = %e, "could not expire overrides in the database");
        return;
    }
    let mut ended = Vec::new();
    if let Ok(mut map) = ctx.overrides.write() {
        for key in &expired {
            // An override set meanwhile (by the API) replaced the expired one: keep it.
            if map.get(key).is_some_and(|o| !o.active_at(now)) {
                tracing::info!(target_key = %key, "override expired");
                ended.extend(map.remove(key).map(|o| (key.clone(), o)));
            }
        }
    }
    for (key, o) in ended {
        if let Err(e) = record(ctx, &key, Change::Expired, &o, "expired", o.until.unwrap_or(now)).await {
            tracing::warn!(target_key = %key, error = %e, "override expiry not recorded");
        }
    }
}

/// How an override changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Set or replaced (`override_set`).
    Set,
    /// Ended by a user (`override_cleared`).
    Cleared,
    /// Its `until` passed (`override_expired`).
    Expired,
}

impl Change {
    /// The decision's outcome.
    pub fn outcome(self) -> &'static str {
        match self {
            Change::Set => "override_set",
            Change::Cleared => "override_cleared",
            Change::Expired => "override_expired",
        }
    }

    fn code(self) -> &'static str {
        match self {
            Change::Set => "OverrideSet",
            Change::Cleared => "OverrideCleared",
            Change::Expired => "OverrideExpired",
        }
    }
}

/// Records an override change as a decision with run type `override`, so the history says
/// who changed what, when and why; waits for the commit and returns the decision's id.
pub async fn record(
    ctx: &Context,
    key: &crate::workload::TargetKey,
    change: Change,
    o: &Override,
    by: &str,
    at: i64,
) -> scalehub_store::Result<i64> {
    let current = current_replicas(ctx, key).await;
    let reason = json!({
        "step": "override", "code": change.code(), "message": describe(change, o, by),
        "from": current.unwrap_or_default(), "to": current.unwrap_or_default(),
        "detail": {"kind": "override", "setBy": o.set_by, "reason": o.reason, "until": o.until, "override": o},
    });
    let row = DecisionRow {
        id: 0,
        key: key.clone(),
        time: at,
        run_type: "override".into(),
        metrics: Json::of(&[(); 0]),
        raw_evaluation: None,
        evaluation: Json::null(),
        reasons: Json::of(&[reason]),
        final_replicas: None,
        current_replicas: current,
        scaled: false,
        scale_result: None,
        error: None,
        hooks: Json::of(&[(); 0]),
        outcome: change.outcome().into(),
    };
    ctx.metrics.decisions.get_or_create(&OutcomeLabels { outcome: change.outcome().into() }).inc();
    ctx.bus.publish(|| crate::bus::HubEvent::Decision(std::sync::Arc::new(row.clone())));
    ctx.store.record_decision_committed(row, None).await
}

async fn current_replicas(ctx: &Context, key: &crate::workload::TargetKey) -> Option<i32> {
    let live = ctx.loops.read().ok().and_then(|m| m.get(key).map(|h| h.input.borrow().workload.clone()));
    match live {
        Some(workload) => Some(workload.replicas),
        None => ctx.store.get_target(&key.clone()).await.ok().flatten().and_then(|t| t.current_replicas),
    }
}

/// One sentence for the history, e.g. `alice pinned 4 replicas until 2026-11-28T01:00:00Z: incident 42`.
pub fn describe(change: Change, o: &Override, by: &str) -> String {
    let what = match o.action {
        OverrideAction::Pin { replicas } => format!("pinned {replicas} replicas"),
        OverrideAction::Bounds { min_replicas, max_replicas } => {
            let show = |n: Option<i32>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
            format!("narrowed the bounds to {}..{}", show(min_replicas), show(max_replicas))
        }
        OverrideAction::Pause { direction: PauseDirection::Both } => "paused scaling".to_owned(),
        OverrideAction::Pause { direction: PauseDirection::Up } => "paused scaling up".to_owned(),
        OverrideAction::Pause { direction: PauseDirection::Down } => "paused scaling down".to_owned(),
    };
    let until = o.until.map_or_else(|| "no expiry".to_owned(), time_text);
    match change {
        Change::Set => format!("{} {what} until {until}: {}", o.set_by, o.reason),
        Change::Cleared => format!("{by} ended the override of {} ({what}, due to end {until})", o.set_by),
        Change::Expired => format!("the override of {} ({what}) expired at {until}", o.set_by),
    }
}

fn time_text(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}
