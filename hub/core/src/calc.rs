//! The built-in evaluation: the HPA's replica calculation (`replica_calculator.go`, see
//! hpa-keda.md §1.2) over what one tick observed of each metric.
//!
//! The hub gathers the metrics (pods, samples, requests) and reduces each one to an
//! [`Observed`]: for a per-pod metric the ready pods' summed usage and requests and the
//! missing and unready pods, for an Object or External metric its value. The calculation
//! works on that alone, so a tick and a replay of its recorded observations run the same code:
//! the tick series keeps each tick's observations ([`MetricUsage`]), and a replay can aim them
//! at another goal ([`BuiltinMetric`]) — another profile's built-in calculation.

use serde::{Deserialize, Serialize};

use crate::tolerance::Tolerances;

/// What a per-pod metric aims for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Goal {
    /// Average utilisation of requests, in percent.
    Utilization(i64),
    /// Average usage per pod, in milli-units.
    AverageValue(i64),
}

/// What an Object or External metric aims for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TotalGoal {
    /// The metric's value, in milli-units.
    Value(i64),
    /// The metric's value per replica, in milli-units.
    AverageValue(i64),
}

/// A metric's goal, whichever kind of metric it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MetricGoal {
    /// A Resource or Pods metric.
    Pods(Goal),
    /// An Object or External metric.
    Total(TotalGoal),
}

/// One metric the built-in calculation aims at: which series it reads and its goal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuiltinMetric {
    /// The series, as [`MetricUsage::key`] names it (see `MetricSpec::usage_key`).
    pub key: String,
    /// What it aims for.
    pub goal: MetricGoal,
}

/// What a tick observed of a per-pod metric (Resource or Pods).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodUsage {
    /// Ready pods with a sample.
    pub ready: u32,
    /// Their summed usage, in milli-units.
    pub usage: i64,
    /// Their summed requests of the resource, in milli-units (0 for a Pods metric).
    pub requests: i64,
    /// The request of each running pod without a sample.
    pub missing: Vec<i64>,
    /// Pods whose samples do not count (pending, or unready for CPU).
    pub unready: u32,
    /// Their summed requests.
    pub unready_requests: i64,
}

impl PodUsage {
    /// The same load over `replicas` ready pods of the same size: what the metric would have
    /// read had the workload had that many (the recorded pods' average request each, the
    /// same total usage).
    pub fn at_replicas(&self, replicas: i32) -> PodUsage {
        if self.ready == 0 {
            return self.clone();
        }
        let n = u32::try_from(replicas).unwrap_or(0);
        let requests =
            (i128::from(self.requests) * i128::from(n) + i128::from(self.ready) / 2) / i128::from(self.ready);
        PodUsage {
            ready: n,
            usage: self.usage,
            requests: i64::try_from(requests).unwrap_or(i64::MAX),
            missing: Vec::new(),
            unready: 0,
            unready_requests: 0,
        }
    }
}

/// What a tick observed of an Object or External metric.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TotalUsage {
    /// The value (an External metric's series summed), in milli-units.
    pub value: i64,
    /// The target's Running and Ready pods.
    pub ready_pods: i32,
    /// The workload's `status.replicas`.
    pub status_replicas: i32,
}

impl TotalUsage {
    /// The same value with `replicas` ready pods.
    pub fn at_replicas(&self, replicas: i32) -> TotalUsage {
        TotalUsage { value: self.value, ready_pods: replicas, status_replicas: replicas }
    }
}

/// What a tick observed of one metric (`{"pods": {...}}` or `{"total": {...}}` in JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Observed {
    /// A Resource or Pods metric.
    Pods(PodUsage),
    /// An Object or External metric.
    Total(TotalUsage),
}

impl Observed {
    /// The one-line value a tick records for this metric when no metric hook runs:
    /// `1200m over 2 ready pods`, or `5000m` for an Object or External value.
    pub fn summary(&self) -> String {
        match self {
            Observed::Pods(p) => pods_summary(p.usage, p.ready as usize),
            Observed::Total(t) => total_summary(t.value),
        }
    }

    /// The same load at `replicas` (see [`PodUsage::at_replicas`]).
    pub fn at_replicas(&self, replicas: i32) -> Observed {
        match self {
            Observed::Pods(p) => Observed::Pods(p.at_replicas(replicas)),
            Observed::Total(t) => Observed::Total(t.at_replicas(replicas)),
        }
    }
}

/// The summary of a per-pod metric: the ready pods' summed usage and their count.
pub fn pods_summary(usage_milli: i64, ready: usize) -> String {
    format!("{usage_milli}m over {ready} ready pods")
}

/// The summary of an Object or External metric's value.
pub fn total_summary(value_milli: i64) -> String {
    format!("{value_milli}m")
}

/// One metric's observation in a tick, as the tick series keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricUsage {
    /// The series (`cpu`, `pods/requests_per_second`, `external/queue_depth`, ...).
    pub key: String,
    /// What was observed.
    pub observed: Observed,
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
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CalcError {
    /// No ready pod reported a sample.
    #[error("did not receive metrics for targeted pods")]
    NoMetrics,
    /// Utilisation needs requests.
    #[error("no requests for the pods with metrics")]
    NoRequests,
}

/// The whole built-in calculation of one tick: each metric with its goal and observation
/// (`label` names it in reasons and errors), the largest count any of them asks for.
pub fn evaluate<'a>(
    current: i32,
    metrics: impl IntoIterator<Item = (&'a str, MetricGoal, &'a Observed)>,
    tolerance: Tolerances,
) -> Result<Calculation, String> {
    let mut best: Option<Calculation> = None;
    let mut errors = Vec::new();
    for (label, goal, observed) in metrics {
        let calculation = match (goal, observed) {
            (MetricGoal::Pods(goal), Observed::Pods(usage)) => match replicas(current, usage, goal, tolerance) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(format!("{label}: {e}"));
                    continue;
                }
            },
            (MetricGoal::Total(goal), Observed::Total(usage)) => {
                let c = total_replicas(current, usage, goal, tolerance);
                Calculation { reason: format!("{label}: {}", c.reason), ..c }
            }
            _ => {
                errors.push(format!("{label}: the goal does not fit the metric's kind"));
                continue;
            }
        };
        if best.as_ref().is_none_or(|b| calculation.replicas > b.replicas) {
            best = Some(calculation);
        }
    }
    match best {
        Some(c) => Ok(c),
        None if errors.is_empty() => {
            Err("the profile has no evaluate hook and no kubernetes metric with a target".into())
        }
        None => Err(format!("built-in evaluation failed: {}", errors.join("; "))),
    }
}

/// The HPA's replica count for `current` replicas and a per-pod metric's observation, with
/// the `tolerance` of each direction (0.1 by default).
pub fn replicas(current: i32, u: &PodUsage, goal: Goal, tolerance: Tolerances) -> Result<Calculation, CalcError> {
    if u.ready == 0 {
        return Err(CalcError::NoMetrics);
    }
    let within = |r: f64| tolerance.within(r);
    let ratio_of = |usage: i64, req: i64, n: u32| -> f64 {
        match goal {
            Goal::Utilization(t) => (usage as f64 * 100.0 / req as f64) / t as f64,
            Goal::AverageValue(t) => usage as f64 / (t as f64 * f64::from(n)),
        }
    };
    if matches!(goal, Goal::Utilization(_)) && u.requests == 0 {
        return Err(CalcError::NoRequests);
    }
    let ratio = ratio_of(u.usage, u.requests, u.ready);
    let scale_up = ratio > 1.0;
    if u.missing.is_empty() && (u.unready == 0 || !scale_up) {
        if within(ratio) {
            return Ok(Calculation {
                replicas: current,
                ratio,
                reason: format!("usage ratio {ratio:.2} within tolerance {tolerance}"),
            });
        }
        let want = (ratio * f64::from(u.ready)).ceil() as i32;
        return Ok(Calculation {
            replicas: want,
            ratio,
            reason: format!("usage ratio {ratio:.2} over {} ready pods", u.ready),
        });
    }
    // Fill the gaps conservatively: missing pods count as 100% (or the goal) on a
    // scale-down and 0 on a scale-up; unready pods count as 0 on a scale-up.
    let mut usage2 = u.usage;
    let mut req2 = u.requests;
    let mut n = u.ready;
    for &r in &u.missing {
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
        n += u.unready;
        req2 += u.unready_requests;
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
    let want = (new_ratio * f64::from(n)).ceil() as i32;
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

/// The HPA's replica count for an Object or External metric: a `Value` target compares the
/// value with the target and scales the ready pods by the ratio (`ceil(ratio)` from zero
/// replicas); an `AverageValue` target divides the value by the target per replica, compared
/// over the workload's `status.replicas` (replica_calculator.go's `getUsageRatioReplicaCount`
/// and `GetObjectPerPodMetricReplicas`).
pub fn total_replicas(current: i32, u: &TotalUsage, goal: TotalGoal, tolerance: Tolerances) -> Calculation {
    let within = |r: f64| tolerance.within(r);
    let ceil = |x: f64| x.ceil().clamp(0.0, f64::from(i32::MAX)) as i32;
    let usage = u.value;
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
            let ready = u.ready_pods;
            let replicas = ceil(ratio * f64::from(ready));
            Calculation { replicas, ratio, reason: format!("value ratio {ratio:.2} over {ready} ready pods") }
        }
        TotalGoal::AverageValue(target) => {
            let status = u.status_replicas;
            let ratio = usage as f64 / (target as f64 * f64::from(status));
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
                reason: format!("value per replica ratio {ratio:.2} over {status} replicas"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tolerance::{DEFAULT_TOLERANCE, Tolerance};

    const HPA: Tolerances = Tolerances { scale_up: DEFAULT_TOLERANCE, scale_down: DEFAULT_TOLERANCE };

    /// `ready` pods each using `each` of a `request`, plus missing and unready pods of that request.
    fn pods(ready: &[i64], request: i64, missing: u32, unready: u32) -> PodUsage {
        PodUsage {
            ready: ready.len() as u32,
            usage: ready.iter().sum(),
            requests: request * ready.len() as i64,
            missing: vec![request; missing as usize],
            unready,
            unready_requests: request * i64::from(unready),
        }
    }

    fn total(value: i64, ready_pods: i32, status_replicas: i32) -> TotalUsage {
        TotalUsage { value, ready_pods, status_replicas }
    }

    #[test]
    fn utilization_above_target_scales_up_by_the_ratio() {
        // 3 pods at 90% of a 60% goal: ratio 1.5, ceil(1.5 * 3) = 5.
        let c = replicas(3, &pods(&[180, 180, 180], 200, 0, 0), Goal::Utilization(60), HPA).unwrap();
        assert_eq!(c.replicas, 5);
    }

    #[test]
    fn a_ratio_within_tolerance_keeps_the_current_count() {
        let c = replicas(2, &pods(&[130, 130], 200, 0, 0), Goal::Utilization(60), HPA).unwrap();
        assert_eq!(c.replicas, 2);
        assert!(c.reason.contains("within tolerance ±0.1"), "{}", c.reason);
    }

    #[test]
    fn each_direction_has_its_own_tolerance() {
        // 65% of a 60% goal is a ratio of 1.083: within 0.1, outside a scale-up tolerance of 0.05.
        let tight_up = Tolerances { scale_up: Tolerance::from_milli(50), ..HPA };
        let c = replicas(2, &pods(&[130, 130], 200, 0, 0), Goal::Utilization(60), tight_up).unwrap();
        assert_eq!(c.replicas, 3);
        // 48% of 60% is 0.8: a scale-down with 0.1, held with a scale-down tolerance of 0.2.
        let five = pods(&[96; 5], 200, 0, 0);
        assert_eq!(replicas(5, &five, Goal::Utilization(60), HPA).unwrap().replicas, 4);
        let loose_down = Tolerances { scale_down: Tolerance::from_milli(200), ..HPA };
        let held = replicas(5, &five, Goal::Utilization(60), loose_down).unwrap();
        assert_eq!(held.replicas, 5);
        assert!(held.reason.contains("+0.1/−0.2"), "{}", held.reason);
        // The same for an Object value: 1.08 against a scale-up tolerance of 0.05.
        assert_eq!(total_replicas(4, &total(1080, 4, 4), TotalGoal::Value(1000), HPA).replicas, 4);
        assert_eq!(total_replicas(4, &total(1080, 4, 4), TotalGoal::Value(1000), tight_up).replicas, 5);
    }

    #[test]
    fn missing_pods_count_as_full_on_scale_down() {
        // Ready pods idle at 10%, one pod missing: it counts as 100% of its request, which
        // keeps the scale-down smaller than the ready pods alone suggest.
        // usage 40 + 200 = 240 over requests 600 = 40% / 50% = 0.8 → ceil(0.8 * 3) = 3.
        let c = replicas(3, &pods(&[20, 20], 200, 1, 0), Goal::Utilization(50), HPA).unwrap();
        assert_eq!(c.replicas, 3);
        let alone = replicas(2, &pods(&[20, 20], 200, 0, 0), Goal::Utilization(50), HPA).unwrap();
        assert_eq!(alone.replicas, 1);
    }

    #[test]
    fn unready_pods_count_as_zero_on_scale_up() {
        // Alone: 100% of a 50% goal → 2 replicas; with the unready pod as 0: 200/400 = 50% → current.
        let c = replicas(2, &pods(&[200], 200, 0, 1), Goal::Utilization(50), HPA).unwrap();
        assert_eq!(c.replicas, 2);
    }

    #[test]
    fn average_value_divides_total_usage_by_the_per_pod_goal() {
        let u = PodUsage { ready: 2, usage: 1800, ..PodUsage::default() };
        assert_eq!(replicas(2, &u, Goal::AverageValue(300), HPA).unwrap().replicas, 6);
    }

    #[test]
    fn no_samples_or_no_requests_is_an_error() {
        let none = PodUsage { missing: vec![100], ..PodUsage::default() };
        assert_eq!(replicas(1, &none, Goal::AverageValue(1), HPA), Err(CalcError::NoMetrics));
        let unrequested = PodUsage { ready: 1, usage: 100, ..PodUsage::default() };
        assert_eq!(replicas(1, &unrequested, Goal::Utilization(50), HPA), Err(CalcError::NoRequests));
    }

    #[test]
    fn object_and_external_values_follow_the_hpa() {
        // Value 2500m against 1: ratio 2.5 over 3 ready pods of 4 replicas -> ceil(7.5) = 8.
        let c = total_replicas(4, &total(2500, 3, 4), TotalGoal::Value(1000), HPA);
        assert_eq!((c.replicas, c.ratio), (8, 2.5));
        // Within the tolerance: the current count.
        assert_eq!(total_replicas(4, &total(1050, 3, 4), TotalGoal::Value(1000), HPA).replicas, 4);
        // From zero replicas the ratio alone (the HPA's scale-from-zero path).
        assert_eq!(total_replicas(0, &total(2500, 0, 0), TotalGoal::Value(1000), HPA).replicas, 3);
        // AverageValue: 90 against 20 per replica over 3 status replicas -> ratio 1.5,
        // ceil(90 / 20) = 5; 62 is within tolerance of 60.
        let c = total_replicas(3, &total(90_000, 3, 3), TotalGoal::AverageValue(20_000), HPA);
        assert_eq!((c.replicas, c.ratio), (5, 1.5));
        assert_eq!(total_replicas(3, &total(62_000, 3, 3), TotalGoal::AverageValue(20_000), HPA).replicas, 3);
        // A scale-down works the same way: 10 against 20 per replica over 4 -> 1.
        assert_eq!(total_replicas(4, &total(10_000, 4, 4), TotalGoal::AverageValue(20_000), HPA).replicas, 1);
    }

    #[test]
    fn every_metric_is_evaluated_and_the_largest_count_wins() {
        let cpu = Observed::Pods(pods(&[180, 180], 200, 0, 0)); // 90% of 60%: 3
        let queue = Observed::Total(total(5000, 2, 2)); // 5 of 1 over 2 ready pods: 10
        let metrics = [
            ("cpu", MetricGoal::Pods(Goal::Utilization(60)), &cpu),
            ("external/queue", MetricGoal::Total(TotalGoal::Value(1000)), &queue),
        ];
        let c = evaluate(2, metrics, HPA).unwrap();
        assert_eq!(c.replicas, 10);
        assert!(c.reason.starts_with("external/queue: value ratio 5.00"), "{}", c.reason);
        // A metric that fails is named; one that works still decides.
        let empty = Observed::Pods(PodUsage::default());
        let metrics = [("cpu", MetricGoal::Pods(Goal::Utilization(60)), &empty)];
        let err = evaluate(2, metrics, HPA).unwrap_err();
        assert_eq!(err, "built-in evaluation failed: cpu: did not receive metrics for targeted pods");
        let metrics = [
            ("memory", MetricGoal::Pods(Goal::Utilization(60)), &empty),
            ("cpu", MetricGoal::Pods(Goal::Utilization(60)), &cpu),
        ];
        assert_eq!(evaluate(2, metrics, HPA).unwrap().replicas, 3);
        // A goal of the wrong kind for its observation is an error, not a guess.
        let metrics = [("cpu", MetricGoal::Total(TotalGoal::Value(1)), &cpu)];
        assert!(evaluate(2, metrics, HPA).unwrap_err().contains("does not fit"));
    }

    #[test]
    fn the_same_load_spreads_over_another_replica_count() {
        // 2 pods of 500m at 600m each: 1200m of 1000m requested. At 4 replicas the requests
        // double and the usage stays, so the utilisation halves.
        let recorded = pods(&[600, 600], 500, 0, 0);
        let four = recorded.at_replicas(4);
        assert_eq!((four.ready, four.usage, four.requests), (4, 1200, 2000));
        // The HPA's count follows the load, not the replicas: ceil(1200 / (0.6 × 500)) = 4.
        assert_eq!(replicas(2, &recorded, Goal::Utilization(60), HPA).unwrap().replicas, 4);
        assert_eq!(replicas(4, &four, Goal::Utilization(60), HPA).unwrap().replicas, 4);
        // Missing and unready pods are not carried over: the candidate's pods are all ready.
        let gaps = pods(&[600], 500, 1, 1).at_replicas(3);
        assert_eq!((gaps.ready, gaps.requests, gaps.missing.len(), gaps.unready), (3, 1500, 0, 0));
        // An object's value stays; its pods follow the replicas.
        assert_eq!(total(5000, 2, 2).at_replicas(5), total(5000, 5, 5));
    }
}
