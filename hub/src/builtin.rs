//! Built-in evaluation: the HPA's replica calculation for a resource metric, for
//! targets whose profile has no evaluate hook (and for the demo).
//!
//! It follows `replica_calculator.go` (see the HPA reference): the usage ratio over
//! ready pods, a tolerance band, and, when pods are missing or unready, a second pass
//! that assumes the least helpful value for them so the HPA never over-reacts.

use std::collections::BTreeMap;

use scalehub_core::tolerance::Tolerances;

use crate::k8smetrics::Grouping;

/// What the built-in evaluator aims for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Goal {
    /// Average utilisation of requests, in percent.
    Utilization(i64),
    /// Average usage per pod, in milli-units.
    AverageValue(i64),
}

/// What the built-in evaluator aims for with an Object or External metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TotalGoal {
    /// The metric's value, in milli-units.
    Value(i64),
    /// The metric's value per replica, in milli-units.
    AverageValue(i64),
}

/// Result of a calculation, with the reason a user sees.
#[derive(Clone, Debug, PartialEq)]
pub struct Calculation {
    /// Replicas wanted.
    pub replicas: i32,
    /// The usage ratio against the goal (1.0 = on target).
    pub ratio: f64,
    /// Why, in words.
    pub reason: String,
}

/// Why the calculation could not be done.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CalcError {
    /// No ready pod reported a sample.
    #[error("did not receive metrics for targeted pods")]
    NoMetrics,
    /// Utilisation needs requests.
    #[error("no requests for the pods with metrics")]
    NoRequests,
}

/// The HPA's replica count for `current` replicas, grouped samples, requests (for
/// Utilization) and the `tolerance` of each direction (0.1 by default).
pub fn replicas(
    current: i32,
    g: &Grouping,
    requests: &BTreeMap<String, i64>,
    goal: Goal,
    tolerance: Tolerances,
) -> Result<Calculation, CalcError> {
    if g.ready.is_empty() {
        return Err(CalcError::NoMetrics);
    }
    let within = |r: f64| tolerance.within(r);
    let ratio_of = |usage: i64, req: i64, n: usize| -> f64 {
        match goal {
            Goal::Utilization(t) => (usage as f64 * 100.0 / req as f64) / t as f64,
            Goal::AverageValue(t) => usage as f64 / (t as f64 * n as f64),
        }
    };
    let usage: i64 = g.ready.values().map(|s| s.milli).sum();
    let req: i64 = g.ready.keys().filter_map(|p| requests.get(p)).sum();
    if matches!(goal, Goal::Utilization(_)) && req == 0 {
        return Err(CalcError::NoRequests);
    }
    let ratio = ratio_of(usage, req, g.ready.len());
    let unready = g.ignored.len();
    let scale_up = ratio > 1.0;
    if g.missing.is_empty() && (unready == 0 || !scale_up) {
        if within(ratio) {
            return Ok(Calculation {
                replicas: current,
                ratio,
                reason: format!("usage ratio {ratio:.2} within tolerance {tolerance}"),
            });
        }
        let want = (ratio * g.ready.len() as f64).ceil() as i32;
        return Ok(Calculation {
            replicas: want,
            ratio,
            reason: format!("usage ratio {ratio:.2} over {} ready pods", g.ready.len()),
        });
    }
    // Fill the gaps conservatively: missing pods count as 100% (or the goal) on a
    // scale-down and 0 on a scale-up; unready pods count as 0 on a scale-up.
    let mut usage2 = usage;
    let mut req2 = req;
    let mut n = g.ready.len();
    for pod in &g.missing {
        let r = requests.get(pod).copied().unwrap_or(0);
        n += 1;
        req2 += r;
        if !scale_up {
            usage2 += match goal {
                Goal::Utilization(t) => r * t.max(100) / 100,
                Goal::AverageValue(t) => t,
            };
        }
    }
    if scale_up {
        for pod in &g.ignored {
            n += 1;
            req2 += requests.get(pod).copied().unwrap_or(0);
        }
    }
    let new_ratio = ratio_of(usage2, req2.max(1), n);
    if within(new_ratio) || (ratio > 1.0) != (new_ratio > 1.0) {
        return Ok(Calculation {
            replicas: current,
            ratio: new_ratio,
            reason: format!(
                "usage ratio {new_ratio:.2} within tolerance {tolerance} once missing and unready pods are counted"
            ),
        });
    }
    let want = (new_ratio * n as f64).ceil() as i32;
    if (new_ratio > 1.0 && want < current) || (new_ratio < 1.0 && want > current) {
        return Ok(Calculation {
            replicas: current,
            ratio: new_ratio,
            reason: "change would go against the usage ratio".into(),
        });
    }
    Ok(Calculation {
        replicas: want,
        ratio: new_ratio,
        reason: format!("usage ratio {new_ratio:.2} over {n} pods (missing and unready counted conservatively)"),
    })
}

/// The HPA's replica count for an Object or External metric whose value is `usage` (milli):
/// a `Value` target compares the value with the target and scales the ready pods by the ratio
/// (`ceil(ratio)` from zero replicas); an `AverageValue` target divides the value by the
/// target per replica, compared over the workload's `status_replicas` (replica_calculator.go's
/// `getUsageRatioReplicaCount` and `GetObjectPerPodMetricReplicas`).
pub fn total_replicas(
    current: i32,
    status_replicas: i32,
    ready_pods: i32,
    usage: i64,
    goal: TotalGoal,
    tolerance: Tolerances,
) -> Calculation {
    let within = |r: f64| tolerance.within(r);
    let ceil = |x: f64| x.ceil().clamp(0.0, f64::from(i32::MAX)) as i32;
    match goal {
        TotalGoal::Value(target) => {
            let ratio = usage as f64 / target as f64;
            if current == 0 {
                let replicas = ceil(ratio);
                return Calculation { replicas, ratio, reason: format!("value ratio {ratio:.2}, from zero replicas") };
            }
            if within(ratio) {
                return Calculation {
                    replicas: current,
                    ratio,
                    reason: format!("value ratio {ratio:.2} within tolerance {tolerance}"),
                };
            }
            let replicas = ceil(ratio * f64::from(ready_pods));
            Calculation { replicas, ratio, reason: format!("value ratio {ratio:.2} over {ready_pods} ready pods") }
        }
        TotalGoal::AverageValue(target) => {
            let ratio = usage as f64 / (target as f64 * f64::from(status_replicas));
            if within(ratio) {
                return Calculation {
                    replicas: current,
                    ratio,
                    reason: format!("value per replica ratio {ratio:.2} within tolerance {tolerance}"),
                };
            }
            let replicas = ceil(usage as f64 / target as f64);
            Calculation {
                replicas,
                ratio,
                reason: format!("value per replica ratio {ratio:.2} over {status_replicas} replicas"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8smetrics::Sample;
    use scalehub_core::tolerance::{DEFAULT_TOLERANCE, Tolerance};

    const HPA: Tolerances = Tolerances { scale_up: DEFAULT_TOLERANCE, scale_down: DEFAULT_TOLERANCE };

    #[test]
    fn object_and_external_values_follow_the_hpa() {
        // Value 2500m against 1: ratio 2.5 over 3 ready pods of 4 replicas -> ceil(7.5) = 8.
        let c = total_replicas(4, 4, 3, 2500, TotalGoal::Value(1000), HPA);
        assert_eq!((c.replicas, c.ratio), (8, 2.5));
        // Within the tolerance: the current count.
        assert_eq!(total_replicas(4, 4, 3, 1050, TotalGoal::Value(1000), HPA).replicas, 4);
        // From zero replicas the ratio alone (the HPA's scale-from-zero path).
        assert_eq!(total_replicas(0, 0, 0, 2500, TotalGoal::Value(1000), HPA).replicas, 3);
        // AverageValue: 90 against 20 per replica over 3 status replicas -> ratio 1.5,
        // ceil(90 / 20) = 5; 62 is within tolerance of 60.
        let c = total_replicas(3, 3, 3, 90_000, TotalGoal::AverageValue(20_000), HPA);
        assert_eq!((c.replicas, c.ratio), (5, 1.5));
        assert_eq!(total_replicas(3, 3, 3, 62_000, TotalGoal::AverageValue(20_000), HPA).replicas, 3);
        // A scale-down works the same way: 10 against 20 per replica over 4 -> 1.
        assert_eq!(total_replicas(4, 4, 4, 10_000, TotalGoal::AverageValue(20_000), HPA).replicas, 1);
    }
    use std::time::Duration;

    fn grouping(ready: &[(&str, i64)], missing: &[&str], ignored: &[&str]) -> Grouping {
        let ts: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        Grouping {
            ready: ready
                .iter()
                .map(|(p, m)| (p.to_string(), Sample { milli: *m, timestamp: ts, window: Duration::from_secs(30) }))
                .collect(),
            missing: missing.iter().map(|s| s.to_string()).collect(),
            ignored: ignored.iter().map(|s| s.to_string()).collect(),
            total: ready.len() + missing.len() + ignored.len(),
        }
    }

    fn reqs(pods: &[&str], milli: i64) -> BTreeMap<String, i64> {
        pods.iter().map(|p| (p.to_string(), milli)).collect()
    }

    #[test]
    fn utilization_above_target_scales_up_by_the_ratio() {
        // 3 pods at 90% of a 60% goal: ratio 1.5, ceil(1.5 * 3) = 5.
        let g = grouping(&[("a", 180), ("b", 180), ("c", 180)], &[], &[]);
        let c = replicas(3, &g, &reqs(&["a", "b", "c"], 200), Goal::Utilization(60), HPA).unwrap();
        assert_eq!(c.replicas, 5);
    }

    #[test]
    fn a_ratio_within_tolerance_keeps_the_current_count() {
        let g = grouping(&[("a", 130), ("b", 130)], &[], &[]);
        let c = replicas(2, &g, &reqs(&["a", "b"], 200), Goal::Utilization(60), HPA).unwrap();
        assert_eq!(c.replicas, 2);
        assert!(c.reason.contains("within tolerance ±0.1"), "{}", c.reason);
    }

    #[test]
    fn each_direction_has_its_own_tolerance() {
        // 65% of a 60% goal is a ratio of 1.083: within 0.1, outside a scale-up tolerance of 0.05.
        let tight_up = Tolerances { scale_up: Tolerance::from_milli(50), ..HPA };
        let g = grouping(&[("a", 130), ("b", 130)], &[], &[]);
        let c = replicas(2, &g, &reqs(&["a", "b"], 200), Goal::Utilization(60), tight_up).unwrap();
        assert_eq!(c.replicas, 3);
        // 48% of 60% is 0.8: a scale-down with 0.1, held with a scale-down tolerance of 0.2.
        let g = grouping(&[("a", 96), ("b", 96), ("c", 96), ("d", 96), ("e", 96)], &[], &[]);
        let five = reqs(&["a", "b", "c", "d", "e"], 200);
        assert_eq!(replicas(5, &g, &five, Goal::Utilization(60), HPA).unwrap().replicas, 4);
        let loose_down = Tolerances { scale_down: Tolerance::from_milli(200), ..HPA };
        let held = replicas(5, &g, &five, Goal::Utilization(60), loose_down).unwrap();
        assert_eq!(held.replicas, 5);
        assert!(held.reason.contains("+0.1/−0.2"), "{}", held.reason);
        // The same for an Object value: 1.08 against a scale-up tolerance of 0.05.
        assert_eq!(total_replicas(4, 4, 4, 1080, TotalGoal::Value(1000), HPA).replicas, 4);
        assert_eq!(total_replicas(4, 4, 4, 1080, TotalGoal::Value(1000), tight_up).replicas, 5);
    }

    #[test]
    fn missing_pods_count_as_full_on_scale_down() {
        // Ready pods idle at 10%, one pod missing: it counts as 100% of its request, which
        // keeps the scale-down smaller than the ready pods alone suggest.
        let g = grouping(&[("a", 20), ("b", 20)], &["c"], &[]);
        let c = replicas(3, &g, &reqs(&["a", "b", "c"], 200), Goal::Utilization(50), HPA).unwrap();
        // usage 40 + 200 = 240 over requests 600 = 40% / 50% = 0.8 → ceil(0.8 * 3) = 3 → within? 0.8 is outside 0.1.
        assert_eq!(c.replicas, 3);
        let alone = replicas(
            2,
            &grouping(&[("a", 20), ("b", 20)], &[], &[]),
            &reqs(&["a", "b"], 200),
            Goal::Utilization(50),
            HPA,
        )
        .unwrap();
        assert_eq!(alone.replicas, 1);
    }

    #[test]
    fn unready_pods_count_as_zero_on_scale_up() {
        let g = grouping(&[("a", 200)], &[], &["b"]);
        // Alone: 100% of a 50% goal → 2 replicas; with b as 0: 200/400 = 50% → within tolerance → current.
        let c = replicas(2, &g, &reqs(&["a", "b"], 200), Goal::Utilization(50), HPA).unwrap();
        assert_eq!(c.replicas, 2);
    }

    #[test]
    fn average_value_divides_total_usage_by_the_per_pod_goal() {
        let g = grouping(&[("a", 900), ("b", 900)], &[], &[]);
        let c = replicas(2, &g, &BTreeMap::new(), Goal::AverageValue(300), HPA).unwrap();
        assert_eq!(c.replicas, 6);
    }

    #[test]
    fn no_samples_is_an_error() {
        let g = grouping(&[], &["a"], &[]);
        assert_eq!(replicas(1, &g, &BTreeMap::new(), Goal::AverageValue(1), HPA), Err(CalcError::NoMetrics));
    }
}
