//! CPA fidelity (issue 9): a CPA profile behaves as the CPA does.
//!
//! - The CPA's defaults: no downscale window and an empty one for a new target, so the
//!   zero-scaler example reaches 0 on its first tick and a scale-down follows the evaluation.
//! - The evaluation as Go reads it: `TargetReplicas` in any case; a negative count clamped
//!   to the minimum, with the reason saying so.
//! - `startTime` aligns the first tick as the CPA's ticker does.
//! - The target shows each setting's source.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};

use crate::fixtures::{create, decisions, decisions_once, deployment, opted_in, sh, summary, target};
use crate::harness::{Env, eventually, on_every_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpa_profile_has_the_cpa_defaults_and_reads_evaluations_as_go_does() {
    on_every_server("cpa-fidelity", async |env: &Env| cpa_fidelity(env).await).await;
}

/// A CPA profile whose evaluate hook prints `evaluation` (JSON) whatever the metrics.
fn printing(evaluation: &str, extra: Value) -> Value {
    let mut profile = json!({
        "metric": sh("echo 1", 5_000),
        "evaluate": sh(&format!("cat >/dev/null; echo '{evaluation}'"), 5_000),
    });
    if let (Some(p), Some(extra)) = (profile.as_object_mut(), extra.as_object()) {
        p.extend(extra.clone());
    }
    profile
}

async fn cpa_fidelity(env: &Env) -> anyhow::Result<()> {
    let profiles = json!({
        "default": printing(r#"{"targetReplicas": 2}"#, json!({})),
        // The CPA's zero-scaler example: minReplicas 0, the evaluation says 0.
        "zero": printing(r#"{"targetReplicas": 0}"#, json!({"minReplicas": 0})),
        "capital": printing(r#"{"TargetReplicas": 3}"#, json!({})),
        "negative": printing(r#"{"targetReplicas": -4}"#, json!({"minReplicas": 2})),
        // `startTime: 5000`: the first tick comes one interval after a multiple of 5 s.
        "aligned": printing(r#"{"targetReplicas": 1}"#, json!({"startTime": 5000, "interval": 1000})),
        "windowed": printing(r#"{"targetReplicas": 2}"#, json!({"downscaleStabilization": 30})),
    });
    let hub = env.start_hub(&env.config(profiles), "hub.db", "hub-a").await?;
    let store = &hub.ctx.store;
    let with = |profile: &str| opted_in(&[("scalehub.io/profile", profile)]);
    // Every scale-down below starts from 5 replicas: the HPA's rule would hold it 5 minutes.
    create(env, &deployment("down", 5, opted_in(&[]))).await?;
    create(env, &deployment("zero", 5, with("zero"))).await?;
    create(env, &deployment("capital", 1, with("capital"))).await?;
    create(env, &deployment("negative", 5, with("negative"))).await?;
    create(env, &deployment("aligned", 3, with("aligned"))).await?;
    let mut windowed = opted_in(&[("scalehub.io/profile", "windowed")]);
    windowed.insert("scalehub.io/upscale-stabilization".into(), "10s".into());
    create(env, &deployment("windowed", 5, windowed)).await?;

    // No window by default, and none seeded: the first evaluation applies.
    env.wait_replicas("down", 2).await?;
    env.wait_replicas("zero", 0).await?;
    // A window the user copied from the CPA starts empty too.
    env.wait_replicas("windowed", 2).await?;
    // `TargetReplicas`, as Go's case-insensitive decoding reads it.
    env.wait_replicas("capital", 3).await?;
    // -4 is an int32; the minimum clamps it, and the reason says so.
    env.wait_replicas("negative", 2).await?;
    let clamp_reason = |d: &scalehub_store::DecisionRow| {
        d.reasons.to_value().as_array().is_some_and(|r| r.iter().any(|r| r["code"] == "TooFewReplicas"))
    };
    let clamped =
        decisions_once(env, store, "negative", "the clamp's decision", |all| all.iter().any(clamp_reason)).await?;
    let reason = clamped
        .iter()
        .flat_map(|d| d.reasons.to_value().as_array().cloned().unwrap_or_default())
        .find(|r| r["code"] == "TooFewReplicas")
        .with_context(|| format!("no clamp reason: {}", summary(&clamped)))?;
    ensure!(
        reason["message"] == "the evaluation -4 is below the minimum 2" && reason["from"] == -4,
        "the clamp reason: {reason}"
    );

    // The first tick of the aligned target: 1 s after a multiple of 5 s (the tick's start is
    // recorded; allow for scheduling).
    let first = eventually("the aligned target's first decision", Duration::from_secs(20), async || {
        Ok(decisions(env, store, "aligned").await?.into_iter().min_by_key(|d| d.time))
    })
    .await?;
    let phase = (first.time - 1_000).rem_euclid(5_000);
    ensure!(phase < 400, "the first tick came {phase} ms after the 5 s grid plus one interval");

    // The target says where each effective value came from.
    let row = target(env, store, "windowed").await?.context("no row for windowed")?;
    let spec = &row.spec.to_value();
    ensure!(spec["lineage"] == "cpa", "lineage: {spec}");
    let sources = &spec["sources"];
    ensure!(
        sources["downscaleStabilization"] == "profile"
            && sources["upscaleStabilization"] == "annotation"
            && sources["runMode"] == "cpa-default"
            && spec["runMode"] == "per-pod",
        "sources: {spec}"
    );
    hub.shutdown().await;
    Ok(())
}
