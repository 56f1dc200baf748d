//! Drill: API-server chaos for a fleet of built-in CPU targets. The fleet first settles
//! without faults (which also proves the replicas each load gives: `ceil(load / 250m)` at a
//! 50% target over 500m requests). Then every load changes and the simulator turns hostile
//! for a while: 503s with `Retry-After` on a share of every verb, 409s on writes, watches
//! dropped every few seconds, a forced 410 on a resumed watch, added latency. Once the faults
//! stop, every target reaches the replicas its new load gives in a fault-free run; no loop
//! panicked and no target was lost.
//!
//! Targets: `SCALEHUB_DRILL_TARGETS` (default 200; `scripts/drills.sh` runs 1,000).

use std::time::Duration;

use anyhow::{Context as _, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use crate::fixtures::{create, deployment, opted_in};
use crate::harness::{Env, on_simulator};

/// How long the faults last.
const CHAOS: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_api_server_chaos_every_target_has_the_replicas_of_a_fault_free_run() {
    on_simulator("chaos-drill", "faults are the simulator's", async |env: &Env| chaos_drill(env).await).await;
}

/// The load that gives `replicas` (1..=4): `ceil(load / 250m)` with room on both sides.
fn load_for(replicas: i32) -> String {
    format!("constant:{}m", 250 * replicas - 50)
}

fn name(i: usize) -> String {
    format!("c{i:04}")
}

async fn set_faults(env: &Env, faults: &Value) -> anyhow::Result<()> {
    let req = http::Request::put("/sim/admin/faults").body(serde_json::to_vec(faults)?)?;
    let _: Value = env.client.request(req).await.context("set the simulator's faults")?;
    Ok(())
}

/// `spec.replicas` of every Deployment of the namespace, by name.
async fn all_replicas(env: &Env) -> anyhow::Result<std::collections::HashMap<String, i32>> {
    let list = env.deployments().list(&ListParams::default()).await?;
    Ok(list.items.into_iter().filter_map(|d: Deployment| Some((d.metadata.name?, d.spec?.replicas?))).collect())
}

/// Waits until every target has what `want` says; the names of those that do not, if any.
async fn settle(env: &Env, n: usize, want: impl Fn(usize) -> i32, limit: Duration) -> anyhow::Result<Vec<String>> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let have = all_replicas(env).await?;
        let off: Vec<String> = (0..n)
            .filter(|&i| have.get(&name(i)) != Some(&want(i)))
            .map(|i| format!("{} has {:?}, wants {}", name(i), have.get(&name(i)), want(i)))
            .collect();
        if off.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(off);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What the newest decision of the target named first in `off` says, for a failure message.
async fn last_decision(hub: &scalehub::hub::HubHandle, env: &Env, off: &str) -> String {
    let name = off.split_whitespace().next().unwrap_or_default();
    let key = scalehub_store::TargetKey::new(&env.ns, scalehub_store::Kind::Deployment, name);
    let decision = match hub.ctx.store.decisions(&key, None, 1).await {
        Ok(d) => format!(
            "{name}'s last decision: {:?}",
            d.first().map(|d| (&d.outcome, &d.error, d.raw_evaluation, &d.reasons))
        ),
        Err(e) => format!("{name}'s decisions unreadable: {e}"),
    };
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(env.client.clone(), &env.ns);
    let pods = match pods.list(&ListParams::default().labels(&format!("app={name}"))).await {
        Ok(list) => list
            .items
            .iter()
            .map(|p| {
                let status = p.status.as_ref();
                let conditions = status
                    .and_then(|s| s.conditions.as_ref())
                    .map(|c| c.iter().map(|c| format!("{}={}", c.type_, c.status)).collect::<Vec<_>>().join(","));
                format!("{:?} {:?} {conditions:?}", p.metadata.name, status.and_then(|s| s.phase.clone()))
            })
            .collect::<Vec<_>>()
            .join("; "),
        Err(e) => format!("pods unreadable: {e}"),
    };
    let selector = k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
        match_labels: Some([("app".to_owned(), name.to_owned())].into()),
        ..Default::default()
    };
    let indexed = match scalehub::watch::PodSelector::new(&selector) {
        Ok(sel) => hub
            .ctx
            .pods
            .select(&env.ns, &sel)
            .iter()
            .map(|p| format!("{} {:?} {:?} {:?}", p.name, p.phase, p.ready, p.start_time))
            .collect::<Vec<_>>()
            .join("; "),
        Err(e) => e,
    };
    format!("{decision}; its pods: {pods}; the hub's pod index: {indexed}")
}

async fn chaos_drill(env: &Env) -> anyhow::Result<()> {
    let n: usize = std::env::var("SCALEHUB_DRILL_TARGETS").ok().and_then(|t| t.parse().ok()).unwrap_or(200);
    let before = |i: usize| 1 + (i % 4) as i32;
    let after = |i: usize| 1 + ((i + 2) % 4) as i32;
    let profile = json!({
        "kubernetesMetricSpecs": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
        ],
        "cpuInitializationPeriod": 1,
        "initialReadinessDelay": 1,
    });
    let mut config = env.config(json!({"default": profile}));
    config["metricsResolution"] = json!("1s");
    config["kubernetesTimeout"] = json!("2s");
    for i in 0..n {
        let load = load_for(before(i));
        let annotations =
            opted_in(&[("sim.scalehub.io/load", load.as_str()), ("scalehub.io/downscale-stabilization", "0s")]);
        create(env, &deployment(&name(i), 1, annotations)).await?;
    }
    let hub = env.start_hub(&config, "hub.db", "hub-a").await?;
    let off = settle(env, n, before, Duration::from_secs(90)).await?;
    if !off.is_empty() {
        let why = last_decision(&hub, env, &off[0]).await;
        anyhow::bail!("without faults, {} targets did not settle: {:?}; {why}", off.len(), &off[..off.len().min(10)]);
    }

    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let faults = json!({
        "latencyMs": 20,
        "errorRate": {"*": 0.15},
        "errorStatus": 503,
        "retryAfterSecs": 1,
        "conflictRate": 0.2,
        "dropWatchEverySecs": 4,
        "expireNextWatch": true,
        "seed": seed,
    });
    // Every load changes as the chaos starts: the hub sees the edits through dropped watches.
    for i in 0..n {
        let load = load_for(after(i));
        let patch = json!({"metadata": {"annotations": {"sim.scalehub.io/load": load}}});
        // The test's own writes meet the faults too: retry them.
        let mut attempt = 0;
        while let Err(e) = env.deployments().patch(&name(i), &PatchParams::default(), &Patch::Merge(&patch)).await {
            attempt += 1;
            ensure!(attempt < 100, "could not change the load of {}: {e}", name(i));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if i == n / 10 {
            set_faults(env, &faults).await?;
        }
    }
    tokio::time::sleep(CHAOS).await;
    // The admin endpoint is not subject to faults; an empty body turns them all off.
    set_faults(env, &json!({})).await?;
    println!("chaos drill: {n} targets, {CHAOS:?} of faults (seed {seed})");

    let off = settle(env, n, after, Duration::from_secs(90)).await?;
    if !off.is_empty() {
        let why = last_decision(&hub, env, &off[0]).await;
        anyhow::bail!("after the chaos, {} of {n} targets are off: {:?}; {why}", off.len(), &off[..off.len().min(10)]);
    }
    let restarts = hub.ctx.metrics.loop_restarts.get();
    ensure!(restarts == 0, "{restarts} target loops panicked");
    let mut active = 0;
    let mut filter =
        scalehub_store::TargetFilter { namespace: Some(env.ns.clone()), limit: 1000, ..Default::default() };
    loop {
        let page = hub.ctx.store.list_targets(&filter).await?;
        for row in &page.items {
            ensure!(row.state == "active", "{} is {} after the chaos: {:?}", row.key, row.state, row.error);
            active += 1;
        }
        match page.next_cursor {
            Some(cursor) => filter.cursor = Some(cursor),
            None => break,
        }
    }
    ensure!(active == n, "{active} of {n} targets are active in the store");
    println!("chaos drill: all {n} targets at the replicas of a fault-free run, no panics, none lost");
    hub.shutdown().await;
    Ok(())
}
