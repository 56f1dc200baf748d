//! `scalehub bench`: how many targets one hub runs, measured, not asserted.
//!
//! The simulator runs in its own process (or `--kubeconfig` points at any cluster), so the
//! figures are the hub's own: this process is the hub and nothing else. The fleet is seeded,
//! the hub started on it, and after every loop has had one interval to start (first ticks are
//! spread over one interval) a window of `--duration` is measured. Progress goes to stderr;
//! the last line on stdout is one JSON object ([`Report`]).

pub mod api_load;
mod fleet;
mod probe;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use scalehub_core::config::Config;

use crate::hub::{self, HubOptions};
pub use fleet::Fleet;

/// Which hook pipeline the fleet's profile runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchProfile {
    /// The built-in HPA calculation over the CPU metric (no hooks).
    Builtin,
    /// CPA metric and evaluate hooks over HTTP, answered by the simulator's process.
    Http,
    /// A CPA evaluate hook as a shell command.
    Shell,
}

/// What to measure.
#[derive(Clone, Debug, clap::Args)]
pub struct BenchOptions {
    /// Targets (Deployments) in the fleet.
    #[arg(long, default_value_t = 1000)]
    pub targets: u32,
    /// Namespaces the targets are spread over.
    #[arg(long, default_value_t = 1)]
    pub namespaces: u32,
    /// Length of the measured window, e.g. `60s`.
    #[arg(long, default_value = "60s")]
    pub duration: String,
    /// Every target's interval.
    #[arg(long, default_value = "15s")]
    pub interval: String,
    /// Pods per target.
    #[arg(long, default_value_t = 2)]
    pub pods: u32,
    /// The profile the targets use.
    #[arg(long, value_enum, default_value = "builtin")]
    pub profile: BenchProfile,
    /// Run against this cluster instead of a simulator child process (the fleet is created
    /// through the API in namespaces bench-0 …).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Also offer this many REST requests per second during the window (open loop: one
    /// target, then a page of 100, alternately). The client runs in a process of its own, so
    /// the hub's CPU figures stay its own; the report gives the client's beside them.
    #[arg(long, default_value_t = 0.0)]
    pub api_rate: f64,
    /// The hub's database: an empty PostgreSQL database or schema (`postgres://…`) to measure
    /// the hub on PostgreSQL (the server's own CPU is not counted in the hub's); by default
    /// a SQLite file in a temporary directory.
    #[arg(long, env = "SCALEHUB_BENCH_DATABASE")]
    pub database: Option<String>,
}

/// The figures, printed as one JSON line.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Targets in the fleet.
    pub targets: u32,
    /// Namespaces.
    pub namespaces: u32,
    /// The profile.
    pub profile: BenchProfile,
    /// The database the hub wrote to: `sqlite` or `postgres`.
    pub database: &'static str,
    /// Length of the measured window.
    pub seconds: f64,
    /// Ticks due in the window.
    pub ticks_due: u64,
    /// Due ticks that ran.
    pub ticks_run: u64,
    /// Share of due ticks that started within 1 s of schedule.
    pub ticks_within_1s: f64,
    /// Lateness quantiles of due ticks, seconds.
    pub lateness_p50_s: f64,
    /// 99th percentile.
    pub lateness_p99_s: f64,
    /// 99.9th percentile.
    pub lateness_p999_s: f64,
    /// CPU of the hub process over the window, in cores.
    pub hub_cpu_cores: f64,
    /// CPU of hook child processes over the window, in cores (shell profile).
    pub hook_cpu_cores: f64,
    /// Hub CPU per tick run, microseconds.
    pub cpu_us_per_decision: f64,
    /// Resident memory of the hub at the end of the window.
    pub hub_rss_bytes: u64,
    /// Peak resident memory of the hub.
    pub hub_peak_rss_bytes: u64,
    /// `hub_rss_bytes / targets`.
    pub rss_per_target_bytes: u64,
    /// Resident memory of the simulator (0 with --kubeconfig).
    pub sim_rss_bytes: u64,
    /// CPU of the simulator over the window, in cores (it shares the machine with the hub).
    pub sim_cpu_cores: f64,
    /// Store writes committed per second over the window, and batches per second.
    pub store_writes_per_second: f64,
    /// Write batches (transactions) per second.
    pub store_batches_per_second: f64,
    /// Decisions in the window by outcome (`unchanged`, `held`, `scaled`, `error`, ...).
    pub outcomes: std::collections::BTreeMap<String, f64>,
    /// API-server requests per target-hour, excluding metrics reads and scale writes.
    pub api_requests_per_target_hour: f64,
    /// Metrics API reads per interval, across the fleet.
    pub metrics_requests_per_interval: f64,
    /// Scale writes in the window.
    pub scale_writes: f64,
    /// Database growth per target-day, extrapolated from the window.
    pub db_bytes_per_target_day: f64,
    /// Database growth per tick run.
    pub db_bytes_per_tick: f64,
    /// Time to read and parse every target's policy state after the run (the windows a
    /// restart must not lose).
    pub restore_seconds: f64,
    /// Time to read all a restarting hub resumes from, as it does before its loops start:
    /// policy states, target rows and newest decisions (three reads side by side).
    pub resume_seconds: f64,
    /// Targets restored.
    pub restored_states: usize,
    /// The restarted hub's first interval (and a second): its ticks as they are counted above.
    pub restart: RestartReport,
    /// Shell profile: the pipeline's hook rate against a raw fork+exec loop of the same command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell_vs_raw_fork_exec: Option<f64>,
    /// REST latencies under `--api-rate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<api_load::ApiLoad>,
}

fn config(profile: BenchProfile, sim_url: &str) -> String {
    match profile {
        BenchProfile::Builtin => {
            "profiles:\n  default:\n    cpuInitializationPeriod: 0\n    kubernetesMetricSpecs:\n      \
             - {type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}}\n"
                .to_owned()
        }
        BenchProfile::Http => format!(
            "hookConcurrency: 64\nprofiles:\n  default:\n    runMode: per-resource\n    \
             metric: {{type: http, timeout: 5000, http: {{method: POST, url: \"{sim_url}/sim/hooks/metric\"}}}}\n    \
             evaluate: {{type: http, timeout: 5000, http: {{method: POST, url: \"{sim_url}/sim/hooks/evaluate\"}}}}\n"
        ),
        BenchProfile::Shell => format!(
            "hookConcurrency: 32\nprofiles:\n  default:\n    runMode: per-resource\n    \
             metric: {{type: shell, timeout: 5000, shell: {{entrypoint: /bin/sh, command: [\"-c\", {SHELL_METRIC:?}]}}}}\n    \
             evaluate: {{type: shell, timeout: 5000, shell: {{entrypoint: /bin/sh, command: [\"-c\", {SHELL_HOOK:?}]}}}}\n"
        ),
    }
}

/// The shell profile's metric hook: reads the payload, prints a value.
const SHELL_METRIC: &str = "cat >/dev/null; echo 1";

/// Shell hooks a tick of the shell profile runs (metric and evaluate).
const SHELL_HOOKS_PER_TICK: f64 = 2.0;

/// The shell profile's evaluate hook: reads the payload, keeps two replicas.
const SHELL_HOOK: &str = "cat >/dev/null; echo '{\"targetReplicas\": 2}'";

/// How a hub restarted on the run's database does in its first interval.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RestartReport {
    /// Ticks due in the window (from the restarted hub's start).
    pub ticks_due: u64,
    /// Of those, ticks that started.
    pub ticks_run: u64,
    /// The share of due ticks that started within 1 s of schedule.
    pub ticks_within_1s: f64,
    /// 99th percentile of lateness, seconds.
    pub lateness_p99_s: f64,
    /// Store writes committed in the window per tick run: a tick that changes nothing writes
    /// one series chunk, so about 1 when nothing is rewritten after the restart.
    pub store_writes_per_tick: f64,
}

/// Runs the benchmark and returns its report.
pub async fn run(opts: BenchOptions) -> anyhow::Result<Report> {
    let duration = scalehub_core::duration::parse_duration(&opts.duration).context("--duration")?;
    let interval = scalehub_core::duration::parse_duration(&opts.interval).context("--interval")?;
    let fleet = Fleet {
        targets: opts.targets,
        namespaces: opts.namespaces.max(1),
        pods: opts.pods,
        interval: opts.interval.clone(),
    };
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let (sim, client) = match &opts.kubeconfig {
        Some(path) => {
            let client = crate::cli::client(Some(path)).await?;
            fleet::create_fleet(&client, &fleet).await?;
            (None, client)
        }
        None => {
            let sim = fleet::SimProcess::start(&fleet, dir.path()).await?;
            let client = crate::demo::sim_client(&sim.url)?;
            (Some(sim), client)
        }
    };
    let sim_url = sim.as_ref().map(|s| s.url.clone()).unwrap_or_default();
    let config = Arc::new(Config::from_yaml_str(&config(opts.profile, &sim_url)).context("bench config")?);
    let database = match &opts.database {
        Some(url) => url.clone(),
        None => format!("sqlite://{}", dir.path().join("bench.db").display()),
    };
    let started = Instant::now();
    let options = HubOptions {
        config,
        database: Some(database.clone()),
        listen: Some("127.0.0.1:0".parse()?),
        advertise: None,
        lease_namespace: "default".into(),
        identity: "scalehub-bench".into(),
        lease_duration: Duration::from_secs(15),
        record_ticks: true,
        config_path: None,
    };
    let handle = hub::start(client.clone(), options.clone()).await?;
    let store_backend = handle.ctx.store.backend();
    let metrics_url = format!("http://{}/metrics", handle.addr);
    // Wait for every target's loop, then one interval for every first tick.
    loop {
        let loops = handle.ctx.loops.read().map(|l| l.len()).unwrap_or(0);
        if loops >= opts.targets as usize {
            eprintln!("bench: {loops} target loops running after {:.1?}", started.elapsed());
            break;
        }
        if started.elapsed() > Duration::from_secs(900) {
            anyhow::bail!("only {loops} of {} targets were picked up within 15 minutes", opts.targets);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(interval + Duration::from_secs(1)).await;
    // A fresh fleet's first ticks write a target row twice and a first decision row each;
    // measure the steady state, once the writer has caught up with that backlog.
    let drain = Instant::now();
    let mut idle_checks = 0;
    while idle_checks < 3 && drain.elapsed() < Duration::from_secs(600) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        idle_checks = if handle.ctx.store.stats().queued < 64 { idle_checks + 1 } else { 0 };
    }
    eprintln!("bench: store caught up after {:.1?}; measuring {duration:?}", drain.elapsed());
    let exposition0 = fleet::get_text(&metrics_url).await?;
    let requests0 = probe::requests(&exposition0);
    let db0 = handle.ctx.store.used_bytes().await?;
    let (cpu0, child0) = probe::cpu_seconds();
    let sim_cpu0 = sim.as_ref().map_or(0.0, |s| s.cpu_seconds());
    let writer0 = handle.ctx.store.stats();
    let t0 = tokio::time::Instant::now();
    let wall0 = Instant::now();
    let api = (opts.api_rate > 0.0)
        .then(|| {
            api_load::spawn(format!("http://{}", handle.addr), opts.api_rate, duration, fleet.namespaces, fleet.targets)
        })
        .transpose()?;
    tokio::time::sleep(duration).await;
    let t1 = tokio::time::Instant::now();
    let seconds = wall0.elapsed().as_secs_f64();
    let (cpu1, child1) = probe::cpu_seconds();
    let sim_cpu = sim.as_ref().map_or(0.0, |s| s.cpu_seconds()) - sim_cpu0;
    let writer1 = handle.ctx.store.stats();
    let (rss, peak) = probe::rss_bytes();
    let exposition1 = fleet::get_text(&metrics_url).await?;
    let requests = probe::requests(&exposition1) - requests0;
    let before = probe::outcomes(&exposition0);
    let outcomes = probe::outcomes(&exposition1)
        .into_iter()
        .map(|(k, v)| {
            let was = before.get(&k).copied().unwrap_or(0.0);
            (k, v - was)
        })
        .filter(|(_, v)| *v > 0.0)
        .collect();
    handle.ctx.store.flush().await?;
    let db1 = handle.ctx.store.used_bytes().await?;
    // Ticks due just before the window's end get a moment to start before they are counted.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ticks = handle.ctx.metrics.tick_log.stats(t0, t1);
    let api = match api {
        Some(child) => Some(child.report().await?),
        None => None,
    };
    let sim_rss = sim.as_ref().map_or(0, |s| s.rss_bytes());
    handle.shutdown().await;
    let restore = Instant::now();
    let store = scalehub_store::Store::open(&database).await?;
    let policies = store.load_policy_states().await?;
    let parsed = policies
        .into_values()
        .filter_map(|v| serde_json::from_value::<scalehub_core::policy::PolicyState>(v).ok())
        .count();
    let restore_seconds = restore.elapsed().as_secs_f64();
    let resume = Instant::now();
    let restored = hub::restore(&store).await?.len().min(parsed);
    let resume_seconds = resume.elapsed().as_secs_f64();
    store.close().await?;
    let restart = restart(client, options, opts.targets, interval).await?;
    // With the hub stopped, the same command's raw fork+exec rate at the hub's hook concurrency.
    let raw_rate = match opts.profile {
        BenchProfile::Shell => Some(raw_fork_exec_rate(32, Duration::from_secs(5)).await?),
        _ => None,
    };
    if let Some(sim) = sim {
        sim.stop().await;
    }
    let targets = f64::from(opts.targets.max(1));
    let cpu = cpu1 - cpu0;
    let hook_rate = ticks.run as f64 * SHELL_HOOKS_PER_TICK / seconds;
    Ok(Report {
        targets: opts.targets,
        namespaces: fleet.namespaces,
        profile: opts.profile,
        database: match store_backend {
            scalehub_store::Backend::Sqlite => "sqlite",
            scalehub_store::Backend::Postgres => "postgres",
        },
        seconds,
        ticks_due: ticks.due,
        ticks_run: ticks.run,
        ticks_within_1s: ticks.within_1s,
        lateness_p50_s: ticks.lateness_p50,
        lateness_p99_s: ticks.lateness_p99,
        lateness_p999_s: ticks.lateness_p999,
        hub_cpu_cores: cpu / seconds,
        hook_cpu_cores: (child1 - child0) / seconds,
        cpu_us_per_decision: if ticks.run == 0 { 0.0 } else { cpu * 1e6 / ticks.run as f64 },
        hub_rss_bytes: rss,
        hub_peak_rss_bytes: peak,
        rss_per_target_bytes: rss / u64::from(opts.targets.max(1)),
        sim_rss_bytes: sim_rss,
        sim_cpu_cores: sim_cpu / seconds,
        store_writes_per_second: (writer1.committed - writer0.committed) as f64 / seconds,
        store_batches_per_second: (writer1.batches - writer0.batches) as f64 / seconds,
        outcomes,
        api_requests_per_target_hour: requests.other / targets / (seconds / 3600.0),
        metrics_requests_per_interval: requests.metrics / (seconds / interval.as_secs_f64()),
        scale_writes: requests.scale,
        db_bytes_per_target_day: (db1 - db0) as f64 / targets / (seconds / 86_400.0),
        db_bytes_per_tick: if ticks.run == 0 { 0.0 } else { (db1 - db0) as f64 / ticks.run as f64 },
        restore_seconds,
        resume_seconds,
        restored_states: restored,
        restart,
        shell_vs_raw_fork_exec: raw_rate.map(|raw| if raw > 0.0 { hook_rate / raw } else { 0.0 }),
        api,
    })
}

/// Starts a hub again on the run's database and measures its first interval (and a second
/// for the last first ticks to start): whether the first ticks keep their schedule, and how
/// much the store writes for them.
async fn restart(
    client: kube::Client,
    options: HubOptions,
    targets: u32,
    interval: Duration,
) -> anyhow::Result<RestartReport> {
    let started = Instant::now();
    let handle = hub::start(client, options).await?;
    let t0 = tokio::time::Instant::now();
    let writer0 = handle.ctx.store.stats();
    while handle.ctx.loops.read().map(|l| l.len()).unwrap_or(0) < targets as usize {
        if started.elapsed() > Duration::from_secs(900) {
            anyhow::bail!("the restarted hub did not pick up every target within 15 minutes");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("bench: restarted; {targets} target loops running after {:.1?}", started.elapsed());
    tokio::time::sleep_until(t0 + interval + Duration::from_secs(1)).await;
    let t1 = tokio::time::Instant::now();
    handle.ctx.store.flush().await?;
    let writes = handle.ctx.store.stats().committed - writer0.committed;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ticks = handle.ctx.metrics.tick_log.stats(t0, t1);
    handle.shutdown().await;
    Ok(RestartReport {
        ticks_due: ticks.due,
        ticks_run: ticks.run,
        ticks_within_1s: ticks.within_1s,
        lateness_p99_s: ticks.lateness_p99,
        store_writes_per_tick: if ticks.run == 0 { 0.0 } else { writes as f64 / ticks.run as f64 },
    })
}

/// Runs of the shell profile's hook command per second, `concurrency` at a time, with the same
/// payload on stdin: what fork+exec of that command costs on this machine without the hub.
async fn raw_fork_exec_rate(concurrency: usize, for_how_long: Duration) -> anyhow::Result<f64> {
    use tokio::io::AsyncWriteExt;
    let payload = br#"{"resource": {}, "runType": "scaler"}"#;
    let started = Instant::now();
    let mut runs = 0u64;
    while started.elapsed() < for_how_long {
        let mut batch = Vec::with_capacity(concurrency);
        for _ in 0..concurrency {
            batch.push(async {
                let mut child = tokio::process::Command::new("/bin/sh")
                    .args(["-c", SHELL_HOOK])
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()?;
                if let Some(mut stdin) = child.stdin.take() {
                    stdin.write_all(payload).await?;
                }
                child.wait_with_output().await.map(|_| ())
            });
        }
        for result in futures::future::join_all(batch).await {
            result.context("running the hook command")?;
            runs += 1;
        }
    }
    Ok(runs as f64 / started.elapsed().as_secs_f64())
}

/// Runs the benchmark and prints its report as the last line on stdout.
pub async fn main(opts: BenchOptions) -> anyhow::Result<()> {
    let report = run(opts).await?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

#[cfg(test)]
mod config_tests {
    use super::*;

    #[test]
    fn every_bench_profile_is_a_valid_config() {
        for profile in [BenchProfile::Builtin, BenchProfile::Http, BenchProfile::Shell] {
            let text = config(profile, "http://127.0.0.1:1");
            if let Err(e) = Config::from_yaml_str(&text) {
                panic!("{profile:?}: {e}\n{text}");
            }
        }
    }
}
