//! One tick of a target: gather metrics → evaluate → policy → scale → record.
//!
//! The same stages serve the scheduler and the API's CPA calls (`runType` `api` and
//! `api_dry_run`); a dry run never scales and never touches the stabilisation state.

use std::sync::Arc;

use prometheus_client::metrics::gauge::Gauge;
use serde_json::{Value, json};

use scalehub_core::policy::{self, PolicyState};
use scalehub_core::spec::{Mode, TargetSpec};
use scalehub_hooks::{HookOutcome, MetricValue, RunType};

use crate::events::WorkloadEvent;
use crate::stages::{self, Stages};
use crate::target::{Shared, TargetInput};
use crate::telemetry::{OutcomeLabels, TargetLabels};
use crate::workload::TargetKey;

/// What a loop remembers between ticks besides the policy state.
#[derive(Debug, Default)]
pub struct Memory {
    /// The policy state (windows and rate events), persisted with every decision.
    pub policy: PolicyState,
    /// The target row as last written, so unchanged rows are not rewritten every tick.
    last_row: Option<RowSnapshot>,
    /// What the last recorded decision row said: a scheduled tick that says the same adds
    /// only a point to the series, not a row.
    last_decision: Option<Signature>,
    /// The target's open chunk of the tick series.
    series: scalehub_store::series::SeriesWriter,
    /// The target's current and desired replica gauges.
    gauges: Option<(Gauge, Gauge)>,
}

impl Memory {
    /// Memory that starts from a restored policy state.
    pub fn restored(policy: PolicyState) -> Self {
        Self { policy, ..Default::default() }
    }
}

/// What the target row last said: state, error, current and desired replicas.
type RowSnapshot = (String, Option<String>, Option<i32>, Option<i32>);

/// The parts of a decision that make it worth a row of its own when they change.
#[derive(Debug, PartialEq)]
struct Signature {
    outcome: String,
    error: Option<String>,
    current: Option<i32>,
    raw: Option<i64>,
    desired: Option<i32>,
    scaled: bool,
    reasons: Value,
}

impl Signature {
    fn of(row: &scalehub_store::DecisionRow) -> Self {
        Signature {
            outcome: row.outcome.clone(),
            error: row.error.clone(),
            current: row.current_replicas,
            raw: row.raw_evaluation,
            desired: row.final_replicas,
            scaled: row.scaled,
            reasons: row.reasons.clone(),
        }
    }
}

/// The result of a tick, for the API's CPA calls.
#[derive(Debug)]
pub struct TickResult {
    /// The CPA `metrics` array.
    pub metrics: Vec<MetricValue>,
    /// Raw evaluation, if the evaluate stage ran.
    pub evaluated: Option<i32>,
    /// Final replicas after policy, if decided.
    pub desired: Option<i32>,
    /// Why the tick failed, if it did.
    pub error: Option<String>,
}

/// Lists a new target before its first tick: `invalid` with the error, or `pending`.
pub async fn announce(shared: &Arc<Shared>, key: &TargetKey, input: &TargetInput, memory: &mut Memory) {
    let now = (shared.clock)();
    let current = Some(input.workload.replicas);
    match &input.spec {
        Err(error) => report(shared, key, input, memory, "invalid", Some(error.clone()), current, None, now).await,
        Ok(_) => report(shared, key, input, memory, "pending", None, current, None, now).await,
    }
}

/// A scheduled tick: the `scaler` run type.
pub async fn scheduled(shared: &Arc<Shared>, key: &TargetKey, input: &TargetInput, memory: &mut Memory) {
    if !*shared.leader.borrow() || !shared.hpas.synced() {
        return;
    }
    let now = (shared.clock)();
    let current = input.workload.replicas;
    let spec = match &input.spec {
        Ok(spec) => spec,
        Err(error) => {
            report(shared, key, input, memory, "invalid", Some(error.clone()), Some(current), None, now).await;
            emit(shared, key, input, true, "InvalidAnnotations", error);
            return;
        }
    };
    if let Some(hpa) = shared.hpas.owner(key) {
        let error = format!("HorizontalPodAutoscaler {hpa} already scales this workload; scalehub leaves it alone");
        report(shared, key, input, memory, "conflict", Some(error.clone()), Some(current), None, now).await;
        emit(shared, key, input, true, "HPAConflict", &error);
        return;
    }
    let result = decide(shared, key, input, spec, memory, RunType::Scaler, now).await;
    let state = if result.error.is_some() {
        "error"
    } else if spec.mode == Mode::Shadow {
        "shadow"
    } else {
        "active"
    };
    report(shared, key, input, memory, state, result.error, Some(current), result.desired, now).await;
}

/// Runs only the metric stage (the CPA's `GET /metrics`).
pub async fn metrics_only(
    shared: &Arc<Shared>,
    key: &TargetKey,
    input: &TargetInput,
    spec: &TargetSpec,
    run_type: RunType,
) -> Result<Vec<MetricValue>, String> {
    let Some(profile) = shared.profiles.get(&spec.profile) else {
        return Err(format!("profile {:?} is not in the hub config", spec.profile));
    };
    let current = input.workload.replicas;
    let stages = Stages { shared, key, input, spec, profile: &profile, run_type, current };
    let mut hooks = Vec::new();
    stages.metrics(&mut hooks).await.map(|(metrics, _)| metrics).map_err(|f| f.message)
}

/// Runs the stages and the policy for one target and records the decision.
/// With `RunType::ApiDryRun` nothing is scaled and the policy state is left untouched.
pub async fn decide(
    shared: &Arc<Shared>,
    key: &TargetKey,
    input: &TargetInput,
    spec: &TargetSpec,
    memory: &mut Memory,
    run_type: RunType,
    now: i64,
) -> TickResult {
    let current = input.workload.replicas;
    let Some(profile) = shared.profiles.get(&spec.profile) else {
        let error = format!("profile {:?} is not in the hub config", spec.profile);
        return TickResult { metrics: Vec::new(), evaluated: None, desired: None, error: Some(error) };
    };
    let mut record = Record::new(key, now, current);
    let stages = Stages { shared, key, input, spec, profile: &profile, run_type, current };
    let evaluated = match stages.metrics_and_evaluation(&mut record.hooks).await {
        Ok((metrics, evaluation)) => {
            record.metrics = json!(metrics);
            record.evaluation = evaluation.clone();
            let raw = evaluation.get("targetReplicas").and_then(Value::as_i64).unwrap_or(current as i64) as i32;
            record.raw = Some(raw);
            (metrics, raw)
        }
        Err(failure) => {
            record.error = Some(failure.message.clone());
            record.metrics = json!(failure.metrics);
            record.outcome = "error";
            shared
                .metrics
                .hook_errors
                .get_or_create(&crate::telemetry::HookLabels { hook: failure.stage.into() })
                .inc();
            emit(shared, key, input, true, "FailedComputeReplicas", &failure.message);
            let result =
                TickResult { metrics: failure.metrics, evaluated: None, desired: None, error: record.error.clone() };
            finish(shared, memory, record, None, run_type).await;
            return result;
        }
    };
    let (metrics, raw) = evaluated;
    let active = shared.override_for(key, now);
    let decision = policy::decide(&memory.policy, &spec.policy_input(now, current, raw, active.as_ref()));
    record.reasons = json!(decision.reasons);
    record.desired = Some(decision.desired_replicas);
    let disabled = decision.reasons.iter().any(|r| r.step == policy::Step::Disabled);
    let dry_run = run_type == RunType::ApiDryRun;
    let mut next_state = if dry_run { None } else { Some(decision.next_state.clone()) };
    record.outcome = if disabled {
        "disabled"
    } else if decision.wants_scale {
        "held"
    } else {
        "unchanged"
    };
    if !disabled && !dry_run {
        if let Err(failure) = stages.scale_hook("preScale", raw, decision.desired_replicas, &mut record.hooks).await {
            record.error = Some(failure);
            record.outcome = "error";
        } else {
            if decision.wants_scale {
                if spec.mode == Mode::Shadow {
                    record.outcome = "shadow";
                } else {
                    scale(shared, key, input, &mut record, &decision, next_state.as_mut(), now).await;
                }
            }
            if let Err(failure) =
                stages.scale_hook("postScale", raw, decision.desired_replicas, &mut record.hooks).await
            {
                record.error = Some(failure);
            }
        }
    }
    if dry_run {
        record.outcome = "dry_run";
    }
    if let Some(state) = &next_state {
        memory.policy = state.clone();
    }
    let result = TickResult {
        metrics,
        evaluated: Some(raw),
        desired: Some(decision.desired_replicas),
        error: record.error.clone(),
    };
    finish(shared, memory, record, next_state, run_type).await;
    result
}

async fn scale(
    shared: &Arc<Shared>,
    key: &TargetKey,
    input: &TargetInput,
    record: &mut Record,
    decision: &policy::Decision,
    state: Option<&mut PolicyState>,
    now: i64,
) {
    let target = decision.desired_replicas;
    // Commit the windows (with this tick's recommendation) before the scale call: after a
    // crash between the scale and the decision's commit, a restart must still see why the
    // target is where it is, or it could scale down before its window has passed.
    if let Some(state) = state.as_deref() {
        let row = scalehub_store::PolicyStateRow { key: key.clone(), state: json!(state), updated_at: now };
        if let Err(e) = shared.store.save_policy_state(row).await {
            record.outcome = "error";
            record.error = Some(format!("not scaled: the policy state could not be saved: {e}"));
            return;
        }
    }
    record.scaled = true;
    match shared.scaler.scale(key, target).await {
        Ok(confirmed) => {
            record.outcome = "scaled";
            record.scale_result = Some(format!("scaled from {} to {confirmed}", decision.current_replicas));
            if let Some(state) = state {
                state.record_scale(now, decision.current_replicas, target);
            }
            shared.metrics.scale_calls.get_or_create(&OutcomeLabels { outcome: "ok".into() }).inc();
            let why = decision.reasons.last().map(|r| r.message.clone()).unwrap_or_else(|| "evaluation".into());
            emit(shared, key, input, false, "SuccessfulRescale", &format!("New size: {target}; reason: {why}"));
        }
        Err(e) => {
            record.outcome = "error";
            record.scale_result = Some(e.to_string());
            record.error = Some(e.to_string());
            shared.metrics.scale_calls.get_or_create(&OutcomeLabels { outcome: "error".into() }).inc();
            emit(shared, key, input, true, "FailedRescale", &format!("New size: {target}; error: {e}"));
        }
    }
}

/// A decision being assembled.
struct Record {
    key: TargetKey,
    time: i64,
    current: i32,
    metrics: Value,
    raw: Option<i32>,
    evaluation: Value,
    reasons: Value,
    desired: Option<i32>,
    scaled: bool,
    scale_result: Option<String>,
    error: Option<String>,
    hooks: Vec<stages::HookRecord>,
    outcome: &'static str,
}

impl Record {
    fn new(key: &TargetKey, time: i64, current: i32) -> Self {
        Self {
            key: key.clone(),
            time,
            current,
            metrics: json!([]),
            raw: None,
            evaluation: Value::Null,
            reasons: json!([]),
            desired: None,
            scaled: false,
            scale_result: None,
            error: None,
            hooks: Vec::new(),
            outcome: "unchanged",
        }
    }
}

/// Records a tick: a point of the series always (dry runs aside), a decision row when the
/// decision differs from the last recorded one (or was asked for through the API), and the
/// policy state, all in one transaction.
async fn finish(shared: &Arc<Shared>, memory: &mut Memory, r: Record, state: Option<PolicyState>, run_type: RunType) {
    shared.metrics.decisions.get_or_create(&OutcomeLabels { outcome: r.outcome.into() }).inc();
    for h in &r.hooks {
        shared
            .metrics
            .hook_duration
            .get_or_create(&crate::telemetry::HookLabels { hook: h.stage.clone() })
            .observe(h.outcome.duration_ms as f64 / 1000.0);
    }
    let key = r.key.clone();
    let row = scalehub_store::DecisionRow {
        id: 0,
        key: key.clone(),
        time: r.time,
        run_type: run_type.as_str().into(),
        metrics: r.metrics,
        raw_evaluation: r.raw.map(i64::from),
        evaluation: r.evaluation,
        reasons: r.reasons,
        final_replicas: r.desired,
        current_replicas: Some(r.current),
        scaled: r.scaled,
        scale_result: r.scale_result,
        error: r.error,
        hooks: json!(r.hooks),
        outcome: r.outcome.into(),
    };
    let dry_run = run_type == RunType::ApiDryRun;
    let series = if dry_run { None } else { series_chunk(memory, &key, &row) };
    let signature = Signature::of(&row);
    let changed = run_type != RunType::Scaler || memory.last_decision.as_ref() != Some(&signature);
    if !dry_run {
        memory.last_decision = Some(signature);
    }
    let policy = state.map(|s| scalehub_store::PolicyStateRow { key, state: json!(s), updated_at: r.time });
    let decision = changed.then(|| {
        crate::api::stream::publish(&shared.stream, || {
            crate::api::stream::StreamEvent::Decision(Arc::new(row.clone()))
        });
        row
    });
    if let Err(e) = shared.store.record_tick(decision, policy, series).await {
        tracing::error!(target_key = %r.key, error = %e, "decision not recorded");
    }
}

/// Appends the tick to the target's open series chunk.
fn series_chunk(
    memory: &mut Memory,
    key: &scalehub_store::TargetKey,
    row: &scalehub_store::DecisionRow,
) -> Option<scalehub_store::SeriesChunkRow> {
    let metrics = match &row.metrics {
        Value::Array(items) => items
            .iter()
            .map(|m| scalehub_store::SeriesMetric {
                resource: m.get("resource").and_then(Value::as_str).unwrap_or_default().to_owned(),
                value: match m.get("value") {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => String::new(),
                },
            })
            .collect(),
        _ => Vec::new(),
    };
    let point = scalehub_store::TickPoint {
        time: row.time,
        current_replicas: row.current_replicas,
        raw_evaluation: row.raw_evaluation.and_then(|r| i32::try_from(r).ok()),
        final_replicas: row.final_replicas,
        outcome: row.outcome.clone(),
        metrics,
    };
    match memory.series.push(point) {
        Ok(chunk) => Some(scalehub_store::SeriesChunkRow { key: key.clone(), chunk: chunk.clone() }),
        Err(e) => {
            tracing::warn!(error = %e, "tick not added to the series");
            None
        }
    }
}

/// Writes the target row when its state, error or replicas changed.
#[allow(clippy::too_many_arguments)]
async fn report(
    shared: &Arc<Shared>,
    key: &TargetKey,
    input: &TargetInput,
    memory: &mut Memory,
    state: &str,
    error: Option<String>,
    current: Option<i32>,
    desired: Option<i32>,
    now: i64,
) {
    // The target's two gauges are looked up once: building their labels every tick was a
    // measurable share of a tick.
    let (current_gauge, desired_gauge) = memory.gauges.get_or_insert_with(|| {
        let labels = TargetLabels::from(key);
        (
            shared.metrics.current_replicas.get_or_create(&labels).clone(),
            shared.metrics.desired_replicas.get_or_create(&labels).clone(),
        )
    });
    if let Some(c) = current {
        current_gauge.set(c as i64);
    }
    if let Some(d) = desired {
        desired_gauge.set(d as i64);
    }
    let snapshot = (state.to_owned(), error.clone(), current, desired);
    if memory.last_row.as_ref() == Some(&snapshot) {
        return;
    }
    let spec = match &input.spec {
        Ok(spec) => json!(spec),
        Err(_) => json!(input.workload.annotations),
    };
    let row = scalehub_store::TargetRow {
        key: key.clone(),
        uid: input.workload.uid.clone(),
        state: state.into(),
        spec,
        error,
        current_replicas: current,
        desired_replicas: desired,
        first_seen: now,
        last_seen: now,
        removed_at: None,
        updated_at: now,
    };
    let published = (shared.stream.receiver_count() > 0).then(|| row.clone());
    match shared.store.upsert_target(row).await {
        Ok(()) => {
            memory.last_row = Some(snapshot);
            if let Some(row) = published {
                crate::api::stream::publish(&shared.stream, || crate::api::stream::StreamEvent::Target(Arc::new(row)));
            }
        }
        Err(e) => tracing::warn!(target_key = %key, error = %e, "target row not written"),
    }
}

fn emit(shared: &Shared, key: &TargetKey, input: &TargetInput, warning: bool, reason: &str, note: &str) {
    shared.events.emit(WorkloadEvent {
        key: key.clone(),
        uid: input.workload.uid.clone(),
        warning,
        reason: reason.into(),
        note: note.into(),
    });
}

/// Outcome of hooks for the record (stage name + what the hook left).
pub fn hook_record(stage: &str, outcome: HookOutcome) -> stages::HookRecord {
    stages::HookRecord { stage: stage.into(), outcome }
}
