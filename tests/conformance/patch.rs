//! The four patch content types, server-side apply, and generation.

use anyhow::{Context as _, ensure};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::fixtures::{api_error, check_status, deployment, pod_spec, statefulset};
use crate::server::{Ctx, on_every_server, within};

fn containers(d: &Deployment) -> Vec<(String, String)> {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| p.containers.iter().map(|c| (c.name.clone(), c.image.clone().unwrap_or_default())).collect())
        .unwrap_or_default()
}

fn replicas(d: &Deployment) -> Option<i32> {
    d.spec.as_ref().and_then(|s| s.replicas)
}

/// A Deployment whose pod template has two containers, `a` and `b`.
fn two_container_deployment(name: &str) -> Deployment {
    let mut d = deployment(name, 0, &[("keep", "me")]);
    if let Some(spec) = d.spec.as_mut() {
        spec.template.spec = Some(pod_spec(&["a", "b"]));
    }
    d
}

const IMAGE: &str = "registry.example/app:1";

#[tokio::test]
async fn merge_patch_merges_maps_and_replaces_lists() {
    on_every_server("merge-patch", async |ctx: &Ctx| {
        let api: Api<Deployment> = ctx.api();
        within("create", api.create(&PostParams::default(), &two_container_deployment("web"))).await??;
        let patch = json!({
            "metadata": {"labels": {"added": "yes", "keep": null}},
            "spec": {"template": {"spec": {"containers": [{"name": "b", "image": "registry.example/app:2"}]}}}
        });
        let d = within("merge patch", api.patch("web", &PatchParams::default(), &Patch::Merge(&patch))).await??;
        ensure!(d.labels().get("added").map(String::as_str) == Some("yes"), "label not added: {:?}", d.labels());
        ensure!(!d.labels().contains_key("keep"), "null did not remove the label: {:?}", d.labels());
        ensure!(
            containers(&d) == [("b".into(), "registry.example/app:2".into())],
            "a merge patch must replace the containers list, got {:?}",
            containers(&d)
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn strategic_merge_patch_merges_containers_by_name() {
    on_every_server("strategic-patch", async |ctx: &Ctx| {
        let api: Api<Deployment> = ctx.api();
        within("create", api.create(&PostParams::default(), &two_container_deployment("web"))).await??;
        let patch = json!({
            "metadata": {"labels": {"added": "yes"}},
            "spec": {"template": {"spec": {"containers": [{"name": "b", "image": "registry.example/app:2"}]}}}
        });
        let d =
            within("strategic patch", api.patch("web", &PatchParams::default(), &Patch::Strategic(&patch))).await??;
        ensure!(
            containers(&d) == [("a".into(), IMAGE.into()), ("b".into(), "registry.example/app:2".into())],
            "a strategic merge patch must merge containers by name, got {:?}",
            containers(&d)
        );
        ensure!(d.labels().get("keep").map(String::as_str) == Some("me"), "labels lost: {:?}", d.labels());
        ensure!(d.labels().get("added").map(String::as_str) == Some("yes"), "label not added");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn json_patch_applies_operations_and_a_failed_test_is_rejected() {
    on_every_server("json-patch", async |ctx: &Ctx| {
        let api: Api<Deployment> = ctx.api();
        within("create", api.create(&PostParams::default(), &two_container_deployment("web"))).await??;
        let ops: json_patch::Patch = serde_json::from_value(json!([
            {"op": "test", "path": "/spec/replicas", "value": 0},
            {"op": "replace", "path": "/spec/replicas", "value": 2},
            {"op": "add", "path": "/metadata/labels/added", "value": "yes"},
            {"op": "remove", "path": "/spec/template/spec/containers/0"}
        ]))?;
        let d = within("json patch", api.patch("web", &PatchParams::default(), &Patch::Json::<()>(ops))).await??;
        ensure!(replicas(&d) == Some(2), "replicas is {:?}", replicas(&d));
        ensure!(d.labels().get("added").map(String::as_str) == Some("yes"), "label not added");
        ensure!(containers(&d) == [("b".into(), IMAGE.into())], "containers are {:?}", containers(&d));

        let failing: json_patch::Patch = serde_json::from_value(json!([
            {"op": "test", "path": "/spec/replicas", "value": 7},
            {"op": "replace", "path": "/spec/replicas", "value": 9}
        ]))?;
        let result =
            within("failing json patch", api.patch("web", &PatchParams::default(), &Patch::Json::<()>(failing)))
                .await?;
        let status = api_error("failed json patch test", result)?;
        check_status("failed json patch test", &status, 422, "Invalid")?;
        let d = within("get", api.get("web")).await??;
        ensure!(replicas(&d) == Some(2), "a rejected json patch still changed replicas to {:?}", replicas(&d));
        Ok(())
    })
    .await;
}

fn applied(name: &str, replicas: i32) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": IMAGE}]}
            }
        }
    })
}

#[tokio::test]
async fn server_side_apply_creates_a_missing_object_and_updates_it() {
    on_every_server("ssa-create", async |ctx: &Ctx| {
        let api: Api<Deployment> = ctx.api();
        let pp = PatchParams::apply("conformance");
        let d = within("apply", api.patch("ssa", &pp, &Patch::Apply(applied("ssa", 1)))).await??;
        ensure!(d.uid().is_some(), "apply-created object has no uid");
        ensure!(d.metadata.generation == Some(1), "apply-created generation is {:?}", d.metadata.generation);
        ensure!(replicas(&d) == Some(1), "replicas is {:?}", replicas(&d));
        let managers: Vec<String> = d.managed_fields().iter().filter_map(|m| m.manager.clone()).collect();
        ensure!(managers.iter().any(|m| m == "conformance"), "managedFields managers are {managers:?}");

        let d = within("apply again", api.patch("ssa", &pp, &Patch::Apply(applied("ssa", 2)))).await??;
        ensure!(replicas(&d) == Some(2), "re-apply left replicas at {:?}", replicas(&d));
        ensure!(d.metadata.generation == Some(2), "re-apply generation is {:?}", d.metadata.generation);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn server_side_apply_without_a_field_manager_is_422_invalid() {
    on_every_server("ssa-no-manager", async |ctx: &Ctx| {
        let api: Api<Deployment> = ctx.api();
        let result =
            within("apply", api.patch("ssa", &PatchParams::default(), &Patch::Apply(applied("ssa", 1)))).await?;
        let status = api_error("apply without fieldManager", result)?;
        check_status("apply without fieldManager", &status, 422, "Invalid")?;
        ensure!(status.message.contains("fieldManager"), "message does not name fieldManager: {:?}", status.message);
        ensure!(within("get", api.get_opt("ssa")).await??.is_none(), "a rejected apply created the object");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn server_side_apply_conflicts_between_managers_unless_forced() {
    on_every_server("ssa-conflict", async |ctx: &Ctx| {
        let api: Api<Deployment> = ctx.api();
        within("apply", api.patch("ssa", &PatchParams::apply("first"), &Patch::Apply(applied("ssa", 1)))).await??;
        let result = within(
            "conflicting apply",
            api.patch("ssa", &PatchParams::apply("second"), &Patch::Apply(applied("ssa", 3))),
        )
        .await?;
        let status = api_error("conflicting apply", result)?;
        check_status("conflicting apply", &status, 409, "Conflict")?;
        let d = within("get", api.get("ssa")).await??;
        ensure!(replicas(&d) == Some(1), "a conflicting apply changed replicas to {:?}", replicas(&d));

        let forced = PatchParams::apply("second").force();
        let d = within("forced apply", api.patch("ssa", &forced, &Patch::Apply(applied("ssa", 3)))).await??;
        ensure!(replicas(&d) == Some(3), "a forced apply left replicas at {:?}", replicas(&d));
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn generation_bumps_on_spec_changes_only() {
    on_every_server("generation", async |ctx: &Ctx| {
        let api: Api<Deployment> = ctx.api();
        let d = within("create", api.create(&PostParams::default(), &deployment("web", 0, &[]))).await??;
        ensure!(d.metadata.generation == Some(1), "created generation is {:?}", d.metadata.generation);
        let pp = PatchParams::default();

        let label = json!({"metadata": {"labels": {"l": "1"}}});
        let d = within("label patch", api.patch("web", &pp, &Patch::Merge(&label))).await??;
        ensure!(d.metadata.generation == Some(1), "a label change bumped generation to {:?}", d.metadata.generation);

        let spec = json!({"spec": {"replicas": 2}});
        let d = within("spec patch", api.patch("web", &pp, &Patch::Merge(&spec))).await??;
        ensure!(d.metadata.generation == Some(2), "a spec change left generation at {:?}", d.metadata.generation);

        let status = json!({"status": {"collisionCount": 3}});
        let d = within("status patch", api.patch_status("web", &pp, &Patch::Merge(&status))).await??;
        ensure!(d.metadata.generation == Some(2), "a status change moved generation to {:?}", d.metadata.generation);

        let same = json!({"spec": {"replicas": 2}});
        let d = within("no-op spec patch", api.patch("web", &pp, &Patch::Merge(&same))).await??;
        ensure!(d.metadata.generation == Some(2), "an unchanged spec bumped generation to {:?}", d.metadata.generation);

        let template = json!({"spec": {"template": {"metadata": {"annotations": {"t": "1"}}}}});
        let d = within("template patch", api.patch("web", &pp, &Patch::Merge(&template))).await??;
        ensure!(
            d.metadata.generation == Some(3),
            "a pod template change left generation at {:?}",
            d.metadata.generation
        );

        // Deployments (only) also bump generation on an annotation change: a
        // legacy of the rollback annotation, observed on v1.20. `kubectl annotate`
        // therefore moves a Deployment's generation.
        let annotation = json!({"metadata": {"annotations": {"a": "1"}}});
        let d = within("annotation patch", api.patch("web", &pp, &Patch::Merge(&annotation))).await??;
        let g = d.metadata.generation.context("no generation")?;
        ensure!(g == 4, "a Deployment annotation change left generation at {g}, expected 4");

        let sts: Api<StatefulSet> = ctx.api();
        within("create", sts.create(&PostParams::default(), &statefulset("db", 0))).await??;
        let meta = json!({"metadata": {"labels": {"l": "1"}, "annotations": {"a": "1"}}});
        let s = within("statefulset metadata patch", sts.patch("db", &pp, &Patch::Merge(&meta))).await??;
        ensure!(
            s.metadata.generation == Some(1),
            "a StatefulSet metadata change bumped generation to {:?}",
            s.metadata.generation
        );
        Ok(())
    })
    .await;
}
