//! Events (kube's Recorder), Leases (optimistic locking) and HPAs through the real kube client.

mod common;

use common::{deployment, sim};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::Resource;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::json;

#[tokio::test]
async fn the_kube_event_recorder_creates_then_patches_a_series() {
    let (_sim, client) = sim().await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d = api.create(&PostParams::default(), &deployment("web", 1)).await.unwrap();
    let recorder = Recorder::new(client.clone(), Reporter { controller: "scalehub".into(), instance: None });
    let ev = Event {
        type_: EventType::Normal,
        reason: "Scaled".into(),
        note: Some("2 → 3".into()),
        action: "Scale".into(),
        secondary: None,
    };
    recorder.publish(&ev, &d.object_ref(&())).await.unwrap();
    recorder.publish(&ev, &d.object_ref(&())).await.unwrap();
    let events: Api<K8sEvent> = Api::namespaced(client, "default");
    let list = events.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let e = &list.items[0];
    assert_eq!(e.reason.as_deref(), Some("Scaled"));
    assert_eq!(e.series.as_ref().map(|s| s.count), Some(2));
}

#[tokio::test]
async fn lease_replace_with_a_stale_resource_version_is_a_conflict() {
    let (_sim, client) = sim().await;
    let leases: Api<Lease> = Api::namespaced(client, "default");
    let lease: Lease = serde_json::from_value(
        json!({"metadata": {"name": "scalehub"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}),
    )
    .unwrap();
    let created = leases.create(&PostParams::default(), &lease).await.unwrap();
    let mut mine = created.clone();
    mine.spec.as_mut().unwrap().holder_identity = Some("b".into());
    leases.replace("scalehub", &PostParams::default(), &mine).await.unwrap();
    let mut theirs = created;
    theirs.spec.as_mut().unwrap().holder_identity = Some("c".into());
    let err = leases.replace("scalehub", &PostParams::default(), &theirs).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 409));
    assert_eq!(leases.get("scalehub").await.unwrap().spec.unwrap().holder_identity.as_deref(), Some("b"));
}

#[tokio::test]
async fn hpas_are_served_so_the_hub_can_detect_owned_workloads() {
    let (_sim, client) = sim().await;
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client, "default");
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 5}
    }))
    .unwrap();
    hpas.create(&PostParams::default(), &hpa).await.unwrap();
    let list = hpas.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items[0].spec.as_ref().unwrap().scale_target_ref.name, "web");
}
