//! Shared helpers: start a simulator and a real kube client pointed at it.
#![allow(dead_code)]

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use scalehub_sim::{SimHandle, SimOptions};
use serde_json::json;

/// A simulator with a short pod ready delay and a client for it.
pub async fn sim() -> (SimHandle, Client) {
    sim_with(SimOptions { pod_ready_delay: Duration::from_millis(200), ..Default::default() }).await
}

/// A simulator with the given options and a client for it.
pub async fn sim_with(opts: SimOptions) -> (SimHandle, Client) {
    let handle = scalehub_sim::start(opts).await.unwrap();
    let client = client_for(&handle).await;
    (handle, client)
}

/// A kube client built from the simulator's kubeconfig, as the hub would build it.
pub async fn client_for(handle: &SimHandle) -> Client {
    Client::try_from(config_for(handle).await).unwrap()
}

/// A kube client that does not retry 429/503 itself (kube 5 retries them by default, honouring
/// Retry-After, up to 15 times), so injected errors reach the caller.
pub async fn client_without_retries(handle: &SimHandle) -> Client {
    let mut config = config_for(handle).await;
    config.default_retry = false;
    Client::try_from(config).unwrap()
}

async fn config_for(handle: &SimHandle) -> Config {
    let kubeconfig = Kubeconfig::from_yaml(&handle.kubeconfig_yaml()).unwrap();
    Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.unwrap()
}

/// A Deployment named `name` with label `app=name` and the given replicas.
pub fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}
            }
        }
    }))
    .unwrap()
}

/// Polls `f` until it returns Some, failing after `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "condition not met within {secs}s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
