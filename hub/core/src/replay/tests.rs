//! The replay's tests: candidates, curves and summaries over recorded ticks.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::spec::SpecDefaults;
use crate::tolerance::{Tolerance, Tolerances};

fn spec(defaults: SpecDefaults) -> Plan {
    let annotations = BTreeMap::from([("scalehub.io/enabled".to_owned(), "true".to_owned())]);
    let spec = TargetSpec::from_annotations(&annotations, &BTreeMap::from([("default".to_owned(), defaults)])).unwrap();
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
