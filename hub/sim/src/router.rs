//! Routing: parses `/api/...` and `/apis/...` paths into discovery or resource requests, counts
//! them, injects faults, and dispatches to the handlers.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};

use crate::error::ApiError;
use crate::resources::{self, ResourceDef};
use crate::store::WriteMode;
use crate::{AppState, admin, discovery, metrics, objects, scale, table, watch};

/// The whole HTTP application.
pub(crate) fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api", get(discovery::core_versions))
        .route("/apis", get(discovery::groups))
        .route("/api/{*rest}", any(resource_request))
        .route("/apis/{*rest}", any(resource_request))
        .merge(discovery::router())
        .merge(admin::router())
        .fallback(|uri: Uri| async move { ApiError::no_route(uri.path()) })
        .with_state(state)
}

/// Query parameters of one request.
pub(crate) struct Params(pub HashMap<String, String>);

impl Params {
    /// A parameter's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Whether a boolean parameter is `true` or `1`.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    /// Whether the request is a server-side dry run.
    pub fn dry_run(&self) -> bool {
        self.get("dryRun").is_some_and(|v| v == "All")
    }
}

/// A request for a resource, a collection or a subresource.
pub(crate) struct Target {
    /// The resource.
    pub def: &'static ResourceDef,
    /// Namespace from the path.
    pub ns: Option<String>,
    /// Object name from the path.
    pub name: Option<String>,
    /// `scale` or `status`.
    pub sub: Option<String>,
}

enum Parsed {
    Discovery(String, String),
    Group(String),
    Resource(Target),
}

fn parse(path: &str) -> Result<Parsed, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let not_found = || ApiError::no_route(path);
    let (group, rest) = match segs.as_slice() {
        ["api", version, rest @ ..] => ("", [&[*version][..], rest].concat()),
        ["apis", group] => return Ok(Parsed::Group((*group).to_string())),
        ["apis", group, version, rest @ ..] => (*group, [&[*version][..], rest].concat()),
        _ => return Err(not_found()),
    };
    let version = rest[0];
    let rest = &rest[1..];
    if !resources::serves(group, version) {
        return Err(not_found());
    }
    if rest.is_empty() {
        return Ok(Parsed::Discovery(group.to_string(), version.to_string()));
    }
    let namespaced_def = match rest {
        ["namespaces", _, plural, ..] => resources::find(group, version, plural).filter(|d| d.namespaced),
        _ => None,
    };
    let (def, ns, tail) = match namespaced_def {
        Some(def) => (def, Some(rest[1].to_string()), &rest[3..]),
        None => (resources::find(group, version, rest[0]).ok_or_else(not_found)?, None, &rest[1..]),
    };
    if tail.len() > 2 || (def.namespaced && ns.is_none() && !tail.is_empty()) {
        return Err(not_found());
    }
    let name = tail.first().map(|s| (*s).to_string());
    let sub = tail.get(1).map(|s| (*s).to_string());
    match sub.as_deref() {
        None => {}
        Some("scale") if def.scale => {}
        Some("status") if def.status => {}
        Some(_) => return Err(not_found()),
    }
    Ok(Parsed::Resource(Target { def, ns, name, sub }))
}

/// The verb a request performs, as the real server names it in audit logs and RBAC.
fn verb(method: &Method, t: &Target, params: &Params) -> Result<&'static str, ApiError> {
    let collection = t.name.is_none();
    let v = match (method.as_str(), collection) {
        ("GET", true) if params.flag("watch") => "watch",
        ("GET", true) => "list",
        ("GET", false) if params.flag("watch") => "watch",
        ("GET", false) => "get",
        ("POST", true) => "create",
        ("PUT", false) => "update",
        ("PATCH", false) => "patch",
        ("DELETE", false) => "delete",
        ("DELETE", true) => "deletecollection",
        _ => {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({method})"
            )));
        }
    };
    if t.def.read_only && !matches!(v, "get" | "list") {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method})"
        )));
    }
    Ok(v)
}

async fn resource_request(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    match handle(state, method, uri, headers, Params(query), body).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn handle(
    state: Arc<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    if let Some((external, rest)) = crate::custom_metrics::route(uri.path()) {
        if method != Method::GET {
            return Err(ApiError::method_not_allowed("the metrics APIs only answer GET"));
        }
        let label = if external { "external.metrics.k8s.io" } else { "custom.metrics.k8s.io" };
        state.accounting.record("get", label);
        if let Some(err) = state.faults.request_error("get") {
            return Err(err);
        }
        return crate::custom_metrics::serve(&state, external, rest, &params);
    }
    let target = match parse(uri.path())? {
        Parsed::Discovery(group, version) => return Ok(discovery::resource_list(&group, &version)),
        Parsed::Group(group) => return discovery::group(&group),
        Parsed::Resource(t) => t,
    };
    let verb = verb(&method, &target, &params)?;
    let label = match &target.sub {
        Some(sub) => format!("{}/{sub}", target.def.label()),
        None => target.def.label().to_string(),
    };
    state.accounting.record(verb, &label);
    if let Some(delay) = state.faults.latency() {
        tokio::time::sleep(delay).await;
    }
    if let Some(err) = state.faults.request_error(verb) {
        return Err(err);
    }
    if matches!(verb, "create" | "update" | "patch" | "delete") && state.faults.write_conflict() {
        let name = target.name.as_deref().unwrap_or("");
        return Err(ApiError::conflict(target.def.group, target.def.plural, name));
    }
    if target.def.id == resources::POD_METRICS {
        return metrics::serve(&state, &target, &params);
    }
    let ns = target.ns.as_deref().unwrap_or("");
    let mode = if target.sub.as_deref() == Some("status") { WriteMode::Status } else { WriteMode::Main };
    let accept = headers.get(axum::http::header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let content_type = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    match (verb, target.name.as_deref(), target.sub.as_deref()) {
        ("watch", name, _) => watch::serve(&state, &target, name, &params),
        ("list", _, _) => objects::list(&state, &target, &params, table::wanted(accept)),
        ("deletecollection", _, _) => objects::delete_collection(&state, &target, &params),
        ("create", _, _) => objects::create(&state, target.def, ns, &params, &body),
        (_, Some(name), Some("scale")) => {
            if matches!(verb, "update" | "patch") {
                let agent = headers.get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
                state.accounting.record_scale_write(&format!("{ns}/{}/{name}", target.def.plural), agent);
            }
            scale::handle(&state, target.def, ns, name, verb, &params, content_type, &body)
        }
        ("get", Some(name), _) => objects::get(&state, target.def, ns, name, table::wanted(accept)),
        ("update", Some(name), _) => objects::replace(&state, target.def, ns, name, mode, &params, &body),
        ("patch", Some(name), _) => objects::patch(&state, target.def, ns, name, mode, &params, content_type, &body),
        ("delete", Some(name), None) => objects::delete(&state, target.def, ns, name, &params, &body),
        _ => Err(ApiError::method_not_allowed("the server does not allow this method on the requested resource")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str) -> Target {
        match parse(path) {
            Ok(Parsed::Resource(t)) => t,
            _ => panic!("{path} did not parse as a resource"),
        }
    }

    #[test]
    fn namespaced_object_and_subresource_paths_parse() {
        let t = target("/apis/apps/v1/namespaces/prod/deployments/web/scale");
        assert_eq!(
            (t.def.plural, t.ns.as_deref(), t.name.as_deref(), t.sub.as_deref()),
            ("deployments", Some("prod"), Some("web"), Some("scale"))
        );
        let t = target("/api/v1/namespaces/prod/pods");
        assert_eq!((t.def.plural, t.ns.as_deref(), t.name), ("pods", Some("prod"), None));
    }

    #[test]
    fn cluster_wide_and_cluster_scoped_paths_parse() {
        let t = target("/apis/apps/v1/deployments");
        assert_eq!((t.def.plural, t.ns), ("deployments", None));
        let t = target("/api/v1/namespaces/prod");
        assert_eq!((t.def.plural, t.name.as_deref()), ("namespaces", Some("prod")));
        let t = target("/api/v1/namespaces/prod/status");
        assert_eq!((t.def.plural, t.sub.as_deref()), ("namespaces", Some("status")));
    }

    #[test]
    fn unknown_resources_and_subresources_are_not_found() {
        for path in [
            "/apis/apps/v1/namespaces/p/foos",
            "/apis/nope/v1/x",
            "/api/v1/namespaces/p/pods/x/scale",
            "/apis/apps/v1/deployments/web",
        ] {
            assert!(parse(path).is_err(), "{path}");
        }
    }
}
