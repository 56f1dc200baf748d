//! Test support: a hub's context without a cluster, with a clock the test sets.
//!
//! Used by the API's unit tests and by `tests/api`; the hub itself never calls it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use scalehub_core::config::Config;

use super::ApiState;
use super::auth::Auth;
use crate::hub::{Clock, Context};

/// A clock that stands still until the test moves it.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock showing `ms` (unix milliseconds).
    pub fn at(ms: i64) -> Self {
        Self(Arc::new(AtomicI64::new(ms)))
    }

    /// The time it shows.
    pub fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Moves it forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// The clock as `Context` takes it.
    pub fn clock(&self) -> Clock {
        let inner = self.0.clone();
        Arc::new(move || inner.load(Ordering::SeqCst))
    }
}

/// A context over `store` whose kube client points at a closed port: anything that would
/// reach a cluster fails, which the API tests never need. Must run inside a tokio runtime.
pub fn context(store: scalehub_store::Store, clock: Clock, leader: bool) -> anyhow::Result<Arc<Context>> {
    let config = Arc::new(Config::from_yaml_str("{}")?);
    let client = kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse()?))?;
    Ok(Arc::new(Context {
        client: client.clone(),
        profiles: crate::profile::Profiles::new(&config),
        store,
        hooks: scalehub_hooks::HookRunner::new(scalehub_hooks::HookRunnerConfig::default()),
        pods: Default::default(),
        pod_metrics: crate::podmetrics::PodMetricsCache::new(Duration::from_secs(15)),
        hpas: Default::default(),
        scaler: crate::scaler::Scaler::new(client.clone(), Duration::from_secs(10)),
        events: crate::events::Events::spawn(
            client,
            "scalehub-test",
            Duration::from_secs(300),
            Duration::from_secs(10),
        ),
        metrics: crate::telemetry::Metrics::new(),
        leader: tokio::sync::watch::channel(leader).1,
        shard: None,
        overrides: RwLock::new(HashMap::new()),
        restored: Mutex::new(HashMap::new()),
        clock,
        loops: RwLock::new(HashMap::new()),
        bus: crate::bus::Bus::default(),
        config_status: RwLock::new(crate::reload::ConfigStatus::started(&config, 0)),
        reconfigured: tokio::sync::Notify::new(),
    }))
}

/// API state over `ctx`, ready, with `auth`.
pub fn state(ctx: Arc<Context>, auth: Auth) -> ApiState {
    ApiState::new(ctx, Arc::new(AtomicBool::new(true)), auth, "scalehub-test", Default::default())
}

/// A fake API server for Kubernetes reviews: `token` authenticates as `user`, who may do
/// anything to `targets.scalehub.io` in `namespace` and nothing elsewhere. Counts its calls.
pub fn review_server(
    token: &'static str,
    user: &'static str,
    namespace: &'static str,
    calls: Arc<std::sync::atomic::AtomicUsize>,
) -> kube::Client {
    let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            let path = req.uri().path().to_owned();
            let body: serde_json::Value =
                serde_json::from_slice(&req.into_body().collect_bytes().await?).unwrap_or_default();
            let reply = if path.ends_with("/tokenreviews") {
                let ok = body["spec"]["token"] == token;
                serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {},
                    "status": {"authenticated": ok, "user": {"username": user, "groups": ["devs"]}}})
            } else {
                let attrs = &body["spec"]["resourceAttributes"];
                let allowed = body["spec"]["user"] == user
                    && attrs["group"] == super::kube_auth::GROUP
                    && attrs["namespace"] == namespace;
                serde_json::json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {}, "status": {"allowed": allowed}})
            };
            Ok::<_, kube::Error>(http::Response::new(kube::client::Body::from(reply.to_string().into_bytes())))
        }
    });
    kube::Client::new(service, "default")
}
