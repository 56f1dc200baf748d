//! Prometheus metrics of the hub (prometheus-client), and logging set-up.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels naming one target.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    /// Namespace of the workload.
    pub namespace: String,
    /// Kind of the workload.
    pub kind: String,
    /// Name of the workload.
    pub name: String,
}

/// Label of a decision's outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// e.g. `scaled`, `unchanged`, `error`.
    pub outcome: String,
}

/// Label of a hook stage.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HookLabels {
    /// e.g. `metric`, `evaluate`, `preScale`.
    pub hook: String,
}

/// Label of a target state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// e.g. `active`, `invalid`, `conflict`.
    pub state: String,
}

/// Labels of a request to the Kubernetes API server.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `get`, `list`, `watch`, `create`, `update`, `patch` or `delete`.
    pub verb: String,
    /// The resource, with its subresource: `deployments`, `deployments/scale`, `leases`, ...
    pub resource: String,
    /// The HTTP status, or `error` when no response came.
    pub code: String,
}

/// Every metric the hub exports; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    /// Replicas the workload has now.
    pub current_replicas: Family<TargetLabels, Gauge>,
    /// Replicas the last decision wanted.
    pub desired_replicas: Family<TargetLabels, Gauge>,
    /// Decisions by outcome.
    pub decisions: Family<OutcomeLabels, Counter>,
    /// Hook run time in seconds.
    pub hook_duration: Family<HookLabels, Histogram>,
    /// Hook failures.
    pub hook_errors: Family<HookLabels, Counter>,
    /// How late a tick started against its schedule, in seconds.
    pub tick_lateness: Histogram,
    /// Targets by state.
    pub targets: Family<StateLabels, Gauge>,
    /// Scale calls made to the API server.
    pub scale_calls: Family<OutcomeLabels, Counter>,
    /// Every request made to the API server (see [`counted_client`]).
    pub apiserver_requests: Family<RequestLabels, Counter>,
    registry: Arc<Registry>,
}

impl Metrics {
    /// Creates and registers all metrics.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("scalehub");
        let current_replicas = Family::<TargetLabels, Gauge>::default();
        let desired_replicas = Family::<TargetLabels, Gauge>::default();
        let decisions = Family::<OutcomeLabels, Counter>::default();
        let hook_duration = Family::<HookLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.005, 2.0, 14))) as fn() -> Histogram,
        );
        let hook_errors = Family::<HookLabels, Counter>::default();
        let tick_lateness = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let targets = Family::<StateLabels, Gauge>::default();
        let scale_calls = Family::<OutcomeLabels, Counter>::default();
        let apiserver_requests = Family::<RequestLabels, Counter>::default();
        registry.register("target_current_replicas", "Replicas the workload has", current_replicas.clone());
        registry.register("target_desired_replicas", "Replicas the last decision wanted", desired_replicas.clone());
        registry.register("decisions", "Decisions by outcome", decisions.clone());
        registry.register("hook_duration_seconds", "Hook run time", hook_duration.clone());
        registry.register("hook_errors", "Hook failures", hook_errors.clone());
        registry.register("tick_lateness_seconds", "Delay of a tick behind its schedule", tick_lateness.clone());
        registry.register("targets", "Targets by state", targets.clone());
        registry.register("scale_calls", "Scale subresource writes by result", scale_calls.clone());
        registry.register("apiserver_requests", "Requests made to the Kubernetes API server", apiserver_requests.clone());
        Self {
            current_replicas,
            desired_replicas,
            decisions,
            hook_duration,
            hook_errors,
            tick_lateness,
            targets,
            scale_calls,
            apiserver_requests,
            registry: Arc::new(registry),
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "metrics encoding failed");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Installs the tracing subscriber: `RUST_LOG` filters, `info` by default.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube_runtime=warn,sqlx=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).try_init();
}

impl From<&crate::workload::TargetKey> for TargetLabels {
    fn from(key: &crate::workload::TargetKey) -> Self {
        Self { namespace: key.namespace.clone(), kind: key.kind.as_str().into(), name: key.name.clone() }
    }
}

/// Wraps `client` so that every request it sends (watches, lists, scale patches, Events,
/// Leases, metrics reads) is counted in `apiserver_requests` by verb, resource and status.
pub fn counted_client(client: kube::Client, metrics: &Metrics) -> kube::Client {
    let namespace = client.default_namespace().to_owned();
    let requests = metrics.apiserver_requests.clone();
    let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
        let (client, requests) = (client.clone(), requests.clone());
        async move {
            let (verb, resource) = classify(req.method(), req.uri());
            let result = client.send(req).await;
            let code = match &result {
                Ok(res) => res.status().as_u16().to_string(),
                Err(_) => "error".to_owned(),
            };
            requests.get_or_create(&RequestLabels { verb: verb.into(), resource, code }).inc();
            result
        }
    });
    kube::Client::new(service, namespace)
}

/// The Kubernetes verb and resource of a request path such as
/// `/apis/apps/v1/namespaces/shop/deployments/web/scale`.
fn classify(method: &http::Method, uri: &http::Uri) -> (&'static str, String) {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let mut rest: &[&str] = match segments.first() {
        Some(&"api") => segments.get(2..).unwrap_or_default(),
        Some(&"apis") => segments.get(3..).unwrap_or_default(),
        _ => &[],
    };
    // `namespaces/{ns}/...` scopes a resource; `namespaces` or `namespaces/{ns}` alone is one.
    if rest.first() == Some(&"namespaces") && rest.len() > 2 {
        rest = &rest[2..];
    }
    let resource = match rest {
        [] => "other".to_owned(),
        [resource] | [resource, _] => (*resource).to_owned(),
        [resource, _, sub, ..] => format!("{resource}/{sub}"),
    };
    let named = rest.len() >= 2;
    let watch = uri.query().is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    let verb = match *method {
        http::Method::GET if watch => "watch",
        http::Method::GET if named => "get",
        http::Method::GET => "list",
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        _ => "other",
    };
    (verb, resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(method: http::Method, uri: &str) -> (&'static str, String) {
        classify(&method, &uri.parse().unwrap())
    }

    #[test]
    fn requests_are_classified_by_verb_and_resource() {
        assert_eq!(class(http::Method::PATCH, "/apis/apps/v1/namespaces/shop/deployments/web/scale"), ("patch", "deployments/scale".into()));
        assert_eq!(class(http::Method::GET, "/apis/apps/v1/deployments?watch=true&resourceVersion=5"), ("watch", "deployments".into()));
        assert_eq!(class(http::Method::GET, "/api/v1/namespaces/shop/pods"), ("list", "pods".into()));
        assert_eq!(class(http::Method::GET, "/apis/coordination.k8s.io/v1/namespaces/default/leases/scalehub"), ("get", "leases".into()));
        assert_eq!(class(http::Method::POST, "/apis/events.k8s.io/v1/namespaces/shop/events"), ("create", "events".into()));
        assert_eq!(class(http::Method::GET, "/api/v1/namespaces/shop"), ("get", "namespaces".into()));
        assert_eq!(class(http::Method::GET, "/version"), ("list", "other".into()));
    }
}
