//! A built-in CPU profile (the HPA's own calculation over `metrics.k8s.io`, no hooks).
//!
//! Simulator only: the real kube-apiserver in the test tier has no metrics API (no
//! metrics-server), so there is no CPU to read.

use anyhow::{Context as _, ensure};
use serde_json::json;

use crate::fixtures::{create, decisions, deployment, first_scaled, opted_in, summary};
use crate::harness::{Env, WAIT, eventually, on_simulator};
use crate::process::http;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_builtin_cpu_profile_scales_a_workload_under_load() {
    on_simulator("builtin-cpu", "the real kube-apiserver serves no metrics.k8s.io", async |env: &Env| cpu(env).await)
        .await;
}

async fn cpu(env: &Env) -> anyhow::Result<()> {
    let profile = json!({
        "kubernetesMetricSpecs": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
        ],
        // The simulator's pods are Ready within 200 ms; count their CPU at once.
        "cpuInitializationPeriod": 1,
        "initialReadinessDelay": 1,
    });
    let hub = env.start_hub(&env.config(json!({"cpu": profile})), "hub.db", "hub-a").await?;
    let store = &hub.ctx.store;
    // 3 cores of demand over 2 pods requesting 500m each: 300% against a 50% target asks for 12.
    let annotations = opted_in(&[
        ("scalehub.io/profile", "cpu"),
        ("scalehub.io/max-replicas", "8"),
        ("sim.scalehub.io/load", "constant:3000m"),
    ]);
    create(env, &deployment("busy", 2, annotations)).await?;
    env.wait_replicas("busy", 8).await?;
    let scaled = eventually("a `scaled` decision", WAIT, async || first_scaled(env, store, "busy").await).await?;
    let all = summary(&decisions(env, store, "busy").await?);
    ensure!(
        scaled.raw_evaluation.is_some_and(|r| r > 8),
        "the built-in evaluation asked for {:?}: {all}",
        scaled.raw_evaluation
    );
    // No `behavior:`: the HPA's legacy cap lets 2 replicas become at most max(2 × 2, 4) = 4 in
    // one tick, and the next tick goes on to the maximum.
    let reasons = scaled.reasons.to_value();
    ensure!(
        scaled.final_replicas == Some(4)
            && reasons.as_array().is_some_and(|r| {
                r.iter().any(|r| r["code"] == "ScaleUpLimit" && r["detail"]["kind"] == "scaleUpCap")
            }),
        "the first scale-up was not capped at 4 by the HPA's rule: {reasons}; {all}"
    );
    ensure!(
        scaled.evaluation.to_value().get("builtin").is_some(),
        "the evaluation does not say it was built in: {}",
        scaled.evaluation
    );
    let metrics = scaled.metrics.to_value();
    let metrics = metrics.as_array().context("metrics are not a list")?;
    ensure!(!metrics.is_empty(), "the decision records no CPU reading: {all}");
    ensure!(
        scaled.hooks.to_value().as_array().is_none_or(|h| h.is_empty()),
        "a built-in profile ran hooks: {}",
        scaled.hooks
    );

    // The series keeps what each tick observed of the CPU, and a replay runs another
    // profile's calculation over it: the target's own (50%) gives back the first recorded
    // evaluation; a 100% goal asks for half as many.
    let path = format!("/api/v1/targets/{}/Deployment/busy/replay", env.ns);
    let own = json!({"policy": {"calculation": {"profile": "cpu"}}});
    let (status, replay) = http(hub.addr, "POST", &path, None, Some(&own)).await?;
    ensure!(status == 200, "POST {path}: {status} {replay}");
    let ticks = replay["ticks"].as_array().context("no ticks")?;
    let first = ticks.iter().find(|t| t["asked"].is_i64()).context("no evaluated tick")?;
    ensure!(first["evaluated"] == first["asked"], "the own calculation differs from the record: {first}");
    let half = json!({"policy": {"calculation": {"kubernetesMetricSpecs": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 100}}}]}}});
    let (status, replay) = http(hub.addr, "POST", &path, None, Some(&half)).await?;
    ensure!(status == 200, "POST {path}: {status} {replay}");
    let first = replay["ticks"].as_array().and_then(|t| t.iter().find(|t| t["asked"].is_i64())).context("no tick")?;
    let (asked, evaluated) = (first["asked"].as_i64().unwrap_or(0), first["evaluated"].as_i64().unwrap_or(0));
    ensure!(evaluated == (asked + 1) / 2, "a 100% goal asked for {evaluated} where 50% asked for {asked}: {first}");
    hub.shutdown().await;
    Ok(())
}
