//! An open-loop load on the hub's REST API while it ticks: requests start at a fixed rate
//! whether or not earlier ones have answered, and each latency is measured from the moment
//! the request was due, so a slow server cannot hide behind a slowed-down client. At most
//! [`CONNECTIONS`] requests are in flight, as with a load generator's fixed connections: a
//! request that waits for one is late, and its wait counts in its latency.
//!
//! The bench runs the load in a process of its own (`scalehub bench-api-load`, this same
//! executable), so the hub's CPU figures are the server's alone.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Requests in flight at most.
pub const CONNECTIONS: usize = 64;

/// Latency quantiles of one request kind, seconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Latency {
    /// Requests sent.
    pub requests: usize,
    /// Requests that failed (non-2xx or no answer).
    pub errors: usize,
    /// Median.
    pub p50_s: f64,
    /// 99th percentile.
    pub p99_s: f64,
}

/// What the load measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ApiLoad {
    /// Requests per second offered (both kinds together).
    pub rate: f64,
    /// CPU the load generator itself used, in cores (its own process, not counted as the hub's).
    #[serde(default)]
    pub client_cpu_cores: f64,
    /// `GET /api/v1/targets/{one}`.
    pub one_target: Latency,
    /// `GET /api/v1/targets?limit=100` (with a namespace filter every other time).
    pub page_of_100: Latency,
}

/// Offers `rate` requests per second for `length` against the hub at `base` (http://host:port),
/// alternating one target of `namespaces`/`targets` and a page of 100 targets.
pub async fn run(base: &str, rate: f64, length: Duration, namespaces: u32, targets: u32) -> ApiLoad {
    let one: Arc<Mutex<Vec<Option<f64>>>> = Arc::default();
    let page: Arc<Mutex<Vec<Option<f64>>>> = Arc::default();
    let period = Duration::from_secs_f64(1.0 / rate.max(0.1));
    let started = Instant::now();
    let mut due = started;
    let mut n: u64 = 0;
    let mut tasks = Vec::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS));
    while due < started + length {
        tokio::time::sleep_until(due).await;
        let (url, sink) = if n.is_multiple_of(2) {
            let i = (n / 2) % u64::from(targets.max(1));
            let ns = i % u64::from(namespaces.max(1));
            (
                format!("{base}/api/v1/targets/bench-{ns}/Deployment/svc-{}", i / u64::from(namespaces.max(1))),
                one.clone(),
            )
        } else if n % 4 == 1 {
            (format!("{base}/api/v1/targets?limit=100"), page.clone())
        } else {
            (format!("{base}/api/v1/targets?limit=100&namespace=bench-0&sort=name"), page.clone())
        };
        let at = due;
        let slots = slots.clone();
        tasks.push(tokio::spawn(async move {
            let _slot = slots.acquire_owned().await;
            let ok = tokio::time::timeout(Duration::from_secs(30), super::fleet::get_text(&url)).await;
            let latency = matches!(ok, Ok(Ok(_))).then(|| at.elapsed().as_secs_f64());
            if let Ok(mut v) = sink.lock() {
                v.push(latency);
            }
        }));
        n += 1;
        due += period;
    }
    for t in tasks {
        let _ = t.await;
    }
    let summarise = |samples: &Mutex<Vec<Option<f64>>>| -> Latency {
        let Ok(samples) = samples.lock() else { return Latency::default() };
        let mut ok: Vec<f64> = samples.iter().flatten().copied().collect();
        ok.sort_by(f64::total_cmp);
        let q = |p: f64| ok.get(((ok.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0.0);
        Latency { requests: samples.len(), errors: samples.len() - ok.len(), p50_s: q(0.5), p99_s: q(0.99) }
    };
    ApiLoad { rate, client_cpu_cores: 0.0, one_target: summarise(&one), page_of_100: summarise(&page) }
}

/// The arguments of `scalehub bench-api-load`.
#[derive(Clone, Debug, clap::Args)]
pub struct LoadArgs {
    /// The hub's base URL (http://host:port).
    #[arg(long)]
    pub url: String,
    /// Requests per second.
    #[arg(long)]
    pub rate: f64,
    /// How long to offer the load, in seconds.
    #[arg(long)]
    pub seconds: f64,
    /// Namespaces of the bench fleet.
    #[arg(long)]
    pub namespaces: u32,
    /// Targets of the bench fleet.
    #[arg(long)]
    pub targets: u32,
}

/// `scalehub bench-api-load`: runs the load and prints what it measured as one JSON line.
pub async fn main(args: LoadArgs) -> anyhow::Result<()> {
    let (cpu0, _) = super::probe::cpu_seconds();
    let started = std::time::Instant::now();
    let length = Duration::from_secs_f64(args.seconds.max(0.0));
    let mut load = run(&args.url, args.rate, length, args.namespaces, args.targets).await;
    let (cpu1, _) = super::probe::cpu_seconds();
    load.client_cpu_cores = (cpu1 - cpu0) / started.elapsed().as_secs_f64().max(1e-9);
    println!("{}", serde_json::to_string(&load)?);
    Ok(())
}

/// Starts the load in a child process (this same executable); its report once it ends.
pub fn spawn(base: String, rate: f64, length: Duration, namespaces: u32, targets: u32) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("locating the scalehub executable")?;
    let child = tokio::process::Command::new(exe)
        .arg("bench-api-load")
        .args(["--url", &base, "--rate", &rate.to_string(), "--seconds", &length.as_secs_f64().to_string()])
        .args(["--namespaces", &namespaces.to_string(), "--targets", &targets.to_string()])
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the REST load generator")?;
    Ok(Child(child))
}

/// A running load generator.
pub struct Child(tokio::process::Child);

impl Child {
    /// Waits for the load to end and reads its report.
    pub async fn report(self) -> anyhow::Result<ApiLoad> {
        let out = self.0.wait_with_output().await.context("waiting for the REST load generator")?;
        anyhow::ensure!(out.status.success(), "the REST load generator failed ({})", out.status);
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().last().context("the REST load generator printed nothing")?;
        serde_json::from_str(line).context("reading the REST load generator's report")
    }
}
