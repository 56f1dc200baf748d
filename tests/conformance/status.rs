//! The `/status` subresource: it writes status only, and the main resource
//! ignores status.

use anyhow::ensure;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::fixtures::{deployment, statefulset};
use crate::server::{Ctx, on_every_server, within};

#[tokio::test]
async fn a_status_patch_changes_status_only() {
    on_every_server("status-only", async |ctx: &Ctx| {
        let api: Api<Deployment> = ctx.api();
        let created = within("create", api.create(&PostParams::default(), &deployment("web", 1, &[]))).await??;
        let patch = json!({
            "metadata": {"labels": {"from-status": "yes"}},
            "spec": {"replicas": 9},
            "status": {"collisionCount": 7}
        });
        let d =
            within("status patch", api.patch_status("web", &PatchParams::default(), &Patch::Merge(&patch))).await??;
        let status = d.status.clone().unwrap_or_default();
        ensure!(status.collision_count == Some(7), "status patch did not set status: {status:?}");
        ensure!(
            d.spec.as_ref().and_then(|s| s.replicas) == Some(1),
            "a status patch changed spec.replicas to {:?}",
            d.spec.as_ref().and_then(|s| s.replicas)
        );
        ensure!(!d.labels().contains_key("from-status"), "a status patch changed labels: {:?}", d.labels());
        ensure!(d.metadata.generation == created.metadata.generation, "a status patch changed generation");
        ensure!(d.resource_version() != created.resource_version(), "a status change kept the rv");

        let got = within("get", api.get("web")).await??;
        ensure!(got.spec.as_ref().and_then(|s| s.replicas) == Some(1), "spec changed after a status patch");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_main_resource_patch_ignores_status() {
    on_every_server("main-ignores-status", async |ctx: &Ctx| {
        let api: Api<StatefulSet> = ctx.api();
        within("create", api.create(&PostParams::default(), &statefulset("db", 0))).await??;
        let patch = json!({"metadata": {"labels": {"x": "y"}}, "status": {"collisionCount": 5}});
        let s = within("main patch", api.patch("db", &PatchParams::default(), &Patch::Merge(&patch))).await??;
        ensure!(s.labels().get("x").map(String::as_str) == Some("y"), "the label was not applied");
        let count = s.status.as_ref().and_then(|st| st.collision_count);
        ensure!(count != Some(5), "a patch of the main resource wrote status.collisionCount");

        let status_patch = json!({"status": {"collisionCount": 4}});
        let s = within("status patch", api.patch_status("db", &PatchParams::default(), &Patch::Merge(&status_patch)))
            .await??;
        let count = s.status.as_ref().and_then(|st| st.collision_count);
        ensure!(count == Some(4), "a statefulset status patch left collisionCount at {count:?}");
        Ok(())
    })
    .await;
}
