//! The `scalehub` command line: `sim`, `run`, `demo`, `bench` and `ctl`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use scalehub_core::config::Config;

use crate::hub::{self, HubOptions};

/// Command-line arguments.
#[derive(Parser)]
#[command(name = "scalehub", version, about = "One process that autoscales many Kubernetes workloads")]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Serve the Kubernetes-compatible API simulator on loopback until SIGINT/SIGTERM.
    Sim {
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Where to write a kubeconfig that points at the simulator.
        #[arg(long)]
        kubeconfig_out: Option<PathBuf>,
        /// Scenario file (YAML) with namespaces, workloads, load curves and faults.
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// How long new pods stay Pending before turning Ready, e.g. `2s`.
        #[arg(long, default_value = "2s")]
        pod_ready_delay: String,
    },
    /// Run the hub against a cluster (in-cluster config, or --kubeconfig).
    Run {
        /// Kubeconfig file; without it the in-cluster config (or $KUBECONFIG) is used.
        #[arg(long, env = "SCALEHUB_KUBECONFIG")]
        kubeconfig: Option<PathBuf>,
        /// The hub config (YAML).
        #[arg(long, env = "SCALEHUB_CONFIG")]
        config: PathBuf,
        /// Database URL, e.g. sqlite:///data/scalehub.db or postgres://scalehub:PASSWORD@db/scalehub
        /// (overrides the config; put a password here, from a Secret, never in the config file).
        #[arg(long, env = "SCALEHUB_DATABASE")]
        database: Option<String>,
        /// HTTP listen address (overrides the config).
        #[arg(long, env = "SCALEHUB_LISTEN")]
        listen: Option<SocketAddr>,
        /// Where the other replicas of a sharded hub reach this one's API: an IP (the listen
        /// port is used) or IP:port; in a pod, its IP. Defaults to the listen address unless
        /// that is a wildcard (0.0.0.0).
        #[arg(long, env = "SCALEHUB_ADVERTISE_ADDRESS", value_parser = parse_advertise)]
        advertise_address: Option<SocketAddr>,
        /// Namespace of the leader-election Lease.
        #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
        lease_namespace: String,
        /// Identity in the Lease; defaults to the host name and process id.
        #[arg(long, env = "POD_NAME")]
        identity: Option<String>,
        /// How long the lease lasts without renewal, in seconds.
        #[arg(long, env = "SCALEHUB_LEASE_SECONDS", default_value_t = 15)]
        lease_seconds: u64,
    },
    /// Measure how many targets one hub runs: seeds a fleet in a simulator child process (or a
    /// cluster), runs the hub on it and prints the figures as one JSON line.
    Bench(crate::bench::BenchOptions),
    /// The REST load of `bench --api-rate`, which the bench runs in a process of its own.
    #[command(hide = true)]
    BenchApiLoad(crate::bench::api_load::LoadArgs),
    /// The hub's REST API from the terminal (also installed as the kubectl plugin
    /// `kubectl-scalehub`): get, why, pin, bounds, pause, unpin, evaluate, replay.
    Ctl(crate::ctl::CtlArgs),
    /// Start the simulator with sample workloads, the hub and the dashboard.
    Demo {
        /// Where the dashboard listens; the next free port is used if it is taken.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
}

/// `--advertise-address`: `IP:port`, or an IP alone (port 0: the hub uses its listen port).
fn parse_advertise(value: &str) -> Result<SocketAddr, String> {
    value
        .parse::<SocketAddr>()
        .or_else(|_| value.parse::<std::net::IpAddr>().map(|ip| SocketAddr::new(ip, 0)))
        .map_err(|_| format!("{value:?} is not an IP address or IP:port"))
}

/// Runs the parsed command line.
pub async fn main(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Ctl(args) => std::process::exit(i32::from(crate::ctl::main(args).await)),
        Command::Sim { listen, kubeconfig_out, scenario, pod_ready_delay } => {
            let scenario = scenario.map(|p| scalehub_sim::Scenario::from_file(&p)).transpose()?;
            let pod_ready_delay = scalehub_sim::scenario::parse_duration(&pod_ready_delay)?;
            let opts = scalehub_sim::SimOptions { listen, pod_ready_delay, scenario, ..Default::default() };
            let sim = scalehub_sim::start(opts).await?;
            println!("scalehub sim listening on {}", sim.url());
            if let Some(path) = kubeconfig_out {
                sim.write_kubeconfig(&path).with_context(|| format!("writing kubeconfig to {}", path.display()))?;
                println!("kubeconfig written to {}", path.display());
            }
            shutdown_signal().await;
            sim.shutdown().await;
            Ok(())
        }
        Command::Run {
            kubeconfig,
            config,
            database,
            listen,
            advertise_address,
            lease_namespace,
            identity,
            lease_seconds,
        } => {
            let cfg = Config::load(&config).with_context(|| format!("invalid config {}", config.display()))?;
            if cfg.profiles.is_empty() {
                // Every target would be invalid: an empty or truncated file is a mistake.
                anyhow::bail!("invalid config {}: profiles: at least one profile is required", config.display());
            }
            adopt_hook_orphans();
            let client = client(kubeconfig.as_deref()).await?;
            let identity = identity.unwrap_or_else(default_identity);
            let handle = hub::start(
                client,
                HubOptions {
                    config: Arc::new(cfg),
                    database,
                    listen,
                    advertise: advertise_address,
                    lease_namespace,
                    identity,
                    lease_duration: Duration::from_secs(lease_seconds.max(1)),
                    record_ticks: false,
                    config_path: Some(config.clone()),
                },
            )
            .await?;
            println!("scalehub listening on http://{}", handle.addr);
            shutdown_signal().await;
            handle.shutdown().await;
            Ok(())
        }
        Command::Bench(opts) => crate::bench::main(opts).await,
        Command::BenchApiLoad(args) => crate::bench::api_load::main(args).await,
        Command::Demo { listen } => {
            adopt_hook_orphans();
            let demo = crate::demo::start(listen).await?;
            println!("scalehub demo: dashboard and API on http://{}", demo.hub.addr);
            println!("overrides need the token in {} (the part after \"demo:\")", demo.token_file.display());
            println!("simulated cluster at {} (Ctrl-C stops everything)", demo.sim.url());
            shutdown_signal().await;
            demo.shutdown().await;
            Ok(())
        }
    }
}

/// Makes the hub the parent of whatever its hooks leave behind (see
/// [`scalehub_hooks::reaper`]); without it, they are merely not reaped by the hub.
fn adopt_hook_orphans() {
    match scalehub_hooks::reaper::adopt_orphans() {
        Ok(adoption) => tracing::debug!(?adoption, "hook orphans come to the hub"),
        Err(e) => tracing::warn!(error = %e, "cannot adopt orphaned hook processes; they are left to init"),
    }
}

/// A client from a kubeconfig file, or inferred (in-cluster, then $KUBECONFIG).
pub(crate) async fn client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Client> {
    let mut config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.context("loading kubeconfig")?
        }
        None => kube::Config::infer().await.context("no kubeconfig given and no in-cluster config found")?,
    };
    // kube's built-in retry waits up to ~3 minutes per request on 429/503/504; the hub
    // retries scale calls itself (bounded) and every tick retries the rest, so a flaky API
    // server costs a target one tick instead of stalling its loop.
    config.default_retry = false;
    kube::Client::try_from(config).context("building the kube client")
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "scalehub".into());
    format!("{host}-{}", std::process::id())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_advertise;

    #[test]
    fn an_advertised_address_is_an_ip_with_or_without_a_port() {
        assert_eq!(parse_advertise("10.0.0.7:9000").unwrap(), "10.0.0.7:9000".parse().unwrap());
        assert_eq!(parse_advertise("10.0.0.7").unwrap(), "10.0.0.7:0".parse().unwrap(), "port 0: the listen port");
        assert_eq!(parse_advertise("fd00::1").unwrap(), "[fd00::1]:0".parse().unwrap(), "a pod's IPv6 address");
        assert_eq!(parse_advertise("[fd00::1]:8080").unwrap(), "[fd00::1]:8080".parse().unwrap());
        for bad in ["", "hub-0.scalehub", "10.0.0.7:port", "http://10.0.0.7:8080"] {
            assert!(parse_advertise(bad).unwrap_err().contains("is not an IP address"), "{bad}");
        }
    }
}
