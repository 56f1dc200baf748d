//! The benchmark's cluster: `scalehub sim` in a child process seeded with the fleet, or any
//! cluster from a kubeconfig, where the fleet is created through the API.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

/// The fleet to seed: `targets` Deployments spread evenly over `namespaces` namespaces.
#[derive(Clone, Debug)]
pub struct Fleet {
    /// Workloads in all.
    pub targets: u32,
    /// Namespaces `bench-0` … `bench-{K-1}`.
    pub namespaces: u32,
    /// Pods per workload.
    pub pods: u32,
    /// `scalehub.io/interval` of every workload.
    pub interval: String,
}

impl Fleet {
    /// Namespace names.
    pub fn namespace_names(&self) -> Vec<String> {
        (0..self.namespaces.max(1)).map(|i| format!("bench-{i}")).collect()
    }

    /// Workloads in namespace `i`: an even share, the first ones taking the remainder.
    fn share(&self, i: u32) -> u32 {
        let k = self.namespaces.max(1);
        self.targets / k + u32::from(i < self.targets % k)
    }

    /// CPU demand that holds the built-in profile's 60% goal at `pods` pods of 500m requests,
    /// so a target is stable and its ticks measure the steady state.
    fn load(&self) -> String {
        format!("constant:{}m", self.pods * 300)
    }

    fn annotations(&self) -> serde_json::Value {
        json!({
            "scalehub.io/enabled": "true",
            "scalehub.io/interval": self.interval,
            "scalehub.io/min-replicas": "1",
            "scalehub.io/max-replicas": (self.pods * 2).max(2).to_string(),
        })
    }

    /// A simulator scenario with the whole fleet.
    pub fn scenario(&self) -> String {
        let workloads: Vec<serde_json::Value> = self
            .namespace_names()
            .iter()
            .enumerate()
            .filter(|(i, _)| self.share(*i as u32) > 0)
            .map(|(i, ns)| {
                json!({
                    "name": "svc", "namespace": ns, "count": self.share(i as u32), "replicas": self.pods,
                    "load": self.load(), "annotations": self.annotations(),
                })
            })
            .collect();
        let scenario = json!({"podReadyDelay": "1s", "namespaces": self.namespace_names(), "workloads": workloads});
        // JSON is YAML: the scenario loader reads it as is.
        scenario.to_string()
    }
}

/// A simulator in a child process; killed when dropped.
pub struct SimProcess {
    child: tokio::process::Child,
    /// The simulator's base URL.
    pub url: String,
    /// Its kubeconfig.
    pub kubeconfig: PathBuf,
}

impl SimProcess {
    /// Starts `scalehub sim` (this same executable) seeded with `fleet`, and waits until every
    /// pod of the fleet is Ready.
    pub async fn start(fleet: &Fleet, dir: &Path) -> anyhow::Result<SimProcess> {
        let scenario = dir.join("scenario.yaml");
        std::fs::write(&scenario, fleet.scenario()).context("writing the scenario")?;
        let kubeconfig = dir.join("sim.kubeconfig");
        let exe = std::env::current_exe().context("locating the scalehub executable")?;
        let child = tokio::process::Command::new(exe)
            .args(["sim", "--listen", "127.0.0.1:0", "--pod-ready-delay", "1s"])
            .arg("--scenario")
            .arg(&scenario)
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting scalehub sim")?;
        let mut sim = SimProcess { child, url: String::new(), kubeconfig };
        let started = Instant::now();
        eprintln!("bench: seeding {} workloads in {} namespaces in the simulator", fleet.targets, fleet.namespaces);
        // The kubeconfig is written once the scenario is in the store and the server listens.
        while !sim.kubeconfig.exists() {
            if let Some(status) = sim.child.try_wait()? {
                bail!("scalehub sim exited early ({status})");
            }
            if started.elapsed() > Duration::from_secs(900) {
                bail!("the simulator did not come up within 15 minutes");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let text = std::fs::read_to_string(&sim.kubeconfig).context("reading the simulator's kubeconfig")?;
        sim.url = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("server: "))
            .map(str::to_owned)
            .context("no server in the simulator's kubeconfig")?;
        sim.wait_for_pods(u64::from(fleet.targets) * u64::from(fleet.pods), started).await?;
        Ok(sim)
    }

    async fn wait_for_pods(&mut self, want: u64, started: Instant) -> anyhow::Result<()> {
        let mut last_report = Instant::now();
        loop {
            let stats = get_json(&format!("{}/sim/admin/stats", self.url)).await?;
            let ready = stats["readyPods"].as_u64().unwrap_or(0);
            if ready >= want {
                eprintln!("bench: {ready} pods Ready after {:.1?}", started.elapsed());
                return Ok(());
            }
            if last_report.elapsed() > Duration::from_secs(5) {
                eprintln!("bench: {ready} of {want} pods Ready ({:.0?})", started.elapsed());
                last_report = Instant::now();
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("scalehub sim exited ({status})");
            }
            if started.elapsed() > Duration::from_secs(1800) {
                bail!("only {ready} of {want} pods became Ready within 30 minutes");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The simulator's resident memory in bytes, from /proc.
    pub fn rss_bytes(&self) -> u64 {
        let Some(pid) = self.child.id() else { return 0 };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    }

    /// CPU seconds the simulator has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        self.child.id().map_or(0.0, |pid| super::probe::process_cpu_seconds(&format!("/proc/{pid}/stat")).0)
    }

    /// Stops the simulator.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Creates the fleet's namespaces and Deployments through the API (for `--kubeconfig`).
pub async fn create_fleet(client: &kube::Client, fleet: &Fleet) -> anyhow::Result<()> {
    use futures::StreamExt;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in fleet.namespace_names() {
        let body: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}}))?;
        match namespaces.create(&PostParams::default(), &body).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(e).with_context(|| format!("creating namespace {ns}")),
        }
    }
    let mut items = Vec::new();
    for (i, ns) in fleet.namespace_names().iter().enumerate() {
        for j in 0..fleet.share(i as u32) {
            items.push((ns.clone(), format!("svc-{j}")));
        }
    }
    eprintln!("bench: creating {} Deployments", items.len());
    let results = futures::stream::iter(items)
        .map(|(ns, name)| {
            let api: Api<Deployment> = Api::namespaced(client.clone(), &ns);
            let body = json!({
                "metadata": {"name": name, "annotations": fleet.annotations()},
                "spec": {
                    "replicas": fleet.pods,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}, "annotations": {"sim.scalehub.io/load": fleet.load()}},
                        "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                            "resources": {"requests": {"cpu": "500m", "memory": "128Mi"}}}]},
                    },
                },
            });
            async move {
                let body: Deployment = serde_json::from_value(body)?;
                match api.create(&PostParams::default(), &body).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                    Err(e) => Err(anyhow::Error::new(e).context(format!("creating Deployment {ns}/{name}"))),
                }
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    Ok(())
}

/// GETs a JSON document over plain HTTP (the simulator's admin routes, the hub's own API).
pub async fn get_json(url: &str) -> anyhow::Result<serde_json::Value> {
    let body = get_text(url).await?;
    serde_json::from_str(&body).with_context(|| format!("GET {url}: not JSON"))
}

/// GETs a document over plain HTTP/1.0 on loopback (the simulator's admin routes, the hub's
/// `/metrics`): the bench talks only to its own servers, so no client library is needed.
pub async fn get_text(url: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").with_context(|| format!("not an http:// url: {url}"))?;
    let (authority, path) = rest.split_once('/').map_or((rest, String::from("/")), |(a, p)| (a, format!("/{p}")));
    let mut stream =
        tokio::net::TcpStream::connect(authority).await.with_context(|| format!("connecting to {authority}"))?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n").as_bytes()).await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut response))
        .await
        .with_context(|| format!("GET {url} timed out"))??;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").with_context(|| format!("GET {url}: no HTTP response"))?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if !status.starts_with('2') {
        bail!("GET {url}: status {status}");
    }
    Ok(body.to_owned())
}
