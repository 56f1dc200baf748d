//! The system under test: the demo's simulated cluster and a hub on it, started in-process
//! like `scalehub demo`, with a token file so the dashboard can write.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use scalehub::hub::{self, HubHandle, HubOptions};
use scalehub_core::config::Config;

/// The token the test types into the override form.
pub const TOKEN: &str = "browser-test-token-0123456789abcdef";
/// The name the token file gives it: the override's author.
pub const AUTHOR: &str = "browser-test";

/// A running simulator and hub.
pub struct Fleet {
    /// The simulator.
    pub sim: scalehub_sim::SimHandle,
    /// The hub.
    pub hub: HubHandle,
    /// Where the dashboard is.
    pub url: String,
    /// A client for the simulator, to check what the hub did.
    pub client: kube::Client,
    _dir: tempfile::TempDir,
}

impl Fleet {
    /// Starts the demo scenario and a hub with `api.tokenFile`.
    pub async fn start() -> Fleet {
        Self::start_with("\n").await
    }

    /// Like [`Fleet::start`], with more keys (YAML, indented by two) in the config's `api`.
    pub async fn start_with(more_api: &str) -> Fleet {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("hub/src/demo");
        let scenario_text = std::fs::read_to_string(root.join("scenario.yaml")).unwrap();
        let scenario = scalehub_sim::Scenario::from_yaml(&scenario_text, &root).unwrap();
        let sim = scalehub_sim::start(scalehub_sim::SimOptions {
            scenario: Some(scenario),
            pod_ready_delay: Duration::from_millis(500),
            ..Default::default()
        })
        .await
        .unwrap();
        let client = scalehub::demo::sim_client(&sim.url()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::write(&tokens, format!("# name:token\n{AUTHOR}:{TOKEN}\n")).unwrap();
        let mut config_text = std::fs::read_to_string(root.join("config.yaml")).unwrap();
        let quoted = serde_json::to_string(&tokens.display().to_string()).unwrap();
        config_text.push_str(&format!("\napi:\n  tokenFile: {quoted}{more_api}"));
        let config = Arc::new(Config::from_yaml_str(&config_text).unwrap());
        let database = format!("sqlite://{}", dir.path().join("scalehub.db").display());
        let hub = hub::start(
            client.clone(),
            HubOptions {
                config,
                database: Some(database),
                listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
                advertise: None,
                lease_namespace: "default".into(),
                identity: "scalehub-browser-test".into(),
                lease_duration: Duration::from_secs(3),
                record_ticks: false,
                config_path: None,
            },
        )
        .await
        .unwrap();
        let url = format!("http://{}", hub.addr);
        Fleet { sim, hub, url, client, _dir: dir }
    }

    /// The replicas the simulator's Deployment `shop/{name}` has in its spec.
    pub async fn deployment_replicas(&self, name: &str) -> Option<i32> {
        let api: kube::Api<Deployment> = kube::Api::namespaced(self.client.clone(), "shop");
        api.get(name).await.ok().and_then(|d| d.spec).and_then(|s| s.replicas)
    }

    /// Adds `n` target rows straight to the store (namespaces `bulk-0`…`bulk-9`), so the fleet
    /// view pages through thousands of targets without simulating thousands of workloads.
    pub async fn add_bulk_targets(&self, n: usize) {
        let now = scalehub::hub::now_ms();
        let rows = (0..n)
            .map(|i| scalehub_store::TargetRow {
                key: scalehub_store::TargetKey::new(
                    format!("bulk-{}", i % 10),
                    scalehub_store::Kind::Deployment,
                    format!("svc-{i:05}"),
                ),
                uid: None,
                state: if i % 7 == 0 { "shadow" } else { "active" }.into(),
                spec: serde_json::json!({"minReplicas": 1, "maxReplicas": 10}).into(),
                error: None,
                current_replicas: Some((i % 9 + 1) as i32),
                desired_replicas: Some((i % 9 + 1) as i32),
                first_seen: now,
                last_seen: now,
                removed_at: None,
                updated_at: now,
            })
            .collect();
        self.hub.ctx.store.upsert_targets(rows).await.unwrap();
    }

    /// Stops the hub, then the simulator.
    pub async fn shutdown(self) {
        self.hub.shutdown().await;
        self.sim.shutdown().await;
    }
}
