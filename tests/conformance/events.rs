//! Events, both core/v1 and events.k8s.io/v1 (through kube's own `Recorder`).

use anyhow::{Context as _, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event as CoreEvent, EventSource, ObjectReference};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event as RecordedEvent, EventType, Recorder, Reporter};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use crate::fixtures::deployment;
use crate::server::{Ctx, on_every_server, within};

#[tokio::test]
async fn core_events_are_created_and_merge_patched() {
    on_every_server("core-events", async |ctx: &Ctx| {
        let api: Api<CoreEvent> = ctx.api();
        let event = core_event(&ctx.ns, "web");
        let created = within("create", api.create(&PostParams::default(), &event)).await??;
        ensure!(created.uid().is_some(), "event has no uid");
        ensure!(created.count == Some(1), "count is {:?}", created.count);

        let patch = json!({"count": 2, "message": "scaled to 4"});
        let patched =
            within("merge patch", api.patch("web.1", &PatchParams::default(), &Patch::Merge(&patch))).await??;
        ensure!(patched.count == Some(2), "patched count is {:?}", patched.count);
        ensure!(patched.message.as_deref() == Some("scaled to 4"), "patched message is {:?}", patched.message);
        ensure!(patched.reason.as_deref() == Some("Scaled"), "the patch lost the reason");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn core_events_are_selected_by_involved_object_as_kubectl_describe_does() {
    on_every_server("events-by-object", async |ctx: &Ctx| {
        let api: Api<CoreEvent> = ctx.api();
        for (name, object) in [("web.1", "web"), ("web.2", "web"), ("api.1", "api")] {
            let mut e = core_event(&ctx.ns, object);
            e.metadata.name = Some(name.into());
            within("create", api.create(&PostParams::default(), &e)).await??;
        }
        let selector =
            format!("involvedObject.kind=Deployment,involvedObject.name=web,involvedObject.namespace={}", ctx.ns);
        let list = within("list", api.list(&ListParams::default().fields(&selector))).await??;
        let mut found: Vec<String> = list.items.iter().map(|e| e.name_any()).collect();
        found.sort();
        ensure!(found == ["web.1", "web.2"], "fieldSelector {selector:?} listed {found:?}");
        Ok(())
    })
    .await;
}

/// A core/v1 Event about Deployment `object`, as client-go's recorder writes one.
fn core_event(ns: &str, object: &str) -> CoreEvent {
    let now = Time(
        jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap_or_else(|_| jiff::Timestamp::now()),
    );
    CoreEvent {
        metadata: ObjectMeta { name: Some(format!("{object}.1")), ..ObjectMeta::default() },
        involved_object: ObjectReference {
            api_version: Some("apps/v1".into()),
            kind: Some("Deployment".into()),
            name: Some(object.into()),
            namespace: Some(ns.into()),
            ..ObjectReference::default()
        },
        reason: Some("Scaled".into()),
        message: Some("scaled to 3".into()),
        type_: Some("Normal".into()),
        count: Some(1),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        source: Some(EventSource { component: Some("scalehub".into()), host: None }),
        ..CoreEvent::default()
    }
}

/// Publishes the same event twice through kube's Recorder: a create, then a
/// merge patch adding a series.
async fn publish_twice(ctx: &Ctx) -> anyhow::Result<ObjectReference> {
    let deployments: Api<Deployment> = ctx.api();
    let d = within("create", deployments.create(&PostParams::default(), &deployment("web", 0, &[]))).await??;
    let reference = d.object_ref(&());
    let recorder = Recorder::new(ctx.client.clone(), Reporter { controller: "scalehub".into(), instance: None });
    let event = RecordedEvent {
        type_: EventType::Normal,
        reason: "Scaled".into(),
        note: Some("scaled from 1 to 3".into()),
        action: "Scale".into(),
        secondary: None,
    };
    within("first publish", recorder.publish(&event, &reference)).await?.context("first publish (create)")?;
    within("second publish", recorder.publish(&event, &reference)).await?.context("second publish (patch)")?;
    Ok(reference)
}

#[tokio::test]
async fn kube_recorder_creates_an_event_then_patches_its_series() {
    on_every_server("recorder", async |ctx: &Ctx| {
        let reference = publish_twice(ctx).await?;
        let api: Api<Event> = ctx.api();
        let list = within("list", api.list(&ListParams::default())).await??;
        ensure!(list.items.len() == 1, "expected one events.k8s.io event, found {}", list.items.len());
        let e = &list.items[0];
        ensure!(e.reason.as_deref() == Some("Scaled"), "reason is {:?}", e.reason);
        ensure!(e.action.as_deref() == Some("Scale"), "action is {:?}", e.action);
        ensure!(e.note.as_deref() == Some("scaled from 1 to 3"), "note is {:?}", e.note);
        ensure!(
            e.reporting_controller.as_deref() == Some("scalehub"),
            "reportingController is {:?}",
            e.reporting_controller
        );
        ensure!(e.type_.as_deref() == Some("Normal"), "type is {:?}", e.type_);
        ensure!(e.event_time.is_some(), "no eventTime");
        let regarding = e.regarding.as_ref().context("no regarding")?;
        ensure!(regarding.name == reference.name && regarding.uid == reference.uid, "regarding is {regarding:?}");
        let series = e.series.as_ref().context("the second publish did not add a series")?;
        ensure!(series.count == 2, "series.count is {}", series.count);
        ensure!(
            e.name_any().starts_with("web."),
            "event name {} does not follow the Recorder's <name>.<hex> form",
            e.name_any()
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn events_k8s_io_events_are_also_visible_as_core_events() {
    on_every_server("events-both-groups", async |ctx: &Ctx| {
        publish_twice(ctx).await?;
        // Both groups serve the same objects (kubectl get events reads core/v1).
        let core: Api<CoreEvent> = ctx.api();
        let list = within("list core events", core.list(&ListParams::default())).await??;
        ensure!(list.items.len() == 1, "core/v1 lists {} events, expected the recorder's one", list.items.len());
        let e = &list.items[0];
        ensure!(e.reason.as_deref() == Some("Scaled"), "core reason is {:?}", e.reason);
        ensure!(e.message.as_deref() == Some("scaled from 1 to 3"), "core message (note) is {:?}", e.message);
        ensure!(e.involved_object.name.as_deref() == Some("web"), "involvedObject is {:?}", e.involved_object);
        ensure!(
            e.reporting_component.as_deref() == Some("scalehub"),
            "reportingComponent is {:?}",
            e.reporting_component
        );
        let series = e.series.as_ref().and_then(|s| s.count);
        ensure!(series == Some(2), "core series.count is {series:?}");
        Ok(())
    })
    .await;
}
