//! Object, External and Pods metric specs (issue 9, item 4): the built-in HPA calculation
//! scales on each, and a CPA metric hook gets each in the CPA's `kubernetesMetrics` shape.
//!
//! Simulator only: the real kube-apiserver in the test tier has no metrics adapter, so no
//! custom.metrics.k8s.io or external.metrics.k8s.io to read. The simulator serves them from
//! its load model (`sim.scalehub.io/metric.<name>` on the described object,
//! `sim.scalehub.io/external.<name>` on the Namespace, `sim.scalehub.io/pods-metric.<name>`
//! on the workload).

use anyhow::{Context as _, ensure};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use crate::fixtures::{create, decisions, deployment, first_scaled, opted_in, sh, summary};
use crate::harness::{Env, WAIT, eventually, on_simulator};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_external_and_pods_metrics_drive_the_builtin_calculation_and_reach_cpa_hooks() {
    on_simulator(
        "custom-metrics",
        "the real kube-apiserver has no custom or external metrics API",
        async |env: &Env| custom_metrics(env).await,
    )
    .await;
}

async fn custom_metrics(env: &Env) -> anyhow::Result<()> {
    let object = json!({"type": "Object", "object": {
        "describedObject": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "frontend"},
        "metric": {"name": "requests_per_second"},
        "target": {"type": "Value", "value": "10"},
    }});
    let external = json!({"type": "External", "external": {
        "metric": {"name": "queue_messages_ready"},
        "target": {"type": "AverageValue", "averageValue": "20"},
    }});
    let pods = json!({"type": "Pods", "pods": {
        "metric": {"name": "rps"},
        "target": {"type": "AverageValue", "averageValue": "10"},
    }});
    // The same Pods metric, but only its series labelled `tier: gold` (the simulator's have none).
    let mut gold = pods.clone();
    gold["pods"]["metric"]["selector"] = json!({"matchLabels": {"tier": "gold"}});
    let profiles = json!({
        "gold": {"kubernetesMetricSpecs": [gold]},
        "object": {"kubernetesMetricSpecs": [object]},
        "external": {"kubernetesMetricSpecs": [external]},
        "pods": {"kubernetesMetricSpecs": [pods]},
        // A CPA profile: the metric hook prints what it was given, the evaluation holds 2.
        "echo": {
            "kubernetesMetricSpecs": [external, object],
            "metric": sh("cat", 5_000),
            "evaluate": sh(r#"cat >/dev/null; echo '{"targetReplicas": 2}'"#, 5_000),
            "runMode": "per-resource",
        },
    });
    let hub = env.start_hub(&env.config(profiles), "hub.db", "hub-a").await?;
    let store = &hub.ctx.store;

    // 90 messages in the namespace's queue.
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let patch = json!({"metadata": {"annotations": {"sim.scalehub.io/external.queue_messages_ready": "constant:90"}}});
    namespaces
        .patch(&env.ns, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .context("annotate the namespace")?;
    // The object the Object metric describes: 30 requests a second, not itself a target.
    let mut frontend = deployment("frontend", 1, Default::default());
    frontend
        .metadata
        .annotations
        .get_or_insert_default()
        .insert("sim.scalehub.io/metric.requests_per_second".into(), "constant:30".into());
    create(env, &frontend).await?;

    let with = |profile: &str, extra: &[(&str, &str)]| {
        let mut a = opted_in(&[("scalehub.io/profile", profile), ("scalehub.io/max-replicas", "12")]);
        a.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        a
    };
    // Object Value: 30 against 10 is a ratio of 3 over 2 ready pods: 6 (capped at max(2 × 2, 4)
    // = 4 by the HPA's rule without a behavior; a value that does not fall as pods are added
    // then keeps asking for 3 times the ready pods, up to the maximum).
    create(env, &deployment("by-object", 2, with("object", &[]))).await?;
    // External AverageValue: ceil(90 / 20) = 5.
    create(env, &deployment("by-queue", 2, with("external", &[]))).await?;
    // Pods AverageValue: 45 over 2 pods is 22.5 a pod against 10: ceil(2.25 × 2) = 5.
    create(env, &deployment("by-pods", 2, with("pods", &[("sim.scalehub.io/pods-metric.rps", "constant:45")]))).await?;
    create(env, &deployment("echo", 3, with("echo", &[]))).await?;
    create(env, &deployment("gold", 2, with("gold", &[("sim.scalehub.io/pods-metric.rps", "constant:45")]))).await?;

    env.wait_replicas("by-object", 12).await?;
    env.wait_replicas("by-queue", 5).await?;
    env.wait_replicas("by-pods", 5).await?;
    env.wait_replicas("echo", 2).await?;

    // The decisions say which metric asked for what.
    let scaled = |name: &'static str| async move {
        eventually(&format!("a scaled decision of {name}"), WAIT, async || {
            Ok(decisions(env, store, name).await?.into_iter().find(|d| d.outcome == "scaled"))
        })
        .await
    };
    let by_object = eventually("the first scaled decision of by-object", WAIT, async || {
        first_scaled(env, store, "by-object").await
    })
    .await?;
    let text = by_object.evaluation.to_string();
    ensure!(
        text.contains("deployments.apps/frontend/requests_per_second")
            && text.contains("value ratio 3.00 over 2 ready pods")
            && by_object.raw_evaluation == Some(6)
            && by_object.final_replicas == Some(4),
        "the object decision: {}",
        summary(&[by_object])
    );
    let by_queue = scaled("by-queue").await?;
    ensure!(by_queue.raw_evaluation == Some(5), "the queue decision: {}", summary(&[by_queue]));

    // The CPA's kubernetesMetrics element for an External AverageValue spec.
    let echo = scaled("echo").await?;
    let payload: Value = echo
        .metrics
        .to_value()
        .as_array()
        .and_then(|m| m.first())
        .and_then(|m| m["value"].as_str())
        .and_then(|v| serde_json::from_str(v).ok())
        .with_context(|| format!("the metric hook's output is not the payload: {}", echo.metrics))?;
    let element = &payload["kubernetesMetrics"][0];
    ensure!(element["current_replicas"] == 3, "current_replicas: {element}");
    ensure!(element["spec"]["external"]["metric"]["name"] == "queue_messages_ready", "spec: {element}");
    ensure!(element["external"]["current"]["average_value"] == 90_000, "the external block: {element}");
    ensure!(element["external"]["timestamp"].is_string(), "the external block's timestamp: {element}");
    ensure!(element["external"].get("ready_pod_count").is_none(), "an AverageValue block has no pod count: {element}");
    // And for an Object Value spec: the value and the ready pods.
    let element = &payload["kubernetesMetrics"][1];
    ensure!(element["object"]["current"]["value"] == 30_000, "the object block: {element}");
    // (The first tick may come before all three pods are Ready.)
    let ready = element["object"]["ready_pod_count"].as_u64();
    ensure!(ready.is_some_and(|n| n <= 3), "the object block's ready pods: {element}");

    // The metric selector reached the API: no gold series, so an error and no scaling.
    let gold = eventually("a failed decision of gold", WAIT, async || {
        Ok(decisions(env, store, "gold").await?.into_iter().find(|d| d.error.is_some()))
    })
    .await?;
    ensure!(env.replicas("gold").await? == 2, "gold was scaled: {}", summary(&[gold]));

    // A metric nobody publishes is a clear error on the target, and nothing is scaled.
    let missing = json!({"metadata": {"annotations": {"sim.scalehub.io/external.queue_messages_ready": null}}});
    namespaces.patch(&env.ns, &PatchParams::default(), &Patch::Merge(&missing)).await?;
    let failed = eventually("a failed decision of by-queue", WAIT, async || {
        Ok(decisions(env, store, "by-queue")
            .await?
            .into_iter()
            .find(|d| d.error.as_deref().is_some_and(|e| e.contains("queue_messages_ready"))))
    })
    .await?;
    ensure!(
        failed.final_replicas.is_none() || failed.final_replicas == Some(5),
        "a failed read scaled: {}",
        summary(&[failed])
    );
    hub.shutdown().await;
    Ok(())
}
