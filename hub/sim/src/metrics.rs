//! `metrics.k8s.io/v1beta1` PodMetrics computed from the load model: only Running, Ready pods
//! have metrics (like metrics-server), and a workload's demand is split evenly among them.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::objects::{json_response, list_response, selectors};
use crate::resources::{self, PODS, RESOURCES};
use crate::router::{Params, Target};
use crate::store::Obj;
use crate::{AppState, meta};

/// GET (one pod) or LIST of PodMetrics.
pub(crate) fn serve(state: &AppState, t: &Target, params: &Params) -> Result<Response, ApiError> {
    let mut per_owner: HashMap<String, (f64, f64)> = HashMap::new();
    if let Some(name) = &t.name {
        let ns = t.ns.as_deref().unwrap_or("");
        let not_found = || ApiError::not_found("metrics.k8s.io", "pods", name);
        let pod = state.store.get(PODS, ns, name).ok_or_else(not_found)?;
        let m = pod_metrics(state, &pod, &mut per_owner).ok_or_else(not_found)?;
        return Ok(json_response(StatusCode::OK, &m));
    }
    let sel = selectors(&RESOURCES[PODS], params)?;
    let page = state.store.list(PODS, t.ns.as_deref(), &sel, None, None)?;
    let items: Vec<Obj> =
        page.items.iter().filter_map(|p| pod_metrics(state, p, &mut per_owner)).map(Arc::new).collect();
    Ok(list_response(t.def, &items, page.rv, None))
}

fn pod_metrics(state: &AppState, pod: &Value, per_owner: &mut HashMap<String, (f64, f64)>) -> Option<Value> {
    if !meta::pod_ready(pod) {
        return None;
    }
    let ns = meta::meta_str(pod, "namespace").unwrap_or("");
    let (cpu, mem) = match meta::controller_ref(pod) {
        Some(owner) => {
            let uid = owner.get("uid").and_then(Value::as_str).unwrap_or("").to_string();
            *per_owner.entry(uid.clone()).or_insert_with(|| owner_load(state, ns, owner, &uid))
        }
        None => state.load.per_pod(pod, 1),
    };
    let containers: Vec<&Value> =
        pod.pointer("/spec/containers").and_then(Value::as_array).map(|c| c.iter().collect()).unwrap_or_default();
    let n = containers.len().max(1) as f64;
    let usage = |name: &Value| {
        json!({"name": name, "usage": {
            "cpu": format!("{}n", (cpu / n * 1e6).round() as u64),
            "memory": format!("{}Ki", (mem / n / 1024.0).round() as u64),
        }})
    };
    let containers: Vec<Value> = if containers.is_empty() {
        vec![usage(&json!("app"))]
    } else {
        containers.iter().map(|c| usage(&c["name"])).collect()
    };
    let now = meta::now_rfc3339();
    Some(json!({
        "kind": "PodMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": meta::name(pod), "namespace": ns, "labels": pod.pointer("/metadata/labels").cloned().unwrap_or(json!({})), "creationTimestamp": now},
        "timestamp": now,
        "window": "30s",
        "containers": containers,
    }))
}

/// Per-pod load of the owning workload, from its annotations and its ready pod count.
fn owner_load(state: &AppState, ns: &str, owner: &Value, uid: &str) -> (f64, f64) {
    let workload = owner
        .get("kind")
        .and_then(Value::as_str)
        .and_then(resources::workload_by_kind)
        .zip(owner.get("name").and_then(Value::as_str))
        .and_then(|(def, name)| state.store.get(def.storage, ns, name));
    let ready = state.store.pods_owned_by(ns, uid).iter().filter(|p| meta::pod_ready(p)).count();
    match workload {
        Some(w) => state.load.per_pod(&w, ready),
        None => state.load.per_pod(&json!({}), ready),
    }
}
