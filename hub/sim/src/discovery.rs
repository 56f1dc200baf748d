//! Discovery and health: `/version`, `/api`, `/apis`, group-version resource lists, and a minimal
//! `/openapi/v3` that tells kubectl the server validates fields itself (`fieldValidation`), so
//! `kubectl apply` needs no client-side schema.

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::objects::json_response;
use crate::resources::{self, RESOURCES};

/// The version the simulator claims (kube 5 and kubectl 1.32 are happy with 1.33).
pub(crate) const GIT_VERSION: &str = "v1.33.0-scalehub-sim";

/// Routes outside `/api` and `/apis`.
pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/version", get(version))
        .route("/healthz", get(ok))
        .route("/readyz", get(ok))
        .route("/livez", get(ok))
        .route("/openapi/v3", get(openapi_index))
        .route("/openapi/v3/{*gv}", get(openapi_group_version))
        .route("/openapi/v2", get(|| async { ApiError::no_route("/openapi/v2") }))
}

async fn ok() -> &'static str {
    "ok"
}

async fn version() -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "major": "1", "minor": "33", "gitVersion": GIT_VERSION, "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc",
            "platform": "linux/amd64"
        }),
    )
}

/// `GET /api`.
pub(crate) async fn core_versions() -> Response {
    json_response(
        StatusCode::OK,
        &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
    )
}

fn group_json(name: &str, versions: &[&str]) -> Value {
    let vs: Vec<Value> =
        versions.iter().map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v})).collect();
    json!({"name": name, "versions": vs, "preferredVersion": vs[0]})
}

/// `GET /apis`.
pub(crate) async fn groups() -> Response {
    let groups: Vec<Value> = resources::groups().iter().map(|(g, vs)| group_json(g, vs)).collect();
    json_response(StatusCode::OK, &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
}

/// `GET /apis/{group}`.
pub(crate) fn group(name: &str) -> Result<Response, ApiError> {
    let (g, vs) = resources::groups()
        .into_iter()
        .find(|(g, _)| *g == name)
        .ok_or_else(|| ApiError::no_route(&format!("/apis/{name}")))?;
    let mut body = group_json(g, &vs);
    body["kind"] = json!("APIGroup");
    body["apiVersion"] = json!("v1");
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /api/v1` or `/apis/{group}/{version}`: the APIResourceList.
pub(crate) fn resource_list(group: &str, version: &str) -> Response {
    let mut list = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group == group && r.version == version) {
        let mut entry = json!({
            "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind, "verbs": r.verbs(),
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if matches!(r.plural, "deployments" | "statefulsets" | "replicasets" | "pods" | "horizontalpodautoscalers")
            && !r.read_only
        {
            entry["categories"] = json!(["all"]);
        }
        list.push(entry);
        if r.scale {
            list.push(json!({"name": format!("{}/scale", r.plural), "singularName": "", "namespaced": true, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
        }
        if r.status {
            list.push(json!({"name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced, "kind": r.kind, "verbs": ["get", "patch", "update"]}));
        }
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    json_response(
        StatusCode::OK,
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list}),
    )
}

/// `api/v1` or `apis/{group}/{version}` as the OpenAPI v3 index names them.
fn gv_paths() -> Vec<(String, &'static str, &'static str)> {
    let mut out: Vec<(String, &'static str, &'static str)> = Vec::new();
    for r in RESOURCES.iter() {
        let path =
            if r.group.is_empty() { format!("api/{}", r.version) } else { format!("apis/{}/{}", r.group, r.version) };
        if !out.iter().any(|(p, _, _)| *p == path) {
            out.push((path, r.group, r.version));
        }
    }
    out
}

async fn openapi_index() -> Response {
    let paths: serde_json::Map<String, Value> = gv_paths()
        .into_iter()
        .map(|(p, _, _)| {
            let url = format!("/openapi/v3/{p}?hash={}", GIT_VERSION.replace('.', ""));
            (p, json!({"serverRelativeURL": url}))
        })
        .collect();
    json_response(StatusCode::OK, &json!({"paths": paths}))
}

/// A per-group-version document holding, for each writable kind, a PATCH operation that accepts
/// `fieldValidation` (so kubectl skips client-side validation) and only merge patches (so kubectl
/// computes strategic patches from its built-in types).
async fn openapi_group_version(Path(gv): Path<String>) -> Response {
    let Some((prefix, group, version)) = gv_paths().into_iter().find(|(p, _, _)| *p == gv) else {
        return ApiError::no_route(&format!("/openapi/v3/{gv}")).into_response();
    };
    let mut paths = serde_json::Map::new();
    for r in RESOURCES.iter().filter(|r| r.group == group && r.version == version && !r.read_only) {
        let path = if r.namespaced {
            format!("/{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("/{prefix}/{}/{{name}}", r.plural)
        };
        let op = json!({
            "operationId": format!("patch{}", r.kind),
            "parameters": [
                {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}}
            ],
            "requestBody": {"content": {"application/merge-patch+json": {"schema": {"type": "object"}}}, "required": true},
            "responses": {"200": {"description": "OK"}},
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind}
        });
        paths.insert(path, json!({"patch": op}));
    }
    json_response(
        StatusCode::OK,
        &json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": GIT_VERSION}, "paths": paths, "components": {"schemas": {}}}),
    )
}
