//! Drill: `kill -9` of `scalehub run` at random points while targets move in and out of their
//! downscale windows and an override pins another target. After every restart the override
//! is still there and still holds; over the whole recorded history no scale-down came before
//! its window allowed it: at every scale-down to `f` at time `t`, no tick in `(t - window, t]`
//! recommended more than `f`.
//!
//! Trials: `SCALEHUB_DRILL_TRIALS` (default 10; `scripts/drills.sh` runs 100).

use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use scalehub_store::Store;
use serde_json::{Value, json};

use crate::fixtures::{create, decisions, deployment, opted_in, param_profile, ticks};
use crate::harness::{Env, eventually, on_simulator};
use crate::process::{HubProcess, http, spawn_hub};

/// The downscale window of the moving targets: long enough that a tick under a fully loaded suite (two python starts per tick, every test
/// at once on two cores) still lands several times inside one window.
const WINDOW_MS: i64 = 10_000;
/// The moving targets.
const MOVING: [&str; 4] = ["m0", "m1", "m2", "m3"];
const TOKEN: &str = "crash-drill-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_never_breaks_a_window_or_loses_an_override() {
    on_simulator("crash-drill", "the hub's own durability does not depend on the API server", async |env: &Env| {
        crash_drill(env).await
    })
    .await;
}

/// A small deterministic generator, so a failing run can be repeated from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Writes a value file atomically, so a hook never reads it half-written.
fn set_value(env: &Env, name: &str, value: u32) -> anyhow::Result<()> {
    let tmp = env.path(&format!("{name}.tmp"));
    std::fs::write(&tmp, value.to_string())?;
    std::fs::rename(&tmp, env.path(&format!("{name}.value")))?;
    Ok(())
}

async fn start(env: &Env, config: &std::path::Path, db: &str, n: usize) -> anyhow::Result<HubProcess> {
    spawn_hub(env, &[], config, db, &format!("hub-{n}.log")).await
}

async fn pinned_override(hub: &HubProcess, env: &Env) -> anyhow::Result<Value> {
    let (status, body) =
        http(hub.addr, "GET", &format!("/api/v1/targets/{}/Deployment/pinned", env.ns), None, None).await?;
    ensure!(status == 200, "GET pinned: {status} {body}");
    Ok(body["override"].clone())
}

async fn crash_drill(env: &Env) -> anyhow::Result<()> {
    let trials: usize = std::env::var("SCALEHUB_DRILL_TRIALS").ok().and_then(|t| t.parse().ok()).unwrap_or(10);
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos() as u64;
    println!("crash drill: {trials} trials, seed {seed}");
    let mut rng = Rng(seed);

    let tokens = env.path("tokens");
    std::fs::write(&tokens, format!("drill:{TOKEN}\n"))?;
    let mut config = env.config(json!({"default": param_profile()}));
    config["api"] = json!({"tokenFile": tokens});
    let config = env.write_config("config.yaml", &config)?;
    let db = env.database("hub.db").await?;

    for name in MOVING {
        set_value(env, name, 4)?;
        let file = env.path(&format!("{name}.value")).to_string_lossy().into_owned();
        let annotations =
            opted_in(&[("scalehub.io/param.valueFile", file.as_str()), ("scalehub.io/downscale-stabilization", "10s")]);
        create(env, &deployment(name, 1, annotations)).await?;
    }
    create(env, &deployment("pinned", 1, opted_in(&[("scalehub.io/param.replicas", "1")]))).await?;

    let mut hub = start(env, &config, &db, 0).await?;
    eventually("the pinned target to be known", Duration::from_secs(20), async || {
        let (status, _) =
            http(hub.addr, "GET", &format!("/api/v1/targets/{}/Deployment/pinned", env.ns), None, None).await?;
        Ok((status == 200).then_some(()))
    })
    .await?;
    let body = json!({"replicas": 3, "duration": "2h", "reason": "crash drill"});
    let path = format!("/api/v1/targets/{}/Deployment/pinned/override", env.ns);
    let (status, answer) = http(hub.addr, "PUT", &path, Some(TOKEN), Some(&body)).await?;
    ensure!(status == 200, "PUT override: {status} {answer}");
    env.wait_replicas("pinned", 3).await?;

    // The loads move on their own clock, kills or not.
    let mover = {
        let dir = env.path("");
        let mut rng = Rng(seed ^ 0x5eed);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(300 + rng.below(1_500))).await;
                let name = MOVING[rng.below(MOVING.len() as u64) as usize];
                let value = if rng.below(2) == 0 { 1 } else { 4 };
                let tmp = dir.join(format!("{name}.tmp"));
                if std::fs::write(&tmp, value.to_string()).is_ok() {
                    let _ = std::fs::rename(&tmp, dir.join(format!("{name}.value")));
                }
            }
        })
    };

    for trial in 1..=trials {
        tokio::time::sleep(Duration::from_millis(300 + rng.below(2_700))).await;
        hub.child.start_kill().context("kill -9")?;
        hub.child.wait().await.context("reap the killed hub")?;
        tokio::time::sleep(Duration::from_millis(rng.below(800))).await;
        hub = start(env, &config, &db, trial).await?;
        let pinned = pinned_override(&hub, env).await?;
        ensure!(pinned["replicas"] == 3, "trial {trial}: the override was lost: {pinned}");
        let replicas = env.replicas("pinned").await?;
        ensure!(replicas == 3, "trial {trial}: the pinned target has {replicas} replicas");
    }
    mover.abort();
    // End on one sure window per target, with the hub alive throughout: up to 4, then down to
    // 1, so a held scale-down is exercised and recorded whatever the random kills left (a seed
    // could end every target at 1 with its window long expired). Then read the whole history.
    let phase = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    for name in MOVING {
        set_value(env, name, 4)?;
    }
    for name in MOVING {
        env.wait_replicas(name, 4).await?;
        // The replicas may have been 4 already: wait until this hub has ticked at 4 too, so
        // its window holds a recent 4 whatever the last kill left unwritten.
        let path = format!("/api/v1/targets/{}/Deployment/{name}/series?from={phase}", env.ns);
        eventually(&format!("a tick of {name} at 4"), Duration::from_secs(20), async || {
            let (status, body) = http(hub.addr, "GET", &path, None, None).await?;
            ensure!(status == 200, "GET {path}: {status} {body}");
            let at_four = body["points"].as_array().is_some_and(|p| p.iter().any(|t| t["rawEvaluation"] == 4));
            Ok(at_four.then_some(()))
        })
        .await?;
    }
    for name in MOVING {
        set_value(env, name, 1)?;
    }
    tokio::time::sleep(Duration::from_millis(WINDOW_MS as u64 + 2_000)).await;
    hub.child.start_kill().context("kill -9")?;
    hub.child.wait().await?;

    let store = Store::open(&db).await.context("open the hub's database")?;
    let mut downs = 0;
    let mut held = 0;
    for name in MOVING {
        let series = ticks(env, &store, name).await?;
        let history = decisions(env, &store, name).await?;
        held += history.iter().filter(|d| d.reasons.to_string().contains("ScaleDownStabilized")).count();
        for down in history.iter().filter(|d| d.scaled && d.final_replicas < d.current_replicas) {
            downs += 1;
            let to = down.final_replicas.unwrap_or_default();
            let higher: Vec<_> = series
                .iter()
                .filter(|t| t.time > down.time - WINDOW_MS && t.time <= down.time)
                .filter(|t| t.raw_evaluation.is_some_and(|r| r > to))
                .map(|t| (t.time - down.time, t.raw_evaluation))
                .collect();
            if !higher.is_empty() {
                bail!("{name}: scaled down to {to} at {} although the window held {higher:?}", down.time);
            }
        }
    }
    let pinned = decisions(env, &store, "pinned").await?;
    ensure!(pinned.iter().all(|d| !d.scaled || d.final_replicas == Some(3)), "the pinned target was scaled elsewhere");
    println!(
        "crash drill: {trials} kills, {downs} scale-downs checked against their windows, {held} held decisions, 0 violations, the override held"
    );
    ensure!(downs >= 1 && held >= 1, "the drill exercised no window ({downs} scale-downs, {held} held)");
    store.close().await?;
    Ok(())
}
