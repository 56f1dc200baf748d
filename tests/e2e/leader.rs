//! Leader election: of two hubs on one Lease only the leader scales; a standby takes over when
//! the leader goes away, or once a dead leader's Lease has expired.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use tokio::time::Instant;

use crate::fixtures::{create, decisions, deployment, opted_in, param_profile, summary};
use crate::harness::{Env, LEASE, WAIT, eventually, on_every_server};

/// One leader for every target, also on PostgreSQL (where replicas shard by default).
fn leader_mode(mut config: serde_json::Value) -> serde_json::Value {
    config["sharding"] = json!(false);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_hubs_only_the_leader_scales_and_the_other_takes_over() {
    on_every_server("two-hubs", async |env: &Env| two_hubs(env).await).await;
}

async fn two_hubs(env: &Env) -> anyhow::Result<()> {
    let value = env.path("value");
    std::fs::write(&value, "3")?;
    let config = leader_mode(env.config(json!({"default": param_profile()})));
    let a = env.start_hub(&config, "a.db", "hub-a").await?;
    eventually("hub-a to lead", WAIT, async || Ok(a.leader.borrow().then_some(()))).await?;
    let b = env.start_hub(&config, "b.db", "hub-b").await?;
    let value_file = value.to_string_lossy().into_owned();
    create(env, &deployment("shared", 1, opted_in(&[("scalehub.io/param.valueFile", &value_file)]))).await?;
    env.wait_replicas("shared", 3).await?;

    // Both hubs watch the same workload for a few ticks; only one may decide.
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure!(
        *a.leader.borrow() && !*b.leader.borrow(),
        "leadership moved: a={}, b={}",
        *a.leader.borrow(),
        *b.leader.borrow()
    );
    let by_a = decisions(env, &a.ctx.store, "shared").await?;
    let by_b = decisions(env, &b.ctx.store, "shared").await?;
    ensure!(by_a.iter().any(|d| d.outcome == "scaled"), "the leader recorded no scale: {}", summary(&by_a));
    ensure!(by_b.is_empty(), "the standby decided: {}", summary(&by_b));

    // The leader goes away (releasing its Lease); the standby leads and follows a new evaluation.
    a.shutdown().await;
    std::fs::write(&value, "5")?;
    eventually("hub-b to lead", LEASE * 3, async || Ok(b.leader.borrow().then_some(()))).await?;
    env.wait_replicas("shared", 5).await?;
    // The decision is committed just after the scale call; give the write batch its moment.
    let recorded = eventually("hub-b's scale decision", WAIT, async || {
        Ok(decisions(env, &b.ctx.store, "shared").await?.into_iter().find(|d| d.outcome == "scaled"))
    })
    .await;
    let by_b = decisions(env, &b.ctx.store, "shared").await?;
    let scaled = recorded.with_context(|| format!("hub-b recorded no scale: {}", summary(&by_b)))?;
    ensure!(
        scaled.current_replicas == Some(3) && scaled.final_replicas == Some(5),
        "hub-b's scale went {:?} → {:?}, expected 3 → 5",
        scaled.current_replicas,
        scaled.final_replicas
    );
    b.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_takes_over_only_after_a_dead_leaders_lease_expires() {
    on_every_server("lease-expiry", async |env: &Env| lease_expiry(env).await).await;
}

async fn lease_expiry(env: &Env) -> anyhow::Result<()> {
    // A leader that died without releasing: its Lease was renewed just now and never again.
    let now = MicroTime(jiff::Timestamp::now());
    let lease = Lease {
        metadata: ObjectMeta { name: Some("scalehub".into()), ..Default::default() },
        spec: Some(LeaseSpec {
            holder_identity: Some("dead-hub".into()),
            lease_duration_seconds: Some(LEASE.as_secs() as i32),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            ..Default::default()
        }),
    };
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    leases.create(&PostParams::default(), &lease).await.context("create the dead leader's Lease")?;
    let created = Instant::now();
    create(env, &deployment("orphan", 1, opted_in(&[("scalehub.io/param.replicas", "3")]))).await?;
    let config = leader_mode(env.config(json!({"default": param_profile()})));
    let hub = env.start_hub(&config, "hub.db", "hub-b").await?;

    // While the dead leader's lease is valid, the hub must stand by.
    let valid_until = created + LEASE - Duration::from_millis(300);
    while Instant::now() < valid_until {
        ensure!(!*hub.leader.borrow(), "the hub took a lease that was still valid");
        ensure!(env.replicas("orphan").await? == 1, "the hub scaled while another hub held the lease");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eventually("the hub to take the expired lease", LEASE * 3, async || Ok(hub.leader.borrow().then_some(()))).await?;
    env.wait_replicas("orphan", 3).await?;
    let holder = leases.get("scalehub").await.context("get the Lease")?.spec.and_then(|s| s.holder_identity);
    ensure!(holder.as_deref() == Some("hub-b"), "the Lease is held by {holder:?}, expected hub-b");
    hub.shutdown().await;
    Ok(())
}
