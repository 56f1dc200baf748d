//! The hub as a container runs it: PID 1 of its own PID namespace (`unshare --pid`). Its hooks
//! leave a background child (killed with the hook's group, re-parented to PID 1 as a zombie)
//! and a `setsid` escapee (outside the group) on every tick. Once the target stops ticking,
//! neither a zombie nor a leftover process may remain in the namespace.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use scalehub_store::Store;
use serde_json::json;

use crate::fixtures::{annotate, create, deployment, opted_in, sh, ticks};
use crate::harness::{Env, eventually, on_simulator};
use crate::process::{Proc, child_of, descendants, spawn_hub};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_pid_1_the_hub_leaves_no_zombies_and_no_escaped_hook_processes() {
    on_simulator("pid-1", "the process tree does not depend on the API server", async |env: &Env| pid_1(env).await)
        .await;
}

async fn pid_1(env: &Env) -> anyhow::Result<()> {
    // Each tick: `sleep 30 &` stays in the hook's group (killed at the end, a zombie for PID 1);
    // `setsid sleep 60 &` escapes the group and holds stdout open.
    let metric = sh("sleep 30 & setsid sleep 60 & echo 2", 5_000);
    let evaluate = sh("cat >/dev/null; echo '{\"targetReplicas\": 2}'", 5_000);
    let config =
        env.write_config("config.yaml", &env.config(json!({"default": {"metric": metric, "evaluate": evaluate}})))?;
    let db = env.database("hub.db").await?;
    let mut wrapper = vec!["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"];
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Unprivileged: a user namespace in which the test's user is root.
        wrapper.push("--map-root-user");
    }
    let hub = spawn_hub(env, &wrapper, &config, &db, "hub.log").await?;
    let unshare = hub.child.id().context("unshare's pid")?;
    let pid = child_of(unshare).context("the hub under unshare")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap_or_default();
    ensure!(nspid.split_whitespace().last() == Some("1"), "the hub is not PID 1 of its namespace: {nspid}");

    create(env, &deployment("tree", 1, opted_in(&[]))).await?;
    let store = Store::open(&db).await.context("open the hub's database")?;
    eventually("five ticks", Duration::from_secs(30), async || {
        Ok(ticks(env, &store, "tree").await?.len().ge(&5).then_some(()))
    })
    .await
    .with_context(|| format!("hub log:\n{}", hub.log_tail()))?;
    annotate(env, "tree", &[("scalehub.io/enabled", None)]).await?;

    // With no more hook runs, what the runs left must be gone within a few sweeps.
    let left = eventually("no zombies and no leftover sleeps", Duration::from_secs(10), async || {
        let left: Vec<Proc> = descendants(pid).into_iter().filter(|p| p.state == 'Z' || p.comm == "sleep").collect();
        Ok(left.is_empty().then_some(()))
    })
    .await;
    let now: Vec<Proc> = descendants(pid).into_iter().filter(|p| p.state == 'Z' || p.comm == "sleep").collect();
    left.with_context(|| format!("left in the namespace: {now:?}; hub log:\n{}", hub.log_tail()))?;
    store.close().await.context("close the database")?;
    Ok(())
}
