//! Kubernetes metrics for hooks: `kubernetesMetricSpecs` read from metrics.k8s.io and
//! custom.metrics.k8s.io, grouped with the HPA's pod rules, in the CPA's JSON shape.
//!
//! The shape is k8shorizmetrics v3's (snake_case keys), which the CPA passes to its
//! metric hooks as `kubernetesMetrics`, so CPA scripts that read it run unchanged.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use crate::podmetrics::{PodMetricsCache, PodUsages};
use crate::watch::pods::{ConditionStatus, Phase};
use crate::watch::{PodInfo, PodSelector};
use jiff::Timestamp;
use serde_json::{Value, json};

use scalehub_core::calc::{BuiltinMetric, Observed, PodUsage, TotalUsage};
use scalehub_core::quantity::parse_milli;

mod total;
use total::total;

/// Why Kubernetes metrics could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The metrics API call failed.
    #[error("metrics api request failed: {0}")]
    Request(#[source] kube::Error),
    /// The metrics API answered something unreadable.
    #[error("metrics api returned an unreadable {what}: {detail}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// The problem.
        detail: String,
    },
    /// No pod of the target had a usable sample.
    #[error("did not receive metrics for any ready pod of the target")]
    NoMetrics,
    /// A Utilization target needs requests on every container.
    #[error("missing request for {resource} on container {container} of pod {pod}")]
    MissingRequest {
        /// cpu or memory.
        resource: String,
        /// Pod name.
        pod: String,
        /// Container name.
        container: String,
    },
    /// The spec asks for something scalehub does not gather.
    #[error("unsupported metric spec: {0}")]
    Unsupported(String),
    /// The metrics API did not answer in time.
    #[error("metrics api request timed out after {0:?}")]
    Timeout(Duration),
    /// The namespace's shared read failed a moment ago (see `podmetrics`).
    #[error("{0}")]
    Cached(String),
}

/// One pod's sample from a metrics API.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Usage in milli-units.
    pub milli: i64,
    /// When it was measured.
    pub timestamp: Timestamp,
    /// Over which window.
    pub window: Duration,
}

/// The HPA's readiness rules for CPU, with the CPA's defaults (300 s and 30 s).
#[derive(Clone, Copy, Debug)]
pub struct Readiness {
    /// Within this time from pod start, a CPU sample counts only if the pod is ready and the
    /// sample was taken a full window after it became ready.
    pub cpu_initialization_period: Duration,
    /// After the initialisation period, an unready pod is ignored only if it never became
    /// ready within this delay of its start.
    pub initial_readiness_delay: Duration,
}

impl Default for Readiness {
    fn default() -> Self {
        Self { cpu_initialization_period: Duration::from_secs(300), initial_readiness_delay: Duration::from_secs(30) }
    }
}

/// Pods split the way the HPA splits them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Grouping {
    /// Samples of pods that count.
    pub ready: BTreeMap<String, Sample>,
    /// Pending pods, and for CPU unready or initialising ones: their samples are dropped.
    pub ignored: BTreeSet<String>,
    /// Running pods without a sample.
    pub missing: BTreeSet<String>,
    /// Every pod of the target, including deleted and failed ones.
    pub total: usize,
}

/// Groups pods and their samples like the HPA's `groupPods` (deleted and failed pods are skipped).
pub fn group_pods(
    pods: &[Arc<PodInfo>],
    samples: &HashMap<String, Sample>,
    cpu: bool,
    readiness: Readiness,
    now: Timestamp,
) -> Grouping {
    let mut g = Grouping { total: pods.len(), ..Default::default() };
    for pod in pods {
        let name = pod.name.to_string();
        if pod.deleting || pod.phase == Phase::Failed {
            continue;
        }
        if pod.phase == Phase::Pending {
            g.ignored.insert(name);
            continue;
        }
        let Some(sample) = samples.get(&name) else {
            g.missing.insert(name);
            continue;
        };
        if cpu {
            let unready = match (pod.ready, pod.start_time) {
                (Some(cond), Some(start)) => {
                    let transition = cond.last_transition.unwrap_or(start);
                    let init_end = start + readiness.cpu_initialization_period;
                    let not_ready = cond.status == ConditionStatus::False;
                    if init_end > now {
                        let window_after_ready = transition + sample.window;
                        not_ready || sample.timestamp < window_after_ready
                    } else {
                        not_ready && start + readiness.initial_readiness_delay > transition
                    }
                }
                _ => true,
            };
            if unready {
                g.ignored.insert(name);
                continue;
            }
        }
        g.ready.insert(name, sample.clone());
    }
    g
}

/// Sum of container requests of `resource` per pod, in milli-units; an error names the first
/// container without one, as the HPA requires requests for Utilization targets.
pub fn requests(pods: &[Arc<PodInfo>], resource: &str) -> Result<BTreeMap<String, i64>, MetricsError> {
    let mut out = BTreeMap::new();
    for pod in pods {
        let mut sum = 0i64;
        for c in pod.containers.iter() {
            match c.requests.iter().find(|(r, _)| &**r == resource) {
                None => {
                    return Err(MetricsError::MissingRequest {
                        resource: resource.into(),
                        pod: pod.name.to_string(),
                        container: c.name.to_string(),
                    });
                }
                Some((_, None)) => {
                    return Err(MetricsError::Malformed {
                        what: "request",
                        detail: format!("{resource} of container {} of pod {}", c.name, pod.name),
                    });
                }
                Some((_, Some(milli))) => sum += milli,
            }
        }
        out.insert(pod.name.to_string(), sum);
    }
    Ok(out)
}

/// Parses the simple Go durations metrics-server writes for `window` (`30s`, `1m0s`, `15.5s`).
pub(crate) fn parse_go_duration(s: &str) -> Duration {
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push('s');
            chars.next();
        }
        let v: f64 = num.parse().unwrap_or(0.0);
        num.clear();
        total += match unit.as_str() {
            "h" => v * 3600.0,
            "m" => v * 60.0,
            "s" => v,
            "ms" => v / 1000.0,
            _ => 0.0,
        };
    }
    Duration::from_secs_f64(total.max(0.0))
}

/// The CPA's `resource` (or `pods`) block for one spec.
pub fn cpa_block(g: &Grouping, requests: Option<&BTreeMap<String, i64>>, now: Timestamp) -> Value {
    let info: serde_json::Map<String, Value> = g
        .ready
        .iter()
        .map(|(pod, s)| {
            (
                pod.clone(),
                json!({"Timestamp": s.timestamp.to_string(), "Window": s.window.as_nanos() as u64, "Value": s.milli}),
            )
        })
        .collect();
    let set = |s: &BTreeSet<String>| -> Value {
        s.iter().map(|p| (p.clone(), json!({}))).collect::<serde_json::Map<_, _>>().into()
    };
    let mut block = json!({
        "pod_metrics_info": info,
        "ready_pod_count": g.ready.len(),
        "ignored_pods": set(&g.ignored),
        "missing_pods": set(&g.missing),
        "total_pods": g.total,
        "timestamp": now.to_string(),
    });
    if let Some(req) = requests {
        block["requests"] = json!(req);
    }
    block
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn pod(name: &str, phase: &str, start: Option<&str>, ready: Option<(&str, &str)>) -> Arc<PodInfo> {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.status = Some(PodStatus {
            phase: Some(phase.into()),
            start_time: start.map(|s| Time(ts(s))),
            conditions: ready.map(|(status, at)| {
                vec![PodCondition {
                    type_: "Ready".into(),
                    status: status.into(),
                    last_transition_time: Some(Time(ts(at))),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        });
        Arc::new(PodInfo::from_pod(&p))
    }

    fn sample(at: &str) -> Sample {
        Sample { milli: 100, timestamp: ts(at), window: Duration::from_secs(30) }
    }

    #[test]
    fn pods_are_grouped_with_the_hpa_cpu_rules() {
        let now = ts("2026-01-01T01:00:00Z");
        let pods = vec![
            pod("old-ready", "Running", Some("2026-01-01T00:00:00Z"), Some(("True", "2026-01-01T00:00:10Z"))),
            pod("pending", "Pending", None, None),
            pod("failed", "Failed", Some("2026-01-01T00:00:00Z"), None),
            pod("no-sample", "Running", Some("2026-01-01T00:00:00Z"), Some(("True", "2026-01-01T00:00:10Z"))),
            // Started 1 min ago, ready 40 s ago, sample taken 20 s after ready: within one window, ignored.
            pod("fresh", "Running", Some("2026-01-01T00:59:00Z"), Some(("True", "2026-01-01T00:59:20Z"))),
            // Old, unready and never ready within 30 s of start: ignored.
            pod("never-ready", "Running", Some("2026-01-01T00:00:00Z"), Some(("False", "2026-01-01T00:00:05Z"))),
            // Old, unready now but became unready late: it counts.
            pod("flapped", "Running", Some("2026-01-01T00:00:00Z"), Some(("False", "2026-01-01T00:50:00Z"))),
        ];
        let samples: HashMap<String, Sample> = [
            ("old-ready", sample("2026-01-01T00:59:50Z")),
            ("fresh", sample("2026-01-01T00:59:40Z")),
            ("never-ready", sample("2026-01-01T00:59:50Z")),
            ("flapped", sample("2026-01-01T00:59:50Z")),
            ("pending", sample("2026-01-01T00:59:50Z")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let g = group_pods(&pods, &samples, true, Readiness::default(), now);
        assert_eq!(g.ready.keys().collect::<Vec<_>>(), ["flapped", "old-ready"]);
        assert_eq!(g.ignored.iter().collect::<Vec<_>>(), ["fresh", "never-ready", "pending"]);
        assert_eq!(g.missing.iter().collect::<Vec<_>>(), ["no-sample"]);
        assert_eq!(g.total, 7);

        // Memory has no readiness rules: only pending pods are ignored.
        let g = group_pods(&pods, &samples, false, Readiness::default(), now);
        assert_eq!(g.ready.len(), 4);
    }
}

/// What a profile asks the metrics APIs for: one `kubernetesMetricSpecs` entry, resolved.
#[derive(Clone, Debug)]
pub struct MetricQuery {
    /// The spec as written in the config, echoed to hooks as `spec`.
    pub spec: Value,
    /// Where the values come from.
    pub source: QuerySource,
    /// The series the spec reads and its goal for the built-in calculation, if it has one.
    pub builtin: Option<BuiltinMetric>,
    /// The series' name in the tick series (`MetricSpec::usage_key`).
    pub key: String,
}

/// The metric source of a query.
#[derive(Clone, Debug, PartialEq)]
pub enum QuerySource {
    /// `type: Resource`: cpu or memory usage from metrics.k8s.io.
    Resource {
        /// `cpu` or `memory`.
        name: String,
        /// Whether the target is `Utilization` (requests are then needed and passed on).
        utilization: bool,
    },
    /// `type: Pods`: a per-pod metric from custom.metrics.k8s.io.
    Pods {
        /// The metric name.
        metric: String,
        /// The metric's series selector, as a selector string (an error if it is invalid).
        selector: Result<Option<String>, String>,
    },
    /// `type: Object`: one object's metric from custom.metrics.k8s.io.
    Object {
        /// The object's resource as the custom metrics API names it: `ingresses.networking.k8s.io`,
        /// `services` for the core group.
        resource: String,
        /// The object's name.
        name: String,
        /// The metric name.
        metric: String,
        /// The metric's series selector, as a selector string (an error if it is invalid).
        selector: Result<Option<String>, String>,
        /// An `AverageValue` target (else `Value`).
        average: bool,
    },
    /// `type: External`: the sum of an external metric's series from external.metrics.k8s.io.
    External {
        /// The metric name.
        metric: String,
        /// The metric's series selector, as a selector string (an error if it is invalid).
        selector: Result<Option<String>, String>,
        /// An `AverageValue` target (else `Value`).
        average: bool,
    },
}

/// An Object or External metric: one value for the whole target, not a value per pod.
#[derive(Clone, Debug, PartialEq)]
pub struct Total {
    /// The object's value, or the sum of the external series, in milli-units.
    pub milli: i64,
    /// The target's Running and Ready pods (the HPA's ready pod count).
    pub ready_pods: i32,
}

/// One gathered spec: the CPA block for hooks and the grouping for the built-in calculation.
#[derive(Clone, Debug)]
pub struct Gathered {
    /// A short name for records, e.g. `cpu` or `pods/requests_per_second`.
    pub name: String,
    /// The series' name in the tick series.
    pub key: String,
    /// The CPA `kubernetesMetrics` element (null unless a metric hook gets it).
    pub cpa: Value,
    /// Pods grouped by the HPA's rules.
    pub grouping: Grouping,
    /// Requests per pod (Utilization only).
    pub requests: BTreeMap<String, i64>,
    /// The spec's series and goal, if it has a goal.
    pub builtin: Option<BuiltinMetric>,
    /// The value of an Object or External metric.
    pub total: Option<Total>,
    /// A one-line summary used as the metric value when no metric hook runs.
    pub summary: String,
}

impl Gathered {
    /// What the calculation needs of this metric: for a per-pod metric the ready pods' summed
    /// usage and requests and the missing and unready pods, for an Object or External metric
    /// its value, the ready pods and the workload's `status.replicas`.
    pub fn observed(&self, status_replicas: i32) -> Observed {
        if let Some(t) = &self.total {
            return Observed::Total(TotalUsage { value: t.milli, ready_pods: t.ready_pods, status_replicas });
        }
        let g = &self.grouping;
        let request = |pod: &String| self.requests.get(pod).copied().unwrap_or(0);
        Observed::Pods(PodUsage {
            ready: u32::try_from(g.ready.len()).unwrap_or(u32::MAX),
            usage: g.ready.values().map(|s| s.milli).sum(),
            requests: g.ready.keys().filter_map(|p| self.requests.get(p)).sum(),
            missing: g.missing.iter().map(request).collect(),
            unready: u32::try_from(g.ignored.len()).unwrap_or(u32::MAX),
            unready_requests: g.ignored.iter().map(request).sum(),
        })
    }
}

/// Reads every query for one target; returns what succeeded and the errors of the rest.
/// Resource metrics come from the namespace's shared PodMetrics read (see `podmetrics`).
#[allow(clippy::too_many_arguments)]
pub async fn gather(
    client: &kube::Client,
    cache: &PodMetricsCache,
    namespace: &str,
    selector: Option<&PodSelector>,
    pods: &[Arc<PodInfo>],
    queries: &[MetricQuery],
    readiness: Readiness,
    current: i32,
    cpa_blocks: bool,
) -> (Vec<Gathered>, Vec<MetricsError>) {
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    let Some(selector) = selector else {
        errors.push(MetricsError::Unsupported("the workload has no pod selector".into()));
        return (ok, errors);
    };
    let now = Timestamp::now();
    let mut pod_metrics: Option<Arc<PodUsages>> = None;
    for q in queries {
        if let QuerySource::Object { .. } | QuerySource::External { .. } = &q.source {
            match total(client, namespace, pods, q, current, cpa_blocks).await {
                Ok(g) => ok.push(g),
                Err(e) => errors.push(e),
            }
            continue;
        }
        let result = async {
            let (name, samples, cpu, utilization) = match &q.source {
                QuerySource::Resource { name, utilization } => {
                    if pod_metrics.is_none() {
                        // The pods metrics-server reports: running ones (the HPA's rules
                        // decide what a missing sample means).
                        let wanted: Vec<&str> = pods
                            .iter()
                            .filter(|p| p.phase == Phase::Running && !p.deleting)
                            .map(|p| &*p.name)
                            .collect();
                        pod_metrics = Some(cache.get(client, namespace, selector.as_str(), &wanted).await?);
                    }
                    let usages = pod_metrics.as_ref().ok_or(MetricsError::NoMetrics)?;
                    let samples: HashMap<String, Sample> = pods
                        .iter()
                        .filter_map(|p| usages.get(&*p.name).map(|u| (p.name.to_string(), u.sample(name))))
                        .collect();
                    (name.clone(), samples, name == "cpu", *utilization)
                }
                QuerySource::Pods { metric, selector: series } => {
                    let mut path = format!(
                        "/apis/custom.metrics.k8s.io/v1beta1/namespaces/{}/pods/*/{}?labelSelector={}",
                        encode(namespace),
                        encode(metric),
                        encode(selector.as_str())
                    );
                    // The metric's own selector, as the HPA passes it.
                    if let Some(series) = series.clone().map_err(MetricsError::Unsupported)? {
                        path.push_str(&format!("&metricLabelSelector={}", encode(&series)));
                    }
                    let list = get_json(client, &path).await?;
                    (format!("pods/{metric}"), parse_metric_value_list(&list)?, false, false)
                }
                QuerySource::Object { .. } | QuerySource::External { .. } => {
                    return Err(MetricsError::Unsupported("an object metric read per pod".into()));
                }
            };
            let grouping = group_pods(pods, &samples, cpu, readiness, now);
            let requests = if utilization { requests(pods, &name)? } else { BTreeMap::new() };
            let cpa = if cpa_blocks {
                let section = match q.source {
                    QuerySource::Pods { .. } => "pods",
                    _ => "resource",
                };
                let mut cpa = json!({"current_replicas": current, "spec": q.spec});
                cpa[section] = cpa_block(&grouping, utilization.then_some(&requests), now);
                cpa
            } else {
                Value::Null
            };
            let total: i64 = grouping.ready.values().map(|s| s.milli).sum();
            let summary = scalehub_core::calc::pods_summary(total, grouping.ready.len());
            Ok::<_, MetricsError>(Gathered {
                name,
                key: q.key.clone(),
                cpa,
                grouping,
                requests,
                builtin: q.builtin.clone(),
                total: None,
                summary,
            })
        }
        .await;
        match result {
            Ok(g) => ok.push(g),
            Err(e) => errors.push(e),
        }
    }
    (ok, errors)
}

/// Reads a custom metrics MetricValueList into samples by pod name.
fn parse_metric_value_list(list: &Value) -> Result<HashMap<String, Sample>, MetricsError> {
    let malformed = |detail: String| MetricsError::Malformed { what: "MetricValueList", detail };
    let items = list.get("items").and_then(Value::as_array).ok_or_else(|| malformed("no items".into()))?;
    let mut out = HashMap::new();
    for item in items {
        let name = item
            .pointer("/describedObject/name")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("no describedObject".into()))?;
        let value = item.get("value").and_then(Value::as_str).ok_or_else(|| malformed(format!("{name}: no value")))?;
        let milli = parse_milli(value).map_err(|e| malformed(e.to_string()))?;
        let timestamp =
            item.get("timestamp").and_then(Value::as_str).and_then(|s| s.parse().ok()).unwrap_or_else(Timestamp::now);
        let window = item
            .get("windowSeconds")
            .and_then(Value::as_u64)
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(30));
        out.insert(name.to_owned(), Sample { milli, timestamp, window });
    }
    Ok(out)
}

async fn get_json(client: &kube::Client, path: &str) -> Result<Value, MetricsError> {
    let req = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| MetricsError::Malformed { what: "request", detail: e.to_string() })?;
    let timeout = Duration::from_secs(10);
    tokio::time::timeout(timeout, client.request::<Value>(req))
        .await
        .map_err(|_| MetricsError::Timeout(timeout))?
        .map_err(MetricsError::Request)
}

/// Percent-encodes a query or path component (selectors contain spaces, commas and parentheses).
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
