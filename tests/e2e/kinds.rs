//! The other scalable kinds and the modes that decide without scaling.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use scalehub_store::{Kind, TargetKey};
use serde_json::json;

use crate::fixtures::{create, decisions, deployment, opted_in, param_profile, summary, target};
use crate::harness::{Env, WAIT, eventually, on_every_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulsets_and_replicasets_are_scaled_like_deployments() {
    on_every_server("other-kinds", async |env: &Env| other_kinds(env).await).await;
}

async fn other_kinds(env: &Env) -> anyhow::Result<()> {
    let hub = env.start_hub(&env.config(json!({"default": param_profile()})), "hub.db", "hub-a").await?;
    let store = &hub.ctx.store;
    // Borrow the Deployment fixture's selector, template and annotations.
    let d = deployment("x", 1, opted_in(&[("scalehub.io/param.replicas", "3")]));
    let spec = d.spec.clone().context("fixture spec")?;
    let meta = |name: &str| ObjectMeta {
        name: Some(name.into()),
        annotations: d.metadata.annotations.clone(),
        ..Default::default()
    };
    let sts = StatefulSet {
        metadata: meta("db"),
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            selector: spec.selector.clone(),
            template: spec.template.clone(),
            service_name: Some("db".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let rs = ReplicaSet {
        metadata: meta("workers"),
        spec: Some(ReplicaSetSpec {
            replicas: Some(1),
            selector: spec.selector.clone(),
            template: Some(spec.template.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let sets: Api<StatefulSet> = Api::namespaced(env.client.clone(), &env.ns);
    let replica_sets: Api<ReplicaSet> = Api::namespaced(env.client.clone(), &env.ns);
    sets.create(&PostParams::default(), &sts).await.context("create statefulset")?;
    replica_sets.create(&PostParams::default(), &rs).await.context("create replicaset")?;
    eventually("the StatefulSet at 3 replicas", WAIT, async || {
        Ok((sets.get("db").await?.spec.and_then(|s| s.replicas) == Some(3)).then_some(()))
    })
    .await?;
    eventually("the ReplicaSet at 3 replicas", WAIT, async || {
        Ok((replica_sets.get("workers").await?.spec.and_then(|s| s.replicas) == Some(3)).then_some(()))
    })
    .await?;
    for (kind, name) in [(Kind::StatefulSet, "db"), (Kind::ReplicaSet, "workers")] {
        let key = TargetKey::new(&env.ns, kind, name);
        let scaled = eventually(&format!("a scaled decision of {kind} {name}"), WAIT, async || {
            Ok(store.decisions(&key, None, 50).await?.into_iter().find(|d| d.outcome == "scaled"))
        })
        .await?;
        ensure!(scaled.final_replicas == Some(3), "{kind} {name}: final replicas {:?}", scaled.final_replicas);
    }
    hub.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_mode_and_zero_replicas_decide_without_scaling() {
    on_every_server("shadow-and-zero", async |env: &Env| shadow_and_zero(env).await).await;
}

async fn shadow_and_zero(env: &Env) -> anyhow::Result<()> {
    let hub = env.start_hub(&env.config(json!({"default": param_profile()})), "hub.db", "hub-a").await?;
    let store = &hub.ctx.store;
    create(
        env,
        &deployment("shadowed", 1, opted_in(&[("scalehub.io/param.replicas", "4"), ("scalehub.io/mode", "shadow")])),
    )
    .await?;
    // Zero replicas with a minimum of 1 is the HPA's off switch.
    create(env, &deployment("parked", 0, opted_in(&[("scalehub.io/param.replicas", "4")]))).await?;

    let shadow = eventually("a shadow decision", WAIT, async || {
        Ok(decisions(env, store, "shadowed").await?.into_iter().find(|d| d.outcome == "shadow"))
    })
    .await?;
    ensure!(
        shadow.final_replicas == Some(4) && !shadow.scaled,
        "shadow decision: {}",
        summary(std::slice::from_ref(&shadow))
    );
    let row = target(env, store, "shadowed").await?.context("no target row for shadowed")?;
    ensure!(row.state == "shadow", "shadow target state {:?}", row.state);

    let parked = eventually("a disabled decision", WAIT, async || {
        Ok(decisions(env, store, "parked").await?.into_iter().find(|d| d.outcome == "disabled"))
    })
    .await?;
    let disabled = parked.reasons.to_value().as_array().into_iter().flatten().any(|r| r["step"] == "disabled");
    ensure!(disabled && !parked.scaled, "disabled decision: {}", summary(std::slice::from_ref(&parked)));

    env.hold_replicas("shadowed", 1, Duration::from_secs(2)).await?;
    env.hold_replicas("parked", 0, Duration::from_millis(500)).await?;
    hub.shutdown().await;
    Ok(())
}
