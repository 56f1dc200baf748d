//! Sharding: three `scalehub run` processes on one PostgreSQL database split the targets;
//! each target is scaled by one hub only; a hub killed with SIGKILL loses its targets to the
//! others with their stabilisation windows intact; a hub that joins takes its share back.
//!
//! Which hub wrote a target's `/scale` is read from the simulator's accounting (each hub
//! sends `User-Agent: scalehub/VERSION (IDENTITY)`), so this runs on the simulator only.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};

use crate::fixtures::{create, deployment, opted_in, shell};
use crate::harness::{Env, LEASE, WAIT, eventually, on_simulator};
use crate::process::{self, HubProcess, spawn_hub};

/// Targets in the fleet.
const TARGETS: usize = 24;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hubs_share_the_targets_and_a_killed_one_hands_its_own_over_with_their_windows() {
    let Some(url) = scalehub_store::testing::postgres_schema_url().await else { return };
    on_simulator("sharding", "the simulator tells which hub wrote each /scale", async |env: &Env| {
        sharding(env, &url).await
    })
    .await;
}

fn name(i: usize) -> String {
    format!("s{i:02}")
}

/// The simulator's record of who wrote each Deployment's `/scale` in this namespace.
async fn scale_writers(env: &Env) -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    let req = http::Request::get("/sim/admin/requests").body(Vec::new())?;
    let snapshot: Value = env.client.request(req).await.context("read the simulator's accounting")?;
    let prefix = format!("{}/deployments/", env.ns);
    let writers: BTreeMap<String, BTreeSet<String>> =
        serde_json::from_value(snapshot["scaleWriters"].clone()).context("scaleWriters")?;
    Ok(writers.into_iter().filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_owned(), v))).collect())
}

async fn reset_accounting(env: &Env) -> anyhow::Result<()> {
    let req = http::Request::delete("/sim/admin/requests").body(Vec::new())?;
    env.client.request_text(req).await.context("reset the simulator's accounting")?;
    Ok(())
}

/// `/api/v1/hub` of a hub: its identity and the members it sees with their shares.
async fn hub_status(hub: &HubProcess) -> anyhow::Result<Value> {
    let (status, body) = process::http(hub.addr, "GET", "/api/v1/hub", None, None).await?;
    ensure!(status == 200, "GET /api/v1/hub: {status} {body}");
    Ok(body)
}

/// Each live member's share as `hub` reports it.
async fn shares(hub: &HubProcess) -> anyhow::Result<BTreeMap<String, u64>> {
    let body = hub_status(hub).await?;
    let members = body["sharding"]["members"].as_array().context("sharding.members")?;
    Ok(members
        .iter()
        .filter(|m| m["live"] == json!(true))
        .filter_map(|m| Some((m["identity"].as_str()?.to_owned(), m["targets"].as_u64()?)))
        .collect())
}

/// Every Deployment's `spec.replicas`.
async fn all_replicas(env: &Env) -> anyhow::Result<Vec<i32>> {
    let mut out = Vec::new();
    for i in 0..TARGETS {
        out.push(env.replicas(&name(i)).await?);
    }
    Ok(out)
}

async fn sharding(env: &Env, url: &str) -> anyhow::Result<()> {
    let value = env.path("value");
    std::fs::write(&value, "3")?;
    let value_file = value.to_string_lossy().into_owned();
    // Cheap hooks: the metric and the evaluation both come from the value file.
    let metric = shell("/bin/sh", &["-c", r#"cat >/dev/null; cat "$0""#, &value_file], 10_000);
    let evaluate = shell(
        "/bin/sh",
        &["-c", r#"cat >/dev/null; printf '{"targetReplicas": %s}' "$(cat "$0")""#, &value_file],
        10_000,
    );
    let config = env.config(json!({"default": {"metric": metric, "evaluate": evaluate, "runMode": "per-resource"}}));
    let config = env.write_config("config.yaml", &config)?;
    let mut hubs = Vec::new();
    for i in 0..3 {
        hubs.push(spawn_hub(env, &[], &config, url, &format!("hub-{i}.log")).await?);
    }
    let mut identities = Vec::new();
    for hub in &hubs {
        identities.push(hub_status(hub).await?["identity"].as_str().context("identity")?.to_owned());
    }
    eventually("every hub to see all three members", WAIT, async || {
        for hub in &hubs {
            if shares(hub).await?.len() != 3 {
                return Ok(None);
            }
        }
        Ok(Some(()))
    })
    .await?;

    // The fleet appears once the members know each other: each target is claimed by its owner.
    for i in 0..TARGETS {
        let annotations = opted_in(&[("scalehub.io/downscale-stabilization", "40s")]);
        create(env, &deployment(&name(i), 1, annotations)).await?;
    }
    eventually("every target at 3 replicas", WAIT * 2, async || {
        Ok(all_replicas(env).await?.iter().all(|r| *r == 3).then_some(()))
    })
    .await?;
    let writers = scale_writers(env).await?;
    ensure!(writers.len() == TARGETS, "scale writes for {} targets of {TARGETS}", writers.len());
    for (target, by) in &writers {
        ensure!(by.len() == 1, "{target} was scaled by {by:?}");
    }
    let scaling: BTreeSet<&String> = writers.values().flatten().collect();
    ensure!(scaling.len() == 3, "not every hub scaled its share: {scaling:?}");
    let before = shares(&hubs[0]).await?;
    ensure!(before.values().sum::<u64>() == TARGETS as u64, "shares {before:?}");
    println!("sharding: shares of three hubs {before:?}");

    // The evaluation drops; every target's window holds it at 3.
    std::fs::write(&value, "1")?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure!(all_replicas(env).await?.iter().all(|r| *r == 3), "a window did not hold");

    // SIGKILL the hub with the largest share: no Lease deletion, no release.
    let (victim_id, victim_share) = before.iter().max_by_key(|(_, n)| **n).map(|(k, n)| (k.clone(), *n)).unwrap();
    let victim = identities.iter().position(|i| *i == victim_id).context("the victim's identity")?;
    let mut killed = hubs.remove(victim);
    killed.child.kill().await?;
    let survivors = &hubs;
    eventually("the survivors to own every target", LEASE * 2 + Duration::from_secs(4), async || {
        let now = shares(&survivors[0]).await?;
        Ok((now.len() == 2 && now.values().sum::<u64>() == TARGETS as u64).then_some(now))
    })
    .await
    .with_context(|| format!("the killed hub held {victim_share} targets"))
    .map(|after| println!("sharding: {victim_id} killed with {victim_share} targets; shares {after:?}"))?;
    // The new owners took the windows over: nothing came down early.
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure!(all_replicas(env).await?.iter().all(|r| *r == 3), "a target lost its window in the handover");

    // A new hub joins: the shares rebalance, again one writer per target.
    reset_accounting(env).await?;
    hubs.push(spawn_hub(env, &[], &config, url, "hub-3.log").await?);
    let rebalanced = eventually("three members with a share each", WAIT, async || {
        let now = shares(&hubs[0]).await?;
        Ok((now.len() == 3 && now.values().all(|n| *n > 0) && now.values().sum::<u64>() == TARGETS as u64)
            .then_some(now))
    })
    .await?;
    println!("sharding: a fourth hub joined; shares {rebalanced:?}");
    // The windows end; every target comes down to 1, each scaled by one hub.
    eventually("every target at 1 replica after its window", Duration::from_secs(60), async || {
        Ok(all_replicas(env).await?.iter().all(|r| *r == 1).then_some(()))
    })
    .await
    .with_context(|| format!("shares {rebalanced:?}"))?;
    for (target, by) in scale_writers(env).await? {
        ensure!(by.len() == 1, "{target} was scaled down by {by:?}");
    }
    Ok(())
}
