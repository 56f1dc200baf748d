//! `custom.metrics.k8s.io/v1beta1` and `external.metrics.k8s.io/v1beta1`, as a metrics
//! adapter (prometheus-adapter, KEDA) serves them, computed from the load model:
//!
//! - per-pod metrics (`namespaces/{ns}/pods/*/{metric}?labelSelector=…`): the owning
//!   workload's `sim.scalehub.io/pods-metric.<metric>` curve, a total spread evenly over its
//!   Running and Ready pods, like CPU;
//! - object metrics (`namespaces/{ns}/{resource}/{name}/{metric}`): the described object's
//!   `sim.scalehub.io/metric.<metric>` curve;
//! - external metrics (`namespaces/{ns}/{metric}`): the Namespace's
//!   `sim.scalehub.io/external.<metric>` curve, one series without labels.
//!
//! Curve values are plain quantities (`30`, `1500m`, `2k`). Series carry no labels, so a
//! metric selector that asks for a label selects nothing. A metric nobody annotated is a 404,
//! as an adapter answers for a series it does not have.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::load::{Curve, Unit};
use crate::objects::json_response;
use crate::resources::{NAMESPACES, PODS, RESOURCES};
use crate::router::Params;
use crate::selector::LabelSelector;
use crate::store::Obj;
use crate::{AppState, meta};

/// The custom metrics group's path prefix.
pub(crate) const CUSTOM: &str = "/apis/custom.metrics.k8s.io/v1beta1";
/// The external metrics group's path prefix.
pub(crate) const EXTERNAL: &str = "/apis/external.metrics.k8s.io/v1beta1";

/// Per-pod metric annotation prefix (on the workload).
pub const PODS_METRIC_PREFIX: &str = "sim.scalehub.io/pods-metric.";
/// Object metric annotation prefix (on the described object).
pub const OBJECT_METRIC_PREFIX: &str = "sim.scalehub.io/metric.";
/// External metric annotation prefix (on the Namespace).
pub const EXTERNAL_METRIC_PREFIX: &str = "sim.scalehub.io/external.";

/// Serves a GET under either group; `rest` is the path after the group's prefix.
pub(crate) fn serve(state: &AppState, external: bool, rest: &str, params: &Params) -> Result<Response, ApiError> {
    let segs: Vec<&str> = rest.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let group = if external { "external.metrics.k8s.io" } else { "custom.metrics.k8s.io" };
    let no_route = || ApiError::no_route(&format!("/apis/{group}/v1beta1/{rest}"));
    match (external, segs.as_slice()) {
        (_, []) => Ok(json_response(
            StatusCode::OK,
            &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": format!("{group}/v1beta1"), "resources": []}),
        )),
        (false, ["namespaces", ns, "pods", "*", metric]) => pods_metric(state, ns, metric, params),
        (false, ["namespaces", ns, resource, name, metric]) => object_metric(state, ns, resource, name, metric, params),
        (true, ["namespaces", ns, metric]) => external_metric(state, ns, metric, params),
        _ => Err(no_route()),
    }
}

fn value_of(state: &AppState, obj: &Value, annotation: &str) -> Option<f64> {
    let text = meta::annotation(obj, annotation)?;
    let curve = Curve::parse(text, Unit::Cpu).ok()?;
    Some(curve.at(state.load.elapsed()))
}

fn quantity(milli: f64) -> String {
    format!("{}m", milli.max(0.0).round() as u64)
}

fn missing(metric: &str) -> ApiError {
    ApiError::not_found("custom.metrics.k8s.io", "metrics", metric)
}

fn pods_metric(state: &AppState, ns: &str, metric: &str, params: &Params) -> Result<Response, ApiError> {
    let labels = LabelSelector::parse(params.get("labelSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let sel = crate::selector::Selectors { labels, fields: Default::default() };
    let page = state.store.list(PODS, Some(ns), &sel, None, None)?;
    // The series carry no labels of their own: a metric selector that asks for one selects none.
    let series = LabelSelector::parse(params.get("metricLabelSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !series.matches(&json!({"metadata": {"labels": {}}})) {
        return Err(missing(metric));
    }
    let annotation = format!("{PODS_METRIC_PREFIX}{metric}");
    let now = meta::now_rfc3339();
    let mut per_owner: HashMap<String, Option<f64>> = HashMap::new();
    let mut items = Vec::new();
    for pod in page.items.iter().filter(|p| meta::pod_ready(p)) {
        let Some(owner) = meta::controller_ref(pod) else { continue };
        let uid = owner.get("uid").and_then(Value::as_str).unwrap_or("").to_owned();
        let per_pod = *per_owner.entry(uid.clone()).or_insert_with(|| {
            let workload = owner
                .get("kind")
                .and_then(Value::as_str)
                .and_then(crate::resources::workload_by_kind)
                .zip(owner.get("name").and_then(Value::as_str))
                .and_then(|(def, name)| state.store.get(def.storage, ns, name))?;
            let ready = state.store.pods_owned_by(ns, &uid).iter().filter(|p| meta::pod_ready(p)).count();
            value_of(state, &workload, &annotation).map(|total| total / ready.max(1) as f64)
        });
        let Some(value) = per_pod else { continue };
        items.push(json!({
            "describedObject": {"kind": "Pod", "namespace": ns, "name": meta::name(pod), "apiVersion": "/v1"},
            "metricName": metric, "timestamp": now, "windowSeconds": 60, "value": quantity(value),
        }));
    }
    if items.is_empty() {
        return Err(missing(metric));
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({"kind": "MetricValueList", "apiVersion": "custom.metrics.k8s.io/v1beta1", "metadata": {}, "items": items}),
    ))
}

fn object_metric(
    state: &AppState,
    ns: &str,
    resource: &str,
    name: &str,
    metric: &str,
    params: &Params,
) -> Result<Response, ApiError> {
    let series = LabelSelector::parse(params.get("metricLabelSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !series.matches(&json!({"metadata": {"labels": {}}})) {
        return Err(missing(metric));
    }
    // `deployments.apps`, or `services` for the core group.
    let (plural, group) = resource.split_once('.').unwrap_or((resource, ""));
    let def = RESOURCES
        .iter()
        .find(|d| d.plural == plural && d.group == group)
        .ok_or_else(|| ApiError::not_found(group, plural, name))?;
    let object: Obj = match def.namespaced {
        true => state.store.get(def.storage, ns, name),
        false => state.store.get(def.storage, "", name),
    }
    .ok_or_else(|| ApiError::not_found(def.group, def.plural, name))?;
    let value = value_of(state, &object, &format!("{OBJECT_METRIC_PREFIX}{metric}")).ok_or_else(|| missing(metric))?;
    let item = json!({
        "describedObject": {"kind": def.kind, "namespace": ns, "name": name, "apiVersion": def.api_version()},
        "metricName": metric, "timestamp": meta::now_rfc3339(), "windowSeconds": 60, "value": quantity(value),
    });
    Ok(json_response(
        StatusCode::OK,
        &json!({"kind": "MetricValueList", "apiVersion": "custom.metrics.k8s.io/v1beta1", "metadata": {}, "items": [item]}),
    ))
}

fn external_metric(state: &AppState, ns: &str, metric: &str, params: &Params) -> Result<Response, ApiError> {
    let labels = LabelSelector::parse(params.get("labelSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let namespace = state.store.get(NAMESPACES, "", ns).ok_or_else(|| missing(metric))?;
    let value =
        value_of(state, &namespace, &format!("{EXTERNAL_METRIC_PREFIX}{metric}")).ok_or_else(|| missing(metric))?;
    // The one series has no labels: a selector asking for any label selects nothing.
    let series = json!({"metadata": {"labels": {}}});
    let items: Vec<Value> = match labels.matches(&series) {
        true => vec![json!({
            "metricName": metric, "metricLabels": {}, "timestamp": meta::now_rfc3339(), "value": quantity(value),
        })],
        false => Vec::new(),
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({"kind": "ExternalMetricValueList", "apiVersion": "external.metrics.k8s.io/v1beta1", "metadata": {}, "items": items}),
    ))
}

/// Whether `path` is one of the metrics adapter groups, and which.
pub(crate) fn route(path: &str) -> Option<(bool, &str)> {
    let strip = |prefix: &str| path.strip_prefix(prefix).filter(|rest| rest.is_empty() || rest.starts_with('/'));
    strip(CUSTOM).map(|rest| (false, rest)).or_else(|| strip(EXTERNAL).map(|rest| (true, rest)))
}
