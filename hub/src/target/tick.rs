//! One tick of a target: the stages (metrics → evaluate) → the policy → the scale call →
//! the record.
//!
//! The same tick serves the scheduler and the API's CPA calls (`runType` `api` and
//! `api_dry_run`); a dry run never scales and never touches the stabilisation state.

use std::sync::Arc;

use serde_json::json;

use scalehub_core::policy::{self, PolicyState};
use scalehub_core::spec::{Mode, TargetSpec};
use scalehub_hooks::{MetricValue, RunType};
use scalehub_store::Json;

use crate::events::WorkloadEvent;
use crate::hub::Context;
use crate::target::TargetInput;
use crate::target::record::{self, Record, Recorded, TargetState};
use crate::target::stages::Stages;
use crate::telemetry::{HookLabels, OutcomeLabels, TargetLabels};
use crate::workload::TargetKey;

/// What a loop remembers between ticks.
#[derive(Debug, Default)]
pub struct Memory {
    /// The policy state (windows and rate events), persisted with every decision.
    pub policy: PolicyState,
    /// What was last recorded.
    recorded: Recorded,
    /// Ticks in a row whose metrics or evaluation failed (counted by the loop's own ticks;
    /// a restarted hub counts afresh).
    failures: u32,
    /// Whether the `at_max` gauge has a series for this target.
    at_max: bool,
}

impl Memory {
    /// Memory that resumes from what the store said at start, for the workload whose uid is `uid`.
    pub fn restored(restored: crate::hub::Restored, uid: &Option<String>) -> Self {
        Self {
            policy: restored.policy,
            recorded: Recorded::resume(restored.row, restored.decision, uid),
            failures: 0,
            at_max: false,
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
/// Sharded, the target's owner lists it at its first tick instead.
pub async fn announce(ctx: &Arc<Context>, key: &TargetKey, input: &TargetInput, memory: &mut Memory) {
    if ctx.shard.is_some() || (input.spec.is_ok() && memory.recorded.resumed()) {
        // The row of a restarted hub's target keeps saying what it said until the first tick.
        return;
    }
    let now = (ctx.clock)();
    let (state, error) = match &input.spec {
        Err(error) => ("invalid", Some(error.clone())),
        Ok(_) => ("pending", None),
    };
    let current = Some(input.workload.replicas);
    record::target(ctx, key, &mut memory.recorded, now, TargetState { state, error, current, desired: None, input })
        .await;
}

/// A scheduled tick: the `scaler` run type.
pub async fn scheduled(ctx: &Arc<Context>, key: &TargetKey, input: &TargetInput, memory: &mut Memory) {
    let now = (ctx.clock)();
    if !ctx.hpas.synced() || !owned(ctx, key, memory, now).await {
        return;
    }
    let current = Some(input.workload.replicas);
    let spec = match &input.spec {
        Ok(spec) => spec,
        Err(error) => {
            let error = Some(error.clone());
            let t = TargetState { state: "invalid", error: error.clone(), current, desired: None, input };
            record::target(ctx, key, &mut memory.recorded, now, t).await;
            emit(ctx, key, input, true, "InvalidAnnotations", error.as_deref().unwrap_or_default());
            return;
        }
    };
    if let Some(hpa) = ctx.hpas.owner(key) {
        let error = format!("HorizontalPodAutoscaler {hpa} already scales this workload; scalehub leaves it alone");
        emit(ctx, key, input, true, "HPAConflict", &error);
        let t = TargetState { state: "conflict", error: Some(error), current, desired: None, input };
        record::target(ctx, key, &mut memory.recorded, now, t).await;
        return;
    }
    let result = decide(ctx, key, input, spec, memory, RunType::Scaler, now).await;
    let state = if result.error.is_some() {
        "error"
    } else if spec.mode == Mode::Shadow {
        "shadow"
    } else {
        "active"
    };
    let t = TargetState { state, error: result.error, current, desired: result.desired, input };
    record::target(ctx, key, &mut memory.recorded, now, t).await;
}

/// Whether this hub ticks `key` now. Unsharded, the leader ticks every target. Sharded, the
/// replica the assignment names does: it claims the target first (a compare-and-swap in the
/// store, which waits while the previous owner is live and has not released it) and takes
/// over the windows and rate events the previous owner left in the store; a replica the
/// assignment no longer names releases its claim, after its earlier writes (the same queue).
async fn owned(ctx: &Arc<Context>, key: &TargetKey, memory: &mut Memory, now: i64) -> bool {
    let Some(shard) = &ctx.shard else { return *ctx.leader.borrow() };
    let assigned = shard.assigned(key);
    match (assigned, memory.recorded.claim.take()) {
        (true, Some(fence)) => {
            memory.recorded.claim = Some(fence);
            true
        }
        (false, None) => false,
        (false, Some(fence)) => {
            match ctx.store.release_target(key, &fence, now).await {
                Ok(_) => tracing::info!(epoch = fence.epoch, "target handed over to another replica"),
                Err(e) => tracing::warn!(error = %e, "target not released; its next owner waits for this lease"),
            }
            false
        }
        (true, None) => match ctx.store.claim_target(key, &shard.me, &shard.live(), now).await {
            Ok(scalehub_store::Claim::Owned(fence)) => match stored_policy(ctx, key).await {
                Ok(policy) => {
                    memory.policy = policy;
                    tracing::info!(epoch = fence.epoch, "target claimed");
                    memory.recorded.claim = Some(fence);
                    true
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claimed target's policy state not read; claiming again next tick");
                    let _ = ctx.store.release_target(key, &fence, now).await;
                    false
                }
            },
            Ok(scalehub_store::Claim::Held) => false,
            Err(e) => {
                tracing::warn!(error = %e, "target not claimed");
                false
            }
        },
    }
}

/// The policy state the store holds for `key` (the default when there is none, or when it no
/// longer parses).
pub async fn stored_policy(ctx: &Context, key: &TargetKey) -> Result<PolicyState, scalehub_store::StoreError> {
    let row = ctx.store.policy_state(key).await?;
    Ok(row.and_then(|r| serde_json::from_value(r.state).ok()).unwrap_or_default())
}

/// Whether this hub may run `key` on demand and scale it: the leader, or sharded, the
/// target's owner.
pub fn may_scale(ctx: &Context, memory: &Memory) -> bool {
    match ctx.shard {
        None => *ctx.leader.borrow(),
        Some(_) => memory.recorded.claim.is_some() && *ctx.leader.borrow(),
    }
}

/// Runs only the metric stage (the CPA's `GET /metrics`).
pub async fn metrics_only(
    ctx: &Arc<Context>,
    key: &TargetKey,
    input: &TargetInput,
    spec: &TargetSpec,
    run_type: RunType,
) -> Result<Vec<MetricValue>, String> {
    let Some(profile) = ctx.profiles.get(&spec.profile) else {
        return Err(format!("profile {:?} is not in the hub config", spec.profile));
    };
    let current = input.workload.replicas;
    let stages = Stages { ctx, key, input, spec, profile: &profile, run_type, current };
    let mut hooks = Vec::new();
    stages.metrics(&mut hooks).await.map(|(metrics, _)| metrics).map_err(|f| f.message)
}

/// Runs the stages and the policy for one target and records the decision.
/// With `RunType::ApiDryRun` nothing is scaled and the policy state is left untouched.
pub async fn decide(
    ctx: &Arc<Context>,
    key: &TargetKey,
    input: &TargetInput,
    spec: &TargetSpec,
    memory: &mut Memory,
    run_type: RunType,
    now: i64,
) -> TickResult {
    let current = input.workload.replicas;
    let Some(profile) = ctx.profiles.get(&spec.profile) else {
        let error = format!("profile {:?} is not in the hub config", spec.profile);
        return TickResult { metrics: Vec::new(), evaluated: None, desired: None, error: Some(error) };
    };
    let mut record = Record::new(key, now, current);
    let stages = Stages { ctx, key, input, spec, profile: &profile, run_type, current };
    let scaler = run_type == RunType::Scaler;
    let mut fallback_reason = None;
    // A failed tick (fallback) has no activation value: it counts as active.
    let mut activation_milli = None;
    let raw = match stages.metrics_and_evaluation(&mut record.hooks).await {
        Ok((metrics, evaluation, usage)) => {
            record.metrics = metrics;
            record.usage = usage;
            record.evaluation = evaluation.to_record();
            activation_milli = evaluation.activation_milli();
            record.ratio = evaluation.ratio();
            let raw = evaluation.replicas();
            record.raw = Some(raw);
            if scaler {
                if profile.fallback.as_ref().is_some_and(|f| memory.failures >= f.failure_threshold) {
                    emit(ctx, key, input, false, "FallbackDeactivated", "the evaluation succeeded again");
                }
                if memory.failures > 0 {
                    ctx.metrics.failing_ticks.remove(&TargetLabels::from(key));
                }
                memory.failures = 0;
            }
            raw
        }
        Err(failure) => {
            record.error = Some(failure.message.clone());
            record.metrics = failure.metrics.clone();
            ctx.metrics.hook_errors.get_or_create(&HookLabels::of(failure.stage)).inc();
            emit(ctx, key, input, true, "FailedComputeReplicas", &failure.message);
            if scaler {
                memory.failures = memory.failures.saturating_add(1);
                ctx.metrics.failing_ticks.get_or_create(&TargetLabels::from(key)).set(i64::from(memory.failures));
            }
            let fallback = profile.fallback.as_ref().filter(|f| scaler && memory.failures >= f.failure_threshold);
            let Some(fallback) = fallback else {
                record.outcome = "error";
                let result = TickResult {
                    metrics: failure.metrics,
                    evaluated: None,
                    desired: None,
                    error: record.error.clone(),
                };
                record::decision(ctx, &mut memory.recorded, record, None, run_type).await;
                return result;
            };
            // KEDA's fallback: the failed evaluation is replaced by the fallback count, which
            // then goes through the bounds, windows and rate policies like any evaluation.
            let raw = fallback.replicas(current);
            let message = format!(
                "{} failed ticks in a row (threshold {}): fallback to {raw} replicas ({:?})",
                memory.failures, fallback.failure_threshold, fallback.behavior
            );
            if memory.failures == fallback.failure_threshold {
                emit(ctx, key, input, true, "FallbackActivated", &message);
            }
            record.evaluation =
                json!({"fallback": {"replicas": raw, "behavior": fallback.behavior, "failures": memory.failures}})
                    .into();
            record.raw = Some(raw);
            fallback_reason = Some(policy::Reason {
                step: policy::Step::Fallback,
                code: policy::ReasonCode::FallbackReplicas,
                message,
                from: current,
                to: raw,
                detail: None,
            });
            raw
        }
    };
    let active = ctx.override_for(key, now);
    let mut policy_input = spec.policy_input(now, current, raw, active.as_ref());
    policy_input.activation = spec.activation(activation_milli);
    let decision = policy::decide(&memory.policy, &policy_input);
    record.reasons = Json::of(&fallback_reason.iter().chain(decision.reasons.iter()).collect::<Vec<_>>());
    record.desired = Some(decision.desired_replicas);
    record.predicted = decision.predicted_replicas;
    if scaler {
        // A series only while the target is held at its maximum and asks for at least that.
        let at_max = decision.desired_replicas >= spec.max_replicas && raw >= spec.max_replicas;
        let labels = TargetLabels::from(key);
        if at_max {
            ctx.metrics.at_max.get_or_create(&labels).set(1);
        } else if memory.at_max {
            ctx.metrics.at_max.remove(&labels);
        }
        memory.at_max = at_max;
    }
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
                    let fence = memory.recorded.claim.clone();
                    scale(ctx, input, &mut record, &decision, next_state.as_mut(), fence, now).await;
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
    if let Some(state) = next_state {
        memory.policy = state;
    }
    let result = TickResult {
        metrics: record.metrics.clone(),
        evaluated: Some(raw),
        desired: Some(decision.desired_replicas),
        error: record.error.clone(),
    };
    let state = (!dry_run).then_some(&memory.policy);
    record::decision(ctx, &mut memory.recorded, record, state, run_type).await;
    result
}

/// Scales the target (its key is the record's) to the decision, committing the windows first.
async fn scale(
    ctx: &Arc<Context>,
    input: &TargetInput,
    record: &mut Record,
    decision: &policy::Decision,
    state: Option<&mut PolicyState>,
    fence: Option<scalehub_store::Fence>,
    now: i64,
) {
    let key = &record.key.clone();
    let target = decision.desired_replicas;
    // Commit the windows (with this tick's recommendation) before the scale call: after a
    // crash between the scale and the decision's commit, a restart must still see why the
    // target is where it is, or it could scale down before its window has passed.
    if let Some(state) = state.as_deref() {
        let row = scalehub_store::PolicyStateRow { key: key.clone(), state: json!(state), updated_at: now, fence };
        if let Err(e) = ctx.store.save_policy_state(row).await {
            record.outcome = "error";
            record.error = Some(format!("not scaled: the policy state could not be saved: {e}"));
            return;
        }
    }
    record.scaled = true;
    match ctx.scaler.scale(key, target).await {
        Ok(confirmed) => {
            record.outcome = "scaled";
            record.scale_result = Some(format!("scaled from {} to {confirmed}", decision.current_replicas));
            if let Some(state) = state {
                state.record_scale(now, decision.current_replicas, target);
            }
            ctx.metrics.scale_calls.get_or_create(&OutcomeLabels { outcome: "ok".into() }).inc();
            let why = decision.reasons.last().map(|r| r.message.clone()).unwrap_or_else(|| "evaluation".into());
            emit(ctx, key, input, false, "SuccessfulRescale", &format!("New size: {target}; reason: {why}"));
        }
        Err(e) => {
            record.outcome = "error";
            record.scale_result = Some(e.to_string());
            record.error = Some(e.to_string());
            ctx.metrics.scale_calls.get_or_create(&OutcomeLabels { outcome: "error".into() }).inc();
            emit(ctx, key, input, true, "FailedRescale", &format!("New size: {target}; error: {e}"));
        }
    }
}

fn emit(ctx: &Context, key: &TargetKey, input: &TargetInput, warning: bool, reason: &str, note: &str) {
    ctx.events.emit(WorkloadEvent {
        key: key.clone(),
        uid: input.workload.uid.clone(),
        warning,
        reason: reason.into(),
        note: note.into(),
    });
}
