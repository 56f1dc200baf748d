//! `scalehub.io/run-mode: per-pod`: the metric hook runs once for each pod of the target.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::fixtures::{create, decisions, deployment, map, opted_in, param_profile, summary};
use crate::harness::{Env, WAIT, eventually, on_every_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_pod_mode_runs_the_metric_hook_once_per_pod() {
    on_every_server("per-pod", async |env: &Env| per_pod(env).await).await;
}

async fn pod_names(pods: &Api<Pod>) -> anyhow::Result<BTreeSet<String>> {
    let list = pods.list(&ListParams::default().labels("app=fleet")).await.context("list pods")?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.metadata.name)
        .collect())
}

async fn per_pod(env: &Env) -> anyhow::Result<()> {
    // The metric hook fails unless it is given a Pod.
    let annotations = opted_in(&[
        ("scalehub.io/run-mode", "per-pod"),
        ("scalehub.io/param.replicas", "3"),
        ("scalehub.io/param.expectKind", "Pod"),
    ]);
    create(env, &deployment("fleet", 2, annotations)).await?;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    // The simulator's controllers and the real controller-manager create the pods; if the real
    // server's controllers do not, the test makes them itself, Running and Ready.
    let controlled = eventually("the deployment's pods", Duration::from_secs(10), async || {
        Ok((pod_names(&pods).await?.len() == 2).then_some(()))
    })
    .await;
    if controlled.is_err() {
        ensure!(env.is_real, "the simulator made no pods for the deployment");
        println!("per-pod on {}: no controller-made pods; creating them", env.server);
        for i in 0..2 {
            make_ready_pod(&pods, &format!("fleet-manual-{i}")).await?;
        }
    }

    let hub = env.start_hub(&env.config(json!({"default": param_profile()})), "hub.db", "hub-a").await?;
    let store = &hub.ctx.store;
    env.wait_replicas("fleet", 3).await?;
    // Once the pods have caught up with the scale, one decision sees exactly them.
    let mut last = (BTreeSet::new(), BTreeSet::new());
    let found = eventually("a decision whose metrics name every current pod", WAIT, async || {
        let names = pod_names(&pods).await?;
        let Some(d) = decisions(env, store, "fleet").await?.into_iter().find(|d| d.outcome != "error") else {
            return Ok(None);
        };
        let resources: BTreeSet<String> = d
            .metrics
            .to_value()
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["resource"].as_str().map(String::from))
            .collect();
        let done = resources == names && !names.is_empty();
        last = (names.clone(), resources);
        Ok(done.then_some((names, d)))
    })
    .await;
    let (names, decision) =
        found.with_context(|| format!("pods {:?}, pods in the last decision {:?}", last.0, last.1))?;
    let metrics = decision.metrics.to_value().as_array().cloned().unwrap_or_default();
    ensure!(
        metrics.len() == names.len(),
        "{} metric values for {} pods: {}",
        metrics.len(),
        names.len(),
        decision.metrics
    );
    ensure!(metrics.iter().all(|m| m["value"] == "3"), "every pod's metric is the hook's output: {}", decision.metrics);
    let stages: BTreeSet<String> = decision
        .hooks
        .to_value()
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["stage"].as_str().map(String::from))
        .collect();
    for name in &names {
        ensure!(stages.contains(&format!("metric[{name}]")), "no metric run recorded for pod {name}: {stages:?}");
    }
    let metric_runs = stages.iter().filter(|s| s.starts_with("metric")).count();
    ensure!(metric_runs == names.len(), "{metric_runs} metric runs for {} pods: {stages:?}", names.len());
    let all = decisions(env, store, "fleet").await?;
    ensure!(all.iter().all(|d| d.outcome != "error"), "per-pod ticks failed: {}", summary(&all));
    hub.shutdown().await;
    Ok(())
}

/// Creates a pod matching the fleet's selector and marks it Running and Ready.
async fn make_ready_pod(pods: &Api<Pod>, name: &str) -> anyhow::Result<()> {
    let pod = Pod {
        metadata: ObjectMeta { name: Some(name.into()), labels: Some(map(&[("app", "fleet")])), ..Default::default() },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some("registry.k8s.io/pause:3.9".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    pods.create(&PostParams::default(), &pod).await.with_context(|| format!("create pod {name}"))?;
    let now = jiff::Timestamp::now().to_string();
    let status = json!({"status": {
        "phase": "Running",
        "startTime": now,
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .with_context(|| format!("mark pod {name} ready"))?;
    Ok(())
}
