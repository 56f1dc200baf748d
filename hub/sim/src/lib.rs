//! scalehub-sim: a Kubernetes-compatible API server simulator.
//!
//! Layout, in request order:
//! - [`resources`]: the table of served resources (what discovery advertises).
//! - `router`: parses `/api` and `/apis` paths into a resource request, counts it
//!   ([`accounting`]), injects [`faults`], and dispatches to `objects`, `watch` or `scale`.
//! - [`store`]: objects, the global resourceVersion, the bounded watch history.
//! - [`selector`], [`patch`]: label/field selectors and the four patch types.
//! - `discovery`: `/version`, `/api`, `/apis`, `/openapi/v3` for kubectl.
//! - [`controllers`]: pods follow workload replicas and turn Ready; workload status stays current.
//! - [`load`]: per-workload CPU/memory demand curves behind `metrics.k8s.io` PodMetrics.
//! - [`scenario`]: YAML files that seed namespaces, workloads, load and faults.
//! - `admin`: `/sim/admin/faults` and `/sim/admin/requests`.

pub mod accounting;
mod admin;
pub mod controllers;
mod convert;
mod custom_metrics;
mod discovery;
pub mod error;
pub mod faults;
pub mod load;
pub mod meta;
mod metrics;
mod objects;
pub mod patch;
pub mod resources;
mod router;
mod scale;
pub mod scenario;
pub mod selector;
mod ssa;
pub mod store;
mod table;
mod watch;

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use accounting::Accounting;
pub use error::ApiError;
pub use faults::{FaultConfig, Faults};
pub use scenario::Scenario;
pub use store::Store;

/// Errors starting the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The scenario could not be applied.
    #[error("scenario: {0}")]
    Scenario(#[from] scenario::ScenarioError),
}

/// How to run the simulator.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// How long a new pod stays Pending before it turns Running and Ready.
    pub pod_ready_delay: Duration,
    /// Namespaces, workloads, load and faults to start with.
    pub scenario: Option<Scenario>,
    /// Faults active from the start (the scenario's faults override these when set).
    pub faults: FaultConfig,
    /// Watch events kept per resource for replay; older resourceVersions get 410 Expired.
    pub history_limit: usize,
    /// Interval between BOOKMARK events on watches that asked for them.
    pub bookmark_interval: Duration,
    /// Watch duration when the client sends no `timeoutSeconds` (the real server's
    /// `--min-request-timeout` is 1800 s).
    pub default_watch_timeout: Duration,
    /// Whether the emulated controllers run (pods, workload status).
    pub controllers: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            pod_ready_delay: Duration::from_secs(2),
            scenario: None,
            faults: FaultConfig::default(),
            history_limit: 20_000,
            bookmark_interval: Duration::from_secs(60),
            default_watch_timeout: Duration::from_secs(1800),
            controllers: true,
        }
    }
}

/// State shared by every request handler and the controllers.
pub(crate) struct AppState {
    pub store: Arc<Store>,
    pub faults: Faults,
    pub accounting: Arc<Accounting>,
    pub load: Arc<load::LoadModel>,
    pub bookmark_interval: Duration,
    pub default_watch_timeout: Duration,
}

/// A running simulator.
pub struct SimHandle {
    addr: SocketAddr,
    state: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    controllers: Option<JoinHandle<()>>,
}

/// Binds, seeds the scenario, spawns the server and controllers, and returns at once.
pub async fn start(opts: SimOptions) -> Result<SimHandle, SimError> {
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|source| SimError::Bind { addr: opts.listen, source })?;
    let addr = listener.local_addr().map_err(|source| SimError::Bind { addr: opts.listen, source })?;
    let store = Store::new(opts.history_limit);
    let faults_config = opts.scenario.as_ref().and_then(|s| s.faults.clone()).unwrap_or_else(|| opts.faults.clone());
    let ready_delay = opts.scenario.as_ref().and_then(|s| s.pod_ready_delay()).unwrap_or(opts.pod_ready_delay);
    let state = Arc::new(AppState {
        store: store.clone(),
        faults: Faults::new(faults_config),
        accounting: Arc::new(Accounting::default()),
        load: Arc::new(load::LoadModel::new()),
        bookmark_interval: opts.bookmark_interval,
        default_watch_timeout: opts.default_watch_timeout,
    });
    let controllers = opts.controllers.then(|| controllers::spawn(store.clone(), ready_delay));
    if let Some(scenario) = &opts.scenario {
        scenario.apply(&store)?;
    }
    let app = router::app(state.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = rx.await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "simulator server failed");
        }
    });
    tracing::info!(%addr, "kubernetes simulator listening");
    Ok(SimHandle { addr, state, shutdown: Some(tx), server: Some(server), controllers })
}

impl SimHandle {
    /// The bound address (the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig with cluster, user and context `scalehub-sim`, namespace `default`.
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: scalehub-sim\n  cluster:\n    server: {url}\n\
             users:\n- name: scalehub-sim\n  user: {{}}\ncontexts:\n- name: scalehub-sim\n  context:\n    \
             cluster: scalehub-sim\n    user: scalehub-sim\n    namespace: default\ncurrent-context: scalehub-sim\n",
            url = self.url()
        )
    }

    /// Writes [`Self::kubeconfig_yaml`] to a file.
    pub fn write_kubeconfig(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    /// Runtime fault control.
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// Request counters.
    pub fn accounting(&self) -> &Accounting {
        &self.state.accounting
    }

    /// The object store, for tests that inspect or seed state directly.
    pub fn store(&self) -> &Arc<Store> {
        &self.state.store
    }

    /// Stops accepting requests, ends open streams and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(c) = self.controllers.take() {
            c.abort();
        }
        if let Some(server) = self.server.take() {
            // Watches are long-lived: give them a moment to notice, then stop waiting.
            let abort = server.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), server).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(c) = self.controllers.take() {
            c.abort();
        }
        if let Some(s) = self.server.take() {
            s.abort();
        }
    }
}
