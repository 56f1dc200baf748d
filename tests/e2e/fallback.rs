//! A profile's `fallback` (issue 10, item 3; KEDA's `fallback`): after `failureThreshold`
//! failed ticks in a row the target goes to the fallback count through the usual bounds and
//! windows, the decision and an Event say so, and the first good tick ends it.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use serde_json::json;

use crate::fixtures::{create, decisions, decisions_once, deployment, events_of, opted_in, sh, summary};
use crate::harness::{Env, WAIT, eventually, on_every_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_target_goes_to_its_fallback_and_leaves_it_on_the_first_good_tick() {
    on_every_server("fallback", async |env: &Env| fallback(env).await).await;
}

async fn fallback(env: &Env) -> anyhow::Result<()> {
    // The evaluation fails until the flag file exists, then asks for 1.
    let flag = env.path("healthy");
    let evaluate = format!(r#"cat >/dev/null; test -f '{}' || exit 3; echo '{{"targetReplicas": 1}}'"#, flag.display());
    let failing = |fallback: serde_json::Value| json!({"metric": sh("echo 1", 5_000), "evaluate": sh(&evaluate, 5_000), "fallback": fallback});
    let profiles = json!({
        "static": failing(json!({"failureThreshold": 2, "replicas": 4})),
        "higher": failing(json!({"failureThreshold": 2, "replicas": 2, "behavior": "currentReplicasIfHigher"})),
    });
    let hub = env.start_hub(&env.config(profiles), "hub.db", "hub-a").await?;
    let store = &hub.ctx.store;
    create(env, &deployment("static", 1, opted_in(&[("scalehub.io/profile", "static")]))).await?;
    create(env, &deployment("higher", 5, opted_in(&[("scalehub.io/profile", "higher")]))).await?;

    env.wait_replicas("static", 4).await?;
    let all = decisions_once(env, store, "static", "the fallback's decision", |all| {
        all.iter().any(|d| d.outcome == "scaled")
    })
    .await?;
    // Below the threshold a failure decides nothing.
    let plain = all.iter().any(|d| d.final_replicas.is_none() && d.error.is_some());
    ensure!(plain, "the fallback applied on the first failure: {}", summary(&all));
    let fell_back =
        all.iter().find(|d| d.outcome == "scaled").with_context(|| format!("no scaled decision: {}", summary(&all)))?;
    let reason = &fell_back.reasons.to_value()[0];
    ensure!(
        reason["step"] == "fallback" && reason["code"] == "FallbackReplicas" && reason["to"] == 4,
        "the first reason of the fallback decision: {}",
        fell_back.reasons
    );
    ensure!(
        fell_back.error.as_deref().is_some_and(|e| e.contains("evaluate")),
        "the failure is kept: {:?}",
        fell_back.error
    );
    eventually("a FallbackActivated Event", WAIT, async || {
        Ok(events_of(env, "static").await?.into_iter().find(|e| e.reason.as_deref() == Some("FallbackActivated")))
    })
    .await?;
    // currentReplicasIfHigher: 5 is higher than 2, so the target holds 5.
    eventually("a fallback decision of higher", WAIT, async || {
        Ok(decisions(env, store, "higher").await?.into_iter().find(|d| d.reasons.to_value()[0]["step"] == "fallback"))
    })
    .await?;
    env.hold_replicas("higher", 5, Duration::from_secs(2)).await?;

    // The evaluation works again: the next tick decides on it and the fallback ends.
    std::fs::write(&flag, b"").context("write the flag file")?;
    env.wait_replicas("static", 1).await?;
    eventually("a FallbackDeactivated Event", WAIT, async || {
        Ok(events_of(env, "static").await?.into_iter().find(|e| e.reason.as_deref() == Some("FallbackDeactivated")))
    })
    .await?;
    hub.shutdown().await;
    Ok(())
}
