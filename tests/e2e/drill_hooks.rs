//! Drill: hooks that misbehave in every way at once, against `scalehub run` (a child
//! subreaper, as it runs outside a container): one times out, one dies of SIGSEGV, one prints
//! 100 MB, one leaves a `setsid` escapee and a background child holding its stdout, and an
//! HTTP hook's server sends headers and then hangs the body. Each fails (or, for the escapee,
//! succeeds) on its own; a healthy target beside them keeps its 1 s schedule; and once the
//! targets stop, no zombie and no process a hook started is left.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use scalehub_store::Store;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fixtures::{annotate, create, decisions, decisions_once, deployment, opted_in, sh, summary, ticks};
use crate::harness::{Env, eventually, on_simulator};
use crate::process::{Proc, descendants, spawn_hub};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_hooks_fail_alone_leave_nothing_behind_and_the_schedule_holds() {
    on_simulator("hook-drill", "hook processes do not depend on the API server", async |env: &Env| {
        hook_drill(env).await
    })
    .await;
}

/// An HTTP server that answers every request with headers promising 1,000 bytes, sends ten,
/// and then holds the connection.
async fn hanging_body_server() -> anyhow::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"partial\"").await;
                tokio::time::sleep(Duration::from_secs(120)).await;
            });
        }
    });
    Ok(addr)
}

fn evaluate() -> Value {
    sh("cat >/dev/null; echo '{\"targetReplicas\": 2}'", 5_000)
}

fn profiles(http: std::net::SocketAddr) -> Value {
    let hook = |metric: Value| json!({"metric": metric, "evaluate": evaluate()});
    json!({
        "default": hook(sh("echo 2", 5_000)),
        "timeout": hook(sh("sleep 30", 1_000)),
        "crash": hook(sh("kill -SEGV $$", 5_000)),
        "flood": hook(sh("head -c 100000000 /dev/zero", 10_000)),
        "escape": hook(sh("setsid sleep 60 & sleep 60 & echo 2", 5_000)),
        "hang-body": hook(json!({
            "type": "http",
            "timeout": 1_000,
            "http": {"method": "POST", "url": format!("http://{http}/metric"), "successCodes": [200], "parameterMode": "body"}
        })),
    })
}

/// What each failing target's error must say.
const FAILING: [(&str, &str); 4] =
    [("timeout", "timed out"), ("crash", "signal 11"), ("flood", "exceeds the limit"), ("hang-body", "timed out")];

async fn hook_drill(env: &Env) -> anyhow::Result<()> {
    let http = hanging_body_server().await?;
    let config = env.write_config("config.yaml", &env.config(profiles(http)))?;
    let db = env.database("hub.db").await?;
    let hub = spawn_hub(env, &[], &config, &db, "hub.log").await?;
    let pid = hub.child.id().context("the hub's pid")?;
    let store = Store::open(&db).await.context("open the hub's database")?;
    create(env, &deployment("healthy", 1, opted_in(&[]))).await?;
    for name in FAILING.iter().map(|(n, _)| *n).chain(["escape"]) {
        create(env, &deployment(name, 1, opted_in(&[("scalehub.io/profile", name)]))).await?;
    }

    for (name, message) in FAILING {
        let failed = eventually(&format!("{name}'s failed ticks"), Duration::from_secs(30), async || {
            let errors: Vec<_> =
                decisions(env, &store, name).await?.into_iter().filter(|d| d.outcome == "error").collect();
            let failed_ticks = ticks(env, &store, name).await?.iter().filter(|t| t.outcome == "error").count();
            Ok((failed_ticks >= 2 && !errors.is_empty()).then_some(errors))
        })
        .await
        .with_context(|| format!("hub log:\n{}", hub.log_tail()))?;
        let error = failed[0].error.clone().unwrap_or_default();
        ensure!(error.contains(message), "{name}: the error does not say {message:?}: {error}");
    }
    // The escapee holds the hook's stdout: the run still ends (100 ms after the hook exits),
    // successfully, and the target scales.
    env.wait_replicas("escape", 2).await.with_context(|| format!("hub log:\n{}", hub.log_tail()))?;
    let escape = decisions_once(env, &store, "escape", "the escape target's scale decision", |all| {
        all.iter().any(|d| d.outcome == "scaled")
    })
    .await?;
    ensure!(escape.iter().all(|d| d.outcome != "error"), "the escape hook failed: {}", summary(&escape));

    // The healthy target kept its schedule while the others failed around it.
    env.wait_replicas("healthy", 2).await?;
    let series = eventually("eight ticks of the healthy target", Duration::from_secs(20), async || {
        let series = ticks(env, &store, "healthy").await?;
        Ok((series.len() >= 8).then_some(series))
    })
    .await?;
    let gaps: Vec<i64> = series.windows(2).map(|w| w[1].time - w[0].time).collect();
    let worst = gaps.iter().copied().max().unwrap_or_default();
    println!("hook drill: healthy target {} ticks, worst gap {worst} ms", series.len());
    ensure!(worst < 1_600, "the healthy target's ticks fell behind: gaps {gaps:?}");

    // Stop every target; whatever the hooks left must go.
    for name in FAILING.iter().map(|(n, _)| *n).chain(["escape", "healthy"]) {
        annotate(env, name, &[("scalehub.io/enabled", None)]).await?;
    }
    let leftover = |p: &Proc| p.state == 'Z' || matches!(p.comm.as_str(), "sleep" | "head" | "sh" | "setsid");
    let clean = eventually("no zombies and no hook processes", Duration::from_secs(10), async || {
        Ok(descendants(pid).iter().all(|p| !leftover(p)).then_some(()))
    })
    .await;
    let left: Vec<Proc> = descendants(pid).into_iter().filter(leftover).collect();
    clean.with_context(|| format!("left behind: {left:?}; hub log:\n{}", hub.log_tail()))?;
    store.close().await.context("close the database")?;
    Ok(())
}
