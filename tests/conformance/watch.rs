//! Raw watch semantics: replay from a list rv, expiry, timeouts and bookmarks.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::fixtures::lease;
use crate::server::{Ctx, on_every_server, on_every_server_tuned, within};
use crate::watching::{describe, drain, is_added, is_deleted, is_modified, list_rv, wait_for, watch_from};

fn holder(ev: &WatchEvent<Lease>) -> Option<String> {
    match ev {
        WatchEvent::Added(l) | WatchEvent::Modified(l) | WatchEvent::Deleted(l) => {
            l.spec.as_ref().and_then(|s| s.holder_identity.clone())
        }
        _ => None,
    }
}

#[tokio::test]
async fn a_watch_from_a_list_version_replays_changes_made_before_it_opened() {
    on_every_server("watch-replay", async |ctx: &Ctx| {
        let api: Api<Lease> = ctx.api();
        within("create", api.create(&PostParams::default(), &lease("before", "a", &[]))).await??;
        let rv = list_rv(&api, &ListParams::default()).await?;
        // These land between the list and the watch: the kube watcher's gap.
        within("create", api.create(&PostParams::default(), &lease("gap", "a", &[]))).await??;
        let patch = json!({"spec": {"holderIdentity": "b"}});
        within("patch", api.patch("before", &PatchParams::default(), &Patch::Merge(&patch))).await??;

        let mut events = watch_from(&api, &WatchParams::default().disable_bookmarks(), &rv).await?;
        let (first, _) = wait_for(&mut events, "first event", |_| true).await?;
        ensure!(is_added(&first, "gap"), "first replayed event is {}, expected ADDED gap", describe(&first));
        let (second, _) = wait_for(&mut events, "second event", |_| true).await?;
        ensure!(
            is_modified(&second, "before") && holder(&second).as_deref() == Some("b"),
            "second replayed event is {}, expected MODIFIED before with holder b",
            describe(&second)
        );

        // Live events follow the replay on the same stream.
        within("delete", api.delete("gap", &DeleteParams::default())).await??;
        let (third, _) = wait_for(&mut events, "third event", |_| true).await?;
        ensure!(is_deleted(&third, "gap"), "live event is {}, expected DELETED gap", describe(&third));
        Ok(())
    })
    .await;
}

/// Bounded wait for the real apiserver's etcd compaction to pass rv 1.
const COMPACTION_WAIT: Duration = Duration::from_secs(45);

#[tokio::test]
async fn a_watch_from_a_too_old_version_gets_an_expired_error_event_not_an_http_error() {
    // Making rv "1" genuinely too old differs per server; the answer must not.
    // The simulator keeps 16 events per resource here. The real apiserver serves
    // core/v1 Events straight from etcd (no watch cache in v1.20), so rv 1 expires
    // once etcd has been compacted (scripts/real-apiserver.sh uses a short
    // --etcd-compaction-interval); cached kinds keep ~75 s of history in memory.
    on_every_server_tuned(
        "watch-expired",
        |opts| opts.history_limit = 16,
        async |ctx: &Ctx| {
            let api: Api<CoreEvent> = ctx.api();
            for i in 0..20 {
                within("create", api.create(&PostParams::default(), &core_event(&ctx.ns, &format!("e{i}")))).await??;
            }
            let started = Instant::now();
            let seen = loop {
                // An HTTP 410 here fails `watch_from`: kube would then retry the same rv forever.
                let mut events = watch_from(&api, &WatchParams::default().disable_bookmarks().timeout(2), "1").await?;
                let seen = drain(&mut events, Duration::from_secs(10)).await?;
                let expired = matches!(seen.first(), Some(WatchEvent::Error(_)));
                if expired || !ctx.is_real || started.elapsed() > COMPACTION_WAIT {
                    break seen;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            };
            let Some(WatchEvent::Error(status)) = seen.first() else {
                bail!(
                    "a watch from rv 1 after {:?} was not expired (is etcd compacted?); events: {:?}",
                    started.elapsed(),
                    seen.iter().take(5).map(describe).collect::<Vec<_>>()
                );
            };
            ensure!(
                status.code == 410 && status.reason == "Expired" && status.is_failure(),
                "ERROR event Status is {status:?}, expected code 410 reason Expired"
            );
            ensure!(!status.message.is_empty(), "ERROR event Status has no message");
            ensure!(
                seen.len() == 1,
                "stream continued after the ERROR: {:?}",
                seen.iter().map(describe).collect::<Vec<_>>()
            );
            Ok(())
        },
    )
    .await;
}

fn core_event(ns: &str, name: &str) -> CoreEvent {
    CoreEvent {
        metadata: ObjectMeta { name: Some(name.into()), ..ObjectMeta::default() },
        involved_object: ObjectReference {
            kind: Some("Lease".into()),
            name: Some("l".into()),
            namespace: Some(ns.into()),
            ..ObjectReference::default()
        },
        reason: Some("Probe".into()),
        message: Some("history filler".into()),
        type_: Some("Normal".into()),
        ..CoreEvent::default()
    }
}

#[tokio::test]
async fn timeout_seconds_ends_the_watch_stream() {
    on_every_server("watch-timeout", async |ctx: &Ctx| {
        let api: Api<Lease> = ctx.api();
        let rv = list_rv(&api, &ListParams::default()).await?;
        let started = Instant::now();
        let mut events = watch_from(&api, &WatchParams::default().disable_bookmarks().timeout(2), &rv).await?;
        let seen = drain(&mut events, Duration::from_secs(10)).await?;
        let took = started.elapsed();
        ensure!(seen.is_empty(), "idle watch produced {:?}", seen.iter().map(describe).collect::<Vec<_>>());
        ensure!(
            took >= Duration::from_millis(1500) && took <= Duration::from_secs(6),
            "a 2 s watch ended after {took:?}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn bookmarks_arrive_before_the_timeout_only_when_asked_for() {
    on_every_server("watch-bookmarks", async |ctx: &Ctx| {
        let api: Api<Lease> = ctx.api();
        within("create", api.create(&PostParams::default(), &lease("l", "a", &[]))).await??;
        let rv = list_rv(&api, &ListParams::default()).await?;
        // v1.20 bookmarks a watch 2 s before its deadline, and only once the
        // resource has changed since the watch's rv; so change it, and leave room.
        let mut asked = watch_from(&api, &WatchParams::default().timeout(5), &rv).await?;
        let mut unasked = watch_from(&api, &WatchParams::default().disable_bookmarks().timeout(5), &rv).await?;
        let change = json!({"spec": {"holderIdentity": "b"}});
        within("patch", api.patch("l", &PatchParams::default(), &Patch::Merge(&change))).await??;
        let (asked, unasked) =
            tokio::join!(drain(&mut asked, Duration::from_secs(12)), drain(&mut unasked, Duration::from_secs(12)));
        let (asked, unasked) = (asked?, unasked?);

        ensure!(
            asked.first().is_some_and(|e| is_modified(e, "l")),
            "the bookmarked watch did not start with the change: {:?}",
            asked.iter().map(describe).collect::<Vec<_>>()
        );
        let bookmarks: Vec<_> = asked
            .iter()
            .filter_map(|e| match e {
                WatchEvent::Bookmark(b) => Some(b),
                _ => None,
            })
            .collect();
        ensure!(
            !bookmarks.is_empty() && asked.len() == 1 + bookmarks.len(),
            "a watch with allowWatchBookmarks should see the change then BOOKMARKs before its timeout: {:?}",
            asked.iter().map(describe).collect::<Vec<_>>()
        );
        for b in &bookmarks {
            ensure!(!b.metadata.resource_version.is_empty(), "BOOKMARK without a resourceVersion");
            ensure!(
                b.types.kind == "Lease" && b.types.api_version == "coordination.k8s.io/v1",
                "BOOKMARK typed {}/{}",
                b.types.api_version,
                b.types.kind
            );
        }
        ensure!(
            unasked.len() == 1 && is_modified(&unasked[0], "l"),
            "a watch without allowWatchBookmarks should see only the change: {:?}",
            unasked.iter().map(describe).collect::<Vec<_>>()
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_no_op_patch_keeps_the_resource_version_and_emits_no_event() {
    on_every_server("no-op-patch", async |ctx: &Ctx| {
        let api: Api<Lease> = ctx.api();
        let created = within("create", api.create(&PostParams::default(), &lease("l", "a", &[("k", "v")]))).await??;
        let rv = created.resource_version().unwrap_or_default();
        let mut events = watch_from(&api, &WatchParams::default().disable_bookmarks(), &rv).await?;

        let same = json!({"metadata": {"labels": {"k": "v"}}, "spec": {"holderIdentity": "a"}});
        let patched = within("no-op merge", api.patch("l", &PatchParams::default(), &Patch::Merge(&same))).await??;
        ensure!(
            patched.resource_version() == Some(rv.clone()),
            "no-op merge patch changed rv {rv} to {:?}",
            patched.resource_version()
        );
        let patched =
            within("no-op strategic", api.patch("l", &PatchParams::default(), &Patch::Strategic(&same))).await??;
        ensure!(patched.resource_version() == Some(rv.clone()), "no-op strategic patch changed the rv");
        let replaced = within("no-op replace", api.replace("l", &PostParams::default(), &created)).await??;
        ensure!(replaced.resource_version() == Some(rv.clone()), "no-op replace changed the rv");

        // The first event after the no-ops must be the real change that follows them.
        let change = json!({"spec": {"holderIdentity": "b"}});
        within("real patch", api.patch("l", &PatchParams::default(), &Patch::Merge(&change))).await??;
        let (first, _) = wait_for(&mut events, "first event", |_| true).await?;
        ensure!(
            is_modified(&first, "l") && holder(&first).as_deref() == Some("b"),
            "first event after no-op writes is {}, expected MODIFIED with holder b",
            describe(&first)
        );
        Ok(())
    })
    .await;
}
