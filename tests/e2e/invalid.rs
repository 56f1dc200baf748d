//! Targets the hub must list but never scale: invalid annotations, and workloads an HPA owns.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use k8s_openapi::api::autoscaling::{v1, v2};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

use crate::fixtures::{annotate, create, decisions, deployment, events_of, opted_in, param_profile, summary, target};
use crate::harness::{Env, WAIT, eventually, on_every_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_annotations_are_reported_and_never_scaled() {
    on_every_server("invalid-annotations", async |env: &Env| invalid(env).await).await;
}

async fn invalid(env: &Env) -> anyhow::Result<()> {
    let hub = env.start_hub(&env.config(json!({"default": param_profile()})), "hub.db", "hub-a").await?;
    let store = &hub.ctx.store;
    let annotations = opted_in(&[("scalehub.io/param.replicas", "5"), ("scalehub.io/min-replicas", "abc")]);
    create(env, &deployment("typo", 2, annotations)).await?;

    // An invalid spec has no interval, so the hub falls back to its 15 s default and jitters the
    // first tick over it, so the report may take up to ~16 s.
    let row = eventually("the target row in state invalid", WAIT + Duration::from_secs(10), async || {
        Ok(target(env, store, "typo").await?.filter(|r| r.state == "invalid"))
    })
    .await?;
    let error = row.error.clone().unwrap_or_default();
    ensure!(error.contains("scalehub.io/min-replicas"), "the error should name the annotation: {error:?}");
    ensure!(error.contains("abc"), "the error should quote the bad value: {error:?}");

    let warning = eventually("a Warning Event naming the annotation", WAIT, async || {
        Ok(events_of(env, "typo").await?.into_iter().find(|e| {
            e.type_.as_deref() == Some("Warning") && e.note.as_deref().is_some_and(|n| n.contains("min-replicas"))
        }))
    })
    .await?;
    ensure!(warning.reason.is_some(), "the Warning Event has no reason");

    // Several 1 s ticks: still 2 replicas, and no tick ran the hooks.
    env.hold_replicas("typo", 2, Duration::from_secs(3)).await?;
    let decided = decisions(env, store, "typo").await?;
    ensure!(decided.is_empty(), "an invalid target must not be decided for: {}", summary(&decided));
    hub.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_an_hpa_targets_is_a_conflict_and_never_scaled() {
    on_every_server("hpa-conflict", async |env: &Env| conflict(env).await).await;
}

async fn conflict(env: &Env) -> anyhow::Result<()> {
    let annotations = opted_in(&[("scalehub.io/param.replicas", "7")]);
    create(env, &deployment("contested", 2, annotations)).await?;
    // The HPA exists before the hub starts: the hub must never scale a workload an HPA owns,
    // not even on its first tick.
    create_hpa(env, "contested-hpa", "contested").await?;
    let hub = env.start_hub(&env.config(json!({"default": param_profile()})), "hub.db", "hub-a").await?;
    let store = &hub.ctx.store;
    let row = eventually("the target row in state conflict", WAIT, async || {
        let row = target(env, store, "contested").await?;
        if let Some(r) = &row {
            ensure!(r.state != "active", "the target is active although an HPA owns it: {r:?}");
        }
        Ok(row.filter(|r| r.state == "conflict"))
    })
    .await?;
    let error = row.error.clone().unwrap_or_default();
    ensure!(error.contains("contested-hpa"), "the conflict should name the HPA: {error:?}");
    env.hold_replicas("contested", 2, Duration::from_secs(3)).await?;
    let decided = decisions(env, store, "contested").await?;
    ensure!(decided.iter().all(|d| !d.scaled), "a workload an HPA owns was scaled: {}", summary(&decided));

    // An HPA that appears later takes an active target out of the hub's hands as well.
    create(env, &deployment("later", 1, opted_in(&[("scalehub.io/param.replicas", "4")]))).await?;
    env.wait_replicas("later", 4).await?;
    create_hpa(env, "later-hpa", "later").await?;
    eventually("the later target's row in state conflict", WAIT, async || {
        Ok(target(env, store, "later").await?.filter(|r| r.state == "conflict"))
    })
    .await?;
    annotate(env, "later", &[("scalehub.io/param.replicas", Some("6"))]).await?;
    env.hold_replicas("later", 4, Duration::from_secs(3)).await?;
    hub.shutdown().await;
    Ok(())
}

/// Creates HPA `name` on Deployment `target`. The real v1.20 server has no autoscaling/v2, so it
/// gets a v1 HPA (no HPA controller runs there, and bounds 1..10 around the replicas the tests use
/// would leave the workload alone anyway).
async fn create_hpa(env: &Env, name: &str, target: &str) -> anyhow::Result<()> {
    let meta = ObjectMeta { name: Some(name.into()), ..Default::default() };
    if env.is_real {
        let hpa = v1::HorizontalPodAutoscaler {
            metadata: meta,
            spec: Some(v1::HorizontalPodAutoscalerSpec {
                scale_target_ref: v1::CrossVersionObjectReference {
                    api_version: Some("apps/v1".into()),
                    kind: "Deployment".into(),
                    name: target.into(),
                },
                min_replicas: Some(1),
                max_replicas: 10,
                target_cpu_utilization_percentage: Some(80),
            }),
            ..Default::default()
        };
        let api: Api<v1::HorizontalPodAutoscaler> = Api::namespaced(env.client.clone(), &env.ns);
        api.create(&PostParams::default(), &hpa).await.context("create autoscaling/v1 HPA")?;
    } else {
        let hpa = v2::HorizontalPodAutoscaler {
            metadata: meta,
            spec: Some(v2::HorizontalPodAutoscalerSpec {
                scale_target_ref: v2::CrossVersionObjectReference {
                    api_version: Some("apps/v1".into()),
                    kind: "Deployment".into(),
                    name: target.into(),
                },
                min_replicas: Some(1),
                max_replicas: 10,
                ..Default::default()
            }),
            ..Default::default()
        };
        let api: Api<v2::HorizontalPodAutoscaler> = Api::namespaced(env.client.clone(), &env.ns);
        api.create(&PostParams::default(), &hpa).await.context("create autoscaling/v2 HPA")?;
    }
    Ok(())
}
