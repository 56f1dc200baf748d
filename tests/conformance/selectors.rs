//! Label and field selectors on list and watch.

use anyhow::{Context as _, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::fixtures::{api_error, check_status, deployment, lease, names, pod, sorted};
use crate::server::{Ctx, on_every_server, within};
use crate::watching::{describe, event_name, is_added, is_deleted, is_modified, list_rv, wait_for, watch_from};

/// Every selector operator, with the objects it must select out of
/// web{app=web,tier=front} api{app=api,tier=back} db{app=db} bare{}.
const LABEL_CASES: &[(&str, &[&str])] = &[
    ("app=web", &["web"]),
    ("app==web", &["web"]),
    ("app!=web", &["api", "bare", "db"]),
    ("app in (web,api)", &["api", "web"]),
    ("app in (web, api)", &["api", "web"]),
    ("app notin (web,api)", &["bare", "db"]),
    ("tier", &["api", "web"]),
    ("!tier", &["bare", "db"]),
    ("app in (web,api),tier=back", &["api"]),
    ("app,!tier", &["db"]),
    ("app=web,app=api", &[]),
    ("", &["api", "bare", "db", "web"]),
];

#[tokio::test]
async fn label_selectors_filter_lists_with_every_operator() {
    on_every_server("label-list", async |ctx: &Ctx| {
        let api: Api<Deployment> = ctx.api();
        for (name, labels) in [
            ("web", &[("app", "web"), ("tier", "front")][..]),
            ("api", &[("app", "api"), ("tier", "back")][..]),
            ("db", &[("app", "db")][..]),
            ("bare", &[][..]),
        ] {
            within("create", api.create(&PostParams::default(), &deployment(name, 0, labels))).await??;
        }
        for (selector, expected) in LABEL_CASES {
            let list = within("list", api.list(&ListParams::default().labels(selector))).await??;
            ensure!(
                names(&list.items) == sorted(expected),
                "labelSelector {selector:?} listed {:?}, expected {expected:?}",
                names(&list.items)
            );
        }
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn malformed_or_unsupported_selectors_are_400_bad_request() {
    on_every_server("bad-selectors", async |ctx: &Ctx| {
        let api: Api<Deployment> = ctx.api();
        for lp in [ListParams::default().labels("app in ("), ListParams::default().fields("spec.replicas=1")] {
            let what = format!("list with {:?} / {:?}", lp.label_selector, lp.field_selector);
            let status = api_error(&what, within("list", api.list(&lp)).await?)?;
            check_status(&what, &status, 400, "BadRequest")?;
        }
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn label_selectors_filter_watch_events() {
    on_every_server("label-watch", async |ctx: &Ctx| {
        let api: Api<Lease> = ctx.api();
        let rv = list_rv(&api, &ListParams::default()).await?;
        let wp = WatchParams::default().disable_bookmarks().labels("app in (web,api),!canary");
        let mut events = watch_from(&api, &wp, &rv).await?;
        for (name, labels) in [
            ("db", &[("app", "db")][..]),
            ("canary", &[("app", "web"), ("canary", "yes")][..]),
            ("web", &[("app", "web")][..]),
        ] {
            within("create", api.create(&PostParams::default(), &lease(name, "a", labels))).await??;
        }
        let (first, _) = wait_for(&mut events, "first event", |_| true).await?;
        ensure!(is_added(&first, "web"), "first event is {}, expected ADDED web only", describe(&first));
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn objects_entering_and_leaving_a_watched_selection_are_added_and_deleted() {
    on_every_server("label-watch-transitions", async |ctx: &Ctx| {
        let api: Api<Lease> = ctx.api();
        within("create", api.create(&PostParams::default(), &lease("l", "a", &[("app", "web")]))).await??;
        let rv = list_rv(&api, &ListParams::default()).await?;
        let mut events = watch_from(&api, &WatchParams::default().disable_bookmarks().labels("app=web"), &rv).await?;

        let relabel = |app: &str| json!({"metadata": {"labels": {"app": app}}});
        within("leave", api.patch("l", &PatchParams::default(), &Patch::Merge(&relabel("api")))).await??;
        let (left, _) = wait_for(&mut events, "first event", |_| true).await?;
        ensure!(is_deleted(&left, "l"), "leaving the selection gave {}, expected DELETED", describe(&left));

        within("enter", api.patch("l", &PatchParams::default(), &Patch::Merge(&relabel("web")))).await??;
        let (entered, _) = wait_for(&mut events, "second event", |_| true).await?;
        ensure!(is_added(&entered, "l"), "entering the selection gave {}, expected ADDED", describe(&entered));

        let holder = json!({"spec": {"holderIdentity": "b"}});
        within("modify", api.patch("l", &PatchParams::default(), &Patch::Merge(&holder))).await??;
        let (modified, _) = wait_for(&mut events, "third event", |_| true).await?;
        ensure!(is_modified(&modified, "l"), "a change inside the selection gave {}", describe(&modified));
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn field_selectors_filter_by_name_and_namespace_on_list_and_watch() {
    on_every_server("field-selectors", async |ctx: &Ctx| {
        let api: Api<Lease> = ctx.api();
        for name in ["a", "b", "c"] {
            within("create", api.create(&PostParams::default(), &lease(name, "x", &[]))).await??;
        }
        let ns = &ctx.ns;
        let cases: &[(String, &[&str])] = &[
            ("metadata.name=b".into(), &["b"]),
            ("metadata.name==b".into(), &["b"]),
            ("metadata.name!=b".into(), &["a", "c"]),
            (format!("metadata.namespace={ns}"), &["a", "b", "c"]),
            (format!("metadata.name=a,metadata.namespace={ns}"), &["a"]),
            ("metadata.namespace=elsewhere".into(), &[]),
        ];
        for (selector, expected) in cases {
            let list = within("list", api.list(&ListParams::default().fields(selector))).await??;
            ensure!(
                names(&list.items) == sorted(expected),
                "fieldSelector {selector:?} listed {:?}, expected {expected:?}",
                names(&list.items)
            );
        }
        // Cluster-wide, the namespace selector is what scopes the list.
        let all: Api<Lease> = Api::all(ctx.client.clone());
        let list =
            within("list all", all.list(&ListParams::default().fields(&format!("metadata.namespace={ns}")))).await??;
        ensure!(
            names(&list.items) == sorted(&["a", "b", "c"]),
            "cluster-wide list by namespace: {:?}",
            names(&list.items)
        );

        let rv = list_rv(&api, &ListParams::default()).await?;
        let mut events =
            watch_from(&api, &WatchParams::default().disable_bookmarks().fields("metadata.name=c"), &rv).await?;
        for name in ["a", "c"] {
            let patch = json!({"spec": {"holderIdentity": "y"}});
            within("patch", api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))).await??;
        }
        let (first, _) = wait_for(&mut events, "first event", |_| true).await?;
        ensure!(event_name(&first).as_deref() == Some("c"), "watch by metadata.name=c saw {} first", describe(&first));
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn pods_can_be_selected_by_status_phase() {
    on_every_server("pod-phase", async |ctx: &Ctx| {
        let api: Api<Pod> = ctx.api();
        for name in ["running", "pending"] {
            within("create", api.create(&PostParams::default(), &pod(name, &[("app", "phase")]))).await??;
        }
        let status = json!({"status": {"phase": "Running"}});
        within("patch status", api.patch_status("running", &PatchParams::default(), &Patch::Merge(&status))).await??;
        let cases: &[(&str, &[&str])] = &[
            ("status.phase=Running", &["running"]),
            ("status.phase!=Running", &["pending"]),
            ("status.phase=Pending", &["pending"]),
            ("status.phase=Running,metadata.name=running", &["running"]),
        ];
        for (selector, expected) in cases {
            let list = within("list", api.list(&ListParams::default().fields(selector))).await??;
            ensure!(
                names(&list.items) == sorted(expected),
                "fieldSelector {selector:?} listed {:?}, expected {expected:?}",
                names(&list.items)
            );
        }
        let both = within("list", api.list(&ListParams::default().labels("app=phase").fields("status.phase=Running")))
            .await??;
        ensure!(names(&both.items) == sorted(&["running"]), "label+field selector listed {:?}", names(&both.items));

        let rv = list_rv(&api, &ListParams::default()).await?;
        let wp = WatchParams::default().disable_bookmarks().fields("status.phase=Pending");
        let mut events = watch_from(&api, &wp, &rv).await?;
        within("promote", api.patch_status("pending", &PatchParams::default(), &Patch::Merge(&status))).await??;
        let (left, _) = wait_for(&mut events, "first event", |_| true).await?;
        let WatchEvent::Deleted(p) = &left else {
            anyhow::bail!("a pod leaving status.phase=Pending gave {}, expected DELETED", describe(&left));
        };
        let phase = p.status.as_ref().and_then(|s| s.phase.clone()).context("event pod has no phase")?;
        ensure!(p.name_any() == "pending", "DELETED names {}", p.name_any());
        // The real apiserver sends the pod as it was before it left the selection.
        ensure!(phase == "Pending", "the DELETED pod shows phase {phase}");
        Ok(())
    })
    .await;
}
