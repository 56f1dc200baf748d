//! kube's discovery and dynamic API against the simulator.

mod common;

use common::{deployment, sim};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::{self, Discovery, Scope};
use serde_json::json;

#[tokio::test]
async fn discovery_finds_every_served_group_and_the_dynamic_api_works() {
    let (_sim, client) = sim().await;
    Api::<Deployment>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &deployment("web", 1))
        .await
        .unwrap();

    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let groups: Vec<String> = discovery.groups().map(|g| g.name().to_string()).collect();
    for g in ["", "apps", "autoscaling", "coordination.k8s.io", "events.k8s.io", "metrics.k8s.io"] {
        assert!(groups.iter().any(|x| x == g), "group {g:?} missing from {groups:?}");
    }
    let (ar, caps) = discovery.resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment")).unwrap();
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(
        caps.subresources.iter().any(|(sub, _)| sub.plural == "deployments/scale" || sub.plural == "scale"),
        "{:?}",
        caps.subresources
    );

    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let list = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let patched = api
        .patch("web", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"dyn": "yes"}}})))
        .await
        .unwrap();
    assert_eq!(patched.metadata.labels.unwrap()["dyn"], "yes");

    let (hpa, _) =
        discovery::pinned_kind(&client, &GroupVersionKind::gvk("autoscaling", "v2", "HorizontalPodAutoscaler"))
            .await
            .unwrap();
    assert_eq!(hpa.plural, "horizontalpodautoscalers");
}
