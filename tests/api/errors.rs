//! Malformed requests, unknown endpoints, body limits and protected reads: always JSON, never a 500.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;

use scalehub::api::auth::Auth;

use crate::common::{ALICE, TestApi, VIEWER, assert_error, token_file};

const URI: &str = "/api/v1/targets/shop/Deployment/web/override";

fn put(body: impl Into<Body>, content_type: Option<&str>) -> Request<Body> {
    let mut req = Request::put(URI).header("authorization", format!("Bearer {ALICE}"));
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    req.body(body.into()).unwrap()
}

#[tokio::test]
async fn malformed_json_is_a_400() {
    let api = TestApi::new().await;
    api.add_target("shop", "Deployment", "web").await;
    assert_error(&api.send(put("{\"replicas\": 3,", Some("application/json"))).await, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415() {
    let api = TestApi::new().await;
    api.add_target("shop", "Deployment", "web").await;
    assert_error(
        &api.send(put("replicas=3", Some("application/x-www-form-urlencoded"))).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    );
    assert_error(&api.send(put("{}", None)).await, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn a_huge_body_is_a_413() {
    let api = TestApi::new().await;
    api.add_target("shop", "Deployment", "web").await;
    let reason = "x".repeat(200 * 1024);
    let body = json!({"replicas": 3, "reason": reason}).to_string();
    assert_error(&api.send(put(body, Some("application/json"))).await, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn unknown_endpoints_and_methods_answer_in_json() {
    let api = TestApi::new().await;
    assert_error(&api.get("/api/v1/nothing-here").await, StatusCode::NOT_FOUND);
    assert_error(&api.get("/api/v1/targets/a/b").await, StatusCode::NOT_FOUND);
    assert_error(&api.call(Method::DELETE, "/api/v1/targets", Some(ALICE), None).await, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(
        &api.call(Method::GET, "/api/v1/targets/shop/Deployment/web/evaluation", None, None).await,
        StatusCode::METHOD_NOT_ALLOWED,
    );
}

#[tokio::test]
async fn protected_reads_need_any_valid_token() {
    let api = TestApi::with_auth(Auth::from_text(&token_file(), true).unwrap()).await;
    api.add_target("shop", "Deployment", "web").await;
    for uri in [
        "/api/v1/targets",
        "/api/v1/targets/shop/deploy/web",
        "/api/v1/targets/shop/deploy/web/decisions",
        "/api/v1/hub",
        "/api/v1/stream",
    ] {
        assert_error(&api.get(uri).await, StatusCode::UNAUTHORIZED);
        assert_error(&api.call(Method::GET, uri, Some("not-a-real-token-0000"), None).await, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = api.call(Method::GET, "/api/v1/targets", Some(VIEWER), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api.call(Method::GET, "/api/v1/targets", Some(ALICE), None).await;
    assert_eq!(status, StatusCode::OK);
    // Probes never need a token; Prometheus does, as any reader (its per-target series name
    // every workload).
    assert_eq!(api.get("/healthz").await.0, StatusCode::OK);
    assert_eq!(api.get("/readyz").await.0, StatusCode::OK);
    assert_error(&api.get("/metrics").await, StatusCode::UNAUTHORIZED);
    assert_eq!(api.call(Method::GET, "/metrics", Some(VIEWER), None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn protected_reads_without_a_token_file_are_forbidden() {
    let api = TestApi::with_auth(
        Auth::from_config(&scalehub_core::config::ApiConfig {
            token_file: None,
            protect_reads: true,
            kubernetes_auth: false,
            ..Default::default()
        })
        .unwrap(),
    )
    .await;
    assert_error(&api.get("/api/v1/targets").await, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_401_names_the_bearer_scheme() {
    let api = TestApi::new().await;
    let valid = json!({"replicas": 3, "reason": "r"}).to_string();
    let res = tower::ServiceExt::oneshot(api.app.clone(), put(valid, Some("application/json"))).await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "valid token, unknown target");
    let req = Request::put(URI).header("content-type", "application/json").body(Body::from("{}")).unwrap();
    let res = tower::ServiceExt::oneshot(api.app.clone(), req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    assert_eq!(res.headers()["cache-control"], "no-store", "API answers are never cached");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn running_hooks_needs_a_write_token_unless_the_config_opens_it() {
    let api = TestApi::new().await;
    let uri = "/api/v1/targets/shop/Deployment/web/metrics";
    let (status, _) = api.call(Method::GET, uri, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "an open read does not run hooks");
    let (status, body) = api.call(Method::GET, uri, Some(VIEWER), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) =
        api.call(Method::POST, "/api/v1/targets/shop/Deployment/web/evaluation?dry_run=true", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // With a write token the request reaches the target (none runs here: 404).
    assert_eq!(api.call(Method::GET, uri, Some(ALICE), None).await.0, StatusCode::NOT_FOUND);

    let open = TestApi::with_auth(Auth::from_text(&token_file(), false).unwrap().with_open_hook_runs(true)).await;
    assert_eq!(open.call(Method::GET, uri, None, None).await.0, StatusCode::NOT_FOUND, "api.openHookRuns lets readers");
}

#[tokio::test]
async fn asking_for_unknown_targets_does_not_use_up_the_hook_run_budget() {
    let api = TestApi::new().await;
    let uri = "/api/v1/targets/shop/Deployment/web/metrics";
    // Far beyond the burst of 10: each is a 404 in the CPA's error shape, never a 429.
    for _ in 0..30 {
        let (status, body) = api.call(Method::GET, uri, Some(ALICE), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["message"], body["error"], "the CPA's field is missing: {body}");
    }
}

#[tokio::test]
async fn a_hook_run_without_a_token_is_a_401_even_with_a_bad_dry_run() {
    let api = TestApi::new().await;
    for (method, uri) in [
        (Method::GET, "/api/v1/targets/shop/Deployment/web/metrics?dry_run=maybe"),
        (Method::POST, "/api/v1/targets/shop/Deployment/web/evaluation?dry_run="),
    ] {
        let got = api.call(method.clone(), uri, None, None).await;
        assert_eq!(got.0, StatusCode::UNAUTHORIZED, "{uri}: {}", got.1);
        let got = api.call(method, uri, Some(ALICE), None).await;
        assert_eq!(got.0, StatusCode::BAD_REQUEST, "{uri}: {}", got.1);
    }
}
