//! A target's life: annotation edits apply on the next tick; opting out stops the loop and
//! keeps the history.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use kube::api::DeleteParams;
use serde_json::json;

use crate::fixtures::{annotate, create, decisions, deployment, opted_in, param_profile, summary, target};
use crate::harness::{Env, WAIT, eventually, on_every_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotation_edits_apply_without_restart_and_opting_out_keeps_the_history() {
    on_every_server("lifecycle", async |env: &Env| lifecycle(env).await).await;
}

async fn lifecycle(env: &Env) -> anyhow::Result<()> {
    let hub = env.start_hub(&env.config(json!({"default": param_profile()})), "hub.db", "hub-a").await?;
    let store = &hub.ctx.store;
    let annotations = opted_in(&[("scalehub.io/param.replicas", "8"), ("scalehub.io/max-replicas", "5")]);
    create(env, &deployment("edit", 1, annotations)).await?;
    create(env, &deployment("doomed", 1, opted_in(&[("scalehub.io/param.replicas", "2")]))).await?;
    env.wait_replicas("edit", 5).await?;
    env.wait_replicas("doomed", 2).await?;

    // Raising the bound takes effect on a following tick, with the same hub.
    annotate(env, "edit", &[("scalehub.io/max-replicas", Some("7"))]).await?;
    env.wait_replicas("edit", 7).await?;

    // Opting out: the row says removed, the decisions stay, and nothing scales any more.
    annotate(env, "edit", &[("scalehub.io/enabled", None)]).await?;
    let row = eventually("the target row in state removed", WAIT, async || {
        Ok(target(env, store, "edit").await?.filter(|r| r.state == "removed"))
    })
    .await?;
    ensure!(row.removed_at.is_some(), "a removed target has no removed_at: {row:?}");
    store.flush().await.context("flush")?;
    let kept = decisions(env, store, "edit").await?;
    ensure!(
        kept.iter().filter(|d| d.outcome == "scaled").count() >= 2,
        "the history lost its scale decisions: {}",
        summary(&kept)
    );

    annotate(env, "edit", &[("scalehub.io/param.replicas", Some("2"))]).await?;
    env.hold_replicas("edit", 7, Duration::from_secs(3)).await?;
    let later = decisions(env, store, "edit").await?;
    ensure!(
        later.len() == kept.len(),
        "an opted-out target was still decided for: {}",
        summary(&later[..later.len().saturating_sub(kept.len())])
    );

    // Deleting a workload ends its loop the same way, and its history stays too.
    env.deployments().delete("doomed", &DeleteParams::default()).await.context("delete deployment doomed")?;
    eventually("the deleted target's row in state removed", WAIT, async || {
        Ok(target(env, store, "doomed").await?.filter(|r| r.state == "removed"))
    })
    .await?;
    store.flush().await.context("flush")?;
    let history = decisions(env, store, "doomed").await?;
    ensure!(
        history.iter().any(|d| d.outcome == "scaled"),
        "the deleted target's history is gone: {}",
        summary(&history)
    );
    hub.shutdown().await;
    Ok(())
}
