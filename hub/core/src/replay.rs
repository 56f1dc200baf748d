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
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::spec::SpecDefaults;
    use crate::tolerance::{Tolerance, Tolerances};

    fn spec(defaults: SpecDefaults) -> Plan {
        let annotations = BTreeMap::from([("scalehub.io/enabled".to_owned(), "true".to_owned())]);
        let spec =
            TargetSpec::from_annotations(&annotations, &BTreeMap::from([("default".to_owned(), defaults)])).unwrap();
        Plan { spec, calculation: None }
    }

    fn no_profiles(name: &str) -> Result<Vec<BuiltinMetric>, String> {
        Err(format!("no profile {name:?}"))
    }

    /// Ticks every 15 s: (current, evaluated, chosen).
    fn ticks(rows: &[(i32, Option<i32>, i32)]) -> Vec<RecordedTick> {
        rows.iter()
            .enumerate()
            .map(|(i, &(current, evaluated, chosen))| RecordedTick {
                time: i as i64 * 15_000,
                current: Some(current),
                evaluated,
                chosen: Some(chosen),
                ratio: None,
                usage: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn a_shorter_window_follows_the_evaluation_down_sooner() {
        // Recorded under a 5-minute window: the load fell to 2 at t = 0 and the target held 6.
        let recorded = ticks(&vec![(6, Some(2), 6); 30]);
        let held = replay(&spec(SpecDefaults::hpa()), &recorded);
        assert!(held.ticks[..20].iter().all(|t| t.replicas == 6), "the 5-minute window holds");
        assert_eq!(held.ticks[20].replicas, 2, "t = 300 s");
        let quick = SpecDefaults { downscale_stabilization: Duration::from_secs(60), ..SpecDefaults::hpa() };
        let replay = replay(&spec(quick), &recorded);
        let first_down = replay.ticks.iter().position(|t| t.replicas == 2).unwrap();
        assert_eq!(first_down, 4, "t = 60 s");
        assert_eq!(replay.ticks[first_down].reasons, Vec::new(), "nothing held it at that tick");
        // The summary: one scale-down each, fewer replica-hours and less over-provisioning.
        assert_eq!((replay.replayed.scale_downs, replay.actual.scale_downs), (1, 0));
        assert!(replay.replayed.replica_hours < replay.actual.replica_hours);
        assert_eq!(replay.actual.over_provisioned_seconds, 29.0 * 15.0);
        assert_eq!(replay.replayed.over_provisioned_seconds, 4.0 * 15.0);
        assert_eq!((replay.replayed.highest, replay.replayed.lowest), (6, 2));
    }

    #[test]
    fn rate_policies_and_bounds_shape_the_replayed_curve_with_reasons() {
        let recorded = ticks(&[(2, Some(2), 2), (2, Some(10), 10), (10, Some(10), 10), (10, Some(10), 10)]);
        let capped = SpecDefaults { max_replicas: 8, ..SpecDefaults::cpa() };
        let replay = replay(&spec(capped), &recorded);
        let replicas: Vec<i32> = replay.ticks.iter().map(|t| t.replicas).collect();
        assert_eq!(replicas, [2, 8, 8, 8]);
        assert_eq!(replay.ticks[1].reasons[0].code, crate::policy::ReasonCode::TooManyReplicas);
        assert_eq!(replay.replayed.under_provisioned_seconds, 30.0, "8 of 10 from 15 s to 45 s");
    }

    #[test]
    fn failed_ticks_hold_and_change_nothing() {
        let recorded = ticks(&[(3, Some(3), 3), (3, None, 3), (3, Some(5), 5)]);
        let replay = replay(&spec(SpecDefaults::cpa()), &recorded);
        assert_eq!(replay.ticks[1].evaluated, None);
        assert_eq!(replay.ticks.iter().map(|t| t.replicas).collect::<Vec<_>>(), [3, 3, 5]);
    }

    #[test]
    fn another_tolerance_is_applied_to_the_recorded_load() {
        // The built-in calculation measured a ratio of 1.15 at 4 replicas: a load of 4.6, so 5.
        let tick = |i: i64| RecordedTick {
            time: i * 15_000,
            current: Some(4),
            evaluated: Some(5),
            chosen: Some(5),
            ratio: Some(1.15),
            usage: Vec::new(),
        };
        let recorded: Vec<RecordedTick> = (0..3).map(tick).collect();
        let defaults = SpecDefaults { downscale_stabilization: Duration::ZERO, ..SpecDefaults::hpa() };
        assert_eq!(replay(&spec(defaults.clone()), &recorded).ticks[0].replicas, 5);
        // With a scale-up tolerance of 0.2, 1.15 is within it: the candidate keeps 4.
        let tolerant = Tolerances { scale_up: Tolerance::from_milli(200), ..Tolerances::default() };
        let replay = replay(&spec(SpecDefaults { tolerance: tolerant, ..defaults }), &recorded);
        assert!(replay.ticks.iter().all(|t| t.replicas == 4 && t.evaluated == Some(4)), "{:?}", replay.ticks);
        assert_eq!(replay.ticks[0].asked, Some(5));
    }

    #[test]
    fn a_candidate_overrides_what_it_sets_and_names_every_bad_field() {
        let base = spec(SpecDefaults::hpa());
        let candidate: Candidate = serde_json::from_value(serde_json::json!({
            "maxReplicas": 20,
            "downscaleStabilization": "1m",
            "behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 15}], "tolerance": 0.05}},
        }))
        .unwrap();
        let applied = candidate.apply(&base.spec, "policy", no_profiles).unwrap();
        assert_eq!(applied.calculation, None);
        let plan = applied.clone();
        let applied = applied.spec;
        assert_eq!((applied.min_replicas, applied.max_replicas), (1, 20));
        assert_eq!(applied.downscale_stabilization, Duration::from_secs(60));
        assert_eq!(applied.tolerance.scale_up, Tolerance::from_milli(50));
        assert_eq!(applied.rate_limits.as_ref().unwrap().scale_up.policies[0].value, 1);
        // One pod per 15 s: the replay climbs 2 → 3 → 4 where the target jumped to 10.
        let recorded = ticks(&[(2, Some(2), 2), (2, Some(10), 10), (10, Some(10), 10), (10, Some(10), 10)]);
        let replicas: Vec<i32> = replay(&plan, &recorded).ticks.iter().map(|t| t.replicas).collect();
        assert_eq!(replicas, [2, 3, 4, 5]);

        let bad: Candidate = serde_json::from_value(serde_json::json!({
            "minReplicas": 5, "maxReplicas": 3, "upscaleStabilization": "2h",
            "behavior": {"scaleDown": {"policies": []}},
        }))
        .unwrap();
        let errors = bad.apply(&base.spec, "policy", no_profiles).unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["policy.minReplicas", "policy.behavior.scaleDown.policies", "policy.upscaleStabilization"],
            "{errors:?}"
        );
        assert!(serde_json::from_value::<Candidate>(serde_json::json!({"maxReplica": 3})).is_err());
    }

    /// Ticks every 15 s of a target at `current` replicas whose pods (500m requested each)
    /// use `usage` in all, evaluated (by whatever ran) as `evaluated`.
    fn observed(rows: &[(i32, i64, i32)]) -> Vec<RecordedTick> {
        use crate::calc::{Observed, PodUsage};
        rows.iter()
            .enumerate()
            .map(|(i, &(current, usage, evaluated))| RecordedTick {
                time: i as i64 * 15_000,
                current: Some(current),
                evaluated: Some(evaluated),
                chosen: Some(evaluated),
                ratio: None,
                usage: vec![MetricUsage {
                    key: "cpu".into(),
                    observed: Observed::Pods(PodUsage {
                        ready: current as u32,
                        usage,
                        requests: 500 * i64::from(current),
                        ..PodUsage::default()
                    }),
                }],
            })
            .collect()
    }

    fn cpu(percent: i32) -> serde_json::Value {
        serde_json::json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": percent}}})
    }

    #[test]
    fn another_goal_runs_the_built_in_calculation_over_the_recorded_usage() {
        // 650m over 2 pods of 500m: 65% against the target's 60% is within tolerance, so 2.
        // A hook-less profile aiming at 50% would have asked for ceil(1.3 × 2) = 3, and at 3
        // the same 650m is 43% of 1500m: a ratio of 0.87, still 3.
        let recorded = observed(&[(2, 650, 2); 4]);
        let base = spec(SpecDefaults { downscale_stabilization: Duration::ZERO, ..SpecDefaults::hpa() });
        let candidate: Candidate =
            serde_json::from_value(serde_json::json!({"calculation": {"kubernetesMetricSpecs": [cpu(50)]}})).unwrap();
        let plan = candidate.apply(&base.spec, "policy", no_profiles).unwrap();
        assert_eq!(unobserved(&plan, &recorded), None);
        let replay = replay(&plan, &recorded);
        let curve: Vec<(Option<i32>, i32)> = replay.ticks.iter().map(|t| (t.evaluated, t.replicas)).collect();
        assert_eq!(curve, [(Some(3), 3), (Some(3), 3), (Some(3), 3), (Some(3), 3)]);
        assert!(replay.ticks.iter().all(|t| t.asked == Some(2)), "the recorded evaluation stays beside it");
        assert_eq!(replay.replayed.scale_ups, 1);

        // The target's own goal reproduces what was recorded, whatever evaluated it then (a hook
        // answered 7 here): the observations, not the evaluation, are replayed.
        let by_hook = observed(&[(2, 650, 7), (2, 650, 7)]);
        let own: Candidate = serde_json::from_value(serde_json::json!({"calculation": {"profile": "cpu-60"}})).unwrap();
        let profiles = |name: &str| match name {
            "cpu-60" => Ok(vec![MetricSpec::builtin(&serde_json::from_value(cpu(60)).unwrap()).unwrap()]),
            _ => Err(format!("no profile {name:?}")),
        };
        let plan = own.apply(&base.spec, "policy", profiles).unwrap();
        assert!(replay_of(&plan, &by_hook).iter().all(|&(evaluated, replicas)| evaluated == Some(2) && replicas == 2));
    }

    fn replay_of(plan: &Plan, ticks: &[RecordedTick]) -> Vec<(Option<i32>, i32)> {
        replay(plan, ticks).ticks.iter().map(|t| (t.evaluated, t.replicas)).collect()
    }

    #[test]
    fn a_calculation_that_cannot_run_says_why() {
        let base = spec(SpecDefaults::hpa()).spec;
        let errors = |body: serde_json::Value| {
            let candidate: Candidate = serde_json::from_value(serde_json::json!({"calculation": body})).unwrap();
            let errors = candidate.apply(&base, "policy", no_profiles).unwrap_err();
            errors.iter().map(|e| format!("{}: {}", e.path, e.message)).collect::<Vec<_>>()
        };
        assert_eq!(
            errors(serde_json::json!({})),
            ["policy.calculation: needs exactly one of profile and kubernetesMetricSpecs"]
        );
        assert_eq!(errors(serde_json::json!({"profile": "web"})), ["policy.calculation.profile: no profile \"web\""]);
        assert_eq!(
            errors(serde_json::json!({"kubernetesMetricSpecs": []})),
            ["policy.calculation.kubernetesMetricSpecs: must list at least one metric"]
        );
        let no_target =
            serde_json::json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}});
        let bad_type = serde_json::json!({"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"type": "Value", "value": "1"}}});
        assert_eq!(
            errors(serde_json::json!({"kubernetesMetricSpecs": [cpu(50), no_target, bad_type]})),
            [
                "policy.calculation.kubernetesMetricSpecs[1]: has no target the built-in calculation can aim at",
                "policy.calculation.kubernetesMetricSpecs[2].pods.target.type: must be AverageValue for a Pods metric",
            ]
        );
        // A metric the ticks never observed cannot be replayed; ticks without it hold.
        let memory = serde_json::json!({"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}}});
        let candidate: Candidate =
            serde_json::from_value(serde_json::json!({"calculation": {"kubernetesMetricSpecs": [memory]}})).unwrap();
        let plan = candidate.apply(&base, "policy", no_profiles).unwrap();
        let recorded = observed(&[(2, 650, 2), (2, 650, 2)]);
        assert!(unobserved(&plan, &recorded).unwrap().starts_with("no recorded tick in the range observed memory"));
        assert_eq!(replay_of(&plan, &recorded), [(None, 2), (None, 2)]);
    }
}
