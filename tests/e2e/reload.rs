//! Config reload without a restart: `scalehub run` re-reads its config file when it changes.
//! A valid new config applies to the targets from their next tick and is shown in
//! `/api/v1/hub`; an invalid one is refused with its field path and the old one stays.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};

use crate::fixtures::{create, deployment, opted_in, sh};
use crate::harness::{Env, eventually, on_every_server};
use crate::process::{http, spawn_hub};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_config_applies_without_a_restart_and_a_bad_one_is_refused() {
    on_every_server("config-reload", async |env: &Env| reload(env).await).await;
}

fn config(env: &Env, replicas: u32, timeout_ms: u64) -> Value {
    let evaluate = sh(&format!("cat >/dev/null; echo '{{\"targetReplicas\": {replicas}}}'"), timeout_ms);
    let mut config = env.config(json!({"default": {"metric": sh("echo 1", 5_000), "evaluate": evaluate}}));
    config["profiles"]["default"]["runMode"] = json!("per-resource");
    config
}

async fn hub_config(addr: std::net::SocketAddr) -> anyhow::Result<Value> {
    let (status, body) = http(addr, "GET", "/api/v1/hub", None, None).await?;
    ensure!(status == 200, "GET /api/v1/hub: {status} {body}");
    Ok(body["config"].clone())
}

async fn reload(env: &Env) -> anyhow::Result<()> {
    let path = env.write_config("config.yaml", &config(env, 2, 5_000))?;
    let db = env.database("hub.db").await?;
    // As deploy/ runs it: the downward API names the hub's Pod, which gets the reload Events.
    let pod_namespace = format!("POD_NAMESPACE={}", env.ns);
    let hub = spawn_hub(env, &["env", "POD_NAME=scalehub-0", &pod_namespace], &path, &db, "hub.log").await?;
    create(env, &deployment("web", 1, opted_in(&[]))).await?;
    env.wait_replicas("web", 2).await.with_context(|| format!("hub log:\n{}", hub.log_tail()))?;
    let before = hub_config(hub.addr).await?;
    ensure!(before["reloads"] == 0 && before["lastError"].is_null(), "at start: {before}");

    // A new evaluation in the profile: the target follows it without a restart.
    env.write_config("config.yaml", &config(env, 4, 5_000))?;
    env.wait_replicas("web", 4).await.with_context(|| format!("hub log:\n{}", hub.log_tail()))?;
    let after = hub_config(hub.addr).await?;
    ensure!(after["reloads"] == 1, "after a reload: {after}");
    ensure!(after["loadedAt"].as_i64() > before["loadedAt"].as_i64(), "loadedAt did not move: {after}");

    // An invalid config is refused with its field path; the one in force stays.
    env.write_config("config.yaml", &config(env, 1, 0))?;
    let refused = eventually("the refused reload", Duration::from_secs(10), async || {
        let status = hub_config(hub.addr).await?;
        Ok(status["lastError"].as_str().map(str::to_owned))
    })
    .await?;
    ensure!(refused.contains("profiles.default.evaluate.timeout"), "the refusal does not name the field: {refused}");
    env.hold_replicas("web", 4, Duration::from_secs(3)).await?;

    // Both outcomes are Events on the hub's Pod.
    let api: kube::Api<k8s_openapi::api::events::v1::Event> = kube::Api::namespaced(env.client.clone(), &env.ns);
    let reasons = eventually("the reload Events", Duration::from_secs(10), async || {
        let list = api.list(&Default::default()).await?;
        let reasons: Vec<String> = list
            .items
            .into_iter()
            .filter(|e| {
                e.regarding
                    .as_ref()
                    .is_some_and(|r| r.kind.as_deref() == Some("Pod") && r.name.as_deref() == Some("scalehub-0"))
            })
            .filter_map(|e| e.reason)
            .collect();
        Ok((reasons.iter().any(|r| r == "ConfigReloaded") && reasons.iter().any(|r| r == "ConfigRefused"))
            .then_some(reasons))
    })
    .await;
    reasons.with_context(|| format!("hub log:\n{}", hub.log_tail()))?;
    Ok(())
}
