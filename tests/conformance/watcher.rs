//! kube-runtime's `watcher` and `reflector` end to end, as the hub runs them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, ensure};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::fixtures::deployment;
use crate::server::{Ctx, eventually, on_every_server, within};

/// Runs a reflector in the background; watcher errors are collected, since a
/// conforming server gives kube no reason for any.
fn spawn_reflector(
    api: Api<Deployment>,
    config: watcher::Config,
) -> (Store<Deployment>, Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>) {
    let (reader, writer) = reflector::store();
    let errors = Arc::new(Mutex::new(Vec::new()));
    let sink = errors.clone();
    let task = tokio::spawn(async move {
        let stream = reflector::reflector(writer, watcher(api, config));
        futures::pin_mut!(stream);
        while let Some(item) = stream.next().await {
            if let Err(e) = item
                && let Ok(mut errors) = sink.lock()
            {
                errors.push(format!("{e}"));
            }
        }
    });
    (reader, errors, task)
}

fn replicas_in(store: &Store<Deployment>, name: &str) -> Option<i32> {
    store.state().iter().find(|d| d.name_any() == name).and_then(|d| d.spec.as_ref().and_then(|s| s.replicas))
}

fn check_no_errors(errors: &Mutex<Vec<String>>) -> anyhow::Result<()> {
    let errors = errors.lock().map(|e| e.clone()).unwrap_or_default();
    if !errors.is_empty() {
        bail!("the kube watcher hit errors: {errors:?}");
    }
    Ok(())
}

async fn track_changes(ctx: &Ctx, config: watcher::Config) -> anyhow::Result<()> {
    let api: Api<Deployment> = ctx.api();
    within("create", api.create(&PostParams::default(), &deployment("old", 0, &[]))).await??;
    let (store, errors, task) = spawn_reflector(api.clone(), config);
    within("the store to be ready", store.wait_until_ready()).await??;
    eventually("the listed object in the store", async || Ok(replicas_in(&store, "old"))).await?;

    within("create", api.create(&PostParams::default(), &deployment("new", 0, &[]))).await??;
    eventually("the created object in the store", async || Ok(replicas_in(&store, "new"))).await?;

    // Outlive the 1 s watch timeout, so the next change arrives on a re-opened watch.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let patch = json!({"spec": {"replicas": 0, "paused": true}, "metadata": {"labels": {"seen": "yes"}}});
    within("patch", api.patch("old", &PatchParams::default(), &Patch::Merge(&patch))).await??;
    eventually("the patched label in the store", async || {
        Ok(store.state().iter().find(|d| d.name_any() == "old" && d.labels().get("seen").is_some()).map(|_| ()))
    })
    .await?;

    within("delete", api.delete("new", &DeleteParams::default())).await??;
    eventually("the deleted object to leave the store", async || {
        Ok(replicas_in(&store, "new").is_none().then_some(()))
    })
    .await?;
    let left: Vec<String> = store.state().iter().map(|d| d.name_any()).collect();
    ensure!(left == ["old"], "store holds {left:?}, expected [old]");
    task.abort();
    check_no_errors(&errors)
}

#[tokio::test]
async fn a_reflector_tracks_creates_updates_and_deletes_across_re_watches() {
    on_every_server("reflector", async |ctx: &Ctx| track_changes(ctx, watcher::Config::default().timeout(1)).await)
        .await;
}

#[tokio::test]
async fn a_reflector_with_any_semantic_lists_from_version_zero() {
    on_every_server("reflector-any", async |ctx: &Ctx| {
        track_changes(ctx, watcher::Config::default().timeout(1).any_semantic()).await
    })
    .await;
}

#[tokio::test]
async fn a_label_filtered_watcher_yields_only_matching_objects() {
    on_every_server("watcher-labels", async |ctx: &Ctx| {
        let api: Api<Deployment> = ctx.api();
        within("create", api.create(&PostParams::default(), &deployment("in", 0, &[("tier", "front")]))).await??;
        within("create", api.create(&PostParams::default(), &deployment("out", 0, &[("tier", "back")]))).await??;
        let config = watcher::Config::default().labels("tier in (front,edge)").timeout(5);
        let stream = watcher(api.clone(), config).default_backoff().applied_objects();
        futures::pin_mut!(stream);
        let first = within("first applied object", stream.next()).await?;
        let name = match first {
            Some(Ok(d)) => d.name_any(),
            other => bail!("watcher yielded {other:?}"),
        };
        ensure!(name == "in", "first applied object is {name}, expected in");
        within("create", api.create(&PostParams::default(), &deployment("edge", 0, &[("tier", "edge")]))).await??;
        within("create", api.create(&PostParams::default(), &deployment("out2", 0, &[]))).await??;
        loop {
            match within("the edge object", stream.next()).await? {
                Some(Ok(d)) if d.name_any() == "edge" => break,
                Some(Ok(d)) if d.name_any() == "in" => continue, // status updates by controllers
                other => bail!("watcher yielded {other:?} before the edge object"),
            }
        }
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_cluster_wide_watcher_sees_objects_in_every_namespace() {
    on_every_server("watcher-all", async |ctx: &Ctx| {
        // The hub watches all namespaces at once; a per-test label keeps other
        // tests' objects on a shared real server out of the picture.
        let mark = [("suite", ctx.ns.as_str())];
        let api: Api<Deployment> = ctx.api();
        within("create", api.create(&PostParams::default(), &deployment("first", 0, &mark))).await??;
        let all: Api<Deployment> = Api::all(ctx.client.clone());
        let config = watcher::Config::default().labels(&format!("suite={}", ctx.ns)).timeout(5);
        let stream = watcher(all, config).default_backoff().applied_objects();
        futures::pin_mut!(stream);
        let mut want = vec!["first".to_string(), "second".to_string()];
        let mut created_second = false;
        while !want.is_empty() {
            match within("applied objects", stream.next()).await? {
                Some(Ok(d)) => {
                    ensure!(d.namespace().as_deref() == Some(ctx.ns.as_str()), "object from {:?}", d.namespace());
                    want.retain(|n| *n != d.name_any());
                }
                other => bail!("watcher yielded {other:?}"),
            }
            if !created_second {
                created_second = true;
                let second = deployment("second", 0, &mark);
                within("create", api.create(&PostParams::default(), &second)).await??;
            }
        }
        Ok(())
    })
    .await;
}
