//! What hooks leave behind, with the reaper on (this test binary is a child subreaper, as the
//! hub is): processes that escaped the group with `setsid` are killed once their run ends, and
//! orphans that exit are reaped rather than left as zombies.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{TempDir, runner};
use scalehub_hooks::reaper::{self, Adoption};
use scalehub_hooks::{HookError, HookSpec, ShellSpec};
use serde_json::json;

const SECOND: Duration = Duration::from_secs(1);

fn adopt() {
    assert_eq!(reaper::adopt_orphans().unwrap(), Adoption::Subreaper);
}

/// `sh -c <script> sh <file>`: the script writes pids to `$1`.
fn script(script: &str, file: &Path, timeout: Duration) -> HookSpec {
    HookSpec::Shell(ShellSpec::new("sh", timeout).args(["-c", script, "sh", &file.to_string_lossy()]))
}

fn read_pid(file: &Path) -> u32 {
    std::fs::read_to_string(file).unwrap().trim().parse().unwrap()
}

/// True once `pid` has left the process table (a zombie has not).
async fn gone_within(pid: u32, limit: Duration) -> bool {
    let started = tokio::time::Instant::now();
    while started.elapsed() < limit {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn a_setsid_escapee_is_killed_when_its_run_ends() {
    adopt();
    let dir = TempDir::new("setsid");
    let file = dir.path().join("escapee.pid");
    // setsid leaves the hook's process group, so the group kill misses it.
    let spec = script("setsid sleep 60 & echo $! > \"$1\"; echo 3", &file, 10 * SECOND);
    let out = runner().run(&spec, &json!({})).await.unwrap();
    assert_eq!(out.stdout, "3\n");
    let escapee = read_pid(&file);
    assert!(gone_within(escapee, 5 * SECOND).await, "the setsid'd sleep {escapee} outlived its run");
}

#[tokio::test]
async fn a_timed_out_hook_loses_its_whole_tree() {
    adopt();
    let dir = TempDir::new("tree");
    let file = dir.path().join("tree.pid");
    // An escapee that starts children of its own in its new session, then the hook hangs.
    let spec = script(
        "setsid sh -c 'sleep 60 & echo $! >> \"$0\"; sleep 60' \"$1\" & echo $! >> \"$1\"; sleep 60",
        &file,
        SECOND,
    );
    let failure = runner().run(&spec, &json!({})).await.unwrap_err();
    assert!(matches!(failure.error, HookError::Timeout(_)), "{:?}", failure.error);
    let pids: Vec<u32> = std::fs::read_to_string(&file).unwrap().lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
    for pid in pids {
        assert!(gone_within(pid, 5 * SECOND).await, "{pid} of the timed-out hook's tree still runs");
    }
}

#[tokio::test]
async fn an_orphan_lives_as_long_as_its_run() {
    adopt();
    let dir = TempDir::new("live");
    let file = dir.path().join("orphan.pid");
    // The inner shell exits at once, so its setsid'd sleep is re-parented to this process while
    // the hook itself still runs for two seconds: it belongs to a live run and must be spared.
    let spec = script("sh -c 'setsid sleep 60 & echo $! > \"$0\"' \"$1\"; sleep 2; echo 1", &file, 10 * SECOND);
    let run = tokio::spawn(async move { runner().run(&spec, &json!({})).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let orphan = read_pid(&file);
    assert!(Path::new(&format!("/proc/{orphan}")).exists(), "the orphan {orphan} was killed while its run lasted");
    run.await.unwrap().unwrap();
    assert!(gone_within(orphan, 5 * SECOND).await, "the orphan {orphan} outlived its run");
}

#[tokio::test]
async fn an_orphan_that_exits_is_reaped() {
    adopt();
    let before = reaper::stats().reaped;
    let dir = TempDir::new("zombie");
    let file = dir.path().join("orphan.pid");
    // The subshell outlives the hook until the group kill; killed, it is re-parented to this
    // process as a zombie, which only a `wait` removes from the process table.
    let spec = script("(sleep 60; true) & echo $! > \"$1\"; echo 1", &file, 10 * SECOND);
    runner().run(&spec, &json!({})).await.unwrap();
    let orphan = read_pid(&file);
    assert!(gone_within(orphan, 5 * SECOND).await, "the killed subshell {orphan} was never reaped");
    assert!(reaper::stats().reaped > before);
}
