//! `meta.k8s.io/v1` Table responses, which `kubectl get` asks for (`Accept: …;as=Table`) so it
//! can print server-side columns (READY, STATUS, AGE) instead of just names.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::meta;
use crate::objects::json_response;
use crate::resources::{DEPLOYMENTS, NAMESPACES, PODS, REPLICASETS, ResourceDef, STATEFULSETS};
use crate::store::Obj;

/// Whether the Accept header asks for a Table.
pub(crate) fn wanted(accept: &str) -> bool {
    accept.split(',').any(|part| part.contains("as=Table") && part.contains("g=meta.k8s.io"))
}

fn column(name: &str, ty: &str) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": ty, "format": format, "description": "", "priority": 0})
}

fn columns(def: &ResourceDef) -> Vec<Value> {
    let names: &[(&str, &str)] = match def.storage {
        DEPLOYMENTS => &[
            ("Name", "string"),
            ("Ready", "string"),
            ("Up-to-date", "integer"),
            ("Available", "integer"),
            ("Age", "string"),
        ],
        STATEFULSETS => &[("Name", "string"), ("Ready", "string"), ("Age", "string")],
        REPLICASETS => &[
            ("Name", "string"),
            ("Desired", "integer"),
            ("Current", "integer"),
            ("Ready", "integer"),
            ("Age", "string"),
        ],
        PODS => {
            &[("Name", "string"), ("Ready", "string"), ("Status", "string"), ("Restarts", "string"), ("Age", "string")]
        }
        NAMESPACES => &[("Name", "string"), ("Status", "string"), ("Age", "string")],
        _ => &[("Name", "string"), ("Age", "string")],
    };
    names.iter().map(|(n, t)| column(n, t)).collect()
}

fn int(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn cells(def: &ResourceDef, obj: &Value) -> Vec<Value> {
    let name = json!(meta::name(obj));
    let age = json!(age(meta::meta_str(obj, "creationTimestamp")));
    let ready = |spec: &str| json!(format!("{}/{}", int(obj, "/status/readyReplicas"), int(obj, spec)));
    match def.storage {
        DEPLOYMENTS => vec![
            name,
            ready("/spec/replicas"),
            json!(int(obj, "/status/updatedReplicas")),
            json!(int(obj, "/status/availableReplicas")),
            age,
        ],
        STATEFULSETS => vec![name, ready("/spec/replicas"), age],
        REPLICASETS => vec![
            name,
            json!(int(obj, "/spec/replicas")),
            json!(int(obj, "/status/replicas")),
            json!(int(obj, "/status/readyReplicas")),
            age,
        ],
        PODS => {
            let statuses = obj.pointer("/status/containerStatuses").and_then(Value::as_array);
            let total = obj.pointer("/spec/containers").and_then(Value::as_array).map_or(0, Vec::len);
            let ready = statuses.map_or(0, |s| s.iter().filter(|c| c["ready"] == true).count());
            let phase = obj.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending");
            vec![name, json!(format!("{ready}/{total}")), json!(phase), json!("0"), age]
        }
        NAMESPACES => vec![name, json!(obj.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Active")), age],
        _ => vec![name, age],
    }
}

/// kubectl's short human durations: `45s`, `3m12s`, `25m`, `5h3m`, `12h`, `4d`.
fn age(created: Option<&str>) -> String {
    let Some(ts) = created.and_then(|c| c.parse::<jiff::Timestamp>().ok()) else { return "<unknown>".into() };
    let s = (jiff::Timestamp::now().as_second() - ts.as_second()).max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    match s {
        _ if s < 120 => format!("{s}s"),
        _ if m < 10 => format!("{m}m{}s", s % 60),
        _ if h < 3 => format!("{m}m"),
        _ if h < 8 => format!("{h}h{}m", m % 60),
        _ if h < 48 => format!("{h}h"),
        _ => format!("{d}d"),
    }
}

/// A Table of the given objects.
pub(crate) fn response(def: &ResourceDef, items: &[Obj], rv: u64, continue_token: Option<String>) -> Response {
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            json!({"cells": cells(def, o), "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}})
        })
        .collect();
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = continue_token {
        metadata["continue"] = json!(c);
    }
    json_response(
        StatusCode::OK,
        &json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "columnDefinitions": columns(def), "rows": rows}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::RESOURCES;

    #[test]
    fn kubectl_accept_headers_ask_for_tables() {
        assert!(wanted(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
        ));
        assert!(!wanted("application/json"));
    }

    #[test]
    fn deployment_rows_show_ready_over_desired() {
        let d = json!({"metadata": {"name": "web", "creationTimestamp": meta::now_rfc3339()}, "spec": {"replicas": 3}, "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let c = cells(&RESOURCES[DEPLOYMENTS], &d);
        assert_eq!(c[..4], [json!("web"), json!("2/3"), json!(3), json!(2)]);
        assert!(c[4].as_str().unwrap().ends_with('s'));
    }

    #[test]
    fn ages_use_kubectl_units() {
        let ago =
            |secs: i64| jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() - secs).unwrap().to_string();
        assert_eq!(age(Some(&ago(45))), "45s");
        assert_eq!(age(Some(&ago(192))), "3m12s");
        assert_eq!(age(Some(&ago(5 * 3600 + 180))), "5h3m");
        assert_eq!(age(Some(&ago(4 * 86400))), "4d");
    }
}
