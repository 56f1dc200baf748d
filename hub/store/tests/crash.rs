//! A `kill -9` in the middle of writing never leaves the policy state ahead of
//! or behind the recorded decisions.
//!
//! The test re-runs its own binary as a child process that records decisions
//! as fast as it can, kills it with SIGKILL, and checks the file it left.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TempDb, decision, key, target};
use scalehub_store::{PolicyStateRow, Store};
use serde_json::json;

/// Set in the child: the database URL to write to.
const CHILD_ENV: &str = "SCALEHUB_STORE_CRASH_CHILD_URL";

/// The child's body: decision `i` carries policy state `{"decisions": i + 1}`.
async fn write_forever(url: &str) {
    let store = Store::open(url).await.unwrap();
    let k = key("ns", "web");
    for i in 0i64.. {
        let policy = PolicyStateRow { key: k.clone(), state: json!({"decisions": i + 1}), updated_at: i, fence: None };
        store.record_decision(decision(&k, i), Some(policy)).await.unwrap();
    }
}

async fn decisions_so_far(url: &str) -> usize {
    let store = Store::open(url).await.unwrap();
    let n = store.decisions(&key("ns", "web"), None, 1000).await.unwrap().len();
    store.close().await.unwrap();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_writer_leaves_decisions_and_policy_state_in_step() {
    if let Ok(url) = std::env::var(CHILD_ENV) {
        write_forever(&url).await;
        return;
    }
    kill_the_writer(TempDb::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_writer_leaves_decisions_and_policy_state_in_step_on_postgres() {
    if let Ok(url) = std::env::var(CHILD_ENV) {
        write_forever(&url).await;
        return;
    }
    if let Some(db) = TempDb::postgres().await {
        kill_the_writer(db).await;
    }
}

/// Runs this test binary again as a child that writes to `db` as fast as it can, kills it
/// mid-stream, and checks what it left. A PostgreSQL server rolls the child's open
/// transaction back when its connection drops.
async fn kill_the_writer(db: TempDb) {
    let test = match db.url.starts_with("sqlite:") {
        true => "a_killed_writer_leaves_decisions_and_policy_state_in_step",
        false => "a_killed_writer_leaves_decisions_and_policy_state_in_step_on_postgres",
    };
    // Create the schema first, so the child and the parent never migrate at once.
    let store = db.open().await;
    store.upsert_target(target("ns", "web")).await.unwrap();
    store.close().await.unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture"])
        .env(CHILD_ENV, &db.url)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the child is well into writing, then kill it mid-stream.
    let deadline = Instant::now() + Duration::from_secs(60);
    while decisions_so_far(&db.url).await < 1000 {
        assert!(Instant::now() < deadline, "the child wrote nothing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap(); // SIGKILL: no close, no flush, no destructors
    child.wait().unwrap();

    let store = db.open().await;
    let k = key("ns", "web");
    let mut count = 0i64;
    let mut before = None;
    loop {
        let page = store.decisions(&k, before, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        count += page.len() as i64;
    }
    let state = store.policy_state(&k).await.unwrap().unwrap();
    println!("crash test: {count} decisions survived the kill");
    assert!(count >= 1000);
    assert_eq!(state.state, json!({"decisions": count}));
    assert_eq!(state.updated_at, count - 1);
    store.close().await.unwrap();
}
