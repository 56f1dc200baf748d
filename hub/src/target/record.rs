//! What a tick leaves behind: the target row when it changed, a point of the tick series,
//! a decision row when the decision differs from the last one recorded, and the policy
//! state — and the same on the bus for whoever listens.

use std::sync::Arc;

use prometheus_client::metrics::gauge::Gauge;
use serde_json::{Value, json};

use scalehub_core::policy::PolicyState;
use scalehub_hooks::{MetricValue, RunType};

use crate::bus::HubEvent;
use crate::hub::Context;
use crate::target::TargetInput;
use crate::target::stages::HookRecord;
use crate::telemetry::{HookLabels, OutcomeLabels, TargetLabels};
use crate::workload::TargetKey;

/// What a loop remembers of what it recorded, so a tick that changes nothing writes little.
#[derive(Debug, Default)]
pub struct Recorded {
    /// The target row as last written, so unchanged rows are not rewritten every tick.
    last_row: Option<RowSnapshot>,
    /// What the last recorded decision row said: a scheduled tick that says the same adds
    /// only a point to the series, not a row.
    last_decision: Option<Signature>,
    /// The target's open chunk of the tick series.
    series: scalehub_store::series::SeriesWriter,
    /// The target's current and desired replica gauges, looked up once: building their
    /// labels every tick was a measurable share of a tick.
    gauges: Option<(Gauge, Gauge)>,
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

/// A decision being assembled by a tick.
#[derive(Debug)]
pub struct Record {
    /// The target.
    pub key: TargetKey,
    /// When the tick started, unix milliseconds.
    pub time: i64,
    /// The workload's replicas when the tick started.
    pub current: i32,
    /// The metric stage's values.
    pub metrics: Vec<MetricValue>,
    /// The evaluation's replica count, before policy.
    pub raw: Option<i32>,
    /// The evaluation as recorded (the hook's document or the built-in calculation).
    pub evaluation: Value,
    /// The policy's reason chain.
    pub reasons: Value,
    /// Replicas after the policy.
    pub desired: Option<i32>,
    /// Whether the scale call was made.
    pub scaled: bool,
    /// What the scale call answered.
    pub scale_result: Option<String>,
    /// Why the tick failed, if it did.
    pub error: Option<String>,
    /// Every hook run of the tick.
    pub hooks: Vec<HookRecord>,
    /// `unchanged`, `held`, `scaled`, `error`, ...
    pub outcome: &'static str,
}

impl Record {
    /// An empty record of a tick of `key` at `time`.
    pub fn new(key: &TargetKey, time: i64, current: i32) -> Self {
        Self {
            key: key.clone(),
            time,
            current,
            metrics: Vec::new(),
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
pub async fn decision(
    ctx: &Arc<Context>,
    recorded: &mut Recorded,
    r: Record,
    state: Option<&PolicyState>,
    run_type: RunType,
) {
    ctx.metrics.decisions.get_or_create(&OutcomeLabels { outcome: r.outcome.into() }).inc();
    for h in &r.hooks {
        ctx.metrics
            .hook_duration
            .get_or_create(&HookLabels { hook: h.stage.clone() })
            .observe(h.outcome.duration_ms as f64 / 1000.0);
    }
    let dry_run = run_type == RunType::ApiDryRun;
    let series = if dry_run { None } else { series_point(recorded, &r) };
    let row = scalehub_store::DecisionRow {
        id: 0,
        key: r.key,
        time: r.time,
        run_type: run_type.as_str().into(),
        metrics: json!(r.metrics),
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
    let signature = Signature::of(&row);
    let changed = run_type != RunType::Scaler || recorded.last_decision.as_ref() != Some(&signature);
    if !dry_run {
        recorded.last_decision = Some(signature);
    }
    let policy =
        state.map(|s| scalehub_store::PolicyStateRow { key: row.key.clone(), state: json!(s), updated_at: row.time });
    let key = row.key.clone();
    let decision = changed.then(|| {
        ctx.bus.publish(|| HubEvent::Decision(Arc::new(row.clone())));
        row
    });
    if let Err(e) = ctx.store.record_tick(decision, policy, series).await {
        tracing::error!(target_key = %key, error = %e, "decision not recorded");
    }
}

/// Appends the tick to the target's open series chunk; the chunk to write, if any.
fn series_point(recorded: &mut Recorded, r: &Record) -> Option<scalehub_store::SeriesChunkRow> {
    let point = scalehub_store::TickPoint {
        time: r.time,
        current_replicas: Some(r.current),
        raw_evaluation: r.raw,
        final_replicas: r.desired,
        outcome: r.outcome.into(),
        metrics: r
            .metrics
            .iter()
            .map(|m| scalehub_store::SeriesMetric { resource: m.resource.clone(), value: m.value.clone() })
            .collect(),
    };
    match recorded.series.push(point) {
        Ok(chunk) => Some(scalehub_store::SeriesChunkRow { key: r.key.clone(), chunk: chunk.clone() }),
        Err(e) => {
            tracing::warn!(error = %e, "tick not added to the series");
            None
        }
    }
}

/// What a target row says: its state and error, and its replicas.
#[derive(Debug)]
pub struct TargetState<'a> {
    /// `pending`, `active`, `shadow`, `invalid`, `conflict` or `error`.
    pub state: &'static str,
    /// Why the target is invalid or failing.
    pub error: Option<String>,
    /// Replicas the workload has.
    pub current: Option<i32>,
    /// Replicas the last decision asked for.
    pub desired: Option<i32>,
    /// The target's input, for the row's spec and uid.
    pub input: &'a TargetInput,
}

/// Sets the target's gauges, and writes the target row when its state, error or replicas changed.
pub async fn target(ctx: &Arc<Context>, key: &TargetKey, recorded: &mut Recorded, now: i64, t: TargetState<'_>) {
    let (current_gauge, desired_gauge) = recorded.gauges.get_or_insert_with(|| {
        let labels = TargetLabels::from(key);
        (
            ctx.metrics.current_replicas.get_or_create(&labels).clone(),
            ctx.metrics.desired_replicas.get_or_create(&labels).clone(),
        )
    });
    if let Some(c) = t.current {
        current_gauge.set(c as i64);
    }
    if let Some(d) = t.desired {
        desired_gauge.set(d as i64);
    }
    let snapshot = (t.state.to_owned(), t.error.clone(), t.current, t.desired);
    if recorded.last_row.as_ref() == Some(&snapshot) {
        return;
    }
    let spec = match &t.input.spec {
        Ok(spec) => json!(spec),
        Err(_) => json!(t.input.workload.annotations),
    };
    let row = scalehub_store::TargetRow {
        key: key.clone(),
        uid: t.input.workload.uid.clone(),
        state: t.state.into(),
        spec,
        error: t.error,
        current_replicas: t.current,
        desired_replicas: t.desired,
        first_seen: now,
        last_seen: now,
        removed_at: None,
        updated_at: now,
    };
    let published = ctx.bus.listening().then(|| row.clone());
    match ctx.store.upsert_target(row).await {
        Ok(()) => {
            recorded.last_row = Some(snapshot);
            if let Some(row) = published {
                ctx.bus.publish(|| HubEvent::Target(Arc::new(row)));
            }
        }
        Err(e) => tracing::warn!(target_key = %key, error = %e, "target row not written"),
    }
}
