//! A scale-down held by its window survives `kill -9`: the `scalehub run` binary is killed in the
//! middle of the window and restarted on the same database, and the target still comes down only
//! once the window since the last high recommendation has passed.

use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use scalehub_store::{DecisionRow, Kind, Store, TargetKey};
use serde_json::json;

use crate::fixtures::{create, decisions, deployment, opted_in, param_profile, summary};
use crate::harness::{Env, WAIT, eventually, on_every_server};
use crate::process::spawn_hub;

/// The downscale window: long enough to kill and restart inside it, short enough for the suite.
const WINDOW_MS: i64 = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_down_held_by_its_window_survives_a_kill_9_restart() {
    on_every_server("kill-9-restart", async |env: &Env| restart(env).await).await;
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The newest decision that saw the high evaluation.
fn last_high(all: &[DecisionRow]) -> Option<&DecisionRow> {
    all.iter().find(|d| d.raw_evaluation == Some(5))
}

async fn restart(env: &Env) -> anyhow::Result<()> {
    let value = env.path("value");
    std::fs::write(&value, "5")?;
    let config = env.write_config("config.yaml", &env.config(json!({"default": param_profile()})))?;
    let db = env.database("hub.db").await?;
    let value_file = value.to_string_lossy().into_owned();
    let annotations = opted_in(&[
        ("scalehub.io/param.valueFile", value_file.as_str()),
        ("scalehub.io/downscale-stabilization", "20s"),
    ]);
    create(env, &deployment("steady", 1, annotations)).await?;

    let mut first = spawn_hub(env, &[], &config, &db, "hub-1.log").await?;
    let scaled_up = env.wait_replicas("steady", 5).await;
    scaled_up.with_context(|| format!("first hub's log:\n{}", first.log_tail()))?;
    // The test reads the same database file the hub writes (WAL allows it).
    let store = Store::open(&db).await.context("open the hub's database")?;

    // The evaluation drops; the window holds the target at 5.
    std::fs::write(&value, "1")?;
    eventually("a held scale-down decision", WAIT, async || {
        Ok(decisions(env, &store, "steady")
            .await?
            .into_iter()
            .find(|d| d.raw_evaluation == Some(1) && d.final_replicas == Some(5)))
    })
    .await?;
    // Kill a few seconds into the window, so that a hub which forgot the window and started a new
    // one at its restart (seeding it with the current replicas) would come down visibly later.
    tokio::time::sleep(Duration::from_secs(4)).await;
    first.child.start_kill().context("kill -9 the first hub")?;
    first.child.wait().await.context("reap the first hub")?;
    let killed_at = now_ms();

    let before = decisions(env, &store, "steady").await?;
    let high = last_high(&before).with_context(|| format!("no decision saw 5: {}", summary(&before)))?.time;
    let window_ends = high + WINDOW_MS;
    ensure!(killed_at < window_ends - 8_000, "the kill came too late in the window to prove anything");

    let second = spawn_hub(env, &[], &config, &db, "hub-2.log").await?;
    // Until the window since the last high recommendation has passed, the target stays at 5.
    while now_ms() < window_ends - 500 {
        let replicas = env.replicas("steady").await?;
        if replicas != 5 {
            let all = decisions(env, &store, "steady").await?;
            bail!(
                "scaled to {replicas} {} ms before the window ended; decisions: {}; second hub's log:\n{}",
                window_ends - now_ms(),
                summary(&all),
                second.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The restarted hub did tick inside the window (else holding proves nothing): its ticks are in
    // the series. It resumed the newest decision row, so a held tick that says the same as that
    // row adds no row of its own; that row says why it held.
    let key = TargetKey::new(&env.ns, Kind::Deployment, "steady");
    let ticks = store.ticks(&key, killed_at, now_ms(), 1000).await.context("read the tick series")?;
    ensure!(
        ticks.iter().any(|t| t.raw_evaluation == Some(1) && t.final_replicas == Some(5)),
        "the restarted hub held no tick in the window: {ticks:?}; log:\n{}",
        second.log_tail()
    );
    let all = decisions(env, &store, "steady").await?;
    let held = all
        .iter()
        .filter(|d| d.raw_evaluation == Some(1) && d.final_replicas == Some(5))
        .max_by_key(|d| d.time)
        .with_context(|| format!("no held decision: {}", summary(&all)))?;
    let stabilised = held
        .reasons
        .to_value()
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r["step"] == "stabilise" && r["code"] == "ScaleDownStabilized");
    ensure!(stabilised, "the held decision does not name the window: {}", held.reasons);

    let down = env.wait_replicas("steady", 1).await;
    down.with_context(|| format!("second hub's log:\n{}", second.log_tail()))?;
    let recorded = eventually("the scale-down decision", WAIT, async || {
        Ok(decisions(env, &store, "steady")
            .await?
            .into_iter()
            .find(|d| d.outcome == "scaled" && d.final_replicas == Some(1)))
    })
    .await;
    let all = decisions(env, &store, "steady").await?;
    let scaled_down = recorded.with_context(|| format!("no scale-down decision: {}", summary(&all)))?;
    ensure!(
        scaled_down.time - high >= WINDOW_MS,
        "scaled down {} ms after the last high recommendation; the window is {WINDOW_MS} ms",
        scaled_down.time - high
    );
    ensure!(
        scaled_down.time < killed_at + WINDOW_MS,
        "scaled down {} ms after the restart: the restarted hub waited a whole new window instead of \
         the rest of the one it had persisted",
        scaled_down.time - killed_at
    );
    drop(second);
    store.close().await.context("close the database")?;
    Ok(())
}
