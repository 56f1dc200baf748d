//! The servers every conformance test runs against, and the per-test harness.
//!
//! The in-process simulator is always there; the real kube-apiserver joins when
//! `SCALEHUB_REAL_KUBECONFIG` names its kubeconfig (scripts/test.sh sets it).
//! Each test body runs once per server, in a fresh namespace, and a failure names
//! the server it happened on.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, Resource};
use scalehub_sim::{SimHandle, SimOptions};

/// Environment variable naming the real kube-apiserver's kubeconfig.
pub const REAL_KUBECONFIG_ENV: &str = "SCALEHUB_REAL_KUBECONFIG";

/// How long one test body may run on one server before it counts as hung.
const BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// What a server serves beyond the core set, found through discovery.
#[derive(Clone, Copy, Debug, Default)]
pub struct Caps {
    /// `autoscaling/v2` HorizontalPodAutoscalers (GA in Kubernetes 1.23).
    pub autoscaling_v2: bool,
    /// `autoscaling/v2beta2` HorizontalPodAutoscalers (what v1.20 serves instead).
    pub autoscaling_v2beta2: bool,
    /// `metrics.k8s.io/v1beta1` PodMetrics (needs a metrics-server on a real cluster).
    pub pod_metrics: bool,
}

/// One API server under test.
pub struct TestServer {
    /// `"sim"` or `"kube-apiserver-1.20"`; every failure message carries it.
    pub name: &'static str,
    /// A client configured exactly as the hub would configure it.
    pub client: Client,
    /// True for the real kube-apiserver.
    pub is_real: bool,
    /// Optional API groups this server serves.
    pub caps: Caps,
    /// Keeps the in-process simulator alive for as long as the test runs.
    sim: Option<SimHandle>,
}

impl TestServer {
    /// Stops the in-process simulator, if this server is one.
    async fn shutdown(self) {
        if let Some(sim) = self.sim {
            sim.shutdown().await;
        }
    }
}

/// Starts the simulator and connects to the real server when one is configured.
///
/// Panics on set-up failure: a test without its servers cannot say anything useful.
pub async fn servers() -> Vec<TestServer> {
    servers_tuned(|_| {}).await
}

/// [`servers`], with the simulator's options adjusted by `tune` first.
pub async fn servers_tuned(tune: impl FnOnce(&mut SimOptions)) -> Vec<TestServer> {
    let mut out = vec![sim_server(tune).await.expect("start the in-process simulator")];
    if let Ok(path) = std::env::var(REAL_KUBECONFIG_ENV) {
        let real =
            real_server(&path).await.unwrap_or_else(|e| panic!("connect to the real kube-apiserver ({path}): {e:#}"));
        out.push(real);
    }
    out
}

async fn sim_server(tune: impl FnOnce(&mut SimOptions)) -> anyhow::Result<TestServer> {
    let mut opts = SimOptions {
        // Short enough that tests needing Ready pods wait a moment only.
        pod_ready_delay: Duration::from_millis(200),
        ..SimOptions::default()
    };
    tune(&mut opts);
    let sim = scalehub_sim::start(opts).await.context("start simulator")?;
    let kubeconfig: Kubeconfig =
        serde_saphyr::from_str(&sim.kubeconfig_yaml()).context("parse the simulator's kubeconfig")?;
    let client = client_from(kubeconfig).await?;
    let caps = discover_caps(&client).await?;
    Ok(TestServer { name: "sim", client, is_real: false, caps, sim: Some(sim) })
}

async fn real_server(path: &str) -> anyhow::Result<TestServer> {
    let kubeconfig = Kubeconfig::read_from(path).context("read kubeconfig")?;
    let client = client_from(kubeconfig).await?;
    let caps = discover_caps(&client).await?;
    Ok(TestServer { name: "kube-apiserver-1.20", client, is_real: true, caps, sim: None })
}

async fn client_from(kubeconfig: Kubeconfig) -> anyhow::Result<Client> {
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .context("build client config")?;
    Client::try_from(config).context("build client")
}

async fn discover_caps(client: &Client) -> anyhow::Result<Caps> {
    let groups = client.list_api_groups().await.context("list api groups")?;
    let serves = |group: &str, version: &str| {
        groups.groups.iter().any(|g| g.name == group && g.versions.iter().any(|v| v.version == version))
    };
    Ok(Caps {
        autoscaling_v2: serves("autoscaling", "v2"),
        autoscaling_v2beta2: serves("autoscaling", "v2beta2"),
        pod_metrics: serves("metrics.k8s.io", "v1beta1"),
    })
}

/// What a test body gets: the server and its own namespace.
pub struct Ctx {
    /// Server name, for messages.
    pub name: &'static str,
    /// Client for this server.
    pub client: Client,
    /// True for the real kube-apiserver.
    pub is_real: bool,
    /// What this server serves.
    pub caps: Caps,
    /// A namespace created for this test on this server.
    pub ns: String,
    test: String,
}

impl Ctx {
    /// A namespaced API for `K` in this test's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Says loudly that this test does not apply to this server, and why.
    pub fn skip(&self, reason: &str) -> anyhow::Result<()> {
        println!("SKIPPED {} on {}: {reason}", self.test, self.name);
        Ok(())
    }

    /// Passes when the server serves an optional API; the simulator must serve
    /// everything, so there a missing API is a failure rather than a skip.
    pub fn requires(&self, served: bool, what: &str) -> anyhow::Result<bool> {
        match (served, self.is_real) {
            (true, _) => Ok(true),
            (false, true) => {
                self.skip(&format!("{what} is not served by this server"))?;
                Ok(false)
            }
            (false, false) => {
                bail!("the simulator must serve {what}, but discovery does not list it")
            }
        }
    }
}

/// Runs `body` against every server, each in a fresh namespace, and panics with
/// every server's failure if any failed.
pub async fn on_every_server<F>(test: &str, body: F)
where
    F: AsyncFn(&Ctx) -> anyhow::Result<()>,
{
    run_on(servers().await, test, body).await;
}

/// [`on_every_server`], with the simulator's options adjusted by `tune`.
pub async fn on_every_server_tuned<F>(test: &str, tune: impl FnOnce(&mut SimOptions), body: F)
where
    F: AsyncFn(&Ctx) -> anyhow::Result<()>,
{
    run_on(servers_tuned(tune).await, test, body).await;
}

async fn run_on<F>(servers: Vec<TestServer>, test: &str, body: F)
where
    F: AsyncFn(&Ctx) -> anyhow::Result<()>,
{
    let mut failures = Vec::new();
    for server in servers {
        let name = server.name;
        if let Err(e) = run_one(test, &server, &body).await {
            failures.push(format!("[{name}] {test}: {e:#}"));
        }
        server.shutdown().await;
    }
    if !failures.is_empty() {
        panic!("conformance failures:\n{}", failures.join("\n"));
    }
}

async fn run_one<F>(test: &str, server: &TestServer, body: &F) -> anyhow::Result<()>
where
    F: AsyncFn(&Ctx) -> anyhow::Result<()>,
{
    let ns = unique_namespace(test);
    let namespaces: Api<Namespace> = Api::all(server.client.clone());
    let mut namespace = Namespace::default();
    namespace.metadata.name = Some(ns.clone());
    within("creating the test namespace", namespaces.create(&PostParams::default(), &namespace))
        .await?
        .with_context(|| format!("create namespace {ns}"))?;
    let ctx = Ctx {
        name: server.name,
        client: server.client.clone(),
        is_real: server.is_real,
        caps: server.caps,
        ns: ns.clone(),
        test: test.to_string(),
    };
    let outcome = match tokio::time::timeout(BODY_TIMEOUT, body(&ctx)).await {
        Ok(result) => result,
        Err(_) => Err(anyhow::anyhow!("test body did not finish within {BODY_TIMEOUT:?}")),
    };
    // Best effort: a real apiserver without the namespace controller leaves it
    // Terminating, which is harmless for a throwaway etcd.
    let _ = tokio::time::timeout(Duration::from_secs(5), namespaces.delete(&ns, &DeleteParams::default())).await;
    outcome
}

/// A DNS-label namespace name unique to this process and test.
fn unique_namespace(test: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut stem: String =
        test.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).take(40).collect();
    while stem.ends_with('-') {
        stem.pop();
    }
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("cf-{stem}-{:x}{n:x}{nanos:x}", std::process::id()).chars().take(63).collect()
}

/// Default bound on any single wait in a test.
pub const WAIT: Duration = Duration::from_secs(10);

/// Awaits `fut` for at most [`WAIT`], failing with what was awaited.
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> anyhow::Result<T> {
    tokio::time::timeout(WAIT, fut).await.map_err(|_| anyhow::anyhow!("timed out after {WAIT:?} waiting for {what}"))
}

/// Polls `check` until it yields `Some`, for at most [`WAIT`].
pub async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> anyhow::Result<Option<T>>) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {WAIT:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
