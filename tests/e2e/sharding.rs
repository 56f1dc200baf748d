//! Sharding: three `scalehub run` processes on one PostgreSQL database split 300 targets;
//! each target is scaled by one hub only; a real evaluation asked of any hub runs on the
//! target's owner; a hub killed with SIGKILL loses its targets to the others with their
//! stabilisation windows intact; a hub that joins takes its share back, again with one
//! writer per target.
//!
//! Each hub sends `User-Agent: scalehub/VERSION (IDENTITY)`. Who wrote a target's `/scale`
//! is read from the simulator's accounting, and on the real kube-apiserver from its audit
//! log of `/scale` writes (scripts/real-apiserver.sh).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use futures::{StreamExt as _, TryStreamExt as _};
use kube::api::ListParams;
use serde_json::{Value, json};

use crate::fixtures::{create, deployment, opted_in};
use crate::harness::{Env, LEASE, WAIT, eventually, on_every_server};
use crate::process::{self, HubProcess, http_with_headers, spawn_hub};

/// Targets in the fleet.
const TARGETS: usize = 300;

/// What the hooks ask for first, and after the drop that the windows hold back.
const HIGH: i32 = 2;
const LOW: i32 = 1;

/// The API token of the test (writes: a real evaluation).
const TOKEN: &str = "sharding-test-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hubs_share_the_targets_and_a_killed_one_hands_its_own_over_with_their_windows() {
    on_every_server("sharding", async |env: &Env| {
        let Some(url) = scalehub_store::testing::postgres_schema_url().await else {
            println!("sharding: skipped, no PostgreSQL (SCALEHUB_TEST_POSTGRES_URL)");
            return Ok(());
        };
        sharding(env, &url).await
    })
    .await;
}

fn name(i: usize) -> String {
    format!("s{i:03}")
}

/// The identity in a hub's `User-Agent`.
fn identity_of(user_agent: &str) -> &str {
    user_agent.rsplit_once(" (").and_then(|(_, rest)| rest.strip_suffix(')')).unwrap_or(user_agent)
}

/// Where the record of `/scale` writes starts from now on: the simulator's accounting is
/// reset; the audit log is read from its current end.
async fn mark(env: &Env) -> anyhow::Result<u64> {
    match &env.audit_log {
        None => {
            let req = http::Request::delete("/sim/admin/requests").body(Vec::new())?;
            env.client.request_text(req).await.context("reset the simulator's accounting")?;
            Ok(0)
        }
        Some(path) => Ok(audit_log(path)?.len() as u64),
    }
}

/// The hub identities that wrote each Deployment's `/scale` in this namespace since `since`.
async fn scale_writers(env: &Env, since: u64) -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    let prefix = format!("{}/deployments/", env.ns);
    let mut writers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    match &env.audit_log {
        None => {
            let req = http::Request::get("/sim/admin/requests").body(Vec::new())?;
            let snapshot: Value = env.client.request(req).await.context("read the simulator's accounting")?;
            let all: BTreeMap<String, BTreeSet<String>> =
                serde_json::from_value(snapshot["scaleWriters"].clone()).context("scaleWriters")?;
            for (object, agents) in all {
                if let Some(name) = object.strip_prefix(&prefix) {
                    writers.insert(name.to_owned(), agents.iter().map(|a| identity_of(a).to_owned()).collect());
                }
            }
        }
        Some(path) => {
            let log = audit_log(path)?;
            let tail = log.get(since as usize..).unwrap_or_default();
            // Whole lines only: the server may be writing the last one.
            let whole = &tail[..tail.iter().rposition(|b| *b == b'\n').map_or(0, |at| at + 1)];
            for line in whole.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let event: Value = serde_json::from_slice(line).context("an audit event")?;
                let object = &event["objectRef"];
                if object["namespace"] == json!(env.ns)
                    && object["resource"] == json!("deployments")
                    && object["subresource"] == json!("scale")
                {
                    let name = object["name"].as_str().context("objectRef.name")?;
                    let agent = event["userAgent"].as_str().unwrap_or("no user agent");
                    writers.entry(name.to_owned()).or_default().insert(identity_of(agent).to_owned());
                }
            }
        }
    }
    Ok(writers)
}

/// The real server's audit log; empty until its first event.
fn audit_log(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        read => read.with_context(|| format!("read the audit log {}", path.display())),
    }
}

/// Every Deployment's `spec.replicas`, by name, in one list.
async fn all_replicas(env: &Env) -> anyhow::Result<BTreeMap<String, i32>> {
    let list = env.deployments().list(&ListParams::default()).await.context("list the deployments")?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|d| Some((d.metadata.name?, d.spec.and_then(|s| s.replicas).unwrap_or(1))))
        .collect())
}

/// Fails unless all `TARGETS` Deployments have `replicas`; says which do not.
fn all_at(replicas: &BTreeMap<String, i32>, want: i32) -> anyhow::Result<()> {
    let off: Vec<_> = replicas.iter().filter(|(_, r)| **r != want).take(10).collect();
    ensure!(replicas.len() == TARGETS, "{} deployments of {TARGETS}", replicas.len());
    ensure!(off.is_empty(), "not at {want} replicas: {off:?}");
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

/// An HTTP server for the hooks: the metric and the evaluation both come from `value`.
async fn hook_server(value: Arc<AtomicI32>) -> anyhow::Result<SocketAddr> {
    use axum::routing::post;
    let metric = value.clone();
    let app = axum::Router::new()
        .route("/metric", post(async move || metric.load(Ordering::Relaxed).to_string()))
        .route("/evaluate", post(async move || axum::Json(json!({"targetReplicas": value.load(Ordering::Relaxed)}))));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

fn http_hook(addr: SocketAddr, path: &str) -> Value {
    json!({
        "type": "http",
        "timeout": 10_000,
        "http": {"method": "POST", "url": format!("http://{addr}{path}"), "successCodes": [200], "parameterMode": "body"}
    })
}

/// A real evaluation asked of a hub that does not own the target runs on the owner; a
/// request forwarded once is not forwarded again; one without a token is refused where it
/// arrives.
async fn forwarding(
    env: &Env,
    hubs: &[HubProcess],
    identities: &[String],
    writers: &BTreeMap<String, BTreeSet<String>>,
) -> anyhow::Result<()> {
    let target = name(0);
    let owner = writers[&target].first().context("the first target's writer")?;
    let owner_hub = identities.iter().position(|i| i == owner).context("the owner's process")?;
    let other = (owner_hub + 1) % hubs.len();
    let path = format!("/api/v1/targets/{}/deployments/{target}/evaluation", env.ns);
    let bearer = format!("Bearer {TOKEN}");
    let auth = [("Authorization", bearer.as_str())];

    let (status, headers, body) = http_with_headers(hubs[other].addr, "POST", &path, &auth, None).await?;
    ensure!(status == 200, "POST evaluation to a hub that does not own {target}: {status} {body}");
    ensure!(serde_json::from_str::<Value>(&body)? == json!({"targetReplicas": HIGH}), "the owner's answer: {body}");
    ensure!(
        headers.get("x-scalehub-served-by") == Some(owner),
        "the evaluation was not run by the owner {owner}: {headers:?}"
    );

    let (status, headers, body) = http_with_headers(hubs[owner_hub].addr, "POST", &path, &auth, None).await?;
    ensure!(status == 200, "POST evaluation to the owner: {status} {body}");
    ensure!(!headers.contains_key("x-scalehub-served-by"), "the owner forwarded its own target: {headers:?}");

    let forwarded = [auth[0], ("X-Scalehub-Forwarded-By", "another-hub")];
    let (status, _, body) = http_with_headers(hubs[other].addr, "POST", &path, &forwarded, None).await?;
    ensure!(status == 503, "a forwarded request that reached a non-owner: {status} {body}");

    let (status, _, body) = http_with_headers(hubs[other].addr, "POST", &path, &[], None).await?;
    ensure!(status == 401 || status == 403, "an evaluation without a token: {status} {body}");
    Ok(())
}

async fn sharding(env: &Env, url: &str) -> anyhow::Result<()> {
    let value = Arc::new(AtomicI32::new(HIGH));
    let hooks = hook_server(value.clone()).await?;
    let tokens = env.path("tokens");
    std::fs::write(&tokens, format!("sharding:{TOKEN}\n"))?;
    let mut config = env.config(json!({"default": {
        "metric": http_hook(hooks, "/metric"),
        "evaluate": http_hook(hooks, "/evaluate"),
        "runMode": "per-resource",
    }}));
    config["api"] = json!({"tokenFile": tokens});
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
    let members = hub_status(&hubs[0]).await?["sharding"]["members"].clone();
    let announced: BTreeSet<&str> =
        members.as_array().context("members")?.iter().filter_map(|m| m["address"].as_str()).collect();
    let listening: Vec<String> = hubs.iter().map(|h| h.addr.to_string()).collect();
    ensure!(
        announced == listening.iter().map(String::as_str).collect(),
        "the members announce {announced:?}, the hubs listen on {listening:?}"
    );

    // The fleet appears once the members know each other: each target is claimed by its owner.
    let since = mark(env).await?;
    futures::stream::iter(0..TARGETS)
        .map(|i| async move {
            let annotations =
                opted_in(&[("scalehub.io/interval", "2s"), ("scalehub.io/downscale-stabilization", "40s")]);
            create(env, &deployment(&name(i), 1, annotations)).await
        })
        .buffer_unordered(8)
        .try_collect::<()>()
        .await?;
    eventually("every target at the hooks' value", WAIT * 3, async || {
        Ok(all_at(&all_replicas(env).await?, HIGH).is_ok().then_some(()))
    })
    .await
    .with_context(|| format!("hub log:\n{}", hubs[0].log_tail()))?;
    let writers = eventually("a scale write of every target on record", WAIT, async || {
        let writers = scale_writers(env, since).await?;
        Ok((writers.len() == TARGETS).then_some(writers))
    })
    .await?;
    for (target, by) in &writers {
        ensure!(by.len() == 1, "{target} was scaled by {by:?}");
    }
    let scaling: BTreeSet<&String> = writers.values().flatten().collect();
    ensure!(scaling.len() == 3, "not every hub scaled its share: {scaling:?}");
    let before = shares(&hubs[0]).await?;
    ensure!(before.values().sum::<u64>() == TARGETS as u64, "shares {before:?}");
    println!("sharding on {}: shares of three hubs {before:?}", env.server);

    forwarding(env, &hubs, &identities, &writers).await?;

    // The evaluation drops; every target's window holds it.
    value.store(LOW, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(5)).await;
    all_at(&all_replicas(env).await?, HIGH).context("a window did not hold")?;

    // SIGKILL the hub with the largest share: no Lease deletion, no release.
    let (victim_id, victim_share) =
        before.iter().max_by_key(|(_, n)| **n).map(|(k, n)| (k.clone(), *n)).context("no shares")?;
    let victim = identities.iter().position(|i| *i == victim_id).context("the victim's identity")?;
    let mut killed = hubs.remove(victim);
    identities.remove(victim);
    killed.child.kill().await?;
    let killed_at = tokio::time::Instant::now();
    let survivors = &hubs;
    eventually("the survivors to own every target", LEASE * 2 + Duration::from_secs(4), async || {
        let now = shares(&survivors[0]).await?;
        Ok((now.len() == 2 && now.values().sum::<u64>() == TARGETS as u64).then_some(now))
    })
    .await
    .with_context(|| format!("the killed hub held {victim_share} targets"))
    .map(|after| {
        let took = killed_at.elapsed();
        println!(
            "sharding on {}: {victim_id} killed with {victim_share} targets; shares {after:?} after {took:?}",
            env.server
        )
    })?;
    // The new owners took the windows over: nothing came down early.
    tokio::time::sleep(Duration::from_secs(5)).await;
    all_at(&all_replicas(env).await?, HIGH).context("a target lost its window in the handover")?;

    // A new hub joins: the shares rebalance, again one writer per target.
    let since = mark(env).await?;
    hubs.push(spawn_hub(env, &[], &config, url, "hub-3.log").await?);
    let rebalanced = eventually("three members with a share each", WAIT, async || {
        let now = shares(&hubs[0]).await?;
        Ok((now.len() == 3 && now.values().all(|n| *n > 0) && now.values().sum::<u64>() == TARGETS as u64)
            .then_some(now))
    })
    .await?;
    println!("sharding on {}: a fourth hub joined; shares {rebalanced:?}", env.server);
    // The windows end; every target comes down, each scaled by one hub, the new one among them.
    eventually("every target down after its window", Duration::from_secs(70), async || {
        Ok(all_at(&all_replicas(env).await?, LOW).is_ok().then_some(()))
    })
    .await
    .with_context(|| format!("shares {rebalanced:?}"))?;
    let writers = eventually("a scale-down of every target on record", WAIT, async || {
        let writers = scale_writers(env, since).await?;
        Ok((writers.len() == TARGETS).then_some(writers))
    })
    .await?;
    for (target, by) in &writers {
        ensure!(by.len() == 1, "{target} was scaled down by {by:?}");
    }
    let scaling: BTreeSet<&String> = writers.values().flatten().collect();
    ensure!(scaling.len() == 3, "not every member scaled its share down: {scaling:?}");
    Ok(())
}
