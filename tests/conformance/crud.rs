//! Create, get, list, replace and delete: server-set fields and error Statuses.

use anyhow::{Context as _, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::fixtures::{api_error, check_status, deployment, names, sorted};
use crate::server::{Ctx, on_every_server, within};
use crate::watching::{describe, is_deleted, list_rv, wait_for, watch_from};

#[tokio::test]
async fn create_returns_201_fields_the_server_sets() {
    on_every_server("create-fields", async |ctx: &Ctx| {
        let api: Api<Deployment> = ctx.api();
        let created = within("create", api.create(&PostParams::default(), &deployment("web", 0, &[]))).await??;
        let meta = &created.metadata;
        ensure!(meta.uid.as_deref().is_some_and(|u| !u.is_empty()), "no uid: {meta:?}");
        ensure!(meta.creation_timestamp.is_some(), "no creationTimestamp: {meta:?}");
        ensure!(meta.generation == Some(1), "generation is {:?}, expected 1", meta.generation);
        ensure!(meta.resource_version.as_deref().is_some_and(|r| !r.is_empty()), "no resourceVersion");
        ensure!(meta.namespace.as_deref() == Some(ctx.ns.as_str()), "namespace is {:?}", meta.namespace);
        ensure!(created.spec.as_ref().and_then(|s| s.replicas) == Some(0), "spec.replicas did not round-trip");

        let got = within("get", api.get("web")).await??;
        ensure!(got.metadata.uid == meta.uid, "get returned another uid");
        ensure!(got.metadata.creation_timestamp == meta.creation_timestamp, "creationTimestamp changed");

        let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
        let ns = within("get namespace", namespaces.get(&ctx.ns)).await??;
        let phase = ns.status.and_then(|s| s.phase);
        ensure!(phase.as_deref() == Some("Active"), "new namespace phase is {phase:?}, expected Active");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn creating_a_duplicate_is_already_exists_409() {
    on_every_server("already-exists", async |ctx: &Ctx| {
        let api: Api<Deployment> = ctx.api();
        within("create", api.create(&PostParams::default(), &deployment("web", 0, &[]))).await??;
        let result = within("create again", api.create(&PostParams::default(), &deployment("web", 0, &[]))).await?;
        let status = api_error("duplicate create", result)?;
        check_status("duplicate create", &status, 409, "AlreadyExists")?;
        let details = status.details.as_ref().context("AlreadyExists Status has no details")?;
        ensure!(details.name == "web", "details.name is {:?}", details.name);
        ensure!(details.group == "apps", "details.group is {:?}", details.group);
        ensure!(details.kind == "deployments", "details.kind is {:?}", details.kind);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn getting_a_missing_object_is_a_404_not_found_status() {
    on_every_server("not-found", async |ctx: &Ctx| {
        let api: Api<Deployment> = ctx.api();
        let status = api_error("get missing", within("get", api.get("nope")).await?)?;
        check_status("get missing", &status, 404, "NotFound")?;
        let details = status.details.as_ref().context("NotFound Status has no details")?;
        ensure!(details.name == "nope", "details.name is {:?}", details.name);
        ensure!(details.group == "apps", "details.group is {:?}", details.group);
        ensure!(details.kind == "deployments", "details.kind is {:?}", details.kind);
        ensure!(status.message == "deployments.apps \"nope\" not found", "message is {:?}", status.message);
        ensure!(within("get_opt", api.get_opt("nope")).await??.is_none(), "get_opt of a missing object is not None");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn replace_with_a_stale_resource_version_is_a_409_conflict() {
    on_every_server("stale-replace", async |ctx: &Ctx| {
        let api: Api<Deployment> = ctx.api();
        let old = within("create", api.create(&PostParams::default(), &deployment("web", 0, &[]))).await??;
        let patch = json!({"metadata": {"labels": {"touched": "yes"}}});
        let newer = within("patch", api.patch("web", &PatchParams::default(), &Patch::Merge(&patch))).await??;
        ensure!(newer.resource_version() != old.resource_version(), "a label change kept the rv");

        let mut stale = old.clone();
        stale.labels_mut().insert("stale".into(), "write".into());
        let status =
            api_error("stale replace", within("replace", api.replace("web", &PostParams::default(), &stale)).await?)?;
        check_status("stale replace", &status, 409, "Conflict")?;

        // The same replace with the current rv goes through; controllers may
        // write status in between, so retry on conflict as client-go does.
        for _ in 0..10 {
            let mut fresh = within("get", api.get("web")).await??;
            fresh.labels_mut().insert("fresh".into(), "write".into());
            match within("replace", api.replace("web", &PostParams::default(), &fresh)).await? {
                Ok(replaced) => {
                    ensure!(
                        replaced.labels().get("fresh").map(String::as_str) == Some("write"),
                        "replace lost the label"
                    );
                    ensure!(replaced.resource_version() != fresh.resource_version(), "replace kept the rv");
                    return Ok(());
                }
                Err(kube::Error::Api(s)) if s.is_conflict() => continue,
                Err(e) => return Err(e).context("replace with the current rv"),
            }
        }
        anyhow::bail!("a replace with the current rv conflicted 10 times in a row")
    })
    .await;
}

#[tokio::test]
async fn delete_removes_the_object_and_a_watch_sees_deleted() {
    on_every_server("delete", async |ctx: &Ctx| {
        let api: Api<Deployment> = ctx.api();
        within("create", api.create(&PostParams::default(), &deployment("web", 0, &[]))).await??;
        let rv = list_rv(&api, &ListParams::default()).await?;
        let mut events = watch_from(&api, &WatchParams::default().disable_bookmarks(), &rv).await?;
        within("delete", api.delete("web", &DeleteParams::default())).await??;

        let (deleted, before) = wait_for(&mut events, "DELETED web", |e| is_deleted(e, "web")).await?;
        let last_rv = before
            .iter()
            .rev()
            .find_map(|e| match e {
                kube::api::WatchEvent::Added(o) | kube::api::WatchEvent::Modified(o) => o.resource_version(),
                _ => None,
            })
            .unwrap_or(rv);
        let kube::api::WatchEvent::Deleted(obj) = &deleted else { unreachable!() };
        ensure!(
            obj.resource_version().is_some_and(|r| r != last_rv),
            "DELETED carries rv {:?}, the same as the object's last rv {last_rv}: the deletion needs its own rv ({})",
            obj.resource_version(),
            describe(&deleted)
        );
        let status = api_error("get after delete", within("get", api.get("web")).await?)?;
        check_status("get after delete", &status, 404, "NotFound")?;

        let status = api_error("delete missing", within("delete", api.delete("web", &DeleteParams::default())).await?)?;
        check_status("delete missing", &status, 404, "NotFound")?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn lists_carry_a_resource_version_namespaced_and_cluster_wide() {
    on_every_server("list-rv", async |ctx: &Ctx| {
        let api: Api<Deployment> = ctx.api();
        for name in ["a", "b", "c"] {
            within("create", api.create(&PostParams::default(), &deployment(name, 0, &[]))).await??;
        }
        let list = within("list", api.list(&ListParams::default())).await??;
        ensure!(names(&list.items) == sorted(&["a", "b", "c"]), "list returned {:?}", names(&list.items));
        ensure!(
            list.metadata.resource_version.as_deref().is_some_and(|r| !r.is_empty()),
            "namespaced list has no metadata.resourceVersion"
        );
        let all: Api<Deployment> = Api::all(ctx.client.clone());
        let list = within("list all", all.list(&ListParams::default())).await??;
        ensure!(
            list.metadata.resource_version.as_deref().is_some_and(|r| !r.is_empty()),
            "cluster-wide list has no metadata.resourceVersion"
        );
        let mine = list.items.iter().filter(|d| d.namespace().as_deref() == Some(ctx.ns.as_str())).count();
        ensure!(mine == 3, "cluster-wide list shows {mine} of this test's 3 deployments");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn paged_lists_with_limit_and_continue_return_every_object_once() {
    on_every_server("list-pages", async |ctx: &Ctx| {
        let api: Api<Deployment> = ctx.api();
        let all = ["a", "b", "c", "d", "e"];
        for name in all {
            within("create", api.create(&PostParams::default(), &deployment(name, 0, &[]))).await??;
        }
        // A server may ignore `limit`; either way the pages together hold every object once.
        let mut seen = Vec::new();
        let mut lp = ListParams::default().limit(2);
        for _ in 0..10 {
            let page = within("list page", api.list(&lp)).await??;
            seen.extend(page.items.iter().map(|d| d.name_any()));
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => lp = lp.continue_token(&token),
                None => break,
            }
        }
        seen.sort();
        ensure!(seen == sorted(&all), "pages returned {seen:?}");
        Ok(())
    })
    .await;
}
