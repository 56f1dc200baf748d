//! `GET /api/v1/targets`, one target, and its decision history.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use scalehub_core::policy::PolicyState;
use scalehub_core::spec::TargetSpec;
use scalehub_store::{DecisionRow, TargetFilter, TargetSort};

use super::ApiState;
use super::auth::CanRead;
use super::error::{ApiError, ApiPath, ApiQuery};
use super::views::{OverrideView, Stabilisation, Target};
use crate::workload::{Kind, TargetKey};

/// States a target can be in; a filter naming another state is a typo, not an empty list.
pub const STATES: [&str; 8] = ["pending", "active", "shadow", "invalid", "conflict", "error", "removed", "unknown"];
/// The most JSON a page of decisions carries, so a history of large hook documents cannot
/// build a huge response (the page ends early and its cursor goes on from there).
pub const MAX_PAGE_BYTES: usize = 4 << 20;
/// The longest `q` search accepted: names are at most 253 characters.
pub const MAX_SEARCH: usize = 256;
/// Decisions per history page when the request names no limit.
pub const DEFAULT_HISTORY: u32 = 50;
/// Overrides shown in a target's override history.
const OVERRIDE_HISTORY: u32 = 20;

/// The path of one target: `/targets/{namespace}/{kind}/{name}`.
#[derive(Debug, Deserialize)]
pub struct TargetPath {
    /// Namespace of the workload.
    pub namespace: String,
    /// Kind, in any of its usual spellings (`Deployment`, `deployments`, `deploy`).
    pub kind: String,
    /// Workload name.
    pub name: String,
}

impl TargetPath {
    /// The hub's key, or 404 for a kind scalehub does not scale.
    pub fn key(&self) -> Result<TargetKey, ApiError> {
        let kind = Kind::parse(&self.kind).ok_or_else(|| {
            let served: Vec<&str> = Kind::all().filter(|k| k.info().served).map(Kind::as_str).collect();
            ApiError::not_found(format!(
                "unknown kind {:?}: this hub scales {} (more through extraKinds in its config)",
                self.kind,
                served.join(", ")
            ))
        })?;
        Ok(TargetKey::new(&self.namespace, kind, &self.name))
    }
}

/// Query of the target list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only this state: active, shadow, invalid, conflict, error, removed, unknown.
    pub state: Option<String>,
    /// Case-insensitive substring of the name or namespace.
    pub q: Option<String>,
    /// `key` (default), `name`, `state` or `updated` (newest first).
    pub sort: Option<String>,
    /// `nextCursor` of the previous page (same sort and filters).
    pub cursor: Option<String>,
    /// Page size, default 100 (also for 0), at most 1000.
    #[param(minimum = 0, maximum = 1000)]
    pub limit: Option<u32>,
    /// Also list removed targets.
    pub include_removed: Option<bool>,
}

/// One page of targets.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetPage {
    /// The targets of this page.
    pub items: Vec<Target>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
    /// Managed targets by state, over the whole hub (not just this page).
    pub counts: BTreeMap<String, u64>,
}

/// Lists targets with filters, a sort and keyset pagination.
#[utoipa::path(get, path = "/api/v1/targets", tag = "targets", params(ListQuery),
    responses((status = 200, body = super::openapi::TargetPageDoc), (status = 400, body = super::error::ErrorBody)))]
pub async fn list(
    _: CanRead,
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<TargetPage>, ApiError> {
    let nonempty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    let sort = match nonempty(q.sort) {
        Some(s) => s
            .parse::<TargetSort>()
            .map_err(|_| ApiError::bad_request(format!("unknown sort {s:?}: use key, name, state or updated")))?,
        None => TargetSort::Key,
    };
    let wanted_state = nonempty(q.state);
    if let Some(s) = &wanted_state
        && !STATES.contains(&s.as_str())
    {
        return Err(ApiError::bad_request(format!("unknown state {s:?}: use one of {}", STATES.join(", "))));
    }
    if let Some(q) = q.q.as_deref()
        && q.chars().count() > MAX_SEARCH
    {
        return Err(ApiError::bad_request(format!(
            "q is {} characters long; a search is at most {MAX_SEARCH} (names are at most 253)",
            q.chars().count()
        )));
    }
    let filter = TargetFilter {
        include_removed: q.include_removed.unwrap_or(false) || wanted_state.as_deref() == Some("removed"),
        namespace: nonempty(q.namespace),
        state: wanted_state,
        search: nonempty(q.q),
        sort,
        cursor: nonempty(q.cursor),
        limit: at_most("limit", q.limit.unwrap_or(0), scalehub_store::filter::MAX_LIMIT)?,
    };
    let page = state.ctx.store.list_targets(&filter).await?;
    let counts = state.ctx.store.counts_by_state().await?;
    let keys: Vec<_> = page.items.iter().map(|t| t.key.clone()).collect();
    let mut last = state.ctx.store.last_decisions(&keys).await?;
    let now = (state.ctx.clock)();
    let items = page
        .items
        .into_iter()
        .map(|row| {
            let active_override = state.ctx.override_for(&row.key, now).map(|o| OverrideView::from_override(&o, now));
            Target { last_decision: last.remove(&row.key), active_override, row }
        })
        .collect();
    Ok(Json(TargetPage { items, next_cursor: page.next_cursor, counts }))
}

/// One target with its stabilisation state and override history.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetDetail {
    /// The target as in the list.
    #[serde(flatten)]
    pub target: Target,
    /// Stabilisation windows and the bounds they set now.
    pub stabilisation: Stabilisation,
    /// Overrides of this target, newest first, ended ones included.
    pub override_history: Vec<OverrideView>,
}

/// One target.
#[utoipa::path(get, path = "/api/v1/targets/{namespace}/{kind}/{name}", tag = "targets",
    params(("namespace" = String, Path), ("kind" = String, Path, description = "Deployment, StatefulSet or ReplicaSet (plural and short forms too)"), ("name" = String, Path)),
    responses((status = 200, body = super::openapi::TargetDetailDoc), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_one(
    _: CanRead,
    State(state): State<ApiState>,
    ApiPath(path): ApiPath<TargetPath>,
) -> Result<Json<TargetDetail>, ApiError> {
    let key = path.key()?;
    let skey = key.clone();
    let store = &state.ctx.store;
    let row = store.get_target(&skey).await?.ok_or_else(|| not_found(&key))?;
    let now = (state.ctx.clock)();
    let last_decision = store.decisions(&skey, None, 1).await?.into_iter().next();
    let active_override = state.ctx.override_for(&key, now).map(|o| OverrideView::from_override(&o, now));
    let override_history =
        store.override_history(&skey, OVERRIDE_HISTORY).await?.iter().map(|o| OverrideView::from_row(o, now)).collect();
    let policy = store.policy_state(&skey).await?;
    let policy_state: PolicyState =
        policy.as_ref().and_then(|p| serde_json::from_value(p.state.clone()).ok()).unwrap_or_default();
    let spec = spec_of(&state, &row);
    let stabilisation = Stabilisation::new(&policy_state, spec.as_ref(), policy.map(|p| p.updated_at), now);
    Ok(Json(TargetDetail { target: Target { row, last_decision, active_override }, stabilisation, override_history }))
}

/// Query of the decision history.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Page size, default 50 (also for 0), at most 1000.
    #[param(minimum = 0, maximum = 1000)]
    pub limit: Option<u32>,
    /// Only decisions older than the decision with this id (`nextBefore` of the previous page).
    pub before: Option<i64>,
}

/// One page of a target's decisions, newest first.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionPage {
    /// The decisions.
    pub items: Vec<DecisionRow>,
    /// Pass as `before` for the next page; null on the last page.
    pub next_before: Option<i64>,
}

/// A target's decision history.
#[utoipa::path(get, path = "/api/v1/targets/{namespace}/{kind}/{name}/decisions", tag = "targets",
    params(("namespace" = String, Path), ("kind" = String, Path), ("name" = String, Path), HistoryQuery),
    responses((status = 200, body = super::openapi::DecisionPageDoc), (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn decisions(
    _: CanRead,
    State(state): State<ApiState>,
    ApiPath(path): ApiPath<TargetPath>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<DecisionPage>, ApiError> {
    let key = path.key()?;
    let skey = key.clone();
    state.ctx.store.get_target(&skey).await?.ok_or_else(|| not_found(&key))?;
    let limit = match at_most("limit", q.limit.unwrap_or(0), scalehub_store::MAX_HISTORY)? {
        0 => DEFAULT_HISTORY,
        n => n,
    };
    let mut items = state.ctx.store.decisions(&skey, q.before, limit).await?;
    let mut next_before = if items.len() as u32 == limit { items.last().map(|d| d.id) } else { None };
    // Hooks may leave large documents in a decision: a page stops at MAX_PAGE_BYTES of JSON
    // (always at least one decision) and the cursor continues after the last one it holds.
    let mut bytes = 0;
    if let Some(cut) = items.iter().position(|d| {
        bytes += serde_json::to_vec(d).map_or(0, |v| v.len());
        bytes > MAX_PAGE_BYTES
    }) {
        items.truncate(cut.max(1));
        next_before = items.last().map(|d| d.id);
    }
    Ok(Json(DecisionPage { items, next_before }))
}

/// Query of the tick series.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// From this time (unix ms, inclusive); default 24 h before `to`.
    pub from: Option<i64>,
    /// Up to this time (unix ms, exclusive); default now.
    pub to: Option<i64>,
    /// Most points returned (the newest are kept), default (also for 0) and maximum 20000.
    #[param(minimum = 0, maximum = 20000)]
    pub limit: Option<u32>,
}

/// A target's ticks in a time range, oldest first.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesPage {
    /// One point per tick: time, replicas, raw evaluation, outcome, metric values.
    pub points: Vec<scalehub_store::TickPoint>,
}

/// A target's tick series: every scheduled tick, also those that changed nothing and so left
/// no decision row (they said what the decision before them said).
#[utoipa::path(get, path = "/api/v1/targets/{namespace}/{kind}/{name}/series", tag = "targets",
    params(("namespace" = String, Path), ("kind" = String, Path), ("name" = String, Path), SeriesQuery),
    responses((status = 200, body = super::openapi::SeriesPageDoc), (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn series(
    _: CanRead,
    State(state): State<ApiState>,
    ApiPath(path): ApiPath<TargetPath>,
    ApiQuery(q): ApiQuery<SeriesQuery>,
) -> Result<Json<SeriesPage>, ApiError> {
    let key = path.key()?;
    let skey = key.clone();
    state.ctx.store.get_target(&skey).await?.ok_or_else(|| not_found(&key))?;
    let to = q.to.unwrap_or_else(|| (state.ctx.clock)().saturating_add(1));
    let from = q.from.unwrap_or_else(|| to.saturating_sub(24 * 3600 * 1000));
    if from > to {
        return Err(ApiError::bad_request("from must not be after to"));
    }
    let limit = match at_most("limit", q.limit.unwrap_or(0), scalehub_store::series::MAX_POINTS)? {
        0 => scalehub_store::series::MAX_POINTS,
        n => n,
    };
    let points = state.ctx.store.ticks(&skey, from, to, limit).await?;
    Ok(Json(SeriesPage { points }))
}

/// Targets one `GET /api/v1/replicas` may name.
pub const MAX_REPLICA_TARGETS: usize = 100;
/// Decisions per target when the request names no limit (a sparkline's worth).
const DEFAULT_REPLICA_POINTS: u32 = 40;
/// The most decisions per target.
const MAX_REPLICA_POINTS: u32 = 200;

/// Query of the recent replicas of several targets.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReplicasQuery {
    /// `namespace/kind/name` of each target, comma-separated, at most 100.
    pub targets: String,
    /// Newest decisions per target, default 40, at most 200.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// The recent replicas of each target asked for, in the order asked.
#[derive(Debug, Serialize)]
pub struct ReplicasPage {
    pub items: Vec<TargetReplicas>,
}

/// One target's recent replicas, oldest first.
#[derive(Debug, Serialize)]
pub struct TargetReplicas {
    pub namespace: String,
    pub kind: &'static str,
    pub name: String,
    pub points: Vec<scalehub_store::ReplicaPoint>,
}

/// Current and final replicas of the last decisions of many targets at once: what a list's
/// sparklines draw, in one request instead of one per row. A target the hub does not know
/// has no points.
#[utoipa::path(get, path = "/api/v1/replicas", tag = "targets", params(ReplicasQuery),
    responses((status = 200, body = super::openapi::ReplicasPageDoc), (status = 400, body = super::error::ErrorBody)))]
pub async fn replicas(
    _: CanRead,
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<ReplicasQuery>,
) -> Result<Json<ReplicasPage>, ApiError> {
    let keys = q
        .targets
        .split(',')
        .filter(|t| !t.is_empty())
        .map(|t| match t.split('/').collect::<Vec<_>>()[..] {
            [namespace, kind, name] if !namespace.is_empty() && !name.is_empty() => {
                let path = TargetPath { namespace: namespace.into(), kind: kind.into(), name: name.into() };
                path.key().map_err(|e| ApiError::bad_request(format!("targets: {t:?}: {}", e.message)))
            }
            _ => Err(ApiError::bad_request(format!("targets: {t:?} is not namespace/kind/name"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() || keys.len() > MAX_REPLICA_TARGETS {
        return Err(ApiError::bad_request(format!(
            "targets: name 1 to {MAX_REPLICA_TARGETS} targets as namespace/kind/name, comma-separated"
        )));
    }
    let limit = q.limit.unwrap_or(DEFAULT_REPLICA_POINTS);
    if !(1..=MAX_REPLICA_POINTS).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit must be 1..{MAX_REPLICA_POINTS}")));
    }
    let points = state.ctx.store.recent_replicas(&keys, limit).await?;
    let items = keys
        .into_iter()
        .zip(points)
        .map(|(key, points)| TargetReplicas {
            kind: key.kind.as_str(),
            namespace: key.namespace,
            name: key.name,
            points,
        })
        .collect();
    Ok(Json(ReplicasPage { items }))
}

/// `value` if it is at most `max`, else a 400 naming the parameter.
fn at_most(name: &str, value: u32, max: u32) -> Result<u32, ApiError> {
    if value > max {
        return Err(ApiError::bad_request(format!("{name} is at most {max} (got {value})")));
    }
    Ok(value)
}

/// The 404 for a target the hub has no record of.
pub fn not_found(key: &TargetKey) -> ApiError {
    ApiError::not_found(format!("no target {key}: the workload is not opted in, or has not been seen yet"))
}

/// The spec a target runs with: its live loop's, else the stored one; `None` when its
/// annotations are invalid.
pub(super) fn spec_of(state: &ApiState, row: &scalehub_store::TargetRow) -> Option<TargetSpec> {
    live_spec(state, &row.key).or_else(|| row.spec.parse::<TargetSpec>().ok())
}

/// The spec the target's loop runs with now, if it runs and its annotations are valid.
pub(super) fn live_spec(state: &ApiState, key: &TargetKey) -> Option<TargetSpec> {
    let loops = state.ctx.loops.read().ok()?;
    let input = loops.get(key)?.input.borrow().clone();
    input.spec.as_ref().ok().cloned()
}
