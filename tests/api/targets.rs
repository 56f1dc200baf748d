//! The target list, one target, and its decision history.

use std::collections::HashSet;

use axum::http::StatusCode;
use serde_json::json;

use scalehub_store::{DecisionRow, Kind, PolicyStateRow, TargetKey};

use crate::common::{T0, TestApi, assert_error, row};

fn decision(key: &TargetKey, time: i64, outcome: &str) -> DecisionRow {
    DecisionRow {
        id: 0,
        key: key.clone(),
        time,
        run_type: "scaler".into(),
        metrics: json!([{"resource": "web", "value": "3"}]).into(),
        raw_evaluation: Some(3),
        evaluation: json!({"targetReplicas": 3}).into(),
        reasons: json!([{"step": "clamp", "code": "TooManyReplicas", "message": "lowered to 10", "from": 12, "to": 10}]).into(),
        final_replicas: Some(3),
        current_replicas: Some(2),
        scaled: outcome == "scaled",
        scale_result: None,
        error: None,
        hooks: json!([{"stage": "evaluate", "kind": "shell", "exitCode": 0, "durationMs": 4, "queuedMs": 0, "timedOut": false}]).into(),
        outcome: outcome.into(),
    }
}

#[tokio::test]
async fn pages_walk_2500_targets_once_each_in_order() {
    let api = TestApi::new().await;
    let rows: Vec<_> = (0..2500)
        .map(|i| row(&format!("ns-{:02}", i % 25), "Deployment", &format!("app-{i:04}"), "active", T0))
        .collect();
    api.ctx.store.upsert_targets(rows).await.unwrap();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let uri = match &cursor {
            Some(c) => format!("/api/v1/targets?limit=1000&cursor={c}"),
            None => "/api/v1/targets?limit=1000".to_owned(),
        };
        let (status, body) = api.get(&uri).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pages += 1;
        for item in body["items"].as_array().unwrap() {
            seen.push(format!("{}/{}", item["namespace"].as_str().unwrap(), item["name"].as_str().unwrap()));
        }
        assert_eq!(body["counts"]["active"], 2500);
        match body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 2500);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 2500, "a target appeared twice");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "the default sort is by key");
}

#[tokio::test]
async fn filters_search_and_sorts_narrow_the_list() {
    let api = TestApi::new().await;
    api.add_target("shop", "Deployment", "web").await;
    api.add_target("shop", "StatefulSet", "db").await;
    api.add_target("batch", "Deployment", "workers").await;
    api.ctx.store.upsert_target(row("batch", "Deployment", "broken", "invalid", T0 + 5)).await.unwrap();

    let (_, body) = api.get("/api/v1/targets?namespace=shop").await;
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
    let (_, body) = api.get("/api/v1/targets?state=invalid").await;
    assert_eq!(body["items"][0]["name"], "broken");
    let (_, body) = api.get("/api/v1/targets?q=WORK").await;
    assert_eq!(body["items"].as_array().unwrap().len(), 1, "search is case-insensitive: {body}");
    let (_, body) = api.get("/api/v1/targets?sort=updated").await;
    assert_eq!(body["items"][0]["name"], "broken", "newest first");
    let (_, body) = api.get("/api/v1/targets?sort=name&namespace=&q=").await;
    assert_eq!(body["items"][0]["name"], "broken", "empty parameters are no filter: {body}");
    assert_eq!(body["counts"], json!({"active": 3, "invalid": 1}));
}

#[tokio::test]
async fn bad_list_parameters_are_400s() {
    let api = TestApi::new().await;
    api.add_target("shop", "Deployment", "web").await;
    for uri in [
        "/api/v1/targets?cursor=not-a-cursor",
        "/api/v1/targets?sort=size",
        "/api/v1/targets?state=happy",
        "/api/v1/targets?limit=many",
        "/api/v1/targets?limit=-1",
    ] {
        assert_error(&api.get(uri).await, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn a_target_carries_its_last_decision_override_and_stabilisation() {
    let api = TestApi::new().await;
    api.add_target("shop", "Deployment", "web").await;
    let key = TargetKey::new("shop", Kind::Deployment, "web");
    let state = json!({"seeded": true, "recommendations": [{"at": T0 - 120_000, "replicas": 5}, {"at": T0 - 1_000, "replicas": 3}],
        "scaleUpEvents": [{"at": T0 - 60_000, "change": 2}], "scaleDownEvents": []});
    api.ctx
        .store
        .record_decision_committed(
            decision(&key, T0 - 1_000, "scaled"),
            Some(PolicyStateRow { key: key.clone(), state, updated_at: T0 - 1_000, fence: None }),
        )
        .await
        .unwrap();

    for kind in ["Deployment", "deployments", "deploy"] {
        let (status, body) = api.get(&format!("/api/v1/targets/shop/{kind}/web")).await;
        assert_eq!(status, StatusCode::OK, "{kind}: {body}");
        assert_eq!(body["kind"], "Deployment");
        assert_eq!(body["currentReplicas"], 2);
        assert_eq!(body["lastDecision"]["outcome"], "scaled");
        assert_eq!(body["lastDecision"]["reasons"][0]["code"], "TooManyReplicas");
        assert_eq!(body["override"], json!(null));
        let stab = &body["stabilisation"];
        assert_eq!(stab["recommendations"].as_array().unwrap().len(), 2, "{stab}");
        assert_eq!(stab["downscaleWindowMs"], 300_000);
        assert_eq!(stab["upscaleWindowMs"], 0);
        assert_eq!(stab["lowerBound"], 5, "the 5 of two minutes ago holds scale-down: {stab}");
        assert_eq!(stab["upperBound"], json!(null));
        assert_eq!(stab["scaleUpEvents"][0]["change"], 2);
        assert_eq!(body["overrideHistory"], json!([]));
    }
    let (_, list) = api.get("/api/v1/targets").await;
    assert_eq!(list["items"][0]["lastDecision"]["finalReplicas"], 3);
}

#[tokio::test]
async fn unknown_targets_and_kinds_are_json_404s() {
    let api = TestApi::new().await;
    api.add_target("shop", "Deployment", "web").await;
    assert_error(&api.get("/api/v1/targets/shop/Deployment/nope").await, StatusCode::NOT_FOUND);
    let got = api.get("/api/v1/targets/shop/CronJob/web").await;
    assert_error(&got, StatusCode::NOT_FOUND);
    assert!(got.1["error"].as_str().unwrap().contains("CronJob"), "{}", got.1);
    assert_error(&api.get("/api/v1/targets/shop/Deployment/nope/decisions").await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn history_pages_newest_first_with_a_before_cursor() {
    let api = TestApi::new().await;
    api.add_target("shop", "Deployment", "web").await;
    let key = TargetKey::new("shop", Kind::Deployment, "web");
    for i in 0..120 {
        api.ctx.store.record_decision(decision(&key, T0 + i * 1000, "unchanged"), None).await.unwrap();
    }
    api.ctx.store.flush().await.unwrap();
    let mut times = Vec::new();
    let mut uri = "/api/v1/targets/shop/deploy/web/decisions?limit=50".to_owned();
    loop {
        let (status, body) = api.get(&uri).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        times.extend(body["items"].as_array().unwrap().iter().map(|d| d["time"].as_i64().unwrap()));
        match body["nextBefore"].as_i64() {
            Some(id) => uri = format!("/api/v1/targets/shop/deploy/web/decisions?limit=50&before={id}"),
            None => break,
        }
    }
    assert_eq!(times.len(), 120);
    assert!(times.windows(2).all(|w| w[0] > w[1]), "newest first");
    let (_, body) = api.get("/api/v1/targets/shop/deploy/web/decisions").await;
    assert_eq!(body["items"].as_array().unwrap().len(), 50, "the default page is 50");
    assert_eq!(body["items"][0]["hooks"][0]["exitCode"], 0);
    assert_error(&api.get("/api/v1/targets/shop/deploy/web/decisions?before=yesterday").await, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_stays_fast_with_10000_targets_that_all_have_decisions() {
    let api = TestApi::new().await;
    let rows: Vec<_> = (0..10_000)
        .map(|i| row(&format!("ns-{:03}", i % 100), "Deployment", &format!("app-{i:05}"), "active", T0))
        .collect();
    let keys: Vec<_> = rows.iter().map(|r| r.key.clone()).collect();
    api.ctx.store.upsert_targets(rows).await.unwrap();
    for key in &keys {
        api.ctx.store.record_decision(decision(key, T0, "unchanged"), None).await.unwrap();
    }
    api.ctx.store.flush().await.unwrap();
    let (_, first) = api.get("/api/v1/targets?limit=100").await;
    let cursor = first["nextCursor"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    for uri in [
        format!("/api/v1/targets?limit=100&cursor={cursor}"),
        "/api/v1/targets?limit=100&sort=updated".to_owned(),
        "/api/v1/targets?limit=100&q=app-09".to_owned(),
        "/api/v1/targets?limit=100&namespace=ns-042&sort=name".to_owned(),
    ] {
        let (status, body) = api.get(&uri).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["items"][0]["lastDecision"].is_object(), "{uri}");
    }
    // Generous for a debug build on a small machine; a full scan per page would take far longer.
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "four pages took {:?}", started.elapsed());
}

#[tokio::test]
async fn every_state_the_hub_writes_filters_and_an_overlong_search_is_a_400() {
    let api = TestApi::new().await;
    api.ctx.store.upsert_target(row("shop", "Deployment", "new", "pending", T0)).await.unwrap();
    let (status, body) = api.get("/api/v1/targets?state=pending").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    let (status, body) = api.get(&format!("/api/v1/targets?q={}", "a".repeat(50_001))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("at most 256"), "{body}");
}

#[tokio::test]
async fn a_history_of_large_decisions_is_paged_by_size_not_only_by_count() {
    let api = TestApi::new().await;
    api.add_target("shop", "Deployment", "web").await;
    let key = TargetKey::new("shop", Kind::Deployment, "web");
    // 12 decisions of about 1 MB each: a page of 1000 would be 12 MB.
    for i in 0..12 {
        let mut d = decision(&key, T0 + i, "unchanged");
        d.metrics = json!([{"resource": "web", "value": "x".repeat(1_000_000)}]).into();
        api.ctx.store.record_decision_committed(d, None).await.unwrap();
    }
    let (status, page) = api.get("/api/v1/targets/shop/Deployment/web/decisions?limit=1000").await;
    assert_eq!(status, StatusCode::OK);
    let first = page["items"].as_array().unwrap().len();
    assert!((1..12).contains(&first), "{first} decisions in one page");
    let before = page["nextBefore"].as_i64().expect("a cursor to the rest");
    let (_, rest) = api.get(&format!("/api/v1/targets/shop/Deployment/web/decisions?limit=1000&before={before}")).await;
    assert!(!rest["items"].as_array().unwrap().is_empty(), "the cursor continues the history");
}

#[tokio::test]
async fn the_replicas_of_many_targets_come_in_one_call_in_the_order_asked() {
    let api = TestApi::new().await;
    let web = TargetKey::new("shop", Kind::Deployment, "web");
    let db = TargetKey::new("data", Kind::StatefulSet, "db");
    api.add_target("shop", "Deployment", "web").await;
    api.add_target("data", "StatefulSet", "db").await;
    for i in 0..50 {
        let mut d = decision(&web, T0 + i * 1000, "scaled");
        d.final_replicas = Some(i as i32 + 1);
        api.ctx.store.record_decision_committed(d, None).await.unwrap();
    }
    api.ctx.store.record_decision_committed(decision(&db, T0, "unchanged"), None).await.unwrap();

    let (status, body) = api.get("/api/v1/replicas?targets=data/sts/db,shop/Deployment/web,shop/deploy/gone").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["items"].as_array().unwrap();
    let names: Vec<_> = items.iter().map(|i| format!("{}/{}/{}", i["namespace"], i["kind"], i["name"])).collect();
    assert_eq!(
        names,
        [r#""data"/"StatefulSet"/"db""#, r#""shop"/"Deployment"/"web""#, r#""shop"/"Deployment"/"gone""#]
    );
    assert_eq!(items[0]["points"], json!([{"time": T0, "currentReplicas": 2, "finalReplicas": 3}]));
    let web_points = items[1]["points"].as_array().unwrap();
    assert_eq!(web_points.len(), 40, "the default is a sparkline's 40");
    assert_eq!(web_points[0]["finalReplicas"], 11, "the newest 40, oldest first");
    assert_eq!(web_points[39]["finalReplicas"], 50);
    assert_eq!(items[2]["points"], json!([]), "an unknown target has no points");

    let (_, body) = api.get("/api/v1/replicas?targets=shop/Deployment/web&limit=3").await;
    assert_eq!(body["items"][0]["points"].as_array().unwrap().len(), 3);

    let many = (0..101).map(|i| format!("shop/Deployment/w{i}")).collect::<Vec<_>>().join(",");
    for uri in [
        "/api/v1/replicas".to_owned(),
        "/api/v1/replicas?targets=".to_owned(),
        "/api/v1/replicas?targets=shop/web".to_owned(),
        "/api/v1/replicas?targets=shop/Pod/web".to_owned(),
        "/api/v1/replicas?targets=shop/Deployment/web&limit=0".to_owned(),
        "/api/v1/replicas?targets=shop/Deployment/web&limit=201".to_owned(),
        format!("/api/v1/replicas?targets={many}"),
    ] {
        assert_error(&api.get(&uri).await, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn a_limit_beyond_the_maximum_is_a_400_not_a_silent_clamp() {
    let api = TestApi::new().await;
    api.add_target("shop", "Deployment", "web").await;
    for uri in [
        "/api/v1/targets?limit=1001",
        "/api/v1/targets?limit=2147483648",
        "/api/v1/targets/shop/Deployment/web/decisions?limit=1001",
        "/api/v1/targets/shop/Deployment/web/series?limit=20001",
    ] {
        let got = api.get(uri).await;
        assert_error(&got, StatusCode::BAD_REQUEST);
    }
    for uri in ["/api/v1/targets?limit=1000", "/api/v1/targets/shop/Deployment/web/series?limit=0"] {
        assert_eq!(api.get(uri).await.0, StatusCode::OK, "{uri}");
    }
}
