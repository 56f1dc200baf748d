//! What a tick leaves behind: the target row when it changed, a point of the tick series,
//! a decision row when the decision differs from the last one recorded, and the policy
//! state — and the same on the bus for whoever listens.

use std::sync::Arc;

use prometheus_client::metrics::gauge::Gauge;
use serde_json::json;

use scalehub_core::policy::PolicyState;
use scalehub_hooks::{MetricValue, RunType};
use scalehub_store::Json;

use crate::bus::HubEvent;
use crate::hub::Context;
use crate::target::TargetInput;
use crate::target::stages::HookRecord;
use crate::telemetry::{HookLabels, OutcomeLabels, TargetLabels};
use crate::workload::TargetKey;

/// What a loop remembers of what it recorded, so a tick that changes nothing writes little.
/// A restarted hub's loop resumes it from the store, so its first tick rewrites nothing that
/// did not change while the hub was down.
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
    /// Sharded: this replica's claim on the target, carried by every policy state it writes
    /// (the store refuses them once another replica has claimed the target).
    pub(crate) claim: Option<scalehub_store::Fence>,
}

/// What the target row last said: state, error, replicas, and the spec's fingerprint.
#[derive(Debug, PartialEq)]
struct RowSnapshot {
    state: String,
    error: Option<String>,
    current: Option<i32>,
    desired: Option<i32>,
    spec: u64,
}

/// The parts of a decision that make it worth a row of its own when they change; the
/// reason chain as the fingerprint of its JSON text.
#[derive(Debug, PartialEq)]
struct Signature {
    outcome: String,
    error: Option<String>,
    current: Option<i32>,
    raw: Option<i64>,
    desired: Option<i32>,
    scaled: bool,
    reasons: u64,
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
            reasons: scalehub_store::fingerprint(row.reasons.text()),
        }
    }
}

/// The store's fingerprint of a JSON column holding `doc`.
pub fn json_fingerprint(doc: &Json) -> u64 {
    scalehub_store::fingerprint(doc.text())
}

impl Recorded {
    /// Resumes from the store's snapshots of a target's row and newest decision; a row of
    /// another workload of the same name (another uid) or of a removed target is not resumed.
    pub fn resume(
        row: Option<scalehub_store::TargetSnapshot>,
        decision: Option<scalehub_store::DecisionSnapshot>,
        uid: &Option<String>,
    ) -> Self {
        let row = row.filter(|r| !r.removed && r.uid == *uid);
        let last_decision = row.as_ref().and(decision).map(|d| Signature {
            outcome: d.outcome,
            error: d.error,
            current: d.current_replicas,
            raw: d.raw_evaluation,
            desired: d.final_replicas,
            scaled: d.scaled,
            reasons: d.reasons,
        });
        let last_row = row.map(|r| RowSnapshot {
            state: r.state,
            error: r.error,
            current: r.current_replicas,
            desired: r.desired_replicas,
            spec: r.spec,
        });
        Self { last_row, last_decision, ..Default::default() }
    }

    /// Whether a live row was resumed (the target was listed before the restart).
    pub fn resumed(&self) -> bool {
        self.last_row.is_some()
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
    pub evaluation: Json,
    /// The policy's reason chain.
    pub reasons: Json,
    /// Replicas after the policy.
    pub desired: Option<i32>,
    /// The evaluation combined with the predictions, for a predictive target.
    pub predicted: Option<i32>,
    /// The built-in calculation's usage ratio.
    pub ratio: Option<f64>,
    /// What the tick observed of each Kubernetes metric.
    pub usage: Vec<scalehub_core::calc::MetricUsage>,
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
            evaluation: Json::null(),
            reasons: Json::of(&[(); 0]),
            desired: None,
            predicted: None,
            ratio: None,
            usage: Vec::new(),
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
            .get_or_create(&HookLabels::of(&h.stage))
            .observe(h.outcome.duration_ms as f64 / 1000.0);
    }
    let dry_run = run_type == RunType::ApiDryRun;
    let series = if dry_run { None } else { series_point(recorded, &r) };
    let row = scalehub_store::DecisionRow {
        id: 0,
        key: r.key,
        time: r.time,
        run_type: run_type.as_str().into(),
        metrics: Json::of(&r.metrics),
        raw_evaluation: r.raw.map(i64::from),
        evaluation: r.evaluation,
        reasons: r.reasons,
        final_replicas: r.desired,
        current_replicas: Some(r.current),
        scaled: r.scaled,
        scale_result: r.scale_result,
        error: r.error,
        hooks: Json::of(&r.hooks),
        outcome: r.outcome.into(),
    };
    let signature = Signature::of(&row);
    let changed = run_type != RunType::Scaler || recorded.last_decision.as_ref() != Some(&signature);
    if !dry_run {
        recorded.last_decision = Some(signature);
    }
    let policy = state.map(|s| scalehub_store::PolicyStateRow {
        key: row.key.clone(),
        state: json!(s),
        updated_at: row.time,
        fence: recorded.claim.clone(),
    });
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
        predicted: r.predicted,
        ratio_ppm: r.ratio.filter(|r| r.is_finite()).map(|r| (r * 1e6).round().clamp(-9e15, 9e15) as i64),
        usage: r.usage.clone(),
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
    let snapshot = RowSnapshot {
        state: t.state.to_owned(),
        error: t.error.clone(),
        current: t.current,
        desired: t.desired,
        spec: t.input.spec_fingerprint,
    };
    if recorded.last_row.as_ref() == Some(&snapshot) {
        return;
    }
    let row = scalehub_store::TargetRow {
        key: key.clone(),
        uid: t.input.workload.uid.clone(),
        state: t.state.into(),
        spec: t.input.row_spec(),
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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::workload::{Kind, Workload};

    fn input(ctx: &Context, uid: &str) -> TargetInput {
        let obj: kube::api::DynamicObject = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": uid,
                         "annotations": {"scalehub.io/enabled": "true"}},
            "spec": {"replicas": 2},
        }))
        .unwrap();
        TargetInput::new(ctx, Arc::new(Workload::from_object(obj)))
    }

    /// One tick that keeps 2 replicas: its decision and its target row.
    async fn tick(ctx: &Arc<Context>, recorded: &mut Recorded, input: &TargetInput, now: i64) {
        let key = TargetKey::new("shop", Kind::Deployment, "web");
        let mut r = Record::new(&key, now, 2);
        r.raw = Some(2);
        r.desired = Some(2);
        r.reasons = json!([{"step": "evaluate", "message": "the evaluation asks for 2"}]).into();
        decision(ctx, recorded, r, Some(&PolicyState::default()), RunType::Scaler).await;
        let t = TargetState { state: "active", error: None, current: Some(2), desired: Some(2), input };
        target(ctx, &key, recorded, now, t).await;
        ctx.store.flush().await.unwrap();
    }

    /// What a restarted hub's loop for `key` resumes from, for a workload of `uid`.
    async fn resume(store: &scalehub_store::Store, key: &TargetKey, uid: &str) -> Recorded {
        let r = crate::hub::restore(store).await.unwrap().remove(key).unwrap();
        Recorded::resume(r.row, r.decision, &Some(uid.to_owned()))
    }

    #[tokio::test]
    async fn a_restarted_loop_rewrites_neither_its_row_nor_an_unchanged_decision() {
        let store = scalehub_store::Store::open("sqlite::memory:").await.unwrap();
        let ctx = crate::api::testing::context(store.clone(), Arc::new(|| 0), true).unwrap();
        let key = TargetKey::new("shop", Kind::Deployment, "web");
        let web = input(&ctx, "u1");
        tick(&ctx, &mut Recorded::default(), &web, 1_000).await;
        assert_eq!(store.decisions(&key, None, 10).await.unwrap().len(), 1);

        // A restart: the loop resumes from what the store says.
        let mut resumed = resume(&store, &key, "u1").await;
        assert!(resumed.resumed());
        tick(&ctx, &mut resumed, &web, 2_000).await;
        assert_eq!(store.decisions(&key, None, 10).await.unwrap().len(), 1, "an unchanged decision is not rewritten");
        assert_eq!(store.get_target(&key).await.unwrap().unwrap().updated_at, 1_000, "nor is the row");
        assert_eq!(store.ticks(&key, 0, 10_000, 100).await.unwrap().len(), 2, "the tick is in the series");

        // A workload recreated under the same name while the hub was down is a new target.
        let mut other = resume(&store, &key, "u2").await;
        assert!(!other.resumed());
        tick(&ctx, &mut other, &input(&ctx, "u2"), 3_000).await;
        assert_eq!(store.decisions(&key, None, 10).await.unwrap().len(), 2);
        assert_eq!(store.get_target(&key).await.unwrap().unwrap().uid.as_deref(), Some("u2"));
    }

    #[tokio::test]
    async fn a_changed_spec_rewrites_the_row_even_when_the_state_stays() {
        let store = scalehub_store::Store::open("sqlite::memory:").await.unwrap();
        let ctx = crate::api::testing::context(store.clone(), Arc::new(|| 0), true).unwrap();
        let key = TargetKey::new("shop", Kind::Deployment, "web");
        let mut recorded = Recorded::default();
        tick(&ctx, &mut recorded, &input(&ctx, "u1"), 1_000).await;
        let obj: kube::api::DynamicObject = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1",
                         "annotations": {"scalehub.io/enabled": "true", "scalehub.io/max-replicas": "7"}},
            "spec": {"replicas": 2},
        }))
        .unwrap();
        let edited = TargetInput::new(&ctx, Arc::new(Workload::from_object(obj)));
        tick(&ctx, &mut recorded, &edited, 2_000).await;
        let row = store.get_target(&key).await.unwrap().unwrap();
        assert_eq!(row.updated_at, 2_000);
        // The test config has no profile, so the spec is invalid and the row keeps the annotations.
        assert_eq!(row.spec.to_value()["scalehub.io/max-replicas"], "7", "{}", row.spec);
    }
}
