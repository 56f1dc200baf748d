//! `POST …/replay` and `POST /api/v1/replay`: a candidate policy over recorded ticks, read-only.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use scalehub::api::auth::Auth;
use scalehub_store::series::SeriesWriter;
use scalehub_store::{Kind, SeriesChunkRow, TargetKey, TickPoint};

use crate::common::{T0, TestApi, VIEWER, assert_error, row, token_file};

const URI: &str = "/api/v1/targets/shop/Deployment/web/replay";

/// Records `n` ticks 15 s apart from `T0`: the load asks for 2 while the target keeps 6 (a
/// 5-minute window held it there).
async fn record_held_scale_down(api: &TestApi, name: &str, n: i64) {
    let key = TargetKey::new("shop", Kind::Deployment, name);
    let mut writer = SeriesWriter::default();
    let mut chunk = None;
    for i in 0..n {
        let point = TickPoint {
            time: T0 + i * 15_000,
            current_replicas: Some(6),
            raw_evaluation: Some(2),
            final_replicas: Some(6),
            predicted: None,
            ratio_ppm: None,
            usage: Vec::new(),
            outcome: "held".into(),
            metrics: vec![],
        };
        chunk = Some(writer.push(point).unwrap().clone());
        if (i + 1) % scalehub_store::series::CHUNK_POINTS as i64 == 0 {
            api.ctx
                .store
                .record_tick(None, None, chunk.take().map(|c| SeriesChunkRow { key: key.clone(), chunk: c }))
                .await
                .unwrap();
        }
    }
    if let Some(chunk) = chunk {
        api.ctx.store.record_tick(None, None, Some(SeriesChunkRow { key, chunk })).await.unwrap();
    }
    api.ctx.store.flush().await.unwrap();
}

async fn api_with_history() -> TestApi {
    let api = TestApi::new().await;
    api.add_target("shop", "Deployment", "web").await;
    record_held_scale_down(&api, "web", 40).await;
    api.clock.advance(40 * 15_000);
    api
}

#[tokio::test]
async fn a_shorter_window_is_replayed_over_the_recorded_ticks() {
    let api = api_with_history().await;
    let body = json!({"from": T0, "policy": {"downscaleStabilization": "1m"}});
    let (status, got) = api.call(Method::POST, URI, None, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["target"], json!({"namespace": "shop", "kind": "Deployment", "name": "web"}));
    assert_eq!(got["policy"]["downscaleStabilization"], "1m");
    assert_eq!(got["policy"]["maxReplicas"], 10, "the rest is the target's own");
    let ticks = got["ticks"].as_array().unwrap();
    assert_eq!(ticks.len(), 40);
    // Seeded with 6 at the first tick, a 1-minute window lets 2 through at the fifth.
    let replicas: Vec<i64> = ticks.iter().map(|t| t["replicas"].as_i64().unwrap()).collect();
    assert_eq!(&replicas[..6], [6, 6, 6, 6, 2, 2]);
    assert!(ticks.iter().all(|t| t["actual"] == 6 && t["asked"] == 2));
    let summary = &got["summary"];
    assert_eq!(summary["replayed"]["scaleDowns"], 1);
    assert_eq!(summary["actual"]["scaleDowns"], 0);
    assert_eq!(summary["actual"]["overProvisionedSeconds"], 39.0 * 15.0);
    assert_eq!(summary["replayed"]["overProvisionedSeconds"], 4.0 * 15.0);
    assert!(summary["replayed"]["replicaHours"].as_f64() < summary["actual"]["replicaHours"].as_f64());
    assert_eq!(got["truncated"], false);
    // The summary alone.
    let (_, only) = api.call(Method::POST, URI, None, Some(json!({"from": T0, "ticks": false}))).await;
    assert!(only.get("ticks").is_none(), "{only}");
    // Under the target's own 5-minute window the replay goes down after 20 ticks, not 4.
    assert_eq!(only["summary"]["replayed"]["overProvisionedSeconds"], 20.0 * 15.0, "{only}");
    // Nothing changed: no decision, no override, no policy state.
    assert!(
        api.ctx.store.decisions(&TargetKey::new("shop", Kind::Deployment, "web"), None, 10).await.unwrap().is_empty()
    );
    assert!(api.ctx.store.policy_state(&TargetKey::new("shop", Kind::Deployment, "web")).await.unwrap().is_none());
}

#[tokio::test]
async fn rate_policies_shape_the_replay_and_the_reasons_say_so() {
    let api = api_with_history().await;
    let policy = json!({"downscaleStabilization": "0s",
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 15}]}}});
    let (status, got) = api.call(Method::POST, URI, None, Some(json!({"from": T0, "policy": policy}))).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    let replicas: Vec<i64> = got["ticks"].as_array().unwrap().iter().map(|t| t["replicas"].as_i64().unwrap()).collect();
    assert_eq!(&replicas[..6], [5, 4, 3, 2, 2, 2], "one pod per tick");
    let first = &got["ticks"][0]["reasons"];
    assert_eq!(first[0]["code"], "ScaleDownLimit", "{first}");
}

#[tokio::test]
async fn replay_needs_only_read_access_and_rejects_bad_input_with_the_field() {
    let api = TestApi::with_auth(Auth::from_text(&token_file(), true).unwrap()).await;
    api.add_target("shop", "Deployment", "web").await;
    record_held_scale_down(&api, "web", 10).await;
    api.clock.advance(10 * 15_000);
    assert_error(&api.call(Method::POST, URI, None, Some(json!({}))).await, StatusCode::UNAUTHORIZED);
    let (status, got) = api.call(Method::POST, URI, Some(VIEWER), Some(json!({"from": T0}))).await;
    assert_eq!(status, StatusCode::OK, "a read token replays: {got}");

    let bad = api
        .call(
            Method::POST,
            URI,
            Some(VIEWER),
            Some(json!({"policy": {"minReplicas": 5, "maxReplicas": 3, "upscaleStabilization": "2h"}})),
        )
        .await;
    assert_error(&bad, StatusCode::UNPROCESSABLE_ENTITY);
    let text = bad.1["error"].as_str().unwrap();
    assert!(text.contains("policy.minReplicas") && text.contains("policy.upscaleStabilization"), "{text}");
    let unknown = api.call(Method::POST, URI, Some(VIEWER), Some(json!({"policy": {"maxReplica": 3}}))).await;
    assert!(unknown.0.is_client_error() && unknown.1["error"].as_str().unwrap().contains("maxReplica"), "{unknown:?}");
    assert_error(
        &api.call(Method::POST, URI, Some(VIEWER), Some(json!({"from": T0 + 10, "to": T0}))).await,
        StatusCode::BAD_REQUEST,
    );
    assert_error(
        &api.call(Method::POST, "/api/v1/targets/shop/Deployment/nope/replay", Some(VIEWER), Some(json!({}))).await,
        StatusCode::NOT_FOUND,
    );
    // A target whose annotations are invalid has no policy to start from.
    let mut invalid = row("shop", "Deployment", "typo", "invalid", T0);
    invalid.spec = json!({"scalehub.io/min-replicas": "five"}).into();
    api.ctx.store.upsert_target(invalid).await.unwrap();
    api.ctx.store.flush().await.unwrap();
    assert_error(
        &api.call(Method::POST, "/api/v1/targets/shop/Deployment/typo/replay", Some(VIEWER), Some(json!({}))).await,
        StatusCode::CONFLICT,
    );
}

#[tokio::test]
async fn a_profile_is_replayed_target_by_target_as_ndjson_with_totals() {
    let api = TestApi::new().await;
    let config = scalehub_core::Config::from_yaml_str(
        "profiles:\n  default:\n    kubernetesMetricSpecs:\n      - {type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}}\n",
    )
    .unwrap();
    api.ctx.profiles.replace(&config);
    for name in ["web", "api"] {
        api.add_target("shop", "Deployment", name).await;
        record_held_scale_down(&api, name, 30).await;
    }
    api.clock.advance(30 * 15_000);
    let body = json!({"profile": "default", "from": T0, "policy": {"downscaleStabilization": "1m"}});
    let (status, got) = api.call(Method::POST, "/api/v1/replay", None, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    let text = got.as_str().expect("NDJSON is not one JSON document");
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "{text}");
    let names: Vec<&str> = lines[..2].iter().map(|l| l["target"]["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"web") && names.contains(&"api"));
    assert!(lines[..2].iter().all(|l| l["summary"]["replayed"]["scaleDowns"] == 1));
    let total = &lines[2]["total"];
    assert_eq!(total["targets"], 2);
    assert_eq!(total["replayed"]["scaleDowns"], 2);
    assert_eq!(total["actual"]["scaleDowns"], 0);
    // An unknown profile is a 404 before anything streams; a bad policy a 422.
    let none = api.call(Method::POST, "/api/v1/replay", None, Some(json!({"profile": "nope"}))).await;
    assert_error(&none, StatusCode::NOT_FOUND);
    let bad = api
        .call(Method::POST, "/api/v1/replay", None, Some(json!({"profile": "default", "policy": {"maxReplicas": 0}})))
        .await;
    assert_error(&bad, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Records `n` ticks 15 s apart from `T0` of a target at 2 replicas whose 2 pods (500m
/// requested each) use 650m in all: 65% against a 60% goal, within tolerance, so it kept 2.
async fn record_observed_usage(api: &TestApi, name: &str, n: i64) {
    use scalehub_core::calc::{MetricUsage, Observed, PodUsage};
    let key = TargetKey::new("shop", Kind::Deployment, name);
    let mut writer = SeriesWriter::default();
    let mut chunk = None;
    for i in 0..n {
        let observed = Observed::Pods(PodUsage { ready: 2, usage: 650, requests: 1000, ..PodUsage::default() });
        let point = TickPoint {
            time: T0 + i * 15_000,
            current_replicas: Some(2),
            raw_evaluation: Some(2),
            final_replicas: Some(2),
            predicted: None,
            ratio_ppm: Some(1_083_333),
            usage: vec![MetricUsage { key: "cpu".into(), observed }],
            outcome: "unchanged".into(),
            metrics: vec![],
        };
        chunk = Some(writer.push(point).unwrap().clone());
    }
    api.ctx.store.record_tick(None, None, chunk.map(|c| SeriesChunkRow { key, chunk: c })).await.unwrap();
    api.ctx.store.flush().await.unwrap();
}

#[tokio::test]
async fn another_profiles_built_in_calculation_is_replayed_over_the_recorded_usage() {
    let api = TestApi::new().await;
    let config = scalehub_core::Config::from_yaml_str(
        r#"
profiles:
  default:
    kubernetesMetricSpecs:
      - {type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}}
  cpu-50:
    kubernetesMetricSpecs:
      - {type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}}
  scripted:
    metric: {type: shell, timeout: 1000, shell: {entrypoint: /bin/true}}
    evaluate: {type: shell, timeout: 1000, shell: {entrypoint: /bin/true}}
"#,
    )
    .unwrap();
    api.ctx.profiles.replace(&config);
    api.add_target("shop", "Deployment", "web").await;
    record_observed_usage(&api, "web", 8).await;
    api.clock.advance(8 * 15_000);

    // At 50% the same 650m asks for 3 from the first tick, and 3 holds it.
    let body = json!({"from": T0, "policy": {"calculation": {"profile": "cpu-50"}}});
    let (status, got) = api.call(Method::POST, URI, None, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    let ticks = got["ticks"].as_array().unwrap();
    assert_eq!(ticks.len(), 8);
    assert!(ticks.iter().all(|t| t["evaluated"] == 3 && t["replicas"] == 3 && t["asked"] == 2), "{got}");
    assert_eq!(got["calculation"], json!([{"key": "cpu", "goal": {"pods": {"utilization": 50}}}]));
    assert_eq!(got["summary"]["replayed"]["scaleUps"], 1);
    assert_eq!(got["summary"]["actual"]["scaleUps"], 0);
    // The same, written inline as a profile writes it.
    let inline = json!({"from": T0, "ticks": false, "policy": {"calculation": {"kubernetesMetricSpecs": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}}});
    let (status, got) = api.call(Method::POST, URI, None, Some(inline)).await;
    assert_eq!((status, &got["summary"]["replayed"]["highest"]), (StatusCode::OK, &json!(3)), "{got}");
    // The series read returns the observations it replays.
    let key = TargetKey::new("shop", Kind::Deployment, "web");
    let points = api.ctx.store.ticks(&key, T0, T0 + 8 * 15_000, 100).await.unwrap();
    assert_eq!(points.len(), 8);
    assert_eq!(points[0].usage[0].key, "cpu");

    // What cannot be replayed says why, with the field.
    for (calculation, expected) in [
        (json!({"profile": "scripted"}), "policy.calculation.profile: profile \"scripted\" evaluates with a hook"),
        (json!({"profile": "nope"}), "policy.calculation.profile: no profile \"nope\" in the hub config"),
        (json!({"profile": "cpu-50", "kubernetesMetricSpecs": []}), "policy.calculation: needs exactly one of"),
        (
            json!({"kubernetesMetricSpecs": [{"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}}}]}),
            "no recorded tick in the range observed memory",
        ),
    ] {
        let body = json!({"from": T0, "policy": {"calculation": calculation}});
        let bad = api.call(Method::POST, URI, None, Some(body)).await;
        assert_error(&bad, StatusCode::UNPROCESSABLE_ENTITY);
        let text = bad.1["error"].as_str().unwrap();
        assert!(text.contains(expected), "{text}");
    }
}
