//! Scale to and from zero (issue 10, item 4): with `minReplicas: 0` and a profile's
//! `scaleToZero:`, an inactive target goes down to one through its windows, to zero only after
//! the cooldown, and an active one comes back from zero to one at once; each step has its reason.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use crate::fixtures::{create, decisions, decisions_once, deployment, opted_in, sh, summary};
use crate::harness::{Env, WAIT, eventually, on_every_server, on_simulator};
use crate::process::http;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_target_goes_to_zero_after_its_cooldown_and_wakes_at_once() {
    on_every_server("scale-to-zero", async |env: &Env| scale_to_zero(env).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_builtin_profile_wakes_on_its_external_metric() {
    on_simulator(
        "scale-to-zero-external",
        "the real kube-apiserver serves no external.metrics.k8s.io",
        async |env: &Env| external(env).await,
    )
    .await;
}

async fn set_queue(env: &Env, messages: u32) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let value = format!("constant:{messages}");
    let patch = json!({"metadata": {"annotations": {"sim.scalehub.io/external.queue_messages_ready": value}}});
    namespaces
        .patch(&env.ns, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .context("annotate the namespace")?;
    Ok(())
}

async fn external(env: &Env) -> anyhow::Result<()> {
    // Active above 5 messages; 20 messages a replica.
    let profile = json!({
        "kubernetesMetricSpecs": [{"type": "External", "external": {
            "metric": {"name": "queue_messages_ready"},
            "target": {"type": "AverageValue", "averageValue": "20"},
        }}],
        "minReplicas": 0,
        "scaleToZero": {"activationThreshold": 5, "cooldownPeriod": 1},
        "downscaleStabilization": 0,
    });
    set_queue(env, 3).await?;
    let hub = env.start_hub(&env.config(json!({"queue": profile})), "hub.db", "hub-a").await?;
    let store = &hub.ctx.store;
    let annotations = opted_in(&[("scalehub.io/profile", "queue"), ("scalehub.io/downscale-stabilization", "0s")]);
    create(env, &deployment("worker", 2, annotations)).await?;
    // 3 messages: ceil(3 / 20) = 1, and inactive (3 <= 5), so zero after a second at one.
    env.wait_replicas("worker", 0).await?;
    let all = decisions_once(env, store, "worker", "the decision to zero", |all| {
        all.iter().any(|d| d.final_replicas == Some(0))
    })
    .await?;
    let to_zero = all.iter().find(|d| d.final_replicas == Some(0)).context("no decision to zero")?;
    ensure!(
        to_zero.reasons.to_string().contains("3 <= the activation threshold 5"),
        "the reason names the metric value and the threshold: {}",
        summary(&all)
    );
    // 90 messages: active, 0 → 1 at once, then ceil(90 / 20) = 5.
    set_queue(env, 90).await?;
    env.wait_replicas("worker", 5).await?;
    decisions_once(env, store, "worker", "an activation from zero on 90 messages", |all| {
        all.iter().any(|d| {
            d.current_replicas == Some(0)
                && d.final_replicas == Some(1)
                && d.reasons.to_string().contains("90 > the activation threshold 5")
        })
    })
    .await?;
    hub.shutdown().await;
    Ok(())
}

fn set_evaluation(env: &Env, replicas: u32) -> anyhow::Result<()> {
    let tmp = env.path("evaluation.tmp");
    std::fs::write(&tmp, json!({"targetReplicas": replicas}).to_string())?;
    std::fs::rename(&tmp, env.path("evaluation.json"))?;
    Ok(())
}

/// The codes of every reason of the decisions, oldest decision first.
fn codes(all: &[scalehub_store::DecisionRow]) -> Vec<String> {
    let mut codes = Vec::new();
    for decision in all.iter().rev() {
        if let Value::Array(reasons) = decision.reasons.to_value() {
            codes.extend(reasons.iter().filter_map(|r| r["code"].as_str().map(str::to_owned)));
        }
    }
    codes
}

async fn scale_to_zero(env: &Env) -> anyhow::Result<()> {
    set_evaluation(env, 0)?;
    let file = env.path("evaluation.json");
    let evaluate = format!("cat >/dev/null; cat '{}'", file.display());
    let profile = json!({
        "metric": sh("echo 1", 5_000),
        "evaluate": sh(&evaluate, 5_000),
        "runMode": "per-resource",
        "minReplicas": 0,
        // Long enough that under a loaded suite at least one tick at 1 replica waits it out.
        "scaleToZero": {"cooldownPeriod": 8},
        // One pod a second on the way down, so the walk to one is visibly rate-limited.
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 1}]}},
    });
    let hub = env.start_hub(&env.config(json!({"idle": profile})), "hub.db", "hub-a").await?;
    let store = &hub.ctx.store;
    create(env, &deployment("idle", 3, opted_in(&[("scalehub.io/profile", "idle")]))).await?;

    // Inactive: 3 → 2 → 1 by the rate policy, then 0 once eight seconds have passed.
    env.wait_replicas("idle", 1).await?;
    env.wait_replicas("idle", 0).await?;
    // The decision to zero is recorded just after its scale call: give its write a moment.
    let all = eventually("the decision to zero", WAIT, async || {
        let all = decisions(env, store, "idle").await?;
        Ok(all.iter().any(|d| d.outcome == "scaled" && d.final_replicas == Some(0)).then_some(all))
    })
    .await?;
    let finals: Vec<i32> =
        all.iter().rev().filter(|d| d.outcome == "scaled").filter_map(|d| d.final_replicas).collect();
    ensure!(finals == [2, 1, 0], "the way down was not one pod at a time and then zero: {}", summary(&all));
    let seen = codes(&all);
    for code in ["Inactive", "ScaleDownLimit", "ScaleToZeroCooldown", "ScaledToZero"] {
        ensure!(seen.iter().any(|c| c == code), "no {code} reason: {seen:?}");
    }
    let zero = all.iter().find(|d| d.final_replicas == Some(0)).context("no decision to zero")?;
    let last = zero.reasons.to_value().as_array().and_then(|r| r.last().cloned()).unwrap_or_default();
    ensure!(
        last["step"] == "activation" && last["code"] == "ScaledToZero" && last["detail"]["kind"] == "cooldown",
        "the last step to zero: {last}"
    );
    ensure!(last["detail"]["cooldownMs"] == 8_000, "the cooldown in the reason: {last}");

    // Active again: 0 → 1 at once, and on to what the evaluation asks for.
    set_evaluation(env, 3)?;
    env.wait_replicas("idle", 3).await?;
    let woke = eventually("the activation decision", WAIT, async || {
        Ok(decisions(env, store, "idle")
            .await?
            .into_iter()
            .find(|d| d.current_replicas == Some(0) && d.final_replicas == Some(1) && d.outcome == "scaled"))
    })
    .await?;
    let first = &woke.reasons.to_value()[0];
    ensure!(first["code"] == "Activated" && first["to"] == 1, "the activation reason: {}", woke.reasons);

    // The spec shows what applies.
    let path = format!("/api/v1/targets/{}/Deployment/idle", env.ns);
    let (status, spec) = http(hub.addr, "GET", &path, None, None).await?;
    ensure!(status == 200, "GET {path}: {status} {spec}");
    ensure!(
        spec["spec"]["scaleToZero"] == json!({"activationThresholdMilli": 0, "cooldownPeriod": "8s"}),
        "the target's spec: {}",
        spec["spec"]
    );
    hub.shutdown().await;
    // Stopped hub, no one scales: the target keeps 3.
    env.hold_replicas("idle", 3, Duration::from_millis(500)).await?;
    Ok(())
}
