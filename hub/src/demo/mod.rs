//! `scalehub demo`: the simulator with sample workloads under changing load, the hub on
//! it with a temporary database, and the dashboard — one command, nothing to install.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use scalehub_core::config::Config;

use crate::hub::{self, HubHandle, HubOptions};

/// The demo's simulated cluster.
const SCENARIO: &str = include_str!("scenario.yaml");
/// The demo's hub config.
const CONFIG: &str = include_str!("config.yaml");

/// A running demo.
pub struct Demo {
    /// The simulator.
    pub sim: scalehub_sim::SimHandle,
    /// The hub.
    pub hub: HubHandle,
    /// The file holding the demo's write token (`demo:<token>`), for the dashboard's override form.
    pub token_file: std::path::PathBuf,
    /// Holds the temporary database until the demo ends.
    _dir: tempfile::TempDir,
}

impl Demo {
    /// Stops the hub, then the simulator; the temporary database goes with them.
    pub async fn shutdown(self) {
        self.hub.shutdown().await;
        self.sim.shutdown().await;
    }
}

/// Starts the demo; the hub listens on `listen`, or on the next free port after it.
pub async fn start(listen: SocketAddr) -> anyhow::Result<Demo> {
    let scenario = scalehub_sim::Scenario::from_yaml(SCENARIO, Path::new(".")).context("demo scenario")?;
    let sim = scalehub_sim::start(scalehub_sim::SimOptions { scenario: Some(scenario), ..Default::default() })
        .await
        .context("starting the simulator")?;
    let client = sim_client(&sim.url())?;
    let mut config = Config::from_yaml_str(CONFIG).context("demo config")?;
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    // A fresh random token per run, so the demo's API accepts writes (overrides) from
    // whoever can read this file, and from nobody else.
    let token_file = dir.path().join("tokens");
    let token: String =
        rand::Rng::sample_iter(rand::rng(), rand::distr::Alphanumeric).take(32).map(char::from).collect();
    std::fs::write(&token_file, format!("# name:token\ndemo:{token}\n")).context("writing the demo token file")?;
    config.api.token_file = Some(token_file.clone());
    let config = Arc::new(config);
    let database = format!("sqlite://{}", dir.path().join("scalehub.db").display());
    let listen = free_port_from(listen).await;
    let hub = hub::start(
        client,
        HubOptions {
            config,
            database: Some(database),
            listen: Some(listen),
            advertise: None,
            lease_namespace: "default".into(),
            identity: "scalehub-demo".into(),
            lease_duration: Duration::from_secs(15),
            record_ticks: false,
            config_path: None,
        },
    )
    .await?;
    Ok(Demo { sim, hub, token_file, _dir: dir })
}

/// A kube client for the simulator at `url`.
pub fn sim_client(url: &str) -> anyhow::Result<kube::Client> {
    let uri = url.parse().context("simulator url")?;
    let config = kube::Config::new(uri);
    kube::Client::try_from(config).context("building the kube client")
}

/// `addr` if it can be bound, else the next free port of the 20 after it, else any free port.
async fn free_port_from(addr: SocketAddr) -> SocketAddr {
    if addr.port() == 0 {
        return addr;
    }
    for port in addr.port()..addr.port().saturating_add(20) {
        let candidate = SocketAddr::new(addr.ip(), port);
        if tokio::net::TcpListener::bind(candidate).await.is_ok() {
            return candidate;
        }
    }
    SocketAddr::new(addr.ip(), 0)
}
