//! The basic promise: annotate a workload and the hub scales it to what its hooks evaluate,
//! within its bounds, and says why (decision history, Events).

use anyhow::{Context as _, ensure};
use serde_json::json;

use crate::fixtures::{create, decisions, deployment, events_of, opted_in, param_profile, summary, target};
use crate::harness::{Env, WAIT, eventually, on_every_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_annotated_deployment_is_scaled_to_its_evaluation() {
    on_every_server("annotate-scales", async |env: &Env| scaled_to_evaluation(env).await).await;
}

async fn scaled_to_evaluation(env: &Env) -> anyhow::Result<()> {
    let hub = env.start_hub(&env.config(json!({"default": param_profile()})), "hub.db", "hub-a").await?;
    let store = &hub.ctx.store;
    let annotations = opted_in(&[("scalehub.io/param.replicas", "4"), ("scalehub.io/param.expectKind", "Deployment")]);
    create(env, &deployment("web", 1, annotations)).await?;
    env.wait_replicas("web", 4).await?;

    let scaled = eventually("a `scaled` decision in the store", WAIT, async || {
        Ok(decisions(env, store, "web").await?.into_iter().find(|d| d.outcome == "scaled"))
    })
    .await?;
    let all = summary(&decisions(env, store, "web").await?);
    ensure!(scaled.scaled, "the scaled decision says no scale call was made: {all}");
    ensure!(scaled.raw_evaluation == Some(4), "raw evaluation {:?}, expected 4: {all}", scaled.raw_evaluation);
    ensure!(scaled.final_replicas == Some(4), "final replicas {:?}, expected 4: {all}", scaled.final_replicas);
    ensure!(scaled.current_replicas == Some(1), "current replicas {:?}, expected 1", scaled.current_replicas);
    ensure!(scaled.run_type == "scaler", "run type {:?}, expected scaler", scaled.run_type);
    ensure!(scaled.reasons.to_value().is_array(), "the reason chain is not a list: {}", scaled.reasons);
    ensure!(scaled.scale_result.as_deref().is_some_and(|r| r.contains('4')), "scale result {:?}", scaled.scale_result);
    ensure!(
        scaled.metrics.to_value() == json!([{"resource": "web", "value": "4"}]),
        "metrics of the decision: {}, expected the metric hook's output for the workload",
        scaled.metrics
    );
    let hooks = scaled.hooks.to_value();
    let stages: Vec<&str> = hooks.as_array().into_iter().flatten().filter_map(|h| h["stage"].as_str()).collect();
    ensure!(stages == ["metric", "evaluate"], "hook outcomes recorded for stages {stages:?}: {}", scaled.hooks);
    ensure!(
        hooks.as_array().into_iter().flatten().all(|h| h["exitCode"] == json!(0)),
        "every hook exited 0: {}",
        scaled.hooks
    );

    let row = target(env, store, "web").await?.context("no target row for web")?;
    ensure!(row.state == "active", "target state {:?}, expected active", row.state);
    ensure!(row.error.is_none(), "target error {:?}", row.error);

    let event = eventually("a SuccessfulRescale Event on the deployment", WAIT, async || {
        Ok(events_of(env, "web").await?.into_iter().find(|e| e.reason.as_deref() == Some("SuccessfulRescale")))
    })
    .await?;
    ensure!(event.type_.as_deref() == Some("Normal"), "SuccessfulRescale is {:?}, expected Normal", event.type_);
    ensure!(
        event.note.as_deref().is_some_and(|n| n.contains('4')),
        "the Event's note should name the new size: {:?}",
        event.note
    );
    hub.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evaluation_above_max_replicas_is_clamped_and_says_so() {
    on_every_server("clamping", async |env: &Env| clamped(env).await).await;
}

async fn clamped(env: &Env) -> anyhow::Result<()> {
    let hub = env.start_hub(&env.config(json!({"default": param_profile()})), "hub.db", "hub-a").await?;
    let store = &hub.ctx.store;
    let annotations = opted_in(&[("scalehub.io/param.replicas", "50"), ("scalehub.io/max-replicas", "6")]);
    create(env, &deployment("big", 2, annotations)).await?;
    env.wait_replicas("big", 6).await?;
    let scaled = eventually("a `scaled` decision in the store", WAIT, async || {
        Ok(decisions(env, store, "big").await?.into_iter().find(|d| d.outcome == "scaled"))
    })
    .await?;
    ensure!(scaled.raw_evaluation == Some(50), "raw evaluation {:?}, expected 50", scaled.raw_evaluation);
    ensure!(scaled.final_replicas == Some(6), "final replicas {:?}, expected 6", scaled.final_replicas);
    let reasons = scaled.reasons.to_value();
    let clamp = reasons
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["step"] == "clamp")
        .with_context(|| format!("no clamp step in the reason chain {}", scaled.reasons))?;
    ensure!(clamp["code"] == "TooManyReplicas", "clamp reason code {}, expected TooManyReplicas", clamp["code"]);
    ensure!(
        clamp["from"] == 50 && clamp["to"] == 6,
        "clamp step went {} → {}, expected 50 → 6",
        clamp["from"],
        clamp["to"]
    );
    // Clamped at the maximum, the target stays there.
    env.hold_replicas("big", 6, std::time::Duration::from_secs(2)).await?;
    hub.shutdown().await;
    Ok(())
}
