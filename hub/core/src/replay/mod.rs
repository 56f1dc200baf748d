//! Replay: what a candidate policy would have done over a target's recorded ticks.
//!
//! Each recorded tick gives the time, the replicas the workload had, what the evaluation asked
//! for and, for the built-in calculation, its usage ratio. The replay runs the real pipeline
//! ([`decide`]) of the candidate spec over them, tick by tick, as if the workload had followed
//! the candidate's own decisions: its policy state (windows, rate events, model histories)
//! evolves from an empty one exactly as a new target's would.
//!
//! What is replayable, and how exactly:
//! - **Bounds, windows, `behavior` rate policies, predictive models, scale to zero**: exactly,
//!   the same code as the ticks, fed the recorded evaluations.
//! - **Tolerance** (built-in calculation): from the recorded usage ratio. The load the ratio
//!   measured (`ratio × replicas then`) is spread over the candidate's replicas; inside the
//!   candidate tolerance the count is kept, else it becomes `ceil(load)`. Missing and unready
//!   pods are not recorded, so their conservative corrections are not redone.
//! - **Another built-in calculation** (a profile's, or `kubernetesMetricSpecs` given inline):
//!   from what each tick observed of its Kubernetes metrics (ready pods' usage and requests,
//!   missing and unready pods, an Object or External value), which the tick series keeps. At
//!   the recorded replica count the observation is used as it is, so the target's own
//!   calculation reproduces its recorded evaluations; at another count the same load is
//!   spread over that many ready pods. This works for hook targets too, for the Kubernetes
//!   metrics their profile gathers; a metric that was never gathered cannot be replayed.
//! - **Hook evaluations** are taken as recorded: a hook that would have answered differently
//!   at another replica count cannot be asked again.
//! - Ticks that failed are held (no evaluation, nothing changes); overrides are not replayed
//!   (the replay is about the policy); scale to zero takes the evaluation as its activation
//!   value.

use serde::{Deserialize, Serialize};

use std::time::Duration;

use crate::calc::{self, BuiltinMetric, MetricUsage};
use crate::config::{BehaviorConfig, FieldError, Issues, MetricSpec, ScaleToZeroConfig};
use crate::duration::serde_human_opt;
use crate::policy::{EpochMillis, PolicyState, Reason, decide};
use crate::predict::Predictive;
use crate::spec::{Lineage, MAX_WINDOW, TargetSpec};

/// The policy a replay tries: each setting left out keeps the target's own.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Candidate {
    /// Lower bound.
    pub min_replicas: Option<i32>,
    /// Upper bound.
    pub max_replicas: Option<i32>,
    /// Scale-up window (`30s`, `2m`).
    #[serde(default, with = "serde_human_opt")]
    pub upscale_stabilization: Option<Duration>,
    /// Scale-down window.
    #[serde(default, with = "serde_human_opt")]
    pub downscale_stabilization: Option<Duration>,
    /// HPA `behavior`: rate policies, windows and tolerances (HPA defaults for what it leaves
    /// out, as in a profile).
    pub behavior: Option<BehaviorConfig>,
    /// Predictive models around the recorded evaluations.
    pub predictive: Option<Predictive>,
    /// Scale to and from zero (with a minimum of 0).
    pub scale_to_zero: Option<ScaleToZeroConfig>,
    /// Another built-in calculation in place of the recorded evaluations.
    pub calculation: Option<CalculationCandidate>,
}

/// The built-in calculation a replay runs over the recorded observations: one profile's, or
/// metric specs given as a profile gives them.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CalculationCandidate {
    /// A profile whose `kubernetesMetricSpecs` are aimed at (it must have no evaluate hook).
    pub profile: Option<String>,
    /// Metric specs to aim at, as a profile's `kubernetesMetricSpecs`.
    pub kubernetes_metric_specs: Option<Vec<MetricSpec>>,
}

/// What a replay runs: the spec, and the built-in calculation if the candidate names one.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The target's spec with the candidate's settings.
    pub spec: TargetSpec,
    /// The metrics of another built-in calculation; `None` replays the recorded evaluations.
    pub calculation: Option<Vec<BuiltinMetric>>,
}

impl Candidate {
    /// The target's spec with this candidate's settings; every problem, with its field path
    /// under `path` (e.g. `policy`). `profile` gives a profile's built-in metrics by name, or
    /// why it has none.
    pub fn apply(
        &self,
        spec: &TargetSpec,
        path: &str,
        profile: impl Fn(&str) -> Result<Vec<BuiltinMetric>, String>,
    ) -> Result<Plan, Vec<FieldError>> {
        let mut issues = Issues::default();
        let mut out = spec.clone();
        if let Some(min) = self.min_replicas {
            if min < 0 {
                issues.push(format!("{path}.minReplicas"), "must be >= 0");
            }
            out.min_replicas = min;
        }
        if let Some(max) = self.max_replicas {
            if max < 1 {
                issues.push(format!("{path}.maxReplicas"), "must be >= 1");
            }
            out.max_replicas = max;
        }
        if out.min_replicas > out.max_replicas {
            issues.push(
                format!("{path}.minReplicas"),
                format!("{} is greater than maxReplicas {}", out.min_replicas, out.max_replicas),
            );
        }
        if let Some(behavior) = &self.behavior {
            behavior.validate(&format!("{path}.behavior"), &mut issues);
            out.rate_limits = Some(behavior.rate_limits());
            out.tolerance = behavior.tolerances();
            let seconds = |s: i32| Duration::from_secs(u64::from(s.unsigned_abs()));
            if let Some(up) = behavior.upscale_window_seconds() {
                out.upscale_stabilization = seconds(up);
            }
            if let Some(down) = behavior.downscale_window_seconds() {
                out.downscale_stabilization = seconds(down);
            }
        }
        for (key, window, slot) in [
            ("upscaleStabilization", self.upscale_stabilization, &mut out.upscale_stabilization),
            ("downscaleStabilization", self.downscale_stabilization, &mut out.downscale_stabilization),
        ] {
            if let Some(window) = window {
                if window > MAX_WINDOW {
                    issues.push(format!("{path}.{key}"), "must be at most 1h");
                }
                *slot = window;
            }
        }
        if let Some(predictive) = &self.predictive {
            predictive.validate(&format!("{path}.predictive"), &mut issues);
            out.predictive = Some(predictive.clone());
        }
        if let Some(zero) = &self.scale_to_zero {
            if zero.cooldown_period.is_some_and(|c| !(0..=86_400).contains(&c)) {
                issues.push(format!("{path}.scaleToZero.cooldownPeriod"), "must be between 0 and 86400 (seconds)");
            }
            out.scale_to_zero = Some(zero.resolve());
        }
        let calculation =
            self.calculation.as_ref().and_then(|c| c.resolve(&format!("{path}.calculation"), &profile, &mut issues));
        if issues.0.is_empty() { Ok(Plan { spec: out, calculation }) } else { Err(issues.0) }
    }
}

impl CalculationCandidate {
    fn resolve(
        &self,
        path: &str,
        profile: &impl Fn(&str) -> Result<Vec<BuiltinMetric>, String>,
        issues: &mut Issues,
    ) -> Option<Vec<BuiltinMetric>> {
        match (&self.profile, &self.kubernetes_metric_specs) {
            (Some(name), None) => match profile(name) {
                Ok(metrics) => Some(metrics),
                Err(e) => {
                    issues.push(format!("{path}.profile"), e);
                    None
                }
            },
            (None, Some(specs)) => {
                let path = format!("{path}.kubernetesMetricSpecs");
                if specs.is_empty() {
                    issues.push(path.clone(), "must list at least one metric");
                }
                let mut metrics = Vec::new();
                for (i, spec) in specs.iter().enumerate() {
                    let at = format!("{path}[{i}]");
                    let before = issues.0.len();
                    spec.validate(&at, issues);
                    match spec.builtin() {
                        Some(m) => metrics.push(m),
                        None if issues.0.len() == before => {
                            issues.push(at, "has no target the built-in calculation can aim at")
                        }
                        None => {}
                    }
                }
                Some(metrics)
            }
            _ => {
                issues.push(path.to_owned(), "needs exactly one of profile and kubernetesMetricSpecs");
                None
            }
        }
    }
}

/// Why `plan`'s calculation cannot run over `ticks`: a metric none of them observed.
pub fn unobserved(plan: &Plan, ticks: &[RecordedTick]) -> Option<String> {
    let metrics = plan.calculation.as_ref()?;
    let missing: Vec<&str> = metrics
        .iter()
        .filter(|m| !ticks.iter().any(|t| t.usage.iter().any(|u| u.key == m.key)))
        .map(|m| m.key.as_str())
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "no recorded tick in the range observed {}: a calculation can be replayed only over the \
             Kubernetes metrics the target's profile gathered, from ticks recorded with their observations",
            missing.join(", ")
        )
    })
}

/// One recorded tick.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedTick {
    /// When it ran.
    pub time: EpochMillis,
    /// The replicas the workload had.
    pub current: Option<i32>,
    /// What the evaluation asked for; `None` when the tick failed.
    pub evaluated: Option<i32>,
    /// The replicas the hub chose.
    pub chosen: Option<i32>,
    /// The built-in calculation's usage ratio, if it ran.
    pub ratio: Option<f64>,
    /// What the tick observed of each Kubernetes metric.
    pub usage: Vec<MetricUsage>,
}

/// One replayed tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayedTick {
    /// When it ran.
    pub time: EpochMillis,
    /// What the recorded evaluation asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asked: Option<i32>,
    /// What the replay's evaluation asked for (another tolerance can change it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluated: Option<i32>,
    /// The replicas the workload actually had after the tick.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<i32>,
    /// The replicas the candidate would have had after the tick.
    pub replicas: i32,
    /// The candidate's reasons, on the ticks where its replicas changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<Reason>,
}

/// How a replica curve fared over the range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Changes upwards.
    pub scale_ups: u32,
    /// Changes downwards.
    pub scale_downs: u32,
    /// Replicas × hours, each tick's replicas held until the next tick.
    pub replica_hours: f64,
    /// The most replicas.
    pub highest: i32,
    /// The fewest replicas.
    pub lowest: i32,
    /// Time with fewer replicas than the recorded evaluation asked for, in seconds.
    pub under_provisioned_seconds: f64,
    /// Time with more replicas than the recorded evaluation asked for, in seconds.
    pub over_provisioned_seconds: f64,
}

/// The replay of one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Replay {
    /// Every tick, oldest first.
    pub ticks: Vec<ReplayedTick>,
    /// The candidate's curve.
    pub replayed: Summary,
    /// What actually happened.
    pub actual: Summary,
}

/// Replays `ticks` (oldest first) under `plan`.
pub fn replay(plan: &Plan, ticks: &[RecordedTick]) -> Replay {
    let spec = &plan.spec;
    let mut state = PolicyState::default();
    let mut current = ticks.iter().find_map(|t| t.current).unwrap_or(spec.min_replicas);
    let start = current;
    let mut out = Vec::with_capacity(ticks.len());
    for tick in ticks {
        let evaluated = match &plan.calculation {
            Some(metrics) => calculate(spec, metrics, tick, current),
            None => tick.evaluated.map(|asked| reevaluate(spec, tick, asked, current)),
        };
        let mut reasons = Vec::new();
        if let Some(evaluated) = evaluated {
            let mut input = spec.policy_input(tick.time, current, evaluated, None);
            input.activation = spec.activation(Some(i64::from(evaluated) * 1000));
            let decision = decide(&state, &input);
            let mut next = decision.next_state.clone();
            if decision.wants_scale {
                next.record_scale(tick.time, current, decision.desired_replicas);
                reasons = decision.reasons;
                current = decision.desired_replicas;
            }
            state = next;
        }
        out.push(ReplayedTick {
            time: tick.time,
            asked: tick.evaluated,
            evaluated,
            actual: tick.chosen.or(tick.current),
            replicas: current,
            reasons,
        });
    }
    // Both curves start from the replicas the workload had, so a change at the first tick counts.
    let replayed = summarise(&out, start, |t| Some(t.replicas));
    let actual = summarise(&out, start, |t| t.actual);
    Replay { ticks: out, replayed, actual }
}

/// Another built-in calculation over the tick's observations, at the candidate's `current`
/// replicas; `None` when it observed none of the metrics or the calculation fails.
fn calculate(spec: &TargetSpec, metrics: &[BuiltinMetric], tick: &RecordedTick, current: i32) -> Option<i32> {
    let observed: Vec<(&str, calc::MetricGoal, calc::Observed)> = metrics
        .iter()
        .filter_map(|m| {
            let u = tick.usage.iter().find(|u| u.key == m.key)?;
            let observed =
                if tick.current == Some(current) { u.observed.clone() } else { u.observed.at_replicas(current) };
            Some((m.key.as_str(), m.goal, observed))
        })
        .collect();
    if observed.is_empty() {
        return None;
    }
    let metrics = observed.iter().map(|(key, goal, o)| (*key, *goal, o));
    calc::evaluate(current, metrics, spec.tolerance).ok().map(|c| c.replicas)
}

/// The evaluation at the candidate's `current` replicas: with a recorded usage ratio and the
/// built-in calculation, the candidate tolerance applied to the recorded load.
fn reevaluate(spec: &TargetSpec, tick: &RecordedTick, asked: i32, current: i32) -> i32 {
    let (Some(ratio), Some(then)) = (tick.ratio, tick.current) else {
        return asked;
    };
    if spec.lineage != Lineage::Hpa || current <= 0 || then <= 0 || !ratio.is_finite() {
        return asked;
    }
    let load = ratio * f64::from(then);
    let spread = load / f64::from(current);
    if spec.tolerance.within(spread) {
        current
    } else {
        // ceil(ratio × pods), with a hair of slack so 2.0000000001 stays 2.
        (load - 1e-9).ceil().clamp(0.0, f64::from(i32::MAX)) as i32
    }
}

fn summarise(ticks: &[ReplayedTick], start: i32, replicas: impl Fn(&ReplayedTick) -> Option<i32>) -> Summary {
    let mut summary = Summary { highest: i32::MIN, lowest: i32::MAX, ..Summary::default() };
    let mut previous: Option<i32> = None;

    for (i, tick) in ticks.iter().enumerate() {
        let Some(n) = replicas(tick) else { continue };
        summary.highest = summary.highest.max(n);
        summary.lowest = summary.lowest.min(n);
        match previous.or(Some(start)) {
            Some(p) if n > p => summary.scale_ups += 1,
            Some(p) if n < p => summary.scale_downs += 1,
            _ => {}
        }
        previous = Some(n);
        let Some(next) = ticks.get(i + 1) else { continue };
        let seconds = (next.time - tick.time).max(0) as f64 / 1000.0;
        summary.replica_hours += f64::from(n) * seconds / 3600.0;
        if let Some(asked) = tick.asked {
            if n < asked {
                summary.under_provisioned_seconds += seconds;
            } else if n > asked {
                summary.over_provisioned_seconds += seconds;
            }
        }
    }
    if previous.is_none() {
        summary.highest = 0;
        summary.lowest = 0;
    }
    summary
}

#[cfg(test)]
mod tests;
