//! Overrides: the store's rows mirrored into memory for the ticks, and their expiry.

use std::collections::HashMap;

use scalehub_core::policy::{Override, OverrideAction, PauseDirection};
use scalehub_store::{OverrideKind, OverrideRow, PauseDirection as StorePause, Store};

use crate::target::Shared;
use crate::workload::{Kind, TargetKey};

/// Converts a stored override into the policy's.
pub fn from_row(row: &OverrideRow) -> Option<Override> {
    let action = match row.kind {
        OverrideKind::Pin => OverrideAction::Pin { replicas: row.replicas? },
        OverrideKind::Bounds => OverrideAction::Bounds { min_replicas: row.min_replicas, max_replicas: row.max_replicas },
        OverrideKind::Pause => OverrideAction::Pause {
            direction: match row.pause_direction? {
                StorePause::Up => PauseDirection::Up,
                StorePause::Down => PauseDirection::Down,
                StorePause::Both => PauseDirection::Both,
            },
        },
    };
    Some(Override { action, until: row.until, reason: row.reason.clone(), set_by: row.author.clone(), set_at: row.created_at })
}

/// Active overrides from the store, by target.
pub async fn load(store: &Store, now: i64) -> anyhow::Result<HashMap<TargetKey, Override>> {
    let mut out = HashMap::new();
    for row in store.active_overrides(now).await? {
        let Some(kind) = Kind::parse(&row.key.kind) else { continue };
        if let Some(o) = from_row(&row) {
            out.insert(TargetKey::new(&row.key.namespace, kind, &row.key.name), o);
        }
    }
    Ok(out)
}

/// Ends overrides whose `until` has passed, in the store and in memory.
pub async fn expire(shared: &Shared, now: i64) {
    let expired: Vec<TargetKey> = match shared.overrides.read() {
        Ok(map) => map.iter().filter(|(_, o)| !o.active_at(now)).map(|(k, _)| k.clone()).collect(),
        Err(_) => return,
    };
    if expired.is_empty() {
        return;
    }
    if let Err(e) = shared.store.expire_overrides(now).await {
        tracing::warn!(error = %e, "could not expire overrides in the database");
        return;
    }
    if let Ok(mut map) = shared.overrides.write() {
        for key in &expired {
            tracing::info!(target_key = %key, "override expired");
            map.remove(key);
        }
    }
}
