//! How many targets one hub runs smoothly: a benchmark that prints figures.
//!
//! Starts the simulator with N annotated Deployments (2 pods each, a CPU load model),
//! runs a hub on them in the same process, lets it tick for a while and reports:
//! decisions per second against the ideal (N / interval), tick lateness percentiles,
//! API-server requests the hub made by verb and resource (from the simulator's
//! accounting), and process CPU time. Nothing is asserted: this measures.
//!
//! `cargo bench --bench fleet` (release build). Environment knobs:
//! `FLEET_SIZES` (default `1000,5000,10000`), `FLEET_SECONDS` per size (default 45),
//! `FLEET_INTERVAL` (default `15s`), `FLEET_PROFILE` (`builtin` CPU calculation, the
//! default, or `http`: an in-process HTTP evaluate hook).

use std::sync::Arc;
use std::time::{Duration, Instant};

use scalehub::hub::{self, HubOptions};
use scalehub_core::config::Config;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (fields 14 and 15 of /proc/self/stat).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

async fn evaluate_server() -> String {
    use axum::routing::post;
    let app = axum::Router::new().route("/evaluate", post(|| async { r#"{"targetReplicas": 3}"# }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    format!("http://{addr}/evaluate")
}

fn config(profile: &str, url: &str) -> String {
    match profile {
        "http" => format!(
            r#"
hookConcurrency: 64
profiles:
  default:
    metric: {{type: http, timeout: 5000, http: {{method: POST, url: "{url}"}}}}
    evaluate: {{type: http, timeout: 5000, http: {{method: POST, url: "{url}"}}}}
"#
        ),
        _ => r#"
profiles:
  default:
    cpuInitializationPeriod: 0
    kubernetesMetricSpecs:
      - type: Resource
        resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}
"#
        .to_owned(),
    }
}

/// Reads `name{...le="x"} count` buckets of a histogram and returns the value at quantile `q`.
fn quantile(metrics: &str, name: &str, q: f64) -> Option<f64> {
    let mut buckets: Vec<(f64, f64)> = metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}_bucket")))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            let count: f64 = l.rsplit(' ').next()?.parse().ok()?;
            Some((le, count))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    buckets.iter().find(|(_, c)| *c >= total * q).map(|(le, _)| *le)
}

fn counter(metrics: &str, prefix: &str) -> f64 {
    metrics.lines().filter(|l| l.starts_with(prefix)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

async fn run(size: u32, seconds: u64, interval: &str, profile: &str) {
    let scenario = format!(
        r#"
podReadyDelay: 1s
namespaces: [bench]
workloads:
  - name: svc
    namespace: bench
    count: {size}
    replicas: 2
    load: "sine:base=600m,amp=400m,period=2m"
    annotations:
      scalehub.io/enabled: "true"
      scalehub.io/interval: "{interval}"
      scalehub.io/max-replicas: "4"
"#
    );
    let scenario = scalehub_sim::Scenario::from_yaml(&scenario, std::path::Path::new(".")).expect("scenario");
    let started = Instant::now();
    let sim = scalehub_sim::start(scalehub_sim::SimOptions { scenario: Some(scenario), ..Default::default() })
        .await
        .expect("sim");
    let seeded = started.elapsed();
    let client = scalehub::demo::sim_client(&sim.url()).expect("client");
    let url = evaluate_server().await;
    let cfg = Arc::new(Config::from_yaml_str(&config(profile, &url)).expect("config"));
    let dir = tempfile::tempdir().expect("tempdir");
    let database = format!("sqlite://{}", dir.path().join("bench.db").display());
    let hub = hub::start(
        client,
        HubOptions {
            config: cfg,
            database: Some(database),
            listen: Some("127.0.0.1:0".parse().expect("addr")),
            lease_namespace: "bench".into(),
            identity: "bench".into(),
            lease_duration: Duration::from_secs(15),
        },
    )
    .await
    .expect("hub");
    let http = format!("http://{}/metrics", hub.addr);
    // Let the loops start (first ticks are spread over one interval), then measure a window.
    let warmup = scalehub_core::duration::parse_duration(interval).unwrap_or(Duration::from_secs(15));
    tokio::time::sleep(warmup).await;
    sim.accounting().reset();
    let before = fetch(&http).await;
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let after = fetch(&http).await;
    let decisions = counter(&after, "scalehub_decisions_total") - counter(&before, "scalehub_decisions_total");
    let ideal = size as f64 / warmup.as_secs_f64();
    let requests = sim.accounting().snapshot();
    println!("--- {size} targets, profile {profile}, interval {interval}, measured {elapsed:.0}s (sim seeded in {seeded:.1?})");
    println!("decisions/s: {:.1} (ideal {:.1}, {:.0}%)", decisions / elapsed, ideal, 100.0 * decisions / elapsed / ideal);
    println!(
        "tick lateness p50 <= {:?}s, p99 <= {:?}s (cumulative since start)",
        quantile(&after, "scalehub_tick_lateness_seconds", 0.5),
        quantile(&after, "scalehub_tick_lateness_seconds", 0.99)
    );
    println!("process CPU: {:.2} cores (hub + simulator + hooks in one process)", cpu / elapsed);
    println!("API-server requests during the window: {requests}");
    hub.shutdown().await;
    sim.shutdown().await;
}

async fn fetch(url: &str) -> String {
    let Ok(stream) = tokio::net::TcpStream::connect(url.trim_start_matches("http://").split('/').next().unwrap_or_default()).await
    else {
        return String::new();
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = stream;
    let path = format!("/{}", url.trim_start_matches("http://").split_once('/').map(|x| x.1).unwrap_or(""));
    let _ = stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes()).await;
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out).await;
    out
}

#[tokio::main]
async fn main() {
    let sizes = env_or("FLEET_SIZES", "1000,5000,10000");
    let seconds: u64 = env_or("FLEET_SECONDS", "45").parse().unwrap_or(45);
    let interval = env_or("FLEET_INTERVAL", "15s");
    let profile = env_or("FLEET_PROFILE", "builtin");
    for size in sizes.split(',').filter_map(|s| s.trim().parse::<u32>().ok()) {
        run(size, seconds, &interval, &profile).await;
    }
}
