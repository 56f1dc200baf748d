//! Starts a hub: config, client, store, watches, registry, leader election, HTTP server.
//!
//! `start` is shared by `scalehub run`, `scalehub demo` and the end-to-end tests, so all
//! three run exactly the same wiring.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use scalehub_core::config::Config;
use scalehub_core::policy::{Override, PolicyState};

use crate::api::{self, ApiState};
use crate::events::Events;
use crate::leader::{self, LeaderConfig};
use crate::overrides;
use crate::profile::Profiles;
use crate::scaler::Scaler;
use crate::target::Registry;
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
    /// Where the other replicas of a sharded hub reach this one's API (the pod's IP; port 0
    /// means the listen port); `None` uses the listen address unless that is a wildcard.
    pub advertise: Option<SocketAddr>,
    /// Namespace of the leader-election Lease.
    pub lease_namespace: String,
    /// This process's identity in the Lease.
    pub identity: String,
    /// Lease timing (tests shorten it).
    pub lease_duration: Duration,
    /// Keep exact tick timings in `Metrics::tick_log` (`scalehub bench`).
    pub record_ticks: bool,
    /// The config file, re-read when it changes (`None`: the config never changes).
    pub config_path: Option<std::path::PathBuf>,
}

/// The hub-wide context: everything the target loops and the API share; one per hub.
pub struct Context {
    /// Kubernetes client (for metrics APIs; workloads and pods come from the caches).
    pub client: kube::Client,
    /// Profiles from the config, with their hooks resolved.
    pub profiles: Profiles,
    /// The database.
    pub store: scalehub_store::Store,
    /// Runs hooks under the global concurrency bound.
    pub hooks: scalehub_hooks::HookRunner,
    /// Pods by namespace, from the pod watch.
    pub pods: PodIndex,
    /// PodMetrics shared by namespace.
    pub pod_metrics: crate::podmetrics::PodMetricsCache,
    /// Workloads that an HPA owns.
    pub hpas: HpaIndex,
    /// Writes `/scale`.
    pub scaler: Scaler,
    /// Events on workloads.
    pub events: Events,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Whether this hub may act: it holds the leader Lease, or (sharded) its membership Lease
    /// is fresh. A standby decides nothing.
    pub leader: tokio::sync::watch::Receiver<bool>,
    /// When replicas shard the targets: this replica's identity and the live members. `None`:
    /// one leader ticks every target.
    pub shard: Option<crate::shard::Shard>,
    /// Active overrides by target, mirrored from the store so ticks need no query.
    pub overrides: RwLock<HashMap<TargetKey, Override>>,
    /// What the store says of each target at start, taken by each loop when it starts.
    pub restored: Mutex<HashMap<TargetKey, Restored>>,
    /// Wall clock in unix milliseconds; replaceable in tests (e.g. to expire overrides).
    pub clock: Clock,
    /// The running loops, for the API's on-demand runs.
    pub loops: RwLock<HashMap<TargetKey, crate::target::LoopHandle>>,
    /// What the loops record, for whoever listens (the API's live stream); publishing never
    /// blocks a tick.
    pub bus: crate::bus::Bus,
    /// The config in force: when it was loaded, what it warns of (see [`crate::reload`]).
    pub config_status: RwLock<crate::reload::ConfigStatus>,
    /// Notified when a reloaded config is in force, so every target re-reads its annotations.
    pub reconfigured: tokio::sync::Notify,
}

/// A wall clock in unix milliseconds.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

impl Context {
    /// Marks a target removed in the store (its history stays).
    pub async fn target_removed(&self, key: &TargetKey) {
        let at = (self.clock)();
        if let Err(e) = self.store.mark_target_removed(key, at).await {
            tracing::warn!(target_key = %key, error = %e, "could not mark the target removed");
        }
        let labels = crate::telemetry::TargetLabels::from(key);
        self.metrics.current_replicas.remove(&labels);
        self.metrics.desired_replicas.remove(&labels);
        self.metrics.failing_ticks.remove(&labels);
        self.metrics.at_max.remove(&labels);
    }

    /// The active override of a target at `now`, if any.
    pub fn override_for(&self, key: &TargetKey, now: i64) -> Option<Override> {
        let map = self.overrides.read().ok()?;
        map.get(key).filter(|o| o.active_at(now)).cloned()
    }
}

/// A running hub.
pub struct HubHandle {
    /// Where the HTTP server listens.
    pub addr: SocketAddr,
    /// Whether this hub leads.
    pub leader: tokio::sync::watch::Receiver<bool>,
    /// The hub-wide context (the API reads it).
    pub ctx: Arc<Context>,
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
        if let Err(e) = self.ctx.store.close().await {
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
    for warning in &config.warnings {
        tracing::warn!(%warning, "hub config");
    }
    let auth = api::auth::Auth::from_config(&config.api).context("api.tokenFile")?;
    // Extra kinds are registered before the store is read, so stored targets of them name
    // the served kind.
    let kinds = register_kinds(&config)?;
    let database = opts.database.clone().unwrap_or_else(|| config.database.clone());
    let store = scalehub_store::Store::open(&database)
        .await
        .with_context(|| format!("opening database {}", scalehub_store::redact_url(&database)))?;
    let sharded = match (store.backend(), config.sharding) {
        (scalehub_store::Backend::Sqlite, Some(true)) => {
            anyhow::bail!("sharding: true needs a postgres:// database that the replicas share")
        }
        (scalehub_store::Backend::Postgres, None | Some(true)) => true,
        _ => false,
    };
    let restored = restore(&store).await?;
    let overrides = overrides::load(&store, now_ms()).await?;
    let shutdown = CancellationToken::new();
    let metrics = Metrics::new();
    if opts.record_ticks {
        metrics.tick_log.enable();
    }
    let client = crate::telemetry::counted_client(client, &metrics, &opts.identity);
    let auth = if config.api.kubernetes_auth {
        auth.with_kubernetes_review(client.clone(), config.kubernetes_timeout)
    } else {
        auth
    };
    let mut leader_config = LeaderConfig::new(&opts.lease_namespace, "scalehub", &opts.identity);
    leader_config.lease_duration = opts.lease_duration;
    leader_config.retry_period = (opts.lease_duration / 7).max(Duration::from_millis(200));
    // A renewal that cannot finish within half the lease must not hold up the next attempt.
    leader_config.request_timeout = config.kubernetes_timeout.min(opts.lease_duration / 2);
    let leases = Api::<Lease>::namespaced(client.clone(), &opts.lease_namespace);
    // Bound before the members start, so that a member Lease names the real port.
    let listen = opts.listen.unwrap_or(config.listen);
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on {listen}"))?;
    let addr = listener.local_addr().with_context(|| format!("listening on {listen}"))?;
    let (leader, shard) = match sharded {
        false => (leader::spawn(leases, leader_config, shutdown.clone()), None),
        true => {
            let address = match opts.advertise {
                Some(advertise) if advertise.port() == 0 => Some(SocketAddr::new(advertise.ip(), addr.port())),
                Some(advertise) => Some(advertise),
                None => (!addr.ip().is_unspecified()).then_some(addr),
            };
            if address.is_none() {
                tracing::warn!(
                    %addr,
                    "no --advertise-address: the other replicas cannot forward evaluations of this one's targets to it"
                );
            }
            let member_config = crate::shard::members::MemberConfig {
                identity: opts.identity.clone(),
                lease_duration: leader_config.lease_duration,
                retry_period: leader_config.retry_period,
                request_timeout: leader_config.request_timeout,
                address,
            };
            let members = crate::shard::members::spawn(leases, member_config, shutdown.clone());
            tracing::info!(identity = %opts.identity, "sharding targets over the replicas that share the database");
            (live_member(members.clone()), Some(crate::shard::Shard { me: opts.identity.clone(), address, members }))
        }
    };
    let hooks = scalehub_hooks::HookRunner::new(scalehub_hooks::HookRunnerConfig {
        max_concurrent: config.hook_concurrency.max(1),
        ..Default::default()
    });
    let scope = Scope { namespaces: config.namespaces.clone() };
    let ctx = Arc::new(Context {
        client: client.clone(),
        profiles: Profiles::new(&config),
        store,
        hooks,
        pods: PodIndex::default(),
        pod_metrics: crate::podmetrics::PodMetricsCache::new(config.metrics_resolution),
        hpas: HpaIndex::default(),
        scaler: Scaler::new(client.clone(), config.kubernetes_timeout),
        events: Events::spawn(client.clone(), "scalehub", Duration::from_secs(300), config.kubernetes_timeout),
        metrics: metrics.clone(),
        leader: leader.clone(),
        shard,
        overrides: RwLock::new(overrides),
        restored: Mutex::new(restored),
        clock: Arc::new(now_ms),
        loops: RwLock::new(HashMap::new()),
        bus: crate::bus::Bus::default(),
        config_status: RwLock::new(crate::reload::ConfigStatus::started(&config, now_ms())),
        reconfigured: tokio::sync::Notify::new(),
    });
    if let Some(path) = opts.config_path.clone() {
        crate::reload::spawn(ctx.clone(), path, config.clone(), shutdown.clone());
    }
    ctx.pods.watch(&client, &scope, shutdown.clone());
    ctx.hpas.watch(&client, &scope, shutdown.clone());
    let ready = Arc::new(AtomicBool::new(false));
    // Room for bursts of workload events (a relist of thousands); the registry drains fast.
    let (tx, rx) = mpsc::channel(4096);
    watch::watch_workloads(&client, &scope, &kinds, config.kubernetes_timeout, tx, shutdown.clone());
    tokio::spawn(check_kinds(ctx.clone(), kinds.clone()));
    // Readiness waits for the built-in kinds only: an extra kind whose resource is not
    // installed yet must not hold every other target back (its watch keeps retrying).
    let scopes = Kind::BUILTIN.len() * scope.namespaces.len().max(1);
    let registry = tokio::spawn(Registry::new(ctx.clone(), ready.clone(), scopes).run(rx, shutdown.clone()));
    tokio::spawn(housekeeping(ctx.clone(), config.retention, shutdown.clone()));
    let state = ApiState::new(ctx.clone(), ready, auth, &opts.identity, shutdown.clone());
    api::serve_on(listener, api::app(state), shutdown.clone());
    tracing::info!(%addr, "hub serving");
    Ok(HubHandle { addr, leader, ctx, shutdown, registry })
}

/// The kinds this hub watches: the built-ins and the config's `extraKinds`, registered.
fn register_kinds(config: &scalehub_core::Config) -> anyhow::Result<Vec<Kind>> {
    let mut kinds = Kind::BUILTIN.to_vec();
    for (i, extra) in config.extra_kinds.iter().enumerate() {
        let kind = Kind::register(&extra.group, &extra.version, &extra.kind, &extra.plural)
            .with_context(|| format!("extraKinds[{i}]"))?;
        kinds.push(kind);
    }
    Ok(kinds)
}

/// Says, in the log and on `/api/v1/hub`, which extra kinds the API server does not serve
/// with a `/scale` subresource (a CRD not installed yet, a typo in `plural`): their targets
/// appear once it does, without a restart, as their watch keeps retrying.
async fn check_kinds(ctx: Arc<Context>, kinds: Vec<Kind>) {
    for kind in kinds.into_iter().filter(|k| !k.is_builtin()) {
        let info = kind.info();
        let api_version = info.api_version();
        let listed = if info.group.is_empty() {
            ctx.client.list_core_api_resources(&api_version).await
        } else {
            ctx.client.list_api_group_resources(&api_version).await
        };
        let scale = format!("{}/scale", info.plural);
        let problem = match listed {
            Ok(list) if list.resources.iter().any(|r| r.name == scale) => continue,
            Ok(list) if list.resources.iter().any(|r| r.name == info.plural) => {
                format!("{} {api_version} has no /scale subresource, so it cannot be scaled", info.plural)
            }
            Ok(_) => format!("{api_version} serves no resource {}", info.plural),
            Err(e) => format!("{api_version} is not served ({e})"),
        };
        let warning = format!("extraKinds: {}: {problem}; its targets wait until it is served", info.kind);
        tracing::warn!(%warning, "extra kind");
        if let Ok(mut status) = ctx.config_status.write() {
            status.warnings.push(warning);
        }
    }
}

/// What a restarting hub resumes of one target.
#[derive(Debug, Default)]
pub struct Restored {
    /// The windows and rate events.
    pub policy: PolicyState,
    /// What its row says, so that a first tick that changes nothing rewrites nothing.
    pub row: Option<scalehub_store::TargetSnapshot>,
    /// What its newest decision says, likewise.
    pub decision: Option<scalehub_store::DecisionSnapshot>,
}

/// Reads what every target resumes from: its policy state (the windows and rate events), its
/// row and its newest decision. The three reads run side by side.
pub async fn restore(store: &scalehub_store::Store) -> anyhow::Result<HashMap<TargetKey, Restored>> {
    let (states, rows, decisions) =
        tokio::try_join!(store.load_policy_states(), store.target_snapshots(), store.last_decision_snapshots())
            .context("reading what the targets resume from")?;
    let mut out: HashMap<TargetKey, Restored> = HashMap::with_capacity(rows.len());
    let mut policies = 0;
    for (key, value) in states {
        match serde_json::from_value::<PolicyState>(value) {
            Ok(state) => {
                policies += 1;
                out.entry(key).or_default().policy = state;
            }
            Err(e) => tracing::warn!(target_key = %key, error = %e, "unreadable policy state ignored"),
        }
    }
    for row in rows {
        let key = row.key.clone();
        out.entry(key).or_default().row = Some(row);
    }
    for decision in decisions {
        let key = decision.key.clone();
        out.entry(key).or_default().decision = Some(decision);
    }
    tracing::info!(targets = out.len(), policy_states = policies, "target state restored");
    Ok(out)
}

/// Prunes old decisions and expires overrides, off the hot path.
/// Whether this sharded replica's membership is fresh, as a leadership flag: a replica whose
/// Lease went stale must act on nothing.
fn live_member(
    mut members: tokio::sync::watch::Receiver<crate::shard::members::Members>,
) -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(members.borrow().me_live);
    tokio::spawn(async move {
        while members.changed().await.is_ok() {
            let live = members.borrow().me_live;
            tx.send_if_modified(|current| std::mem::replace(current, live) != live);
        }
        let _ = tx.send(false);
    });
    rx
}

async fn housekeeping(ctx: Arc<Context>, retention: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut last_prune = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = now_ms();
        if ctx.shard.is_some() {
            // Another replica may have set or cleared an override of a target this one ticks.
            match overrides::load(&ctx.store, now).await {
                Ok(fresh) => {
                    if let Ok(mut map) = ctx.overrides.write() {
                        *map = fresh;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "overrides not refreshed from the database"),
            }
        }
        overrides::expire(&ctx, now).await;
        if last_prune.elapsed() >= Duration::from_secs(600) {
            last_prune = tokio::time::Instant::now();
            // Retention is validated (at most ten years), and saturating arithmetic keeps even
            // an unvalidated value from wrapping around and pruning everything.
            let cutoff = now.saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
            match ctx.store.prune_decisions(cutoff).await {
                Ok(n) if n > 0 => tracing::info!(pruned = n, "old decisions pruned"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "pruning failed"),
            }
        }
    }
}
