//! The OpenAPI 3 document, generated from the handlers' `#[utoipa::path]` annotations.
//!
//! Store rows are plain serde structs in a crate without utoipa, so their shapes are
//! described here by mirror types used only for the document; a test checks that the
//! document names every field the rows serialise.

use axum::Json;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::views::{OverrideView, SampleView, ScaleEventView, Stabilisation};
use super::{cpa, error, hub_info, overrides, replay, stream, targets};

/// The document's root.
#[derive(OpenApi)]
#[openapi(
    info(title = "scalehub API", description = "Targets, decisions, the CPA's metrics and evaluation calls, overrides and a live stream. \
        Errors are `{\"error\": string, \"code\": number}`. Writes need `Authorization: Bearer <token>` (tokens from the config's api.tokenFile); \
        reads too when api.protectReads is set. Times are unix milliseconds."),
    paths(targets::list, targets::get_one, targets::decisions, targets::series, targets::replicas, cpa::metrics, cpa::evaluation, overrides::put, overrides::delete,
        replay::target, replay::fleet,
        hub_info::hub, stream::stream, document, super::healthz, super::readyz, super::metrics),
    components(schemas(TargetDoc, TargetPageDoc, TargetDetailDoc, DecisionDoc, DecisionPageDoc, SeriesPageDoc, TickPointDoc, ReplicasPageDoc, TargetReplicasDoc, ReplicaPointDoc, ReasonDoc, HookDoc, MetricValueDoc,
        OverrideView, Stabilisation, SampleView, ScaleEventView, cpa::Evaluation, overrides::OverrideRequest, overrides::Until,
        ReplayRequestDoc, FleetReplayRequestDoc, ReplayPolicyDoc, ReplayDoc, ReplaySummariesDoc, ReplaySummaryDoc, ReplayedTickDoc, TargetKeyDoc,
        hub_info::HubStatus, error::ErrorBody)),
    modifiers(&BearerAuth, &CommonResponses),
    tags((name = "targets", description = "Targets and their decision history"),
        (name = "cpa", description = "The Custom Pod Autoscaler's two calls, per target"),
        (name = "overrides", description = "Pin, narrow or pause a target for a while"),
        (name = "hub", description = "The hub itself"), (name = "stream", description = "Live events"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// What every operation may answer besides its own responses: a 400 for a malformed path
/// (invalid UTF-8 in a segment), and — for the reads, whose token is optional unless
/// `api.protectReads` is set — an optional bearer token with its 401 and 403. The probes
/// never need a token.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::SecurityRequirement;
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let error = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                    )
                    .build(),
            )
        };
        for (path, item) in doc.paths.paths.iter_mut() {
            let probe = matches!(path.as_str(), "/healthz" | "/readyz");
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                if path.contains('{') {
                    responses.entry("400".into()).or_insert_with(|| error("malformed request or path"));
                }
                if probe {
                    continue;
                }
                if operation.security.is_none() {
                    operation.security = Some(vec![
                        SecurityRequirement::default(),
                        SecurityRequirement::new("bearer", Vec::<String>::new()),
                    ]);
                }
                responses
                    .entry("401".into())
                    .or_insert_with(|| error("a token is needed (api.protectReads) or was refused"));
                responses.entry("403".into()).or_insert_with(|| error("the token may not do this"));
            }
        }
    }
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "hub", responses((status = 200, description = "OpenAPI 3 document")))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// A target (mirror of the store's row plus the list's additions).
#[derive(Serialize, ToSchema)]
#[schema(as = Target)]
#[serde(rename_all = "camelCase")]
pub struct TargetDoc {
    /// Namespace of the workload.
    pub namespace: String,
    /// `Deployment`, `StatefulSet` or `ReplicaSet`.
    pub kind: String,
    /// Workload name.
    pub name: String,
    /// Kubernetes uid.
    pub uid: Option<String>,
    /// `active`, `shadow`, `invalid`, `conflict`, `error`, `removed` (or `unknown` before the first tick).
    pub state: String,
    /// The parsed annotation spec (or the raw annotations when they are invalid).
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    /// Why the target is invalid or failing.
    pub error: Option<String>,
    /// Replicas the workload has.
    pub current_replicas: Option<i32>,
    /// Replicas the last decision wanted.
    pub desired_replicas: Option<i32>,
    /// First seen, unix ms.
    pub first_seen: i64,
    /// Last seen, unix ms.
    pub last_seen: i64,
    /// When it was removed (opted out or deleted), unix ms.
    pub removed_at: Option<i64>,
    /// When the row last changed, unix ms.
    pub updated_at: i64,
    /// The newest decision.
    pub last_decision: Option<DecisionDoc>,
    /// The override in force.
    #[serde(rename = "override")]
    pub active_override: Option<OverrideView>,
}

/// A page of targets.
#[derive(Serialize, ToSchema)]
#[schema(as = TargetPage)]
#[serde(rename_all = "camelCase")]
pub struct TargetPageDoc {
    /// The targets.
    pub items: Vec<TargetDoc>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
    /// Managed targets by state, hub-wide.
    #[schema(value_type = Object, example = json!({"active": 12, "invalid": 1}))]
    pub counts: serde_json::Value,
}

/// One target in detail.
#[derive(Serialize, ToSchema)]
#[schema(as = TargetDetail)]
#[serde(rename_all = "camelCase")]
pub struct TargetDetailDoc {
    /// Everything in [`TargetDoc`].
    #[serde(flatten)]
    pub target: TargetDoc,
    /// Stabilisation windows and bounds.
    pub stabilisation: Stabilisation,
    /// Overrides, newest first.
    pub override_history: Vec<OverrideView>,
}

/// A decision (mirror of the store's row).
#[derive(Serialize, ToSchema)]
#[schema(as = Decision)]
#[serde(rename_all = "camelCase")]
pub struct DecisionDoc {
    /// Id, increasing; 0 in the live stream.
    pub id: i64,
    /// Namespace.
    pub namespace: String,
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
    /// When, unix ms.
    pub time: i64,
    /// `scaler`, `api`, `api_dry_run` or `override`.
    pub run_type: String,
    /// Metric values gathered.
    pub metrics: Vec<MetricValueDoc>,
    /// The evaluator's raw answer.
    pub raw_evaluation: Option<i64>,
    /// The full evaluation document; null when none was produced (a failed tick, an
    /// override's record).
    #[schema(value_type = Option<Object>)]
    pub evaluation: serde_json::Value,
    /// The reason chain, in pipeline order.
    pub reasons: Vec<ReasonDoc>,
    /// Replicas after policy.
    pub final_replicas: Option<i32>,
    /// Replicas at the decision.
    pub current_replicas: Option<i32>,
    /// Whether a scale call was made.
    pub scaled: bool,
    /// Result of the scale call.
    pub scale_result: Option<String>,
    /// Why the tick failed.
    pub error: Option<String>,
    /// Hook runs.
    pub hooks: Vec<HookDoc>,
    /// `scaled`, `unchanged`, `held`, `error`, `shadow`, `disabled`, `dry_run`, `override_set`, `override_cleared`, `override_expired`.
    pub outcome: String,
}

/// One link of a decision's reason chain.
#[derive(Serialize, ToSchema)]
#[schema(as = Reason)]
pub struct ReasonDoc {
    /// `fallback`, `disabled`, `predict`, `activation`, `clamp`, `override`, `stabilise` or `rate`.
    pub step: String,
    /// e.g. `FallbackReplicas`, `TooManyReplicas`, `ScaleDownStabilized`, `OverridePinned`, `OverrideSet`, `OverrideCleared`, `OverrideExpired`.
    pub code: String,
    /// A sentence for humans.
    pub message: String,
    /// Replicas entering the step.
    pub from: i32,
    /// Replicas leaving it.
    pub to: i32,
    /// Step-specific facts, tagged by `kind` (`bounds`, `sample`, `ratePolicy`, `rateDisabled`, `scaleUpCap`, `prediction`, `activation`, `cooldown`, `override`).
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
}

/// One hook run.
#[derive(Serialize, ToSchema)]
#[schema(as = Hook)]
#[serde(rename_all = "camelCase")]
pub struct HookDoc {
    /// `metric`, `evaluate`, `preScale`, ...
    pub stage: String,
    /// `shell` or `http`.
    pub kind: String,
    /// Exit code of a shell hook.
    pub exit_code: Option<i32>,
    /// Signal that ended a shell hook.
    pub signal: Option<i32>,
    /// HTTP status of an HTTP hook.
    pub http_status: Option<u16>,
    /// Run time.
    pub duration_ms: u64,
    /// Wait for a concurrency permit.
    pub queued_ms: u64,
    /// Stopped by its timeout.
    pub timed_out: bool,
    /// Start of stderr or of a failed response body.
    pub stderr: Option<String>,
    /// The failure.
    pub error: Option<String>,
}

/// One metric value (the CPA shape).
#[derive(Serialize, ToSchema)]
#[schema(as = MetricValue)]
pub struct MetricValueDoc {
    /// The workload (per-resource) or pod (per-pod).
    pub resource: String,
    /// The metric hook's stdout, verbatim.
    pub value: String,
}

/// One tick of a target's series.
#[derive(Serialize, ToSchema)]
#[schema(as = TickPoint)]
#[serde(rename_all = "camelCase")]
pub struct TickPointDoc {
    /// When the tick ran (unix ms).
    pub time: i64,
    /// Replicas the workload had.
    pub current_replicas: Option<i32>,
    /// What the evaluation asked for.
    pub raw_evaluation: Option<i32>,
    /// Replicas after policy.
    pub final_replicas: Option<i32>,
    /// For a predictive target: the evaluation combined with its models' predictions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted: Option<i32>,
    /// For the built-in calculation: its usage ratio in millionths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_ppm: Option<i64>,
    /// `unchanged`, `held`, `scaled`, `error`, `shadow`, `disabled`.
    pub outcome: String,
    /// The metric values.
    pub metrics: Vec<MetricValueDoc>,
    /// What the tick observed of each Kubernetes metric, for replays: `{key, observed}` with
    /// `observed` `{"pods": {ready, usage, requests, missing, unready, unreadyRequests}}` or
    /// `{"total": {value, readyPods, statusReplicas}}` (milli-units).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub usage: Vec<serde_json::Value>,
}

/// A target's ticks, oldest first.
#[derive(Serialize, ToSchema)]
#[schema(as = SeriesPage)]
pub struct SeriesPageDoc {
    /// One per tick.
    pub points: Vec<TickPointDoc>,
}

/// The recent replicas of several targets.
#[derive(Serialize, ToSchema)]
#[schema(as = ReplicasPage)]
pub struct ReplicasPageDoc {
    /// In the order the request named them.
    pub items: Vec<TargetReplicasDoc>,
}

/// One target's recent replicas.
#[derive(Serialize, ToSchema)]
#[schema(as = TargetReplicas)]
pub struct TargetReplicasDoc {
    pub namespace: String,
    /// `Deployment`, `StatefulSet` or `ReplicaSet`.
    pub kind: String,
    pub name: String,
    /// Its newest decisions, oldest first; empty for a target without any.
    pub points: Vec<ReplicaPointDoc>,
}

/// One decision's replicas.
#[derive(Serialize, ToSchema)]
#[schema(as = ReplicaPoint)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaPointDoc {
    /// When (unix ms).
    pub time: i64,
    /// Replicas the workload had.
    pub current_replicas: Option<i32>,
    /// Replicas the decision settled on.
    pub final_replicas: Option<i32>,
}

/// A page of decisions.
#[derive(Serialize, ToSchema)]
#[schema(as = DecisionPage)]
#[serde(rename_all = "camelCase")]
pub struct DecisionPageDoc {
    /// Newest first.
    pub items: Vec<DecisionDoc>,
    /// Pass as `before` for the next page; null on the last.
    pub next_before: Option<i64>,
}

/// The settings a replay tries; each one left out keeps the target's own.
#[derive(Serialize, ToSchema)]
#[schema(as = ReplayPolicy)]
#[serde(rename_all = "camelCase")]
pub struct ReplayPolicyDoc {
    /// Lower bound (>= 0).
    pub min_replicas: Option<i32>,
    /// Upper bound (>= 1).
    pub max_replicas: Option<i32>,
    /// Scale-up window, e.g. `30s` (at most `1h`).
    pub upscale_stabilization: Option<String>,
    /// Scale-down window, e.g. `2m` (at most `1h`).
    pub downscale_stabilization: Option<String>,
    /// HPA `behavior`: `scaleUp`/`scaleDown` with `stabilizationWindowSeconds`, `selectPolicy`, `policies`, `tolerance`.
    #[schema(value_type = Option<Object>)]
    pub behavior: Option<serde_json::Value>,
    /// Predictive models, as a profile's `predictive:`.
    #[schema(value_type = Option<Object>)]
    pub predictive: Option<serde_json::Value>,
    /// `{activationThreshold, cooldownPeriod}`, as a profile's `scaleToZero:`.
    #[schema(value_type = Option<Object>)]
    pub scale_to_zero: Option<serde_json::Value>,
    /// Another built-in calculation over the recorded observations: `{"profile": NAME}` (a
    /// profile without an evaluate hook) or `{"kubernetesMetricSpecs": [...]}` as a profile
    /// writes them.
    #[schema(value_type = Option<Object>)]
    pub calculation: Option<serde_json::Value>,
}

/// A replay of one target.
#[derive(Serialize, ToSchema)]
#[schema(as = ReplayRequest)]
pub struct ReplayRequestDoc {
    /// Start of the range, unix ms (default `to` minus 24 h).
    pub from: Option<i64>,
    /// End of the range, unix ms, exclusive (default now).
    pub to: Option<i64>,
    /// The settings to try.
    pub policy: Option<ReplayPolicyDoc>,
    /// Return every replayed tick (default true).
    pub ticks: Option<bool>,
}

/// A replay of every target of one profile.
#[derive(Serialize, ToSchema)]
#[schema(as = FleetReplayRequest)]
pub struct FleetReplayRequestDoc {
    /// The profile whose targets are replayed.
    pub profile: String,
    /// Start of the range, unix ms.
    pub from: Option<i64>,
    /// End of the range, unix ms.
    pub to: Option<i64>,
    /// The settings to try on every target.
    pub policy: Option<ReplayPolicyDoc>,
}

/// A target's key.
#[derive(Serialize, ToSchema)]
#[schema(as = TargetKey)]
pub struct TargetKeyDoc {
    /// Its namespace.
    pub namespace: String,
    /// `Deployment`, `StatefulSet`, `ReplicaSet` or an extra kind.
    pub kind: String,
    /// Its name.
    pub name: String,
}

/// How one replica curve fared.
#[derive(Serialize, ToSchema)]
#[schema(as = ReplaySummary)]
#[serde(rename_all = "camelCase")]
pub struct ReplaySummaryDoc {
    /// Changes upwards.
    pub scale_ups: u32,
    /// Changes downwards.
    pub scale_downs: u32,
    /// Replicas × hours.
    pub replica_hours: f64,
    /// The most replicas.
    pub highest: i32,
    /// The fewest replicas.
    pub lowest: i32,
    /// Seconds with fewer replicas than the evaluation asked for.
    pub under_provisioned_seconds: f64,
    /// Seconds with more replicas than the evaluation asked for.
    pub over_provisioned_seconds: f64,
}

/// The candidate's curve beside what happened.
#[derive(Serialize, ToSchema)]
#[schema(as = ReplaySummaries)]
pub struct ReplaySummariesDoc {
    /// The candidate's.
    pub replayed: ReplaySummaryDoc,
    /// What actually happened.
    pub actual: ReplaySummaryDoc,
}

/// One replayed tick.
#[derive(Serialize, ToSchema)]
#[schema(as = ReplayedTick)]
pub struct ReplayedTickDoc {
    /// When it ran (unix ms).
    pub time: i64,
    /// What the recorded evaluation asked for.
    pub asked: Option<i32>,
    /// What the replay's evaluation asked for.
    pub evaluated: Option<i32>,
    /// The replicas the workload actually had after the tick.
    pub actual: Option<i32>,
    /// The replicas under the candidate.
    pub replicas: i32,
    /// The candidate's reasons where its replicas changed.
    pub reasons: Option<Vec<ReasonDoc>>,
}

/// The outcome of a replay.
#[derive(Serialize, ToSchema)]
#[schema(as = Replay)]
pub struct ReplayDoc {
    /// The target.
    pub target: TargetKeyDoc,
    /// Start of the range.
    pub from: i64,
    /// End of the range.
    pub to: i64,
    /// More ticks than one replay reads: the newest were replayed.
    pub truncated: bool,
    /// The spec the replay ran.
    #[schema(value_type = Object)]
    pub policy: serde_json::Value,
    /// The built-in calculation replayed in place of the recorded evaluations, if the candidate
    /// named one: `[{key, goal}]`, e.g. `{"key": "cpu", "goal": {"pods": {"utilization": 50}}}`.
    #[schema(value_type = Option<Vec<Object>>)]
    pub calculation: Option<Vec<serde_json::Value>>,
    /// Both summaries.
    pub summary: ReplaySummariesDoc,
    /// Every tick, unless only the summary was asked for.
    pub ticks: Option<Vec<ReplayedTickDoc>>,
}
