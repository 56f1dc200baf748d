//! Pods: create, label-selected lists, and status patches to Running/Ready.

use anyhow::{Context as _, ensure};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::fixtures::{names, pod, sorted};
use crate::server::{Ctx, on_every_server, within};

fn ready(p: &Pod) -> Option<String> {
    p.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready").map(|c| c.status.clone())
}

#[tokio::test]
async fn pods_are_created_pending_and_their_status_patched_ready() {
    on_every_server("pod-status", async |ctx: &Ctx| {
        let api: Api<Pod> = ctx.api();
        let created = within("create", api.create(&PostParams::default(), &pod("p", &[("app", "web")]))).await??;
        ensure!(created.uid().is_some(), "pod has no uid");
        let phase = created.status.as_ref().and_then(|s| s.phase.clone());
        ensure!(phase.as_deref() == Some("Pending"), "a new pod's phase is {phase:?}, expected Pending");

        let patch = json!({"status": {
            "phase": "Running",
            "podIP": "10.0.0.7",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]
        }});
        let p = within("status patch", api.patch_status("p", &PatchParams::default(), &Patch::Merge(&patch))).await??;
        let phase = p.status.as_ref().and_then(|s| s.phase.clone());
        ensure!(phase.as_deref() == Some("Running"), "patched phase is {phase:?}");
        ensure!(ready(&p).as_deref() == Some("True"), "patched Ready condition is {:?}", ready(&p));

        let got = within("get", api.get("p")).await??;
        ensure!(ready(&got).as_deref() == Some("True"), "stored Ready condition is {:?}", ready(&got));
        ensure!(
            got.status.as_ref().and_then(|s| s.pod_ip.clone()).as_deref() == Some("10.0.0.7"),
            "podIP was not stored"
        );
        let spec = got.spec.context("pod lost its spec")?;
        ensure!(spec.containers.len() == 1 && spec.containers[0].name == "main", "containers changed");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn pods_are_listed_by_a_scale_style_label_selector() {
    on_every_server("pod-labels", async |ctx: &Ctx| {
        let api: Api<Pod> = ctx.api();
        for (name, labels) in [
            ("web-1", &[("app", "web"), ("tier", "front")][..]),
            ("web-2", &[("app", "web"), ("tier", "front")][..]),
            ("web-canary", &[("app", "web"), ("tier", "canary")][..]),
            ("api-1", &[("app", "api")][..]),
        ] {
            within("create", api.create(&PostParams::default(), &pod(name, labels))).await??;
        }
        let list = within("list", api.list(&ListParams::default().labels("app=web,tier in (front)"))).await??;
        ensure!(names(&list.items) == sorted(&["web-1", "web-2"]), "selected {:?}", names(&list.items));
        Ok(())
    })
    .await;
}
