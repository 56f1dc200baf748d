//! Object and External metrics: one value for the whole target (the described object's, or
//! the sum of an external metric's series) rather than a value per pod.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{Gathered, Grouping, MetricQuery, MetricsError, QuerySource, Total, encode, get_json};
use crate::watch::PodInfo;
use crate::watch::pods::{ConditionStatus, Phase};
use scalehub_core::quantity::parse_milli;

/// Reads an Object metric (the described object's one value) or an External one (the sum
/// of its series), as the HPA's `GetObjectMetric` and `GetExternalMetric` do.
pub(super) async fn total(
    client: &kube::Client,
    namespace: &str,
    pods: &[Arc<PodInfo>],
    q: &MetricQuery,
    current: i32,
    cpa_blocks: bool,
) -> Result<Gathered, MetricsError> {
    let malformed = |what, detail: String| MetricsError::Malformed { what, detail };
    let (name, path, average, section) = match &q.source {
        QuerySource::Object { resource, name, metric, selector, average } => {
            let mut path = format!(
                "/apis/custom.metrics.k8s.io/v1beta1/namespaces/{}/{}/{}/{}",
                encode(namespace),
                encode(resource),
                encode(name),
                encode(metric)
            );
            if let Some(sel) = selector.clone().map_err(MetricsError::Unsupported)? {
                path.push_str(&format!("?metricLabelSelector={}", encode(&sel)));
            }
            (format!("{resource}/{name}/{metric}"), path, *average, "object")
        }
        QuerySource::External { metric, selector, average } => {
            let mut path =
                format!("/apis/external.metrics.k8s.io/v1beta1/namespaces/{}/{}", encode(namespace), encode(metric));
            if let Some(sel) = selector.clone().map_err(MetricsError::Unsupported)? {
                path.push_str(&format!("?labelSelector={}", encode(&sel)));
            }
            (format!("external/{metric}"), path, *average, "external")
        }
        _ => return Err(MetricsError::Unsupported("a per-pod metric read as one value".into())),
    };
    let list = get_json(client, &path).await?;
    let items = list.get("items").and_then(Value::as_array).ok_or_else(|| malformed(section, "no items".into()))?;
    if items.is_empty() {
        return Err(MetricsError::Unsupported(format!("no {section} metric {name} returned")));
    }
    // An Object metric is its first item, as the HPA reads it; an External one sums them all.
    let taken = if section == "object" { &items[..1] } else { &items[..] };
    let mut milli: i64 = 0;
    let mut timestamp: Option<Timestamp> = None;
    for item in taken {
        let value = item.get("value").and_then(Value::as_str).ok_or_else(|| malformed(section, "no value".into()))?;
        milli = milli.saturating_add(parse_milli(value).map_err(|e| malformed(section, e.to_string()))?);
        let at = item.get("timestamp").and_then(Value::as_str).and_then(|s| s.parse::<Timestamp>().ok());
        timestamp = timestamp.max(at);
    }
    let timestamp = timestamp.unwrap_or_else(Timestamp::now);
    let ready_pods = pods
        .iter()
        .filter(|p| p.phase == Phase::Running && p.ready.as_ref().is_some_and(|r| r.status == ConditionStatus::True))
        .count();
    let ready_pods = i32::try_from(ready_pods).unwrap_or(i32::MAX);
    let cpa = if cpa_blocks {
        // The CPA's (k8shorizmetrics v3) shape: a Value target reports the value and the
        // ready pod count, an AverageValue target the value as `average_value`.
        let block = match average {
            false => {
                json!({"current": {"value": milli}, "ready_pod_count": ready_pods, "timestamp": timestamp.to_string()})
            }
            true => json!({"current": {"average_value": milli}, "timestamp": timestamp.to_string()}),
        };
        let mut cpa = json!({"current_replicas": current, "spec": q.spec});
        cpa[section] = block;
        cpa
    } else {
        Value::Null
    };
    let summary = scalehub_core::calc::total_summary(milli);
    let total = Total { milli, ready_pods };
    Ok(Gathered {
        name,
        key: q.key.clone(),
        cpa,
        grouping: Grouping::default(),
        requests: BTreeMap::new(),
        builtin: q.builtin.clone(),
        total: Some(total),
        summary,
    })
}
