//! What-if replays (`POST …/replay`, `POST /api/v1/replay`): a candidate policy over recorded
//! ticks, through the same pipeline as the ticks (`scalehub_core::replay`). Read-only: nothing
//! is scaled and no state changes, so a read token is enough.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use scalehub_core::TargetSpec;
use scalehub_core::calc::BuiltinMetric;
use scalehub_core::replay::{Candidate, Plan, RecordedTick, Replay, ReplayedTick, Summary, replay, unobserved};
use scalehub_store::series::MAX_POINTS;
use scalehub_store::{TargetFilter, TargetKey, TickPoint};

use super::ApiState;
use super::auth::CanRead;
use super::error::{ApiError, ApiJson, ApiPath};
use super::targets::{TargetPath, not_found, spec_of};

/// The default range: the last day.
const DEFAULT_RANGE_MS: i64 = 24 * 3600 * 1000;
/// The longest range one replay covers: the longest retention a week of 15-second ticks can
/// hold under the tick limit is much shorter, so this only bounds nonsense.
const MAX_RANGE_MS: i64 = 366 * 24 * 3600 * 1000;
/// Targets a fleet replay reads per page.
const FLEET_PAGE: u32 = 200;

/// A replay of one target.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplayRequest {
    /// Start of the range, unix ms (default `to` − 24 h).
    pub from: Option<i64>,
    /// End of the range, unix ms, exclusive (default now).
    pub to: Option<i64>,
    /// The settings to try; what it leaves out keeps the target's own.
    #[serde(default)]
    pub policy: Candidate,
    /// Return every replayed tick (default true); the summary alone is much smaller.
    pub ticks: Option<bool>,
}

/// The outcome of a replay of one target.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayResponse {
    /// The target.
    pub target: TargetKey,
    /// The range replayed.
    pub from: i64,
    /// End of the range.
    pub to: i64,
    /// The range held more ticks than one replay reads; the newest were replayed.
    pub truncated: bool,
    /// The spec the replay ran: the target's with the candidate's settings.
    pub policy: TargetSpec,
    /// The built-in calculation the replay ran in place of the recorded evaluations, if the
    /// candidate named one: each metric's series and goal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calculation: Option<Vec<BuiltinMetric>>,
    /// Both curves' summaries.
    pub summary: Summaries,
    /// Every tick, unless the request asked for the summary only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticks: Option<Vec<ReplayedTick>>,
}

/// The candidate's curve beside what happened.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summaries {
    /// The candidate's.
    pub replayed: Summary,
    /// What actually happened.
    pub actual: Summary,
}

/// Replays one target's recorded ticks under a candidate policy.
#[utoipa::path(post, path = "/api/v1/targets/{namespace}/{kind}/{name}/replay", tag = "targets",
    params(("namespace" = String, Path), ("kind" = String, Path), ("name" = String, Path)),
    request_body = super::openapi::ReplayRequestDoc,
    responses(
        (status = 200, description = "The replayed ticks and both curves' summaries", body = super::openapi::ReplayDoc),
        (status = 400, description = "malformed JSON or range", body = super::error::ErrorBody),
        (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
        (status = 409, description = "the target's annotations are invalid: there is no policy to start from", body = super::error::ErrorBody),
        (status = 413, body = super::error::ErrorBody), (status = 415, body = super::error::ErrorBody),
        (status = 422, description = "invalid candidate settings, with their field paths", body = super::error::ErrorBody)))]
pub async fn target(
    _: CanRead,
    State(state): State<ApiState>,
    ApiPath(path): ApiPath<TargetPath>,
    ApiJson(req): ApiJson<ReplayRequest>,
) -> Result<Json<ReplayResponse>, ApiError> {
    let key = path.key()?;
    let row = state.ctx.store.get_target(&key).await?.ok_or_else(|| not_found(&key))?;
    let (from, to) = range(&state, req.from, req.to)?;
    let spec = spec_of(&state, &row).ok_or_else(|| {
        ApiError::new(StatusCode::CONFLICT, format!("{key} has invalid annotations: there is no policy to replay from"))
    })?;
    let plan = candidate(&state, &req.policy, &spec)?;
    let (replayed, truncated) = run(&state, &key, &plan, from, to).await?;
    let summary = Summaries { replayed: replayed.replayed, actual: replayed.actual };
    let ticks = req.ticks.unwrap_or(true).then_some(replayed.ticks);
    let Plan { spec: policy, calculation } = plan;
    Ok(Json(ReplayResponse { target: key, from, to, truncated, policy, calculation, summary, ticks }))
}

/// A replay of every target of one profile.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetReplayRequest {
    /// The profile whose targets are replayed.
    pub profile: String,
    /// Start of the range, unix ms (default `to` − 24 h).
    pub from: Option<i64>,
    /// End of the range, unix ms (default now).
    pub to: Option<i64>,
    /// The settings to try on every target.
    #[serde(default)]
    pub policy: Candidate,
}

/// One line of a fleet replay.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct FleetLine {
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<TargetKey>,
    #[serde(skip_serializing_if = "Option::is_none")]
    truncated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<Summaries>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<Total>,
}

/// The fleet's totals.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Total {
    targets: u64,
    replayed: Totals,
    actual: Totals,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Totals {
    scale_ups: u64,
    scale_downs: u64,
    replica_hours: f64,
    under_provisioned_seconds: f64,
    over_provisioned_seconds: f64,
}

impl Totals {
    fn add(&mut self, s: &Summary) {
        self.scale_ups += u64::from(s.scale_ups);
        self.scale_downs += u64::from(s.scale_downs);
        self.replica_hours += s.replica_hours;
        self.under_provisioned_seconds += s.under_provisioned_seconds;
        self.over_provisioned_seconds += s.over_provisioned_seconds;
    }
}

/// Replays every target of a profile, streamed as newline-delimited JSON: one line per target
/// with its summary (or why it was skipped), then a line with the totals. Targets are replayed
/// one at a time, so memory stays that of one target however large the fleet.
#[utoipa::path(post, path = "/api/v1/replay", tag = "targets",
    request_body = super::openapi::FleetReplayRequestDoc,
    responses(
        (status = 200, description = "application/x-ndjson: a line per target, then the totals", content_type = "application/x-ndjson", body = String),
        (status = 400, description = "malformed JSON or range", body = super::error::ErrorBody),
        (status = 401, body = super::error::ErrorBody),
        (status = 404, description = "no such profile", body = super::error::ErrorBody),
        (status = 413, body = super::error::ErrorBody), (status = 415, body = super::error::ErrorBody),
        (status = 422, description = "invalid candidate settings", body = super::error::ErrorBody)))]
pub async fn fleet(
    _: CanRead,
    State(state): State<ApiState>,
    ApiJson(req): ApiJson<FleetReplayRequest>,
) -> Result<Response, ApiError> {
    if state.ctx.profiles.get(&req.profile).is_none() {
        return Err(ApiError::not_found(format!("no profile {:?} in the hub config", req.profile)));
    }
    let (from, to) = range(&state, req.from, req.to)?;
    // Check the candidate once against the profile's defaults, so a bad one is a 422 up front.
    candidate(&state, &req.policy, &default_spec()?)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<String, std::convert::Infallible>>(8);
    tokio::spawn(async move {
        let mut total = Total::default();
        let mut cursor = None;
        loop {
            let filter = TargetFilter { cursor: cursor.clone(), limit: FLEET_PAGE, ..TargetFilter::default() };
            let page = match state.ctx.store.list_targets(&filter).await {
                Ok(page) => page,
                Err(e) => {
                    let _ = tx.send(Ok(line(&FleetLine::error(None, format!("listing targets failed: {e}"))))).await;
                    return;
                }
            };
            for row in &page.items {
                let Some(spec) = spec_of(&state, row) else { continue };
                if spec.profile != req.profile {
                    continue;
                }
                let out = match candidate(&state, &req.policy, &spec) {
                    Err(e) => FleetLine::error(Some(row.key.clone()), e.message.clone()),
                    Ok(c) => match run(&state, &row.key, &c, from, to).await {
                        Ok((r, truncated)) => {
                            total.targets += 1;
                            total.replayed.add(&r.replayed);
                            total.actual.add(&r.actual);
                            FleetLine {
                                target: Some(row.key.clone()),
                                truncated: truncated.then_some(true),
                                summary: Some(Summaries { replayed: r.replayed, actual: r.actual }),
                                ..FleetLine::default()
                            }
                        }
                        Err(e) => FleetLine::error(Some(row.key.clone()), e.message.clone()),
                    },
                };
                if tx.send(Ok(line(&out))).await.is_err() {
                    return; // the client went away
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let _ = tx.send(Ok(line(&FleetLine { total: Some(total), ..FleetLine::default() }))).await;
    });
    let lines = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|line| (line, rx)) });
    let body = Body::from_stream(lines);
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

impl FleetLine {
    fn error(target: Option<TargetKey>, error: String) -> Self {
        FleetLine { target, error: Some(error), ..FleetLine::default() }
    }
}

fn line(value: &FleetLine) -> String {
    let mut text = serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}

/// A spec with the HPA's defaults, to check a candidate's own fields.
fn default_spec() -> Result<TargetSpec, ApiError> {
    let enabled = std::collections::BTreeMap::from([(scalehub_core::spec::ENABLED.to_owned(), "true".to_owned())]);
    let defaults = std::collections::BTreeMap::from([("default".to_owned(), scalehub_core::SpecDefaults::hpa())]);
    TargetSpec::from_annotations(&enabled, &defaults)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("the default spec: {e}")))
}

fn range(state: &ApiState, from: Option<i64>, to: Option<i64>) -> Result<(i64, i64), ApiError> {
    let to = to.unwrap_or_else(|| (state.ctx.clock)().saturating_add(1));
    let from = from.unwrap_or_else(|| to.saturating_sub(DEFAULT_RANGE_MS));
    if from > to {
        return Err(ApiError::bad_request("from must not be after to"));
    }
    if to.saturating_sub(from) > MAX_RANGE_MS {
        return Err(ApiError::bad_request("the range may span at most 366 days"));
    }
    Ok((from, to))
}

fn candidate(state: &ApiState, policy: &Candidate, spec: &TargetSpec) -> Result<Plan, ApiError> {
    // Another profile's built-in calculation: its metric specs with a target, if it has no
    // evaluate hook (a hook's answers cannot be replayed at other replica counts).
    let profile = |name: &str| {
        let profile = state.ctx.profiles.get(name).ok_or_else(|| format!("no profile {name:?} in the hub config"))?;
        if profile.evaluate.is_some() {
            return Err(format!("profile {name:?} evaluates with a hook: only a built-in calculation can be replayed"));
        }
        let metrics: Vec<BuiltinMetric> = profile.metric_specs.iter().filter_map(|q| q.builtin.clone()).collect();
        if metrics.is_empty() {
            return Err(format!("profile {name:?} has no kubernetesMetricSpecs with a target"));
        }
        Ok(metrics)
    };
    policy.apply(spec, "policy", profile).map_err(|errors| {
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        ApiError::unprocessable(text.join("; "))
    })
}

async fn run(state: &ApiState, key: &TargetKey, plan: &Plan, from: i64, to: i64) -> Result<(Replay, bool), ApiError> {
    let points = state.ctx.store.ticks(key, from, to, MAX_POINTS).await?;
    let truncated = points.len() >= MAX_POINTS as usize;
    let recorded: Vec<RecordedTick> = points.into_iter().map(recorded).collect();
    if let Some(why) = unobserved(plan, &recorded) {
        return Err(ApiError::unprocessable(why));
    }
    let plan = plan.clone();
    // Up to 20,000 decisions: off the async workers.
    let replayed = tokio::task::spawn_blocking(move || replay(&plan, &recorded))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("the replay failed: {e}")))?;
    Ok((replayed, truncated))
}

fn recorded(p: TickPoint) -> RecordedTick {
    let failed = p.outcome == "error";
    RecordedTick {
        time: p.time,
        current: p.current_replicas,
        evaluated: if failed { None } else { p.raw_evaluation },
        chosen: p.final_replicas,
        ratio: p.ratio_ppm.map(|r| r as f64 / 1e6),
        usage: p.usage,
    }
}
