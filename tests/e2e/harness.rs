//! The servers every end-to-end test runs against, the per-test environment, and bounded waits.
//!
//! The in-process simulator is always there; the real kube-apiserver joins when
//! `SCALEHUB_REAL_KUBECONFIG` names its kubeconfig (scripts/test.sh sets it). A test body runs
//! on every server at once (the bodies mostly wait on ticks, so running them side by side keeps
//! the suite short), each in a fresh namespace with its own temporary directory for the hub's
//! database, config and hook files. A failure names the server it happened on.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use scalehub::hub::{self, HubHandle, HubOptions};
use scalehub_sim::{SimHandle, SimOptions};
use serde_json::Value;

/// Environment variable naming the real kube-apiserver's kubeconfig.
pub const REAL_KUBECONFIG_ENV: &str = "SCALEHUB_REAL_KUBECONFIG";

/// Environment variable naming the real kube-apiserver's audit log of `/scale` writes
/// (scripts/real-apiserver.sh writes it; scripts/test.sh sets this).
pub const REAL_AUDIT_LOG_ENV: &str = "SCALEHUB_REAL_AUDIT_LOG";

/// How long one test body may run on one server before it counts as hung;
/// `SCALEHUB_E2E_BODY_SECS` raises it for the long drills (scripts/drills.sh).
fn body_timeout() -> Duration {
    let secs = std::env::var("SCALEHUB_E2E_BODY_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(120);
    Duration::from_secs(secs)
}

/// Default bound on a single wait: a few 1 s ticks plus the jittered first tick and hook start-up.
pub const WAIT: Duration = Duration::from_secs(20);

/// How long a lease lasts in tests: short, so a standby takes over within seconds.
pub const LEASE: Duration = Duration::from_secs(3);

/// One API server under test.
struct Server {
    name: &'static str,
    client: Client,
    is_real: bool,
    /// The kubeconfig a subprocess hub reads: the real server's file, or the simulator's text.
    kubeconfig: KubeconfigSource,
    /// Keeps the in-process simulator alive for as long as the test runs.
    sim: Option<SimHandle>,
    /// The real server's audit log of `/scale` writes.
    audit_log: Option<PathBuf>,
}

enum KubeconfigSource {
    File(PathBuf),
    Text(String),
}

async fn servers() -> Vec<Server> {
    // The hub's own logs, when asked for (`RUST_LOG=info cargo test --test e2e -- --nocapture`).
    if std::env::var_os("RUST_LOG").is_some() {
        scalehub::telemetry::init_logging();
    }
    let mut out = vec![sim_server().await.expect("start the in-process simulator")];
    if let Ok(path) = std::env::var(REAL_KUBECONFIG_ENV) {
        let real =
            real_server(&path).await.unwrap_or_else(|e| panic!("connect to the real kube-apiserver ({path}): {e:#}"));
        out.push(real);
    }
    out
}

async fn sim_server() -> anyhow::Result<Server> {
    // Pods turn Ready quickly so per-pod and CPU tests need not wait.
    let opts = SimOptions { pod_ready_delay: Duration::from_millis(200), ..SimOptions::default() };
    let sim = scalehub_sim::start(opts).await.context("start simulator")?;
    let text = sim.kubeconfig_yaml();
    let kubeconfig: Kubeconfig = serde_saphyr::from_str(&text).context("parse the simulator's kubeconfig")?;
    let client = client_from(kubeconfig).await?;
    Ok(Server {
        name: "sim",
        client,
        is_real: false,
        kubeconfig: KubeconfigSource::Text(text),
        sim: Some(sim),
        audit_log: None,
    })
}

async fn real_server(path: &str) -> anyhow::Result<Server> {
    let kubeconfig = Kubeconfig::read_from(path).context("read kubeconfig")?;
    let client = client_from(kubeconfig).await?;
    Ok(Server {
        name: "kube-apiserver-1.20",
        client,
        is_real: true,
        kubeconfig: KubeconfigSource::File(PathBuf::from(path)),
        sim: None,
        audit_log: std::env::var_os(REAL_AUDIT_LOG_ENV).map(PathBuf::from),
    })
}

async fn client_from(kubeconfig: Kubeconfig) -> anyhow::Result<Client> {
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .context("build client config")?;
    Client::try_from(config).context("build client")
}

/// What a test body gets: a server, its own namespace and its own temporary directory.
pub struct Env {
    /// Server name, for messages.
    pub server: &'static str,
    /// Client for this server.
    pub client: Client,
    /// True for the real kube-apiserver.
    pub is_real: bool,
    /// A namespace created for this test on this server.
    pub ns: String,
    /// A kubeconfig file for hubs run as subprocesses.
    pub kubeconfig: PathBuf,
    /// The real server's audit log of `/scale` writes (`None` on the simulator, which
    /// accounts for them itself).
    pub audit_log: Option<PathBuf>,
    dir: tempfile::TempDir,
    /// The database URL of each name `database` was asked for (one PostgreSQL schema each).
    databases: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

/// Set to `postgres` to run the hubs of the e2e tests on PostgreSQL (a fresh schema per
/// database name, in the server of `SCALEHUB_TEST_POSTGRES_URL`) instead of SQLite files.
pub const DATABASE_VAR: &str = "SCALEHUB_E2E_DATABASE";

impl Env {
    /// Deployments in this test's namespace.
    pub fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// A path inside this test's temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The URL of this test's database called `name`: a SQLite file in this test's directory,
    /// or with `SCALEHUB_E2E_DATABASE=postgres` a PostgreSQL schema of its own. The same name
    /// gives the same database again (a restarted hub finds its state).
    pub async fn database(&self, name: &str) -> anyhow::Result<String> {
        if std::env::var(DATABASE_VAR).as_deref() != Ok("postgres") {
            return Ok(format!("sqlite://{}", self.path(name).display()));
        }
        if let Some(url) = self.databases.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.get(name) {
            return Ok(url.clone());
        }
        let url = scalehub_store::testing::postgres_schema_url()
            .await
            .with_context(|| format!("{DATABASE_VAR}=postgres needs SCALEHUB_TEST_POSTGRES_URL"))?;
        let mut databases = self.databases.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        Ok(databases.entry(name.to_owned()).or_insert(url).clone())
    }

    /// The hub config: only this namespace, the given profiles.
    pub fn config(&self, profiles: Value) -> Value {
        serde_json::json!({
            "namespaces": [self.ns],
            "hookConcurrency": 16,
            "profiles": profiles,
        })
    }

    /// Starts an in-process hub with `config`, its own database file `db` and Lease identity `identity`.
    pub async fn start_hub(&self, config: &Value, db: &str, identity: &str) -> anyhow::Result<HubHandle> {
        // JSON is YAML, and it spares the test from quoting hook commands.
        let config = scalehub_core::config::Config::from_yaml_str(&config.to_string()).context("hub config")?;
        let opts = HubOptions {
            config: Arc::new(config),
            database: Some(self.database(db).await?),
            listen: Some("127.0.0.1:0".parse()?),
            advertise: None,
            lease_namespace: self.ns.clone(),
            identity: identity.into(),
            lease_duration: LEASE,
            record_ticks: false,
            config_path: None,
        };
        within("the hub to start", hub::start(self.client.clone(), opts)).await?
    }

    /// Writes `config` into this test's directory and returns the path (for `scalehub run`).
    pub fn write_config(&self, name: &str, config: &Value) -> anyhow::Result<PathBuf> {
        let path = self.path(name);
        std::fs::write(&path, config.to_string()).with_context(|| format!("write {}", path.display()))?;
        Ok(path)
    }

    /// `spec.replicas` of a Deployment in this namespace.
    pub async fn replicas(&self, name: &str) -> anyhow::Result<i32> {
        let d = self.deployments().get(name).await.with_context(|| format!("get deployment {name}"))?;
        Ok(d.spec.and_then(|s| s.replicas).unwrap_or(1))
    }

    /// Waits until Deployment `name` has `replicas` replicas.
    pub async fn wait_replicas(&self, name: &str, replicas: i32) -> anyhow::Result<()> {
        let mut last = None;
        let result = eventually(&format!("deployment {name} at {replicas} replicas"), WAIT, async || {
            let now = self.replicas(name).await?;
            last = Some(now);
            Ok((now == replicas).then_some(()))
        })
        .await;
        result.with_context(|| format!("deployment {name} stayed at {last:?} replicas"))
    }

    /// Fails if Deployment `name` leaves `replicas` replicas at any point during `period`.
    pub async fn hold_replicas(&self, name: &str, replicas: i32, period: Duration) -> anyhow::Result<()> {
        let until = tokio::time::Instant::now() + period;
        while tokio::time::Instant::now() < until {
            let now = self.replicas(name).await?;
            if now != replicas {
                bail!("deployment {name} was scaled from {replicas} to {now}; it must have been held");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }
}

/// Runs `body` against every server at once, each in a fresh namespace, and panics with every
/// server's failure if any failed.
pub async fn on_every_server<F>(test: &str, body: F)
where
    F: AsyncFn(&Env) -> anyhow::Result<()>,
{
    let servers = servers().await;
    let runs = servers.iter().map(|server| async {
        let started = std::time::Instant::now();
        let result = run_one(test, server, &body).await;
        println!("{test} on {}: {:?} in {:.1?}", server.name, result.as_ref().map(|_| "ok"), started.elapsed());
        result.map_err(|e| format!("[{}] {test}: {e:#}", server.name))
    });
    let failures: Vec<String> = futures::future::join_all(runs).await.into_iter().filter_map(Result::err).collect();
    for server in servers {
        if let Some(sim) = server.sim {
            sim.shutdown().await;
        }
    }
    if !failures.is_empty() {
        panic!("end-to-end failures:\n{}", failures.join("\n"));
    }
}

/// Like [`on_every_server`] but only on the simulator, for what a bare kube-apiserver cannot do.
pub async fn on_simulator<F>(test: &str, why: &str, body: F)
where
    F: AsyncFn(&Env) -> anyhow::Result<()>,
{
    if std::env::var(REAL_KUBECONFIG_ENV).is_ok() {
        println!("{test}: simulator only ({why})");
    }
    let server = sim_server().await.expect("start the in-process simulator");
    let result = run_one(test, &server, &body).await;
    if let Some(sim) = server.sim {
        sim.shutdown().await;
    }
    if let Err(e) = result {
        panic!("end-to-end failure:\n[sim] {test}: {e:#}");
    }
}

async fn run_one<F>(test: &str, server: &Server, body: &F) -> anyhow::Result<()>
where
    F: AsyncFn(&Env) -> anyhow::Result<()>,
{
    let ns = unique_namespace(test);
    let namespaces: Api<Namespace> = Api::all(server.client.clone());
    let mut namespace = Namespace::default();
    namespace.metadata.name = Some(ns.clone());
    within("creating the test namespace", namespaces.create(&PostParams::default(), &namespace))
        .await?
        .with_context(|| format!("create namespace {ns}"))?;
    let dir = tempfile::tempdir().context("temporary directory")?;
    let kubeconfig = match &server.kubeconfig {
        KubeconfigSource::File(path) => path.clone(),
        KubeconfigSource::Text(text) => {
            let path = dir.path().join("kubeconfig");
            std::fs::write(&path, text).context("write the simulator's kubeconfig")?;
            path
        }
    };
    let env = Env {
        server: server.name,
        client: server.client.clone(),
        is_real: server.is_real,
        ns: ns.clone(),
        kubeconfig,
        audit_log: server.audit_log.clone(),
        dir,
        databases: Default::default(),
    };
    let limit = body_timeout();
    let outcome = match tokio::time::timeout(limit, body(&env)).await {
        Ok(result) => result,
        Err(_) => Err(anyhow::anyhow!("test body did not finish within {limit:?}")),
    };
    // Best effort: without a namespace controller the real server leaves it Terminating,
    // which is harmless for a throwaway etcd.
    let _ = tokio::time::timeout(Duration::from_secs(5), namespaces.delete(&ns, &DeleteParams::default())).await;
    outcome
}

/// A DNS-label namespace name unique to this process and test.
fn unique_namespace(test: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut stem: String =
        test.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).take(36).collect();
    while stem.ends_with('-') {
        stem.pop();
    }
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("e2e-{stem}-{:x}{n:x}{nanos:x}", std::process::id()).chars().take(63).collect()
}

/// Awaits `fut` for at most [`WAIT`], failing with what was awaited.
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> anyhow::Result<T> {
    tokio::time::timeout(WAIT, fut).await.map_err(|_| anyhow::anyhow!("timed out after {WAIT:?} waiting for {what}"))
}

/// Polls `check` every 100 ms until it yields `Some`, for at most `limit`.
pub async fn eventually<T>(
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The directory of the hook scripts the tests' profiles run.
pub fn hooks_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("e2e").join("hooks")
}
