//! Overrides: auth, validation, history, and expiry with a clock the test moves.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use scalehub::api::auth::Auth;
use scalehub::workload::{Kind, TargetKey};

use crate::common::{ALICE, T0, TestApi, VIEWER, assert_error};

const URI: &str = "/api/v1/targets/shop/Deployment/web/override";

async fn history(api: &TestApi) -> Vec<Value> {
    let (_, body) = api.get("/api/v1/targets/shop/Deployment/web/decisions").await;
    body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_pin_is_stored_applied_in_memory_and_recorded_with_its_author() {
    let api = TestApi::new().await;
    api.add_target("shop", "Deployment", "web").await;
    let (status, body) = api
        .call(Method::PUT, URI, Some(ALICE), Some(json!({"replicas": 4, "reason": "incident 42", "duration": "30m"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["type"], "pin");
    assert_eq!(body["replicas"], 4);
    assert_eq!(body["author"], "alice");
    assert_eq!(body["until"], T0 + 30 * 60_000);
    assert_eq!(body["active"], true);

    let key = TargetKey::new("shop", Kind::Deployment, "web");
    let held = api.ctx.override_for(&key, api.clock.now()).expect("the ticks see the override");
    assert_eq!(held.set_by, "alice");

    let (_, target) = api.get("/api/v1/targets/shop/deploy/web").await;
    assert_eq!(target["override"]["replicas"], 4, "{target}");
    assert_eq!(target["overrideHistory"][0]["author"], "alice");
    let decisions = history(&api).await;
    assert_eq!(decisions[0]["runType"], "override");
    assert_eq!(decisions[0]["outcome"], "override_set");
    let reason = &decisions[0]["reasons"][0];
    assert_eq!(reason["code"], "OverrideSet");
    let message = reason["message"].as_str().unwrap();
    assert!(message.contains("alice") && message.contains("pinned 4") && message.contains("incident 42"), "{message}");
}

#[tokio::test]
async fn bounds_and_pauses_are_overrides_too_and_default_to_one_hour() {
    let api = TestApi::new().await;
    api.add_target("shop", "Deployment", "web").await;
    let (status, body) =
        api.call(Method::PUT, URI, Some(ALICE), Some(json!({"maxReplicas": 3, "reason": "budget"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["type"], "bounds");
    assert_eq!(body["until"], T0 + 3_600_000, "no until and no duration means one hour");
    let until = "2026-11-27T02:00:00Z";
    let (status, body) = api
        .call(Method::PUT, URI, Some(ALICE), Some(json!({"paused": "down", "reason": "sale", "until": until})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["paused"], "down");
    assert_eq!(body["until"], T0 + 2 * 3_600_000);
    let (_, target) = api.get("/api/v1/targets/shop/deploy/web").await;
    let past = &target["overrideHistory"][1];
    assert_eq!(past["endedBy"], "replaced", "{target}");
    assert_eq!(past["active"], false);
}

#[tokio::test]
async fn writes_need_a_write_token() {
    let api = TestApi::new().await;
    api.add_target("shop", "Deployment", "web").await;
    let body = json!({"replicas": 4, "reason": "x"});
    assert_error(&api.call(Method::PUT, URI, None, Some(body.clone())).await, StatusCode::UNAUTHORIZED);
    assert_error(
        &api.call(Method::PUT, URI, Some("alice-wrong-token-000000"), Some(body.clone())).await,
        StatusCode::UNAUTHORIZED,
    );
    assert_error(&api.call(Method::PUT, URI, Some(VIEWER), Some(body.clone())).await, StatusCode::FORBIDDEN);
    assert_error(&api.call(Method::DELETE, URI, None, None).await, StatusCode::UNAUTHORIZED);
    assert!(history(&api).await.is_empty(), "a refused write left a trace");
}

#[tokio::test]
async fn without_a_token_file_writes_are_forbidden() {
    let api = TestApi::with_auth(Auth::without_tokens()).await;
    api.add_target("shop", "Deployment", "web").await;
    let got = api.call(Method::PUT, URI, Some(ALICE), Some(json!({"replicas": 4, "reason": "x"}))).await;
    assert_error(&got, StatusCode::FORBIDDEN);
    assert!(got.1["error"].as_str().unwrap().contains("tokenFile"), "{}", got.1);
}

#[tokio::test]
async fn invalid_overrides_are_422s() {
    let api = TestApi::new().await;
    api.add_target("shop", "Deployment", "web").await;
    for body in [
        json!({"reason": "nothing to do"}),
        json!({"replicas": 3, "paused": "up", "reason": "two at once"}),
        json!({"minReplicas": 5, "maxReplicas": 2, "reason": "inverted"}),
        json!({"replicas": -1, "reason": "negative"}),
        json!({"replicas": 3, "reason": "   "}),
        json!({"replicas": 3}),
        json!({"replicas": 3, "reason": "r", "duration": "8d"}),
        json!({"replicas": 3, "reason": "r", "duration": "soon"}),
        json!({"replicas": 3, "reason": "r", "until": T0 - 1}),
        json!({"replicas": 3, "reason": "r", "until": "tomorrow"}),
        json!({"replicas": 3, "reason": "r", "until": T0 + 1000, "duration": "1h"}),
        json!({"paused": "sideways", "reason": "r"}),
        json!({"replicas": "three", "reason": "r"}),
        json!({"replicas": 3, "reason": "r", "forever": true}),
    ] {
        let got = api.call(Method::PUT, URI, Some(ALICE), Some(body.clone())).await;
        assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {}", got.1);
        assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert!(history(&api).await.is_empty());
}

#[tokio::test]
async fn a_far_but_well_formed_until_is_refused_for_its_distance_not_its_form() {
    let api = TestApi::new().await;
    api.add_target("shop", "Deployment", "web").await;
    for until in [json!("9999-12-31T23:59:59Z"), json!("9999-01-01T00:00:00+01:00"), json!(i64::MAX)] {
        let got =
            api.call(Method::PUT, URI, Some(ALICE), Some(json!({"replicas": 3, "reason": "r", "until": until}))).await;
        assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{until} -> {}", got.1);
        assert!(got.1["error"].as_str().unwrap().contains("at most 7 days"), "{until} -> {}", got.1);
    }
    let got = api
        .call(Method::PUT, URI, Some(ALICE), Some(json!({"replicas": 3, "reason": "r", "until": "9999-12-31"})))
        .await;
    assert!(got.1["error"].as_str().unwrap().contains("not an RFC 3339 time"), "{}", got.1);
    assert!(history(&api).await.is_empty());
}

#[tokio::test]
async fn overrides_of_unknown_targets_are_404s() {
    let api = TestApi::new().await;
    let got = api.call(Method::PUT, URI, Some(ALICE), Some(json!({"replicas": 3, "reason": "r"}))).await;
    assert_error(&got, StatusCode::NOT_FOUND);
    assert_error(&api.call(Method::DELETE, URI, Some(ALICE), None).await, StatusCode::NOT_FOUND);
    let (_, list) = api.get("/api/v1/targets").await;
    assert_eq!(list["items"], json!([]), "a refused override created a target: {list}");
}

#[tokio::test]
async fn delete_ends_the_override_and_records_who_did() {
    let api = TestApi::new().await;
    api.add_target("shop", "Deployment", "web").await;
    assert_error(&api.call(Method::DELETE, URI, Some(ALICE), None).await, StatusCode::NOT_FOUND);
    api.call(Method::PUT, URI, Some(ALICE), Some(json!({"replicas": 4, "reason": "incident"}))).await;
    api.clock.advance(60_000);
    let (status, _) = api.call(Method::DELETE, URI, Some(ALICE), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let key = TargetKey::new("shop", Kind::Deployment, "web");
    assert!(api.ctx.override_for(&key, api.clock.now()).is_none());
    let decisions = history(&api).await;
    assert_eq!(decisions[0]["outcome"], "override_cleared");
    assert_eq!(decisions[0]["time"], T0 + 60_000);
    let (_, target) = api.get("/api/v1/targets/shop/deploy/web").await;
    assert_eq!(target["override"], json!(null));
    assert_eq!(target["overrideHistory"][0]["endedBy"], "alice");
}

#[tokio::test]
async fn an_override_expires_by_itself_and_the_expiry_is_recorded() {
    let api = TestApi::new().await;
    api.add_target("shop", "Deployment", "web").await;
    api.call(Method::PUT, URI, Some(ALICE), Some(json!({"replicas": 4, "reason": "incident", "duration": "30m"})))
        .await;
    let key = TargetKey::new("shop", Kind::Deployment, "web");

    api.clock.advance(29 * 60_000);
    scalehub::overrides::expire(&api.ctx, api.clock.now()).await;
    assert!(api.ctx.override_for(&key, api.clock.now()).is_some(), "expired early");
    assert_eq!(history(&api).await.len(), 1);

    api.clock.advance(60_000);
    assert!(api.ctx.override_for(&key, api.clock.now()).is_none(), "the ticks ignore it once until has passed");
    scalehub::overrides::expire(&api.ctx, api.clock.now()).await;
    let decisions = history(&api).await;
    assert_eq!(decisions[0]["outcome"], "override_expired", "{decisions:?}");
    assert_eq!(decisions[0]["time"], T0 + 30 * 60_000, "recorded at its until");
    let (_, target) = api.get("/api/v1/targets/shop/deploy/web").await;
    assert_eq!(target["override"], json!(null));
    assert_eq!(target["overrideHistory"][0]["endedBy"], "expired");
    assert_error(&api.call(Method::DELETE, URI, Some(ALICE), None).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_kubernetes_user_may_override_where_rbac_allows_and_becomes_the_author() {
    let client = scalehub::api::testing::review_server("k8s-token", "jane@example.com", "shop", Default::default());
    let api =
        TestApi::with_auth(Auth::without_tokens().with_kubernetes_review(client, std::time::Duration::from_secs(10)))
            .await;
    api.add_target("shop", "Deployment", "web").await;
    api.add_target("batch", "Deployment", "web").await;
    let body = json!({"replicas": 2, "reason": "rbac"});
    let (status, view) = api.call(Method::PUT, URI, Some("k8s-token"), Some(body.clone())).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["author"], "jane@example.com");
    let other = "/api/v1/targets/batch/Deployment/web/override";
    assert_error(&api.call(Method::PUT, other, Some("k8s-token"), Some(body.clone())).await, StatusCode::FORBIDDEN);
    assert_error(&api.call(Method::PUT, URI, Some("stolen-token"), Some(body)).await, StatusCode::UNAUTHORIZED);
    let (_, hub) = api.get("/api/v1/hub").await;
    assert_eq!(hub["writesEnabled"], true);
}

#[tokio::test]
async fn a_pin_may_exceed_the_bounds_but_not_absurdly() {
    let api = TestApi::new().await;
    api.add_target("shop", "Deployment", "web").await;
    let got = api.call(Method::PUT, URI, Some(ALICE), Some(json!({"replicas": 2147483647, "reason": "typo"}))).await;
    assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", got.1);
    assert!(got.1["error"].as_str().unwrap().contains("more than ten times"), "{}", got.1);
    assert!(history(&api).await.is_empty());
}
