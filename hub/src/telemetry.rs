//! Prometheus metrics of the hub (prometheus-client), and logging set-up.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
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

impl HookLabels {
    /// The label of a hook record's stage: per-pod metric runs (`metric[web-7f9c-x2]`) count as
    /// `metric`, so the series do not grow with pod churn.
    pub fn of(stage: &str) -> Self {
        let hook = stage.split_once('[').map_or(stage, |(stage, _)| stage);
        Self { hook: hook.to_owned() }
    }
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
    /// Target loops restarted after a panic.
    pub loop_restarts: Counter,
    /// 1 while this hub holds the Lease (set when scraped).
    pub leader: Gauge,
    /// Failed ticks in a row, for the targets failing now (a series only while failing).
    pub failing_ticks: Family<TargetLabels, Gauge>,
    /// 1 for a target held at its maximum while its evaluation asks for at least that (a
    /// series only while it is).
    pub at_max: Family<TargetLabels, Gauge>,
    /// The store writer's failed transaction attempts (see [`Metrics::observe_store`]).
    store_failed_attempts: Counter,
    /// Writes lost after retries.
    store_lost_writes: Counter,
    /// 1 while the store cannot write.
    store_failing: Gauge,
    /// Hook orphans reaped and killed (from [`scalehub_hooks::reaper::stats`] at each scrape).
    hook_orphans_reaped: Counter,
    hook_orphans_killed: Counter,
    /// Exact tick timings for `scalehub bench` (kept only once enabled).
    pub tick_log: Arc<TickLog>,
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
        let loop_restarts = Counter::default();
        let leader = Gauge::default();
        let failing_ticks = Family::<TargetLabels, Gauge>::default();
        let at_max = Family::<TargetLabels, Gauge>::default();
        let store_failed_attempts = Counter::default();
        let store_lost_writes = Counter::default();
        let store_failing = Gauge::default();
        let hook_orphans_reaped = Counter::default();
        let hook_orphans_killed = Counter::default();
        registry.register(
            "hook_orphans_reaped",
            "Exited processes left by hooks that the hub reaped",
            hook_orphans_reaped.clone(),
        );
        registry.register(
            "hook_orphans_killed",
            "Processes still running after their hook's run ended, killed by the hub",
            hook_orphans_killed.clone(),
        );
        registry.register(
            "store_failed_attempts",
            "Database write transactions that failed (retries included)",
            store_failed_attempts.clone(),
        );
        registry.register("store_lost_writes", "Database writes lost after retries", store_lost_writes.clone());
        registry.register("store_failing", "1 while the database cannot be written", store_failing.clone());
        registry.register("target_current_replicas", "Replicas the workload has", current_replicas.clone());
        registry.register("target_desired_replicas", "Replicas the last decision wanted", desired_replicas.clone());
        registry.register("decisions", "Decisions by outcome", decisions.clone());
        registry.register("hook_duration_seconds", "Hook run time", hook_duration.clone());
        registry.register("hook_errors", "Hook failures", hook_errors.clone());
        registry.register("tick_lateness_seconds", "Delay of a tick behind its schedule", tick_lateness.clone());
        registry.register("targets", "Targets by state", targets.clone());
        registry.register("scale_calls", "Scale subresource writes by result", scale_calls.clone());
        registry.register(
            "apiserver_requests",
            "Requests made to the Kubernetes API server",
            apiserver_requests.clone(),
        );
        registry.register("target_loop_restarts", "Target loops restarted after a panic", loop_restarts.clone());
        registry.register("leader", "1 while this hub holds the Lease and scales, 0 on a standby", leader.clone());
        registry.register(
            "target_failing_ticks",
            "Failed ticks in a row of a target that is failing now (no series while it succeeds)",
            failing_ticks.clone(),
        );
        registry.register(
            "target_at_max",
            "1 while a target is held at its maximum and its evaluation asks for at least that",
            at_max.clone(),
        );
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
            loop_restarts,
            leader,
            failing_ticks,
            at_max,
            store_failed_attempts,
            store_lost_writes,
            store_failing,
            hook_orphans_reaped,
            hook_orphans_killed,
            tick_log: Arc::new(TickLog::default()),
            registry: Arc::new(registry),
        }
    }

    /// Brings the store's metrics up to its writer's counters (read when `/metrics` is scraped).
    pub fn observe_store(&self, stats: &scalehub_store::WriterStats) {
        catch_up(&self.store_failed_attempts, stats.failed_attempts);
        catch_up(&self.store_lost_writes, stats.failed);
        self.store_failing.set(i64::from(stats.failing));
    }

    /// Sets `scalehub_targets{state}` to these counts; states no longer present go away.
    pub fn set_target_counts(&self, counts: &std::collections::BTreeMap<String, u64>) {
        self.targets.clear();
        for (state, n) in counts {
            self.targets
                .get_or_create(&StateLabels { state: state.clone() })
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let reaper = scalehub_hooks::reaper::stats();
        catch_up(&self.hook_orphans_reaped, reaper.reaped);
        catch_up(&self.hook_orphans_killed, reaper.killed);
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "metrics encoding failed");
        }
        out
    }
}

/// Raises a counter to a total kept elsewhere.
fn catch_up(counter: &Counter, total: u64) {
    counter.inc_by(total.saturating_sub(counter.get()));
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
    // Logs go to stderr, so a command's own output on stdout (bench's JSON line, the URLs
    // that run and demo print) stays machine-readable.
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr).try_init();
}

impl From<&crate::workload::TargetKey> for TargetLabels {
    fn from(key: &crate::workload::TargetKey) -> Self {
        Self { namespace: key.namespace.clone(), kind: key.kind.as_str().into(), name: key.name.clone() }
    }
}

/// Wraps `client` so that every request it sends (watches, lists, scale patches, Events,
/// Leases, metrics reads) is counted in `apiserver_requests` by verb, resource and status.
pub fn counted_client(client: kube::Client, metrics: &Metrics, identity: &str) -> kube::Client {
    let namespace = client.default_namespace().to_owned();
    let requests = metrics.apiserver_requests.clone();
    // `scalehub/VERSION (IDENTITY)`: the API server's audit log (and the simulator's
    // accounting) can tell which replica made a request. An identity that is no valid header
    // value is left out.
    let agent = http::HeaderValue::from_str(&format!("scalehub/{} ({identity})", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|_| http::HeaderValue::from_static(concat!("scalehub/", env!("CARGO_PKG_VERSION"))));
    let service = tower::service_fn(move |mut req: http::Request<kube::client::Body>| {
        let (client, requests) = (client.clone(), requests.clone());
        if !req.headers().contains_key(http::header::USER_AGENT) {
            req.headers_mut().insert(http::header::USER_AGENT, agent.clone());
        }
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
    // The metrics APIs serve `pods` too: name their group so a metrics read is never taken for
    // a pod list (`pods.metrics.k8s.io`, as kubectl spells it).
    let resource = match segments.get(1) {
        Some(group) if segments.first() == Some(&"apis") && group.ends_with("metrics.k8s.io") => {
            format!("{resource}.{group}")
        }
        _ => resource,
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
        assert_eq!(
            class(http::Method::PATCH, "/apis/apps/v1/namespaces/shop/deployments/web/scale"),
            ("patch", "deployments/scale".into())
        );
        assert_eq!(
            class(http::Method::GET, "/apis/apps/v1/deployments?watch=true&resourceVersion=5"),
            ("watch", "deployments".into())
        );
        assert_eq!(class(http::Method::GET, "/api/v1/namespaces/shop/pods"), ("list", "pods".into()));
        assert_eq!(
            class(http::Method::GET, "/apis/coordination.k8s.io/v1/namespaces/default/leases/scalehub"),
            ("get", "leases".into())
        );
        assert_eq!(
            class(http::Method::POST, "/apis/events.k8s.io/v1/namespaces/shop/events"),
            ("create", "events".into())
        );
        assert_eq!(class(http::Method::GET, "/api/v1/namespaces/shop"), ("get", "namespaces".into()));
        assert_eq!(class(http::Method::GET, "/version"), ("list", "other".into()));
        assert_eq!(
            class(http::Method::GET, "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods"),
            ("list", "pods.metrics.k8s.io".into())
        );
        assert_eq!(
            class(http::Method::GET, "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/rps"),
            ("get", "pods/rps.custom.metrics.k8s.io".into())
        );
    }

    #[test]
    fn per_pod_hook_runs_share_their_stage_label() {
        let metrics = Metrics::new();
        for pod in ["web-1", "web-2", "web-3"] {
            metrics.hook_duration.get_or_create(&HookLabels::of(&format!("metric[{pod}]"))).observe(0.01);
        }
        metrics.hook_duration.get_or_create(&HookLabels::of("evaluate")).observe(0.01);
        let text = metrics.encode();
        assert!(!text.contains("web-"), "a pod name became a label:\n{text}");
        assert!(text.contains("scalehub_hook_duration_seconds_count{hook=\"metric\"} 3"), "{text}");
        assert!(text.contains("scalehub_hook_duration_seconds_count{hook=\"evaluate\"} 1"), "{text}");
    }
}

/// Exact tick timings, for `scalehub bench`: the Prometheus histogram's buckets are too coarse
/// for a p99.9 and cannot say which due tick never ran. Off in a normal hub (nothing is kept).
#[derive(Default)]
pub struct TickLog {
    enabled: std::sync::atomic::AtomicBool,
    inner: std::sync::Mutex<TickLogInner>,
}

#[derive(Default)]
struct TickLogInner {
    /// Each loop's first scheduled tick and its interval: the grid of ticks that are due.
    schedules: Vec<(tokio::time::Instant, std::time::Duration)>,
    /// Each tick run: when it was due and when it started.
    ticks: Vec<(tokio::time::Instant, tokio::time::Instant)>,
}

/// Tick counts and lateness over a window, from a [`TickLog`].
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct TickStats {
    /// Ticks whose schedule fell in the window.
    pub due: u64,
    /// Of those, ticks that started (however late).
    pub run: u64,
    /// Of the due ticks, the share that started within 1 s of schedule.
    pub within_1s: f64,
    /// Lateness quantiles over the due ticks, seconds; a due tick that never started counts as
    /// infinitely late (reported as the window's length).
    pub lateness_p50: f64,
    /// 99th percentile.
    pub lateness_p99: f64,
    /// 99.9th percentile.
    pub lateness_p999: f64,
}

impl TickLog {
    /// Starts keeping timings.
    pub fn enable(&self) {
        self.enabled.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn enabled(&self) -> bool {
        self.enabled.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A loop's schedule: its first tick is due at `first`, then every `interval`.
    pub fn schedule(&self, first: tokio::time::Instant, interval: std::time::Duration) {
        if self.enabled()
            && let Ok(mut inner) = self.inner.lock()
        {
            inner.schedules.push((first, interval));
        }
    }

    /// A tick due at `due` started at `started`.
    pub fn tick(&self, due: tokio::time::Instant, started: tokio::time::Instant) {
        if self.enabled()
            && let Ok(mut inner) = self.inner.lock()
        {
            inner.ticks.push((due, started));
        }
    }

    /// Ticks due in `[from, to)` by the loops' schedules, and how late those that ran started.
    pub fn stats(&self, from: tokio::time::Instant, to: tokio::time::Instant) -> TickStats {
        let Ok(inner) = self.inner.lock() else { return TickStats::default() };
        let mut due = 0u64;
        for &(first, interval) in &inner.schedules {
            if interval.is_zero() {
                continue;
            }
            // Grid points first + k·interval in [from, to).
            let count_before = |t: tokio::time::Instant| -> u64 {
                if t <= first { 0 } else { (t - first).as_nanos().div_ceil(interval.as_nanos()) as u64 }
            };
            due += count_before(to) - count_before(from);
        }
        let mut lateness: Vec<f64> = inner
            .ticks
            .iter()
            .filter(|(d, _)| *d >= from && *d < to)
            .map(|(d, s)| s.saturating_duration_since(*d).as_secs_f64())
            .collect();
        let run = lateness.len() as u64;
        let never = (to - from).as_secs_f64();
        lateness.extend(std::iter::repeat_n(never, due.saturating_sub(run) as usize));
        lateness.sort_by(f64::total_cmp);
        let q = |p: f64| -> f64 {
            if lateness.is_empty() {
                return 0.0;
            }
            let i = ((lateness.len() as f64 * p).ceil() as usize).clamp(1, lateness.len()) - 1;
            lateness[i]
        };
        let within = lateness.iter().filter(|l| **l <= 1.0).count() as f64;
        TickStats {
            due,
            run,
            within_1s: if due == 0 { 1.0 } else { (within / due.max(run) as f64).min(1.0) },
            lateness_p50: q(0.5),
            lateness_p99: q(0.99),
            lateness_p999: q(0.999),
        }
    }
}
