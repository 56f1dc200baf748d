//! Starts a hub: config, client, store, watches, registry, leader election, HTTP server.
//!
//! `start` is shared by `scalehub run`, `scalehub demo` and the end-to-end tests, so all
//! three run exactly the same wiring.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use scalehub_core::config::Config;
use scalehub_core::policy::PolicyState;

use crate::api::{self, ApiState};
use crate::events::Events;
use crate::leader::{self, LeaderConfig};
use crate::overrides;
use crate::profile::Profiles;
use crate::registry::Registry;
use crate::scaler::Scaler;
use crate::target::Shared;
use crate::telemetry::Metrics;
use crate::watch::{self, HpaIndex, PodIndex, Scope};
use crate::workload::{Kind, TargetKey};

/// How to start a hub.
#[derive(Clone, Debug)]
pub struct HubOptions {
    /// The validated config.
    pub config: Arc<Config>,
    /// Database URL; overrides the config's.
    pub database: Option<String>,
    /// HTTP listen address; overrides the config's.
    pub listen: Option<SocketAddr>,
    /// Namespace of the leader-election Lease.
    pub lease_namespace: String,
    /// This process's identity in the Lease.
    pub identity: String,
    /// Lease timing (tests shorten it).
    pub lease_duration: Duration,
    /// Keep exact tick timings in `Metrics::tick_log` (`scalehub bench`).
    pub record_ticks: bool,
}

/// A running hub.
pub struct HubHandle {
    /// Where the HTTP server listens.
    pub addr: SocketAddr,
    /// Whether this hub leads.
    pub leader: tokio::sync::watch::Receiver<bool>,
    /// Shared state of the loops (the API reads it).
    pub shared: Arc<Shared>,
    shutdown: CancellationToken,
    registry: tokio::task::JoinHandle<()>,
}

impl HubHandle {
    /// Stops the loops, releases the lease and flushes the database.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let _ = self.registry.await;
        // Give the leader task a moment to release the lease.
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Err(e) = self.shared.store.close().await {
            tracing::warn!(error = %e, "database close failed");
        }
    }
}

/// Millisecond wall clock.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Starts a hub against `client`.
pub async fn start(client: kube::Client, opts: HubOptions) -> anyhow::Result<HubHandle> {
    let config = opts.config.clone();
    let auth = api::auth::Auth::from_config(&config.api).context("api.tokenFile")?;
    let database = opts.database.clone().unwrap_or_else(|| config.database.clone());
    let store = scalehub_store::Store::open(&database).await.with_context(|| format!("opening database {database}"))?;
    let restored = restore_states(&store).await?;
    let overrides = overrides::load(&store, now_ms()).await?;
    let shutdown = CancellationToken::new();
    let metrics = Metrics::new();
    if opts.record_ticks {
        metrics.tick_log.enable();
    }
    let client = crate::telemetry::counted_client(client, &metrics);
    let auth = if config.api.kubernetes_auth { auth.with_kubernetes_review(client.clone()) } else { auth };
    let mut leader_config = LeaderConfig::new(&opts.lease_namespace, "scalehub", &opts.identity);
    leader_config.lease_duration = opts.lease_duration;
    leader_config.retry_period = (opts.lease_duration / 7).max(Duration::from_millis(200));
    let leader =
        leader::spawn(Api::<Lease>::namespaced(client.clone(), &opts.lease_namespace), leader_config, shutdown.clone());
    let hooks = scalehub_hooks::HookRunner::new(scalehub_hooks::HookRunnerConfig {
        max_concurrent: config.hook_concurrency.max(1),
        ..Default::default()
    });
    let scope = Scope { namespaces: config.namespaces.clone() };
    let shared = Arc::new(Shared {
        client: client.clone(),
        profiles: Profiles::new(config.clone()),
        store,
        hooks,
        pods: PodIndex::default(),
        pod_metrics: crate::podmetrics::PodMetricsCache::new(config.metrics_resolution),
        hpas: HpaIndex::default(),
        scaler: Scaler::new(client.clone()),
        events: Events::spawn(client.clone(), "scalehub", Duration::from_secs(300)),
        metrics: metrics.clone(),
        leader: leader.clone(),
        overrides: RwLock::new(overrides),
        restored: Mutex::new(restored),
        clock: Arc::new(now_ms),
        loops: RwLock::new(HashMap::new()),
        stream: api::stream::channel(),
    });
    shared.pods.watch(&client, &scope, shutdown.clone());
    shared.hpas.watch(&client, &scope, shutdown.clone());
    let ready = Arc::new(AtomicBool::new(false));
    // Room for bursts of workload events (a relist of thousands); the registry drains fast.
    let (tx, rx) = mpsc::channel(4096);
    watch::watch_workloads(&client, &scope, tx, shutdown.clone());
    let scopes = Kind::ALL.len() * scope.namespaces.len().max(1);
    let registry = tokio::spawn(Registry::new(shared.clone(), ready.clone(), scopes).run(rx, shutdown.clone()));
    tokio::spawn(housekeeping(shared.clone(), config.retention, shutdown.clone()));
    let state = ApiState::new(shared.clone(), ready, auth, &opts.identity, shutdown.clone());
    let listen = opts.listen.unwrap_or(config.listen);
    let addr = api::serve(listen, api::app(state), shutdown.clone())
        .await
        .with_context(|| format!("listening on {listen}"))?;
    tracing::info!(%addr, "hub serving");
    Ok(HubHandle { addr, leader, shared, shutdown, registry })
}

/// Reads every target's persisted policy state (the windows and rate events a restart resumes).
pub async fn restore_states(store: &scalehub_store::Store) -> anyhow::Result<HashMap<TargetKey, PolicyState>> {
    let mut out = HashMap::new();
    for (key, value) in store.load_policy_states().await.context("loading policy states")? {
        match serde_json::from_value::<PolicyState>(value) {
            Ok(state) => {
                out.insert(key, state);
            }
            Err(e) => tracing::warn!(target_key = %key, error = %e, "unreadable policy state ignored"),
        }
    }
    tracing::info!(targets = out.len(), "policy states restored");
    Ok(out)
}

/// Prunes old decisions and expires overrides, off the hot path.
async fn housekeeping(shared: Arc<Shared>, retention: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut last_prune = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = now_ms();
        overrides::expire(&shared, now).await;
        if last_prune.elapsed() >= Duration::from_secs(600) {
            last_prune = tokio::time::Instant::now();
            // Retention is validated (at most ten years), and saturating arithmetic keeps even
            // an unvalidated value from wrapping around and pruning everything.
            let cutoff = now.saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
            match shared.store.prune_decisions(cutoff).await {
                Ok(n) if n > 0 => tracing::info!(pruned = n, "old decisions pruned"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "pruning failed"),
            }
        }
    }
}
