//! Drill: the hub under `ulimit -n 1024` (soft and hard, so it cannot raise it) while 1,500
//! clients hold connections open without sending a request. It keeps ticking its target,
//! keeps its hooks running (each needs three pipes) and answers `/healthz` at once, as a
//! liveness probe with a one-second timeout needs.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use scalehub_store::Store;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fixtures::{create, deployment, opted_in, sh, ticks};
use crate::harness::{Env, eventually, on_simulator};
use crate::process::spawn_hub;

/// Idle connections held against the hub, beyond its descriptor limit.
const IDLE: usize = 1_500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_ulimit_1024_with_1500_idle_connections_the_hub_ticks_and_answers_probes() {
    on_simulator("fd-drill", "the descriptor limit does not depend on the API server", async |env: &Env| {
        fd_drill(env).await
    })
    .await;
}

/// Lets this test process hold the idle connections (its own soft limit may be 1,024).
fn raise_own_limit(wanted: u64) -> anyhow::Result<()> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        ensure!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0, "getrlimit");
        if limit.rlim_cur < wanted {
            ensure!(limit.rlim_max >= wanted, "this machine allows only {} open files", limit.rlim_max);
            limit.rlim_cur = wanted;
            ensure!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0, "setrlimit");
        }
    }
    Ok(())
}

/// `GET /healthz` on a new connection; how long it took.
async fn probe(addr: std::net::SocketAddr) -> anyhow::Result<Duration> {
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(1), async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n").await?;
        let mut text = String::new();
        stream.read_to_string(&mut text).await?;
        Ok::<_, std::io::Error>(text)
    })
    .await
    .context("a probe with a 1 s timeout failed")??;
    ensure!(answer.starts_with("HTTP/1.1 200"), "healthz answered {answer}");
    Ok(started.elapsed())
}

async fn fd_drill(env: &Env) -> anyhow::Result<()> {
    raise_own_limit(IDLE as u64 + 1_024)?;
    let metric = sh("echo 3", 5_000);
    let evaluate = sh("cat >/dev/null; echo '{\"targetReplicas\": 3}'", 5_000);
    let config =
        env.write_config("config.yaml", &env.config(json!({"default": {"metric": metric, "evaluate": evaluate}})))?;
    let db = env.database("hub.db").await?;
    // dash's `ulimit -n` sets the soft and the hard limit.
    let wrapper = ["sh", "-c", "ulimit -n 1024 && exec \"$0\" \"$@\""];
    let hub = spawn_hub(env, &wrapper, &config, &db, "hub.log").await?;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", hub.child.id().context("hub pid")?))?;
    let open_files = limits.lines().find(|l| l.starts_with("Max open files")).unwrap_or_default().to_owned();
    ensure!(open_files.split_whitespace().filter(|w| *w == "1024").count() == 2, "not under ulimit 1024: {open_files}");

    create(env, &deployment("steady", 1, opted_in(&[]))).await?;
    let store = Store::open(&db).await.context("open the hub's database")?;
    eventually("the first ticks", Duration::from_secs(20), async || {
        Ok(ticks(env, &store, "steady").await?.len().ge(&2).then_some(()))
    })
    .await
    .with_context(|| format!("hub log:\n{}", hub.log_tail()))?;

    let mut idle = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        match tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(hub.addr)).await {
            Ok(Ok(stream)) => idle.push(stream),
            // Beyond the listen backlog the kernel stops completing handshakes at once.
            Ok(Err(e)) => anyhow::bail!("connection {i} failed: {e}"),
            Err(_) => break,
        }
    }
    let before = ticks(env, &store, "steady").await?.len();
    let mut slowest = Duration::ZERO;
    for _ in 0..8 {
        slowest = slowest.max(probe(hub.addr).await.with_context(|| format!("hub log:\n{}", hub.log_tail()))?);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let after = ticks(env, &store, "steady").await?.len();
    println!(
        "fd drill: {} idle connections opened; slowest probe {slowest:?}; {} ticks in 4 s",
        idle.len(),
        after - before
    );
    ensure!(after - before >= 3, "the target ticked {} times in 4 s of 1 s ticks", after - before);
    let log = std::fs::read_to_string(env.path("hub.log")).unwrap_or_default();
    ensure!(!log.contains("Too many open files"), "the hub ran out of descriptors:\n{}", hub.log_tail());
    drop(idle);
    store.close().await.context("close the database")?;
    Ok(())
}
