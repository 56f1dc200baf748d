//! The `scalehub` command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "scalehub", version, about = "One process that autoscales many Kubernetes workloads")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())).init();
    match Cli::parse().command {
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
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
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
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
