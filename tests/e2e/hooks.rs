//! Hooks that fail, hang or lie hold their own target — and only their own target.

use anyhow::{Context as _, ensure};
use scalehub_store::DecisionRow;
use serde_json::{Value, json};

use crate::fixtures::{
    create, decisions, deployment, opted_in, param_profile, sh, summary, target, ticks, with_evaluate,
};
use crate::harness::{Env, WAIT, eventually, on_every_server};

/// The bad targets: name → profile. Each would scale to 5 (its `param.replicas`) if the hub
/// ignored the error, and to 1 if it read a bad answer as 0 the way the CPA does.
const BAD: [&str; 4] = ["failing", "hanging", "lying", "nojson"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_hanging_and_lying_hooks_hold_their_target_while_others_scale() {
    on_every_server("bad-hooks", async |env: &Env| bad_hooks(env).await).await;
}

fn profiles() -> Value {
    json!({
        "default": param_profile(),
        // The metric stage fails: exit 1 with a message on stderr.
        "failing": {
            "metric": sh("cat >/dev/null; echo 'metric source exploded' >&2; exit 1", 5_000),
            "evaluate": param_profile()["evaluate"],
            "runMode": "per-resource",
        },
        // The evaluate stage outlives its 500 ms timeout.
        "hanging": with_evaluate(sh("sleep 30", 500)),
        // The evaluate stage answers JSON with a string where the count belongs.
        "lying": with_evaluate(sh("cat >/dev/null; echo '{\"targetReplicas\": \"many\"}'", 5_000)),
        // The evaluate stage answers something that is not JSON at all.
        "nojson": with_evaluate(sh("cat >/dev/null; echo 'scale me up, please'", 5_000)),
    })
}

async fn bad_hooks(env: &Env) -> anyhow::Result<()> {
    let hub = env.start_hub(&env.config(profiles()), "hub.db", "hub-a").await?;
    let store = &hub.ctx.store;
    for name in BAD {
        let annotations = opted_in(&[("scalehub.io/profile", name), ("scalehub.io/param.replicas", "5")]);
        create(env, &deployment(name, 2, annotations)).await?;
    }
    create(env, &deployment("healthy", 1, opted_in(&[("scalehub.io/param.replicas", "3")]))).await?;

    // The healthy target scales although four others fail on every tick (one hangs 500 ms each time).
    env.wait_replicas("healthy", 3).await?;
    for name in BAD {
        // Every tick fails; the series has each one, the history a row for the first (and for
        // any whose error differs).
        eventually(&format!("two failed ticks of {name}"), WAIT, async || {
            let failed = ticks(env, store, name).await?.into_iter().filter(|t| t.outcome == "error").count();
            Ok((failed >= 2).then_some(()))
        })
        .await?;
        let failed: Vec<DecisionRow> =
            decisions(env, store, name).await?.into_iter().filter(|d| d.outcome == "error").collect();
        ensure!(!failed.is_empty(), "{name}: failed ticks but no error decision");
        let series = ticks(env, store, name).await?;
        ensure!(
            series.iter().all(|t| t.outcome == "error" && t.final_replicas.is_none()),
            "{name}: a tick other than a failed one: {series:?}"
        );
        let all = decisions(env, store, name).await?;
        ensure!(
            all.iter().all(|d| d.outcome == "error" && !d.scaled),
            "{name}: a decision other than `error`: {}",
            summary(&all)
        );
        ensure!(
            failed[0].final_replicas.is_none(),
            "{name}: an error decision chose replicas {:?}",
            failed[0].final_replicas
        );
        check_recorded(name, &failed[0]).with_context(|| format!("{name}: {}", failed[0].hooks))?;
        let row = target(env, store, name).await?.with_context(|| format!("no target row for {name}"))?;
        ensure!(row.state == "error", "{name}: target state {:?}, expected error", row.state);
        ensure!(row.error.is_some(), "{name}: the target row carries no error");
    }
    for name in BAD {
        let replicas = env.replicas(name).await?;
        ensure!(replicas == 2, "{name} was scaled to {replicas}; a failing hook must hold its target at 2");
    }
    // And the healthy one keeps ticking: more ticks arrive while the bad ones fail.
    let before = ticks(env, store, "healthy").await?.len();
    eventually("two more ticks of the healthy target", WAIT, async || {
        Ok((ticks(env, store, "healthy").await?.len() >= before + 2).then_some(()))
    })
    .await?;
    hub.shutdown().await;
    Ok(())
}

/// Checks that the decision records what the failing hook did.
fn check_recorded(name: &str, d: &DecisionRow) -> anyhow::Result<()> {
    let error = d.error.clone().unwrap_or_default();
    let hooks = d.hooks.to_value();
    let hooks: Vec<&Value> = hooks.as_array().into_iter().flatten().collect();
    let stage =
        |s: &str| hooks.iter().find(|h| h["stage"] == s).copied().with_context(|| format!("no {s} hook recorded"));
    match name {
        "failing" => {
            let metric = stage("metric")?;
            ensure!(metric["exitCode"] == 1, "exit status {} recorded, expected 1", metric["exitCode"]);
            let stderr = metric["stderr"].as_str().unwrap_or_default();
            ensure!(stderr.contains("metric source exploded"), "stderr {stderr:?} not recorded");
            ensure!(error.contains("metric"), "the error should name the stage: {error:?}");
        }
        "hanging" => {
            let evaluate = stage("evaluate")?;
            ensure!(evaluate["timedOut"] == true, "the timeout is not recorded: {evaluate}");
            let ms = evaluate["durationMs"].as_u64().unwrap_or(u64::MAX);
            ensure!((400..5_000).contains(&ms), "the hook ran {ms} ms; it should be stopped at its 500 ms timeout");
        }
        "lying" | "nojson" => {
            let evaluate = stage("evaluate")?;
            ensure!(evaluate["exitCode"] == 0, "the hook exited {}, expected 0", evaluate["exitCode"]);
            ensure!(
                error.contains("targetReplicas") || error.contains("JSON") || error.contains("json"),
                "the error should say what was wrong with the output: {error:?}"
            );
        }
        _ => {}
    }
    Ok(())
}
