//! The CPA's two calls, per target: `GET …/metrics?dry_run=` and `POST …/evaluation?dry_run=`.
//!
//! Both run the target's stages in its own loop, between its ticks, so they never race a
//! tick for the stabilisation state. A dry run (`api_dry_run`) never scales and leaves the
//! state alone, but it runs the target's hooks: work in the cluster on the caller's behalf,
//! so it needs a write token unless `api.openHookRuns` lets readers do it (the CPA's API had
//! no authentication). A real evaluation runs as `api`, which may scale: a write, always.
//! API-triggered runs share a hub-wide budget (`api.hookRunsPerSecond`, default 5 a second,
//! bursts of 10); beyond it they get 429, so they never starve scheduled ticks. As in the CPA, a missing `dry_run` means false, and the
//! evaluation of a dry run is the raw one while a real run returns the final value.
//!
//! `GET …/metrics` always runs as `api_dry_run`: the loop's on-demand run is a whole
//! decision, and a GET (polled by any monitoring tool) must never scale. `dry_run` is still
//! checked, so CPA clients get the same 400 for a bad value. (The CPA's metrics call never
//! scaled either; only the `runType` its hooks saw differed.)
//!
//! On a sharded hub any replica answers: a real evaluation of a target another replica owns
//! is forwarded to that owner ([`super::forward`]); everything else runs where it is asked.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use scalehub_hooks::{MetricValue, RunType};

use super::ApiState;
use super::error::{ApiError, ApiPath, ApiQuery};
use super::forward::{self, Route};
use super::targets::TargetPath;
use crate::target::RunError;
use crate::target::TickResult;

/// The `dry_run` query parameter.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DryRunQuery {
    /// Evaluation: `true` runs as `api_dry_run` (never scales); false or absent runs as `api`
    /// (may scale, needs a token). Metrics: always a dry run; the value is only validated.
    /// Parsed like Go's `strconv.ParseBool`: 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False.
    pub dry_run: Option<String>,
}

/// The CPA's evaluation response.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    /// Raw evaluation (dry run) or the final replicas after policy.
    pub target_replicas: i32,
}

/// Parses `dry_run` as Go's `strconv.ParseBool` does, as the CPA did; absent is false.
pub fn parse_dry_run(value: Option<&str>) -> Result<bool, ApiError> {
    match value {
        None => Ok(false),
        Some("1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(true),
        Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(false),
        Some(other) => Err(ApiError::bad_request(format!("invalid dry_run {other:?}: use true or false"))),
    }
}

/// Runs the target's metric stage as a dry run (never scales, whatever `dry_run` says).
#[utoipa::path(get, path = "/api/v1/targets/{namespace}/{kind}/{name}/metrics", tag = "cpa", operation_id = "target_metrics",
    security(("bearer" = [])),
    params(("namespace" = String, Path), ("kind" = String, Path), ("name" = String, Path), DryRunQuery),
    responses(
        (status = 200, description = "The CPA metrics array", body = [super::openapi::MetricValueDoc]),
        (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody), (status = 409, description = "an HPA owns the workload", body = super::error::ErrorBody),
        (status = 422, description = "the target's annotations are invalid", body = super::error::ErrorBody),
        (status = 429, description = "the API's hook-run budget (api.hookRunsPerSecond) is spent; see Retry-After", body = super::error::ErrorBody),
        (status = 500, description = "a hook failed (the hook's error, as the CPA answers)", body = super::error::ErrorBody),
        (status = 503, description = "this hub is a standby", body = super::error::ErrorBody)))]
pub async fn metrics(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(path): ApiPath<TargetPath>,
    ApiQuery(q): ApiQuery<DryRunQuery>,
) -> Result<Json<Vec<MetricValue>>, ApiError> {
    // Errors carry the CPA's `message` field too.
    run_metrics(state, headers, path, q).await.map_err(ApiError::cpa)
}

async fn run_metrics(
    state: ApiState,
    headers: HeaderMap,
    path: TargetPath,
    q: DryRunQuery,
) -> Result<Json<Vec<MetricValue>>, ApiError> {
    // As in the CPA, `dry_run` only changes the run type the hooks see: gathering metrics
    // never scales, so a read is enough either way.
    // Who may ask comes first: a caller without a token learns nothing from a 400.
    state.auth.hook_run_access(&headers, Some(&path.namespace)).await?;
    let run_type = if parse_dry_run(q.dry_run.as_deref())? { RunType::ApiDryRun } else { RunType::Api };
    let key = path.key()?;
    take_hook_run(&state, &key)?;
    match state.ctx.metrics_now(&key, run_type).await.map_err(|e| run_error(&key, e))? {
        Ok(metrics) => Ok(Json(metrics)),
        Err(e) => Err(hook_failed(e)),
    }
}

/// Runs metric and evaluate; a real run also applies policy and may scale.
#[utoipa::path(post, path = "/api/v1/targets/{namespace}/{kind}/{name}/evaluation", tag = "cpa",
    security(("bearer" = [])),
    params(("namespace" = String, Path), ("kind" = String, Path), ("name" = String, Path), DryRunQuery),
    responses(
        (status = 200, body = Evaluation),
        (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody),
        (status = 429, description = "the API's hook-run budget (api.hookRunsPerSecond) is spent; see Retry-After", body = super::error::ErrorBody),
        (status = 500, description = "a hook failed (the hook's error, as the CPA answers)", body = super::error::ErrorBody),
        (status = 502, description = "the replica that owns the target (sharded hubs) did not answer", body = super::error::ErrorBody),
        (status = 503, description = "this hub is a standby, or the target is between owners", body = super::error::ErrorBody)))]
pub async fn evaluation(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(path): ApiPath<TargetPath>,
    ApiQuery(q): ApiQuery<DryRunQuery>,
) -> Result<Response, ApiError> {
    // Errors carry the CPA's `message` field too.
    run_evaluation(state, headers, path, q).await.map_err(ApiError::cpa)
}

async fn run_evaluation(
    state: ApiState,
    headers: HeaderMap,
    path: TargetPath,
    q: DryRunQuery,
) -> Result<Response, ApiError> {
    let result = match run(&state, &headers, &path, q.dry_run.as_deref()).await? {
        Ran::Here(result) => result,
        Ran::Forwarded(answer) => return Ok(answer),
    };
    let dry_run = parse_dry_run(q.dry_run.as_deref())?;
    let replicas = if dry_run { result.evaluated } else { result.desired };
    match (replicas, result.error) {
        (Some(target_replicas), None) => Ok(Json(Evaluation { target_replicas }).into_response()),
        (_, Some(e)) => Err(hook_failed(e)),
        (None, None) => Err(hook_failed("no evaluation was produced".into())),
    }
}

/// An evaluation run here, or the owner's answer to it.
enum Ran {
    Here(TickResult),
    Forwarded(Response),
}

async fn run(state: &ApiState, headers: &HeaderMap, path: &TargetPath, dry_run: Option<&str>) -> Result<Ran, ApiError> {
    let dry_run = match parse_dry_run(dry_run) {
        Ok(dry_run) => dry_run,
        Err(e) => {
            // Who may ask comes first: a caller without a token learns nothing from a 400.
            state.auth.hook_run_access(headers, Some(&path.namespace)).await?;
            return Err(e);
        }
    };
    let run_type = if dry_run {
        state.auth.hook_run_access(headers, Some(&path.namespace)).await?;
        RunType::ApiDryRun
    } else {
        state.auth.write_access(headers, Some(&path.namespace)).await?;
        RunType::Api
    };
    let key = path.key()?;
    if run_type == RunType::Api
        && let Route::Owner { identity, address } = forward::route(state, headers, &key)?
    {
        // The owner spends its own hook-run budget; an unknown target is a 404 here already.
        known(state, &key)?;
        return forward::evaluation(state, headers, path, &identity, address).await.map(Ran::Forwarded);
    }
    take_hook_run(state, &key)?;
    state.ctx.run_now(&key, run_type).await.map(Ran::Here).map_err(|e| run_error(&key, e))
}

/// 404 for a target that has no loop here.
fn known(state: &ApiState, key: &crate::workload::TargetKey) -> Result<(), ApiError> {
    match state.ctx.loops.read().is_ok_and(|loops| loops.contains_key(key)) {
        true => Ok(()),
        false => Err(run_error(key, RunError::NotFound)),
    }
}

/// Takes one of the hub-wide API hook runs, or answers 429 with `Retry-After`. A target that
/// has no loop is a 404 first: asking for unknown targets does not use up the budget.
fn take_hook_run(state: &ApiState, key: &crate::workload::TargetKey) -> Result<(), ApiError> {
    known(state, key)?;
    state.hook_runs.take().map_err(|wait| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many hook runs through the API (api.hookRunsPerSecond is {}); retry in {} ms",
                state.auth.hook_runs_per_second(),
                wait.as_millis().max(1)
            ),
        )
        .retry_after(wait.as_secs_f64().ceil() as u64)
    })
}

fn run_error(key: &crate::workload::TargetKey, e: RunError) -> ApiError {
    match e {
        RunError::NotFound => super::targets::not_found(key),
        RunError::Invalid(why) => ApiError::unprocessable(format!("the target's annotations are invalid: {why}")),
        RunError::Conflict(why) => ApiError::new(StatusCode::CONFLICT, why),
        RunError::NotLeader => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "this hub is a standby; ask the leader"),
        RunError::NotOwner => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this hub replica does not hold this target now (it is between owners, or was forwarded here before a \
             handover); retry",
        ),
        RunError::Stopped => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the target's loop stopped; retry"),
    }
}

/// A failed hook: a 500 with the hook's error, as the CPA answers.
fn hook_failed(e: String) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dry_run_parses_like_go_parse_bool() {
        assert!(!parse_dry_run(None).unwrap());
        for yes in ["1", "t", "T", "TRUE", "true", "True"] {
            assert!(parse_dry_run(Some(yes)).unwrap(), "{yes}");
        }
        for no in ["0", "f", "F", "FALSE", "false", "False"] {
            assert!(!parse_dry_run(Some(no)).unwrap(), "{no}");
        }
        for bad in ["", "yes", "tRuE", "2"] {
            assert_eq!(parse_dry_run(Some(bad)).unwrap_err().status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
