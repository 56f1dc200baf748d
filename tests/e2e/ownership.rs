//! What the hub must not take for a target: the ReplicaSets a Deployment owns.
//!
//! The Deployment controller copies a Deployment's annotations onto its ReplicaSets, so on a
//! real cluster every ReplicaSet of an opted-in Deployment carries `scalehub.io/enabled: "true"`
//! too. Scaling those would fight the Deployment controller; the hub must skip workloads that
//! another controller owns. (The simulator's Deployments own their pods directly, so there the
//! test only checks that nothing but the Deployment became a target.)

use std::time::Duration;

use anyhow::{Context as _, ensure};
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::Api;
use kube::api::ListParams;
use scalehub_store::{Kind, TargetKey};
use serde_json::json;

use crate::fixtures::{create, deployment, opted_in, param_profile};
use crate::harness::{Env, on_every_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_sets_owned_by_an_opted_in_deployment_are_not_targets() {
    on_every_server("owned-replicasets", async |env: &Env| owned(env).await).await;
}

async fn owned(env: &Env) -> anyhow::Result<()> {
    let hub = env.start_hub(&env.config(json!({"default": param_profile()})), "hub.db", "hub-a").await?;
    let store = &hub.ctx.store;
    create(env, &deployment("owner", 1, opted_in(&[("scalehub.io/param.replicas", "2")]))).await?;
    env.wait_replicas("owner", 2).await?;
    // A few more ticks, for any ReplicaSet target to show up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    store.flush().await.context("flush")?;
    let api: Api<ReplicaSet> = Api::namespaced(env.client.clone(), &env.ns);
    let sets = api.list(&ListParams::default()).await.context("list replicasets")?.items;
    for rs in &sets {
        let name = rs.metadata.name.clone().unwrap_or_default();
        let key = TargetKey::new(&env.ns, Kind::ReplicaSet, &name);
        let row = store.get_target(&key).await.context("read target row")?;
        let decided = store.decisions(&key, None, 10).await.context("read decisions")?;
        ensure!(
            row.is_none() && decided.is_empty(),
            "ReplicaSet {name}, owned by Deployment owner, became a target (row {:?}, {} decisions, outcomes {:?}); \
             the hub must skip workloads with a controller ownerReference",
            row.map(|r| r.state),
            decided.len(),
            decided.iter().map(|d| d.outcome.clone()).collect::<Vec<_>>()
        );
    }
    hub.shutdown().await;
    Ok(())
}
