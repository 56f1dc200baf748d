//! Fault injection, the admin endpoints, and watch edge cases (timeouts, bookmarks, 410).

mod common;

use std::time::Duration;

use common::{deployment, sim, sim_with};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use scalehub_sim::SimOptions;
use serde_json::{Value, json};

fn get(path: &str) -> http::Request<Vec<u8>> {
    http::Request::get(path).body(Vec::new()).unwrap()
}

#[tokio::test]
async fn injected_429s_carry_retry_after_and_are_set_through_the_admin_endpoint() {
    let (sim, _) = sim().await;
    let client = common::client_without_retries(&sim).await;
    let body = json!({"errorRate": {"get": 1.0}, "errorStatus": 429, "retryAfterSecs": 2, "seed": 1});
    let req = http::Request::put("/sim/admin/faults").body(serde_json::to_vec(&body).unwrap()).unwrap();
    let set: Value = client.request(req).await.unwrap();
    assert_eq!(set["errorStatus"], 429);
    let current: Value = client.request(get("/sim/admin/faults")).await.unwrap();
    assert_eq!(current["errorRate"]["get"], 1.0);

    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let err = api.get("web").await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 429 && s.reason == "TooManyRequests"));
    let resp = client
        .send(
            http::Request::get("/apis/apps/v1/namespaces/default/deployments/web")
                .body(kube::client::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    // Lists are not affected by a get-only fault.
    api.list(&Default::default()).await.unwrap();
}

#[tokio::test]
async fn kube_retries_transient_503s_by_itself() {
    let (sim, client) = sim().await;
    let api: Api<Deployment> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &deployment("web", 1)).await.unwrap();
    sim.faults().set(scalehub_sim::FaultConfig {
        error_rate: [("get".to_string(), 0.5)].into(),
        error_status: Some(503),
        seed: Some(3),
        ..Default::default()
    });
    for _ in 0..5 {
        api.get("web").await.unwrap();
    }
    assert!(sim.accounting().count("get", "deployments") > 5);
}

#[tokio::test]
async fn conflict_faults_fail_writes_with_409() {
    let (sim, client) = sim().await;
    let api: Api<Deployment> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &deployment("web", 1)).await.unwrap();
    sim.faults().update(|f| f.conflict_rate = 1.0);
    let err = api
        .patch_scale("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 2}})))
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict"));
}

#[tokio::test]
async fn request_accounting_counts_by_verb_and_resource_and_resets() {
    let (_sim, client) = sim().await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &deployment("web", 1)).await.unwrap();
    api.get_scale("web").await.unwrap();
    api.patch_scale("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 2}}))).await.unwrap();
    api.patch_scale("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 3}}))).await.unwrap();
    let counts: Value = client.request(get("/sim/admin/requests")).await.unwrap();
    assert_eq!(counts["counts"]["patch"]["deployments/scale"], 2);
    assert_eq!(counts["counts"]["get"]["deployments/scale"], 1);
    assert_eq!(counts["counts"]["create"]["deployments"], 1);
    let resp = client
        .send(http::Request::delete("/sim/admin/requests").body(kube::client::Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let counts: Value = client.request(get("/sim/admin/requests")).await.unwrap();
    // Only the GET just made.
    assert_eq!(counts["total"], 0);
}

#[tokio::test]
async fn dropped_watch_streams_are_resumed_without_losing_events() {
    let (sim, client) = sim_with(SimOptions { controllers: false, ..Default::default() }).await;
    sim.faults().update(|f| f.drop_watch_every_secs = Some(1));
    let api: Api<Deployment> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &deployment("web", 1)).await.unwrap();
    let mut stream = watcher(api.clone(), watcher::Config::default()).applied_objects().boxed();
    stream.try_next().await.unwrap();
    // Keep polling (the watcher only re-watches when polled) across two forced drops.
    assert!(tokio::time::timeout(Duration::from_millis(2500), stream.try_next()).await.is_err());
    assert!(sim.accounting().count("watch", "deployments") >= 2);
    api.patch("web", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"seen": "yes"}}})))
        .await
        .unwrap();
    loop {
        let d = tokio::time::timeout(Duration::from_secs(10), stream.try_next()).await.unwrap().unwrap().unwrap();
        if d.metadata.labels.unwrap().contains_key("seen") {
            break;
        }
    }
    assert!(sim.accounting().count("watch", "deployments") >= 2);
}

#[tokio::test]
async fn a_watch_ends_at_its_timeout_with_a_bookmark() {
    let (_sim, client) = sim().await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &deployment("web", 1)).await.unwrap();
    let list: Value = client.request(get("/apis/apps/v1/namespaces/default/deployments")).await.unwrap();
    let rv = list["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    let path = format!(
        "/apis/apps/v1/namespaces/default/deployments?watch=true&resourceVersion={rv}&timeoutSeconds=1&allowWatchBookmarks=true"
    );
    let started = std::time::Instant::now();
    let text = client.request_text(get(&path)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(900));
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "BOOKMARK");
    assert_eq!(last["object"]["kind"], "Deployment");
    assert!(
        last["object"]["metadata"]["resourceVersion"].as_str().unwrap().parse::<u64>().unwrap()
            >= rv.parse::<u64>().unwrap()
    );
}

#[tokio::test]
async fn a_too_old_resource_version_gets_http_200_with_an_expired_error_event() {
    let (_sim, client) = sim_with(SimOptions { history_limit: 16, controllers: false, ..Default::default() }).await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    for i in 0..40 {
        api.create(&PostParams::default(), &deployment(&format!("w{i}"), 1)).await.unwrap();
    }
    let text = client.request_text(get("/apis/apps/v1/deployments?watch=true&resourceVersion=2")).await.unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["type"], "ERROR");
    assert_eq!(lines[0]["object"]["code"], 410);
    assert_eq!(lines[0]["object"]["reason"], "Expired");
    assert!(lines[0]["object"]["message"].as_str().unwrap().starts_with("too old resource version: 2 ("));
}

#[tokio::test]
async fn a_watch_from_zero_starts_with_the_current_objects() {
    let (_sim, client) = sim_with(SimOptions { controllers: false, ..Default::default() }).await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &deployment("web", 1)).await.unwrap();
    let mut lines = client
        .request_events::<Deployment>(get(
            "/apis/apps/v1/namespaces/default/deployments?watch=1&resourceVersion=0&timeoutSeconds=1",
        ))
        .await
        .unwrap()
        .boxed();
    match lines.next().await.unwrap().unwrap() {
        kube::core::WatchEvent::Added(d) => assert_eq!(d.metadata.name.as_deref(), Some("web")),
        other => panic!("expected ADDED, got {other:?}"),
    }
}
