//! Hub status, health, metrics, the OpenAPI document and the live stream.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures::StreamExt;
use serde_json::json;

use scalehub::bus::HubEvent;

use crate::common::{T0, TestApi, row};

#[tokio::test]
async fn hub_status_reports_version_role_and_counts() {
    let api = TestApi::new().await;
    api.add_target("shop", "Deployment", "web").await;
    let (status, body) = api.get("/api/v1/hub").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["leader"], true);
    assert_eq!(body["identity"], "scalehub-test");
    assert_eq!(body["targets"], json!({"active": 1}));
    assert_eq!(body["startedAt"], T0);
    assert_eq!(body["writesEnabled"], true);
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let api = TestApi::new().await;
    assert_eq!(api.get("/healthz").await.0, StatusCode::OK);
    let (status, body) = api.get("/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!("ok (leader)"));
    api.ctx.metrics.tick_lateness.observe(0.01);
    let (_, text) = api.get("/metrics").await;
    assert!(text.as_str().unwrap().contains("scalehub_tick_lateness_seconds_count 1"), "{text}");
}

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint() {
    let api = TestApi::new().await;
    let (status, doc) = api.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/targets",
        "/api/v1/targets/{namespace}/{kind}/{name}",
        "/api/v1/targets/{namespace}/{kind}/{name}/decisions",
        "/api/v1/targets/{namespace}/{kind}/{name}/metrics",
        "/api/v1/targets/{namespace}/{kind}/{name}/evaluation",
        "/api/v1/targets/{namespace}/{kind}/{name}/override",
        "/api/v1/hub",
        "/api/v1/stream",
        "/api/v1/openapi.json",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains_key(path), "missing {path}");
    }
    // Operation ids are unique (code generators need it); every operation that takes a token
    // says so, and the hook runs require one.
    let mut ids = HashSet::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_default();
            assert!(ids.insert(id.to_owned()), "operationId {id} ({method} {path}) is not unique");
            if !matches!(path.as_str(), "/healthz" | "/readyz") {
                assert!(op["security"].is_array(), "{method} {path} declares no security");
                assert!(op["responses"].get("401").is_some(), "{method} {path} documents no 401");
            }
            if path.contains('{') {
                assert!(op["responses"].get("400").is_some(), "{method} {path} documents no 400");
            }
        }
    }
    for hook_run in
        ["/api/v1/targets/{namespace}/{kind}/{name}/metrics", "/api/v1/targets/{namespace}/{kind}/{name}/evaluation"]
    {
        let op = paths[hook_run].as_object().unwrap().values().next().unwrap();
        assert_eq!(op["security"], json!([{"bearer": []}]), "{hook_run} needs a token");
        assert!(op["responses"].get("429").is_some(), "{hook_run} documents no 429");
    }
    let evaluation = &doc["components"]["schemas"]["Decision"]["properties"]["evaluation"];
    assert!(evaluation.to_string().contains("null"), "a decision's evaluation may be null: {evaluation}");
    let override_path = &paths["/api/v1/targets/{namespace}/{kind}/{name}/override"];
    assert!(override_path.get("put").is_some() && override_path.get("delete").is_some());
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "Target",
        "Decision",
        "Reason",
        "Hook",
        "OverrideRequest",
        "OverrideView",
        "Stabilisation",
        "ErrorBody",
        "HubStatus",
        "Evaluation",
    ] {
        assert!(schemas.contains_key(name), "missing schema {name}: {:?}", schemas.keys().collect::<Vec<_>>());
    }
    // The mirror of the store's target row names every field the row serialises.
    let stored = serde_json::to_value(row("a", "Deployment", "b", "active", T0)).unwrap();
    let documented = schemas["Target"]["properties"].as_object().unwrap();
    for field in stored.as_object().unwrap().keys() {
        assert!(documented.contains_key(field), "Target schema lacks {field}");
    }
}

#[tokio::test]
async fn the_stream_sends_decisions_and_target_changes_as_events() {
    let api = TestApi::new().await;
    let res = tower::ServiceExt::oneshot(
        api.app.clone(),
        Request::get("/api/v1/stream?namespace=shop").body(Body::empty()).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut body = res.into_body().into_data_stream();
    let other = row("batch", "Deployment", "workers", "active", T0);
    api.ctx.bus.publish(|| HubEvent::Target(Arc::new(other)));
    let mine = row("shop", "Deployment", "web", "error", T0);
    api.ctx.bus.publish(|| HubEvent::Target(Arc::new(mine)));
    let chunk = tokio::time::timeout(Duration::from_secs(5), body.next()).await.unwrap().unwrap().unwrap();
    let text = String::from_utf8_lossy(&chunk);
    assert!(text.starts_with("event: target\ndata: {"), "{text}");
    assert!(
        text.contains("\"name\":\"web\"") && text.contains("\"state\":\"error\""),
        "the filter let another namespace through: {text}"
    );
}

#[tokio::test]
async fn a_stream_client_that_stops_reading_is_dropped_with_an_end_event() {
    let api = TestApi::new().await;
    let res = tower::ServiceExt::oneshot(api.app.clone(), Request::get("/api/v1/stream").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The client reads nothing while the hub publishes 16 MiB of events.
    for i in 0..256 {
        let mut big = row("shop", "Deployment", &format!("w{i}"), "active", T0);
        big.spec = json!({"padding": "x".repeat(64 << 10)}).into();
        api.ctx.bus.publish(|| HubEvent::Target(Arc::new(big)));
    }
    assert!(!api.ctx.bus.listening(), "the stalled stream is still subscribed");
    // What it was sent before it fell behind is bounded by bytes, and the stream says why it ends.
    let body = tokio::time::timeout(Duration::from_secs(5), axum::body::to_bytes(res.into_body(), 64 << 20))
        .await
        .expect("the stream ends")
        .unwrap();
    let text = String::from_utf8_lossy(&body);
    let events = text.matches("event: target\n").count();
    assert!((32..128).contains(&events), "{events} events queued for a client that never read");
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    assert!(last.starts_with("event: end\ndata: {\"reason\":\"slow\""), "{last}");
}

#[tokio::test]
async fn a_database_that_cannot_be_written_makes_the_hub_unready_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("hub.db").display());
    let options = scalehub_store::StoreOptions { max_pages: Some(60), ..Default::default() };
    let store = scalehub_store::Store::open_with(&url, options).await.unwrap();
    let auth = scalehub::api::auth::Auth::from_text(&crate::common::token_file(), false).unwrap();
    let api = TestApi::with_store(auth, store.clone()).await;
    assert_eq!(api.get("/readyz").await.0, StatusCode::OK);
    // Fill the database until a write fails.
    let mut i = 0;
    loop {
        let mut target = row("shop", "Deployment", &format!("w{i}"), "active", T0);
        target.spec = json!({"padding": "x".repeat(8_000)}).into();
        if store.upsert_target(target).await.is_err() {
            break;
        }
        i += 1;
        assert!(i < 1_000, "the page cap never filled the database");
    }
    let (status, body) = api.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.as_str().unwrap().contains("the database cannot be written"), "{body}");
    let (_, hub) = api.get("/api/v1/hub").await;
    assert_eq!(hub["store"]["writable"], false, "{hub}");
    assert!(hub["store"]["lastError"].as_str().unwrap().contains("full"), "{hub}");
    let (_, text) = api.get("/metrics").await;
    assert!(text.as_str().unwrap().contains("scalehub_store_failing 1"), "{text}");
}

#[tokio::test]
async fn live_streams_are_capped_and_a_closed_one_frees_its_slot() {
    let api = TestApi::new().await;
    let open =
        || tower::ServiceExt::oneshot(api.app.clone(), Request::get("/api/v1/stream").body(Body::empty()).unwrap());
    let mut streams = Vec::new();
    for _ in 0..scalehub::api::stream::MAX_STREAMS {
        let res = open().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        streams.push(res);
    }
    let refused = open().await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    streams.pop();
    assert_eq!(open().await.unwrap().status(), StatusCode::OK, "a closed stream's slot is free again");
}
