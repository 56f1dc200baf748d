//! The real kube client (typed API, watcher, reflector) against the simulator.

mod common;

use common::{deployment, sim};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use scalehub_sim::SimOptions;
use serde_json::json;

#[tokio::test]
async fn typed_crud_round_trips_with_server_set_fields() {
    // Without controllers nothing else writes the object, so resourceVersions are predictable.
    let (_sim, client) = common::sim_with(SimOptions { controllers: false, ..Default::default() }).await;
    let api: Api<Deployment> = Api::namespaced(client, "default");
    let created = api.create(&PostParams::default(), &deployment("web", 2)).await.unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    assert_eq!(created.metadata.generation, Some(1));

    let dup = api.create(&PostParams::default(), &deployment("web", 2)).await.unwrap_err();
    assert!(matches!(dup, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists"));

    let got = api.get("web").await.unwrap();
    assert_eq!(got.metadata.resource_version, created.metadata.resource_version);

    let patched = api
        .patch("web", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"tier": "fe"}}})))
        .await
        .unwrap();
    assert_eq!(patched.metadata.labels.unwrap()["tier"], "fe");

    // `got` carries the pre-patch resourceVersion, so replacing with it is a conflict.
    let stale = api.replace("web", &PostParams::default(), &got).await.unwrap_err();
    assert!(matches!(stale, kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict"));

    let mut fresh = api.get("web").await.unwrap();
    fresh.spec.as_mut().unwrap().replicas = Some(5);
    let replaced = api.replace("web", &PostParams::default(), &fresh).await.unwrap();
    assert_eq!(replaced.metadata.generation, Some(2));

    api.delete("web", &DeleteParams::default()).await.unwrap();
    let gone = api.get("web").await.unwrap_err();
    assert!(matches!(gone, kube::Error::Api(s) if s.code == 404 && s.reason == "NotFound"));
}

#[tokio::test]
async fn all_four_patch_types_work_and_apply_creates() {
    let (_sim, client) = sim().await;
    let api: Api<Deployment> = Api::namespaced(client, "default");
    let ssa = PatchParams::apply("scalehub-test").force();
    let applied = api.patch("web", &ssa, &Patch::Apply(deployment("web", 1))).await.unwrap();
    assert_eq!(applied.spec.unwrap().replicas, Some(1));

    let strategic = json!({"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox"}]}}}});
    let d = api.patch("web", &PatchParams::default(), &Patch::Strategic(strategic)).await.unwrap();
    assert_eq!(d.spec.unwrap().template.spec.unwrap().containers.len(), 2);

    let jp: json_patch_ops::Ops =
        serde_json::from_value(json!([{"op": "replace", "path": "/spec/replicas", "value": 3}])).unwrap();
    let d = api.patch("web", &PatchParams::default(), &Patch::Json::<()>(jp)).await.unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(3));

    let failing: json_patch_ops::Ops =
        serde_json::from_value(json!([{"op": "test", "path": "/spec/replicas", "value": 9}])).unwrap();
    let err = api.patch("web", &PatchParams::default(), &Patch::Json::<()>(failing)).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 422));

    let no_manager = api.patch("web", &PatchParams::default(), &Patch::Apply(deployment("web", 1))).await.unwrap_err();
    assert!(matches!(no_manager, kube::Error::Api(s) if s.code == 422));
}

/// The JSON patch payload type kube expects (json-patch 4, the workspace version).
mod json_patch_ops {
    pub type Ops = json_patch::Patch;
}

#[tokio::test]
async fn creating_in_a_missing_namespace_is_not_found_until_it_exists() {
    let (_sim, client) = sim().await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "team-a");
    let err = api.create(&PostParams::default(), &deployment("web", 1)).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 404));
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team-a"}})).unwrap();
    Api::<Namespace>::all(client).create(&PostParams::default(), &ns).await.unwrap();
    api.create(&PostParams::default(), &deployment("web", 1)).await.unwrap();
}

#[tokio::test]
async fn label_selectors_filter_lists() {
    let (_sim, client) = sim().await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    for name in ["web", "api", "db"] {
        api.create(&PostParams::default(), &deployment(name, 1)).await.unwrap();
    }
    let names = |l: kube::core::ObjectList<Deployment>| {
        l.items.into_iter().map(|d| d.metadata.name.unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(names(api.list(&ListParams::default().labels("app in (web,api)")).await.unwrap()), ["api", "web"]);
    assert_eq!(names(api.list(&ListParams::default().labels("app!=web,app!=api")).await.unwrap()), ["db"]);
    assert_eq!(names(api.list(&ListParams::default().fields("metadata.name=db")).await.unwrap()), ["db"]);
    let all = Api::<Deployment>::all(client).list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(all.items.len(), 2);
    assert!(all.metadata.continue_.is_some());
    let bad = api.list(&ListParams::default().labels("app in (web")).await.unwrap_err();
    assert!(matches!(bad, kube::Error::Api(s) if s.code == 400));
}

#[tokio::test]
async fn watcher_sees_a_patch_made_right_after_the_initial_list() {
    let (_sim, client) = sim().await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &deployment("web", 1)).await.unwrap();
    let (reader, writer) = reflector::store::<Deployment>();
    let mut stream = reflector(writer, watcher(api.clone(), watcher::Config::default())).boxed();
    // Drain the initial list; the watch request is only sent when the stream is polled again.
    loop {
        if let watcher::Event::InitDone = stream.try_next().await.unwrap().unwrap() {
            break;
        }
    }
    api.patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 7}}))).await.unwrap();
    loop {
        if let watcher::Event::Apply(d) = stream.try_next().await.unwrap().unwrap()
            && d.spec.as_ref().unwrap().replicas == Some(7)
        {
            break;
        }
    }
    let cached = reader.get(&kube::runtime::reflector::ObjectRef::new("web").within("default")).unwrap();
    assert_eq!(cached.spec.as_ref().unwrap().replicas, Some(7));
}

#[tokio::test]
async fn an_expired_watch_makes_the_watcher_relist() {
    let (sim, client) = sim().await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &deployment("web", 1)).await.unwrap();
    sim.faults().update(|f| f.expire_next_watch = true);
    let mut stream = watcher(api.clone(), watcher::Config::default()).boxed();
    let mut init_done = 0;
    while init_done < 2 {
        match stream.next().await.unwrap() {
            Ok(watcher::Event::InitDone) => init_done += 1,
            Ok(_) => {}
            // The watcher surfaces the 410 once, then re-lists.
            Err(watcher::Error::WatchError(s)) => assert_eq!(s.code, 410),
            Err(e) => panic!("unexpected watcher error {e}"),
        }
    }
    assert_eq!(sim.accounting().count("list", "deployments"), 2);
}

#[tokio::test]
async fn watch_events_follow_selectors_and_deletes() {
    let (_sim, client) = sim().await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &deployment("web", 1)).await.unwrap();
    let cfg = watcher::Config::default().labels("tier=fe");
    let mut stream = watcher(api.clone(), cfg).applied_objects().boxed();
    let mut deleted = watcher(api.clone(), watcher::Config::default()).touched_objects().boxed();
    let _ = deleted.try_next().await.unwrap();
    api.patch("web", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"tier": "fe"}}})))
        .await
        .unwrap();
    let d = stream.try_next().await.unwrap().unwrap();
    assert_eq!(d.metadata.labels.unwrap()["tier"], "fe");
    api.delete("web", &DeleteParams::default()).await.unwrap();
    let mut raw = watcher(api, watcher::Config::default()).boxed();
    loop {
        if let watcher::Event::InitDone = raw.try_next().await.unwrap().unwrap() {
            break;
        }
    }
}

#[tokio::test]
async fn scale_subresource_reads_and_updates_the_workload() {
    let (_sim, client) = common::sim_with(SimOptions { controllers: false, ..Default::default() }).await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let created = api.create(&PostParams::default(), &deployment("web", 2)).await.unwrap();
    let scale = api.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(2));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=web"));
    assert_eq!(scale.metadata.resource_version, created.metadata.resource_version);

    let mut events = watcher(api.clone(), watcher::Config::default()).applied_objects().boxed();
    let first = events.try_next().await.unwrap().unwrap();
    assert_eq!(first.spec.unwrap().replicas, Some(2));

    let patched =
        api.patch_scale("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 4}}))).await.unwrap();
    assert_eq!(patched.spec.unwrap().replicas, Some(4));
    let d = api.get("web").await.unwrap();
    assert_eq!((d.spec.unwrap().replicas, d.metadata.generation), (Some(4), Some(2)));
    // The watcher sees the change (status updates from the controller may come first).
    loop {
        let d = events.try_next().await.unwrap().unwrap();
        if d.spec.unwrap().replicas == Some(4) {
            break;
        }
    }

    let stale = scale_body(3, created.metadata.resource_version.as_deref().unwrap());
    let stale: k8s_openapi::api::autoscaling::v1::Scale = serde_json::from_value(stale).unwrap();
    let err = api.replace_scale("web", &PostParams::default(), &stale).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 409));
    let missing = api.get_scale("nope").await.unwrap_err();
    assert!(matches!(missing, kube::Error::Api(s) if s.code == 404));
}

fn scale_body(replicas: i32, rv: &str) -> serde_json::Value {
    json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web", "namespace": "default", "resourceVersion": rv}, "spec": {"replicas": replicas}})
}

#[tokio::test]
async fn pods_follow_replicas_turn_ready_and_report_metrics() {
    use k8s_openapi::api::core::v1::Pod;
    let (_sim, client) = sim().await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let mut d = deployment("web", 2);
    d.metadata.annotations = Some([("sim.scalehub.io/load".to_string(), "constant:1000m".to_string())].into());
    api.create(&PostParams::default(), &d).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    common::eventually(10, || {
        let api = api.clone();
        async move {
            let d = api.get("web").await.ok()?;
            (d.status?.ready_replicas == Some(2)).then_some(())
        }
    })
    .await;
    let list = pods.list(&ListParams::default().labels("app=web")).await.unwrap();
    assert_eq!(list.items.len(), 2);
    let pod = &list.items[0];
    assert_eq!(pod.status.as_ref().unwrap().phase.as_deref(), Some("Running"));
    assert_eq!(pod.metadata.owner_references.as_ref().unwrap()[0].kind, "ReplicaSet");
    let running = pods.list(&ListParams::default().fields("status.phase=Running")).await.unwrap();
    assert_eq!(running.items.len(), 2);

    let req = http::Request::get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dweb")
        .body(Vec::new())
        .unwrap();
    let metrics: serde_json::Value = client.request(req).await.unwrap();
    let items = metrics["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["containers"][0]["usage"]["cpu"], "500000000n");
    assert_eq!(items[0]["window"], "30s");

    api.patch_scale("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 4}}))).await.unwrap();
    common::eventually(10, || {
        let api = api.clone();
        async move { (api.get("web").await.ok()?.status?.ready_replicas == Some(4)).then_some(()) }
    })
    .await;
    let metrics: serde_json::Value = client
        .request(http::Request::get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods").body(Vec::new()).unwrap())
        .await
        .unwrap();
    // Scaling out spreads the same demand thinner.
    assert_eq!(metrics["items"][0]["containers"][0]["usage"]["cpu"], "250000000n");
}

#[tokio::test]
async fn dry_run_create_validates_without_storing() {
    let (_sim, client) = sim().await;
    let api: Api<Deployment> = Api::namespaced(client, "default");
    let pp = PostParams { dry_run: true, ..Default::default() };
    let out = api.create(&pp, &deployment("web", 1)).await.unwrap();
    assert_eq!(out.metadata.name.as_deref(), Some("web"));
    assert!(matches!(api.get("web").await.unwrap_err(), kube::Error::Api(s) if s.code == 404));
    let mut bad = deployment("bad", 1);
    bad.spec.as_mut().unwrap().selector.match_labels = Some([("app".to_string(), "other".to_string())].into());
    let err = api.create(&pp, &bad).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 422 && s.reason == "Invalid"));
}

#[tokio::test]
async fn delete_collection_removes_only_selected_objects() {
    let (_sim, client) = common::sim_with(SimOptions { controllers: false, ..Default::default() }).await;
    let api: Api<Deployment> = Api::namespaced(client, "default");
    for name in ["a", "b", "c"] {
        api.create(&PostParams::default(), &deployment(name, 1)).await.unwrap();
    }
    api.delete_collection(&DeleteParams::default(), &ListParams::default().labels("app in (a,b)")).await.unwrap();
    let left: Vec<String> =
        api.list(&ListParams::default()).await.unwrap().items.into_iter().map(|d| d.metadata.name.unwrap()).collect();
    assert_eq!(left, ["c"]);
}
