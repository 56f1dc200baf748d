//! `PUT` and `DELETE …/override`: pin replicas, narrow the bounds or pause, for a while.
//!
//! Every override ends: `until` (RFC 3339 or unix milliseconds) or `duration` (`30m`),
//! 1 hour when neither is given, at most 7 days. The author is the token's name. Each
//! change is stored, mirrored into the hub's memory (the ticks read it there) and recorded
//! as a decision with run type `override` in the target's history. The override applies
//! from the target's next tick.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use scalehub_core::policy::{Override, OverrideAction, PauseDirection};
use scalehub_store::{OverrideKind, OverrideRow};

use super::ApiState;
use super::auth::CanWrite;
use super::error::{ApiError, ApiJson, ApiPath};
use super::targets::{self, TargetPath};
use super::views::OverrideView;
use crate::overrides::{self as hub_overrides, Change};
use crate::workload::TargetKey;

/// How long an override lasts when the request says nothing.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(3600);
/// The longest an override may last: it must never stay forever by accident.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Longest reason accepted, in characters.
const MAX_REASON: usize = 1000;

/// An expiry: RFC 3339 text or unix milliseconds.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Until {
    /// Unix milliseconds.
    Millis(i64),
    /// RFC 3339, e.g. `2026-11-28T03:00:00Z`.
    Text(String),
}

/// The body of `PUT …/override`: exactly one of `replicas`, `minReplicas`/`maxReplicas` or `paused`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OverrideRequest {
    /// Pin exactly this many replicas (at most ten times the target's max-replicas, and 100000).
    #[schema(minimum = 0, maximum = 100000)]
    pub replicas: Option<i32>,
    /// Raise the minimum (narrowing only: the annotation bounds still hold).
    pub min_replicas: Option<i32>,
    /// Lower the maximum.
    pub max_replicas: Option<i32>,
    /// Stop scaling `up`, `down` or `both`.
    #[schema(value_type = Option<String>, example = "both")]
    pub paused: Option<PauseDirection>,
    /// When it ends: RFC 3339 or unix milliseconds. Not with `duration`.
    pub until: Option<Until>,
    /// How long it lasts, e.g. `30m`, `2h`. Not with `until`. Default 1h, at most 7 days.
    pub duration: Option<String>,
    /// Why (required): shown in every decision it shapes.
    pub reason: String,
}

/// Sets (or replaces) the target's override.
#[utoipa::path(put, path = "/api/v1/targets/{namespace}/{kind}/{name}/override", tag = "overrides",
    params(("namespace" = String, Path), ("kind" = String, Path), ("name" = String, Path)),
    request_body = OverrideRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The override now in force", body = OverrideView),
        (status = 400, description = "malformed JSON", body = super::error::ErrorBody),
        (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody),
        (status = 409, description = "the target was removed", body = super::error::ErrorBody),
        (status = 413, body = super::error::ErrorBody), (status = 415, body = super::error::ErrorBody),
        (status = 422, description = "invalid combination or values", body = super::error::ErrorBody),
        (status = 503, description = "this hub is a standby", body = super::error::ErrorBody)))]
pub async fn put(
    CanWrite(caller): CanWrite,
    State(state): State<ApiState>,
    ApiPath(path): ApiPath<TargetPath>,
    ApiJson(req): ApiJson<OverrideRequest>,
) -> Result<Json<OverrideView>, ApiError> {
    let key = path.key()?;
    let now = (state.ctx.clock)();
    let action = OverrideAction::from_fields(req.replicas, req.min_replicas, req.max_replicas, req.paused)
        .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let until = until(&req, now)?;
    let reason = req.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON {
        return Err(ApiError::unprocessable(format!("reason is required (1 to {MAX_REASON} characters)")));
    }
    let o =
        Override { action, until: Some(until), reason: reason.to_owned(), set_by: caller.name.clone(), set_at: now };
    o.validate().map_err(|e| ApiError::unprocessable(e.to_string()))?;
    if let OverrideAction::Pin { replicas } = o.action {
        check_pin(&state, &key, replicas)?;
    }
    // One override write at a time, so the store and the hub's memory agree on the last one.
    let _guard = state.override_writes.lock().await;
    writable_target(&state, &key).await?;
    state.ctx.store.set_override(row(&state, &key, &o)).await?;
    if let Ok(mut map) = state.ctx.overrides.write() {
        map.insert(key.clone(), o.clone());
    }
    tracing::info!(target_key = %key, author = %caller.name, until, "override set");
    hub_overrides::record(&state.ctx, &key, Change::Set, &o, &caller.name, now).await?;
    Ok(Json(OverrideView::from_override(&o, now)))
}

/// Ends the target's override.
#[utoipa::path(delete, path = "/api/v1/targets/{namespace}/{kind}/{name}/override", tag = "overrides",
    params(("namespace" = String, Path), ("kind" = String, Path), ("name" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The override was ended"),
        (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
        (status = 404, description = "no such target, or no override in force", body = super::error::ErrorBody),
        (status = 503, description = "this hub is a standby", body = super::error::ErrorBody)))]
pub async fn delete(
    CanWrite(caller): CanWrite,
    State(state): State<ApiState>,
    ApiPath(path): ApiPath<TargetPath>,
) -> Result<StatusCode, ApiError> {
    let key = path.key()?;
    let now = (state.ctx.clock)();
    let _guard = state.override_writes.lock().await;
    let skey = key.clone();
    state.ctx.store.get_target(&skey).await?.ok_or_else(|| targets::not_found(&key))?;
    leader_only(&state)?;
    let in_force = state.ctx.override_for(&key, now);
    let Some(o) = in_force else {
        return Err(ApiError::not_found(format!("no override is in force on {key}")));
    };
    state.ctx.store.clear_override(&skey, &caller.name, now).await?;
    if let Ok(mut map) = state.ctx.overrides.write() {
        map.remove(&key);
    }
    tracing::info!(target_key = %key, author = %caller.name, "override cleared");
    hub_overrides::record(&state.ctx, &key, Change::Cleared, &o, &caller.name, now).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The expiry a request asks for, checked against the limits.
fn until(req: &OverrideRequest, now: i64) -> Result<i64, ApiError> {
    let at = match (&req.until, &req.duration) {
        (Some(_), Some(_)) => return Err(ApiError::unprocessable("give until or duration, not both")),
        (Some(Until::Millis(ms)), None) => *ms,
        (Some(Until::Text(text)), None) => match text.parse::<jiff::Timestamp>() {
            Ok(t) => t.as_millisecond(),
            // A well-formed time beyond what a timestamp holds (`9999-12-31T23:59:59Z`) is just
            // too far away.
            Err(_) if beyond_timestamps(text) => i64::MAX,
            Err(_) => {
                return Err(ApiError::unprocessable(format!(
                    "until {text:?} is not an RFC 3339 time or unix milliseconds"
                )));
            }
        },
        (None, Some(text)) => {
            let d = scalehub_core::duration::parse_duration(text)
                .map_err(|e| ApiError::unprocessable(format!("duration: {e}")))?;
            now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        }
        (None, None) => now.saturating_add(DEFAULT_DURATION.as_millis() as i64),
    };
    if at <= now {
        return Err(ApiError::unprocessable("until must be in the future"));
    }
    if at.saturating_sub(now) > MAX_DURATION.as_millis() as i64 {
        return Err(ApiError::unprocessable("an override lasts at most 7 days; set a new one when it ends"));
    }
    Ok(at)
}

/// Whether `text` is a well-formed RFC 3339 time in the last day of year 9999, which
/// timestamps cannot hold (they end a day earlier).
fn beyond_timestamps(text: &str) -> bool {
    jiff::fmt::temporal::Pieces::parse(text)
        .is_ok_and(|p| p.date().year() == 9999 && p.time().is_some() && p.offset().is_some())
}

/// The largest pin: ten times the target's max-replicas, so a pin may go well beyond the
/// bounds (on purpose: an incident needs it) but a typo of a few digits cannot ask a cluster
/// for millions of pods; never more than [`MAX_PIN`].
fn check_pin(state: &ApiState, key: &TargetKey, replicas: i32) -> Result<(), ApiError> {
    let max = targets::live_spec(state, key).map_or(MAX_PIN, |s| s.max_replicas.saturating_mul(10).clamp(10, MAX_PIN));
    if replicas > max {
        return Err(ApiError::unprocessable(format!(
            "a pin of {replicas} replicas is more than ten times this target's max-replicas (at most {max}); \
             raise scalehub.io/max-replicas first"
        )));
    }
    Ok(())
}

/// The largest pin of any target.
pub const MAX_PIN: i32 = 100_000;

/// 404 for an unknown target, 409 for a removed one, 503 on a standby.
async fn writable_target(state: &ApiState, key: &TargetKey) -> Result<(), ApiError> {
    let row = state.ctx.store.get_target(&key.clone()).await?.ok_or_else(|| targets::not_found(key))?;
    if row.removed_at.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("{key} was removed (opted out or deleted); it has nothing to override"),
        ));
    }
    leader_only(state)
}

/// Overrides live in the leader's memory; a standby taking one would not apply it.
fn leader_only(state: &ApiState) -> Result<(), ApiError> {
    if *state.ctx.leader.borrow() {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "this hub is a standby; send writes to the leader"))
    }
}

/// The store's row of an override. The store wants both bounds, so a missing one is the
/// target's own (or no limit at all), which narrows nothing.
fn row(state: &ApiState, key: &TargetKey, o: &Override) -> OverrideRow {
    let spec_bounds = state.ctx.loops.read().ok().and_then(|m| {
        m.get(key).and_then(|h| h.input.borrow().spec.as_ref().ok().map(|s| (s.min_replicas, s.max_replicas)))
    });
    let (kind, replicas, min, max, pause) = match o.action {
        OverrideAction::Pin { replicas } => (OverrideKind::Pin, Some(replicas), None, None, None),
        OverrideAction::Bounds { min_replicas, max_replicas } => (
            OverrideKind::Bounds,
            None,
            Some(min_replicas.unwrap_or(spec_bounds.map_or(0, |b| b.0))),
            Some(max_replicas.unwrap_or(spec_bounds.map_or(i32::MAX, |b| b.1))),
            None,
        ),
        OverrideAction::Pause { direction } => (OverrideKind::Pause, None, None, None, Some(direction)),
    };
    OverrideRow {
        id: 0,
        key: key.clone(),
        kind,
        replicas,
        min_replicas: min,
        max_replicas: max,
        pause_direction: pause,
        until: o.until,
        reason: o.reason.clone(),
        author: o.set_by.clone(),
        created_at: o.set_at,
        ended_at: None,
        ended_by: None,
    }
}
