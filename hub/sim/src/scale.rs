//! The `/scale` subresource of Deployments, StatefulSets and ReplicaSets (autoscaling/v1 Scale).

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::objects::json_response;
use crate::patch::{self, PatchError, PatchKind};
use crate::resources::ResourceDef;
use crate::router::Params;
use crate::store::WriteMode;
use crate::{AppState, meta};

/// Renders a workload's `spec.selector` as a label-selector string (`app=web,tier in (a,b)`).
pub fn selector_string(workload: &Value) -> String {
    let Some(sel) = workload.pointer("/spec/selector") else { return String::new() };
    let mut parts: Vec<String> = Vec::new();
    if let Some(ml) = sel.get("matchLabels").and_then(Value::as_object) {
        parts.extend(ml.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())));
    }
    for e in sel.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        let values: Vec<&str> =
            e.get("values").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        match e.get("operator").and_then(Value::as_str) {
            Some("In") => parts.push(format!("{key} in ({})", values.join(","))),
            Some("NotIn") => parts.push(format!("{key} notin ({})", values.join(","))),
            Some("Exists") => parts.push(key.to_string()),
            Some("DoesNotExist") => parts.push(format!("!{key}")),
            _ => {}
        }
    }
    parts.join(",")
}

/// The Scale view of a workload. A Rollout's is what Argo's CRD declares: status replicas
/// from `status.HPAReplicas`, the selector from `status.selector` (empty until its
/// controller sets it), as the API server serves any custom resource's scale subresource.
pub fn scale_of(def: &ResourceDef, workload: &Value) -> Value {
    let (status_replicas, selector) = if def.storage == crate::resources::ROLLOUTS {
        (
            workload.pointer("/status/HPAReplicas").cloned().unwrap_or(json!(0)),
            workload.pointer("/status/selector").cloned().unwrap_or(json!("")),
        )
    } else {
        (workload.pointer("/status/replicas").cloned().unwrap_or(json!(0)), json!(selector_string(workload)))
    };
    let m = &workload["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {"replicas": workload.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {"replicas": status_replicas, "selector": selector},
    })
}

/// GET, PUT or PATCH on `/scale`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn handle(
    state: &AppState,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    verb: &str,
    params: &Params,
    content_type: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    // The real server names the subresource for Deployments and ReplicaSets but not for
    // StatefulSets (observed on v1.20 by the conformance suite).
    let kind = if def.storage == crate::resources::STATEFULSETS {
        def.plural.to_string()
    } else {
        format!("{}/scale", def.plural)
    };
    let not_found = || ApiError::not_found(def.group, &kind, name);
    if verb == "get" {
        let obj = state.store.get(def.storage, ns, name).ok_or_else(not_found)?;
        return Ok(json_response(StatusCode::OK, &scale_of(def, &obj)));
    }
    let kind = match verb {
        "update" => None,
        "patch" => Some(
            PatchKind::from_content_type(content_type).ok_or_else(|| ApiError::unsupported_media_type(content_type))?,
        ),
        _ => return Err(ApiError::method_not_allowed(format!("{verb} is not supported on scale"))),
    };
    if state.store.get(def.storage, ns, name).is_none() {
        return Err(not_found());
    }
    let (obj, _) = state.store.write(def, ns, name, WriteMode::Main, false, params.dry_run(), |old| {
        let old = old.ok_or_else(not_found)?;
        let current = scale_of(def, old);
        let desired = match kind {
            None => patch::parse_json_or_yaml(body).map_err(|e| ApiError::bad_request(e.to_string()))?,
            Some(k) => patch::apply_patch(k, &current, body).map_err(|e| match e {
                PatchError::Decode(m) => ApiError::bad_request(m),
                PatchError::Apply(m) => ApiError::invalid(m),
            })?,
        };
        if let Some(rv) = meta::meta_str(&desired, "resourceVersion").filter(|rv| !rv.is_empty())
            && Some(rv) != meta::meta_str(old, "resourceVersion")
        {
            return Err(ApiError::conflict(def.group, def.plural, name));
        }
        let replicas = match desired.pointer("/spec/replicas") {
            Some(Value::Number(n)) => n.as_i64().filter(|r| *r >= 0),
            None | Some(Value::Null) => Some(0),
            _ => None,
        }
        .ok_or_else(|| ApiError::invalid(format!("Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: must be greater than or equal to 0")))?;
        let mut new = old.as_ref().clone();
        new["spec"]["replicas"] = json!(replicas);
        Ok(new)
    })?;
    Ok(json_response(StatusCode::OK, &scale_of(def, &obj)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_strings_cover_labels_and_expressions() {
        let w = json!({"spec": {"selector": {"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]}, {"key": "legacy", "operator": "DoesNotExist"}
        ]}}});
        assert_eq!(selector_string(&w), "app=web,tier in (a,b),!legacy");
    }

    #[test]
    fn scale_mirrors_the_workload() {
        let w = json!({"metadata": {"name": "web", "namespace": "d", "uid": "u", "resourceVersion": "7"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}}, "status": {"replicas": 2}});
        let s = scale_of(&crate::resources::RESOURCES[crate::resources::DEPLOYMENTS], &w);
        assert_eq!((s["spec"]["replicas"].as_i64(), s["status"]["replicas"].as_i64()), (Some(3), Some(2)));
        assert_eq!(s["metadata"]["resourceVersion"], "7");
        assert_eq!(s["status"]["selector"], "app=web");
    }

    #[test]
    fn a_rollouts_scale_reads_the_paths_argos_crd_declares() {
        let rollouts = &crate::resources::RESOURCES[crate::resources::ROLLOUTS];
        let mut w = json!({"metadata": {"name": "web"}, "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"replicas": 9}});
        let s = scale_of(rollouts, &w);
        assert_eq!((s["status"]["replicas"].as_i64(), s["status"]["selector"].as_str()), (Some(0), Some("")));
        w["status"] = json!({"HPAReplicas": 2, "selector": "app=web"});
        let s = scale_of(rollouts, &w);
        assert_eq!((s["status"]["replicas"].as_i64(), s["status"]["selector"].as_str()), (Some(2), Some("app=web")));
    }
}
