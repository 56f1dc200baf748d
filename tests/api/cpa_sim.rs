//! The CPA's two calls and an override against a whole hub on the simulator, over HTTP.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::apps::v1::Deployment;
use serde_json::{Value, json};

use scalehub::hub::{self, HubHandle, HubOptions};
use scalehub::workload::{Kind, TargetKey};

use crate::common::{ALICE, token_file};

/// One Deployment whose shell hooks always evaluate to 5 replicas; it ticks hourly so the
/// test's own calls are the only runs.
const SCENARIO: &str = r#"
namespaces: [shop]
workloads:
  - kind: Deployment
    name: web
    namespace: shop
    replicas: 2
    annotations:
      scalehub.io/enabled: "true"
      scalehub.io/profile: shell
      scalehub.io/interval: "1h"
      scalehub.io/max-replicas: "10"
      scalehub.io/param.replicas: "5"
"#;

fn config(token_file: &Path) -> String {
    format!(
        r#"
api:
  tokenFile: {}
profiles:
  shell:
    # Once per workload, so the metrics name it (the CPA's default is per pod).
    runMode: per-resource
    metric:
      type: shell
      timeout: 5000
      shell:
        entrypoint: sh
        command: ["-c", "sed -n 's/.*\"replicas\":\"\\([0-9]*\\)\".*/\\1/p'"]
    evaluate:
      type: shell
      timeout: 5000
      shell:
        entrypoint: sh
        command: ["-c", "sed -n 's/.*\"value\":\"\\([0-9]*\\).*/{{\"targetReplicas\": \\1}}/p'"]
"#,
        token_file.display()
    )
}

struct Env {
    sim: scalehub_sim::SimHandle,
    hub: HubHandle,
    kube: kube::Client,
    http: Client<hyper_util::client::legacy::connect::HttpConnector, Body>,
    _dir: tempfile::TempDir,
}

impl Env {
    async fn start() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::write(&tokens, token_file()).unwrap();
        let scenario = scalehub_sim::Scenario::from_yaml(SCENARIO, Path::new(".")).unwrap();
        let sim = scalehub_sim::start(scalehub_sim::SimOptions { scenario: Some(scenario), ..Default::default() })
            .await
            .unwrap();
        let kube = scalehub::demo::sim_client(&sim.url()).unwrap();
        let config = scalehub_core::config::Config::from_yaml_str(&config(&tokens)).unwrap();
        let hub = hub::start(
            kube.clone(),
            HubOptions {
                config: Arc::new(config),
                database: Some(format!("sqlite://{}", dir.path().join("hub.db").display())),
                listen: Some("127.0.0.1:0".parse().unwrap()),
                advertise: None,
                lease_namespace: "default".into(),
                identity: "api-test".into(),
                lease_duration: Duration::from_secs(15),
                record_ticks: false,
                config_path: None,
            },
        )
        .await
        .unwrap();
        let http = Client::builder(TokioExecutor::new()).build_http();
        Env { sim, hub, kube, http, _dir: dir }
    }

    /// Waits until this hub leads and runs the target's loop.
    async fn wait_for_loop(&self, key: &TargetKey) {
        for _ in 0..200 {
            let running = self.hub.ctx.loops.read().unwrap().contains_key(key);
            if running && *self.hub.leader.borrow() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the hub never led and ran {key}");
    }

    async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(format!("http://{}{path}", self.hub.addr));
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(json) => {
                req = req.header("content-type", "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        let res = self.http.request(req.body(body).unwrap()).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(Body::new(res.into_body()), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn replicas(&self) -> i32 {
        let api: kube::Api<Deployment> = kube::Api::namespaced(self.kube.clone(), "shop");
        api.get("web").await.unwrap().spec.and_then(|s| s.replicas).unwrap_or_default()
    }

    async fn stop(self) {
        self.hub.shutdown().await;
        self.sim.shutdown().await;
    }
}

const BASE: &str = "/api/v1/targets/shop/Deployment/web";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cpa_calls_run_the_hooks_and_only_a_real_run_scales() {
    let env = Env::start().await;
    env.wait_for_loop(&TargetKey::new("shop", Kind::Deployment, "web")).await;

    let (status, _) = env.call(Method::GET, &format!("{BASE}/metrics?dry_run=true"), None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "running hooks needs a token, even as a dry run");
    let (status, metrics) = env.call(Method::GET, &format!("{BASE}/metrics?dry_run=true"), Some(ALICE), None).await;
    assert_eq!(status, StatusCode::OK, "{metrics}");
    assert_eq!(metrics, json!([{"resource": "web", "value": "5"}]));

    let (status, _) = env.call(Method::POST, &format!("{BASE}/evaluation?dry_run=true"), None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "running hooks needs a token, even as a dry run");
    let (status, eval) = env.call(Method::POST, &format!("{BASE}/evaluation?dry_run=true"), Some(ALICE), None).await;
    assert_eq!(status, StatusCode::OK, "{eval}");
    assert_eq!(eval, json!({"targetReplicas": 5}));
    assert_eq!(env.replicas().await, 2, "a dry run scaled");

    let (status, _) = env.call(Method::POST, &format!("{BASE}/evaluation?dry_run=maybe"), Some(ALICE), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = env.call(Method::POST, &format!("{BASE}/evaluation"), None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a run that may scale needs a token");
    let (status, _) = env.call(Method::GET, &format!("{BASE}/metrics?dry_run=false"), Some(ALICE), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(env.replicas().await, 2, "a GET scaled");
    let (status, _) = env.call(Method::GET, &format!("{BASE}/metrics?dry_run=perhaps"), None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "who may ask comes before what was asked");
    let (status, _) = env.call(Method::GET, &format!("{BASE}/metrics?dry_run=perhaps"), Some(ALICE), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) =
        env.call(Method::POST, "/api/v1/targets/shop/Deployment/nope/evaluation?dry_run=true", Some(ALICE), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, eval) = env.call(Method::POST, &format!("{BASE}/evaluation?dry_run=false"), Some(ALICE), None).await;
    assert_eq!(status, StatusCode::OK, "{eval}");
    assert_eq!(eval, json!({"targetReplicas": 5}));
    assert_eq!(env.replicas().await, 5, "a real run scales");

    env.hub.ctx.store.flush().await.unwrap();
    let (status, history) = env.call(Method::GET, &format!("{BASE}/decisions"), None, None).await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let runs: Vec<&str> = history["items"].as_array().unwrap().iter().map(|d| d["runType"].as_str().unwrap()).collect();
    // The metrics GETs run only the metric stage and decide nothing, so only the two
    // evaluations are in the history.
    assert_eq!(runs, ["api", "api_dry_run"], "{history}");
    assert_eq!(history["items"][0]["outcome"], "scaled");

    let text = env.hub.ctx.metrics.encode();
    let line = r#"scalehub_apiserver_requests_total{verb="patch",resource="deployments/scale",code="200"} 1"#;
    assert!(text.contains(line), "the scale call was not counted:\n{text}");
    assert!(text.contains(r#"verb="watch",resource="deployments""#), "{text}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_override_decides_the_next_run() {
    let env = Env::start().await;
    env.wait_for_loop(&TargetKey::new("shop", Kind::Deployment, "web")).await;
    // The target row appears with its first decision.
    let (status, _) = env.call(Method::POST, &format!("{BASE}/evaluation?dry_run=true"), Some(ALICE), None).await;
    assert_eq!(status, StatusCode::OK);
    env.hub.ctx.store.flush().await.unwrap();

    let pin = json!({"replicas": 3, "reason": "api test", "duration": "10m"});
    let (status, body) = env.call(Method::PUT, &format!("{BASE}/override"), Some(ALICE), Some(pin)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, eval) = env.call(Method::POST, &format!("{BASE}/evaluation"), Some(ALICE), None).await;
    assert_eq!(status, StatusCode::OK, "{eval}");
    assert_eq!(eval, json!({"targetReplicas": 3}), "the pin wins over the evaluation of 5");
    assert_eq!(env.replicas().await, 3);

    env.hub.ctx.store.flush().await.unwrap();
    let (_, history) = env.call(Method::GET, &format!("{BASE}/decisions"), None, None).await;
    let last = &history["items"][0];
    let codes: Vec<&str> = last["reasons"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"OverridePinned"), "{last}");
    assert_eq!(history["items"][1]["outcome"], "override_set");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_carries_the_decisions_of_a_running_hub() {
    use futures::StreamExt;

    let env = Env::start().await;
    env.wait_for_loop(&TargetKey::new("shop", Kind::Deployment, "web")).await;
    let uri = format!("http://{}/api/v1/stream?namespace=shop&kind=deploy&name=web", env.hub.addr);
    let res = env.http.request(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = Body::new(res.into_body()).into_data_stream();
    let (status, _) = env.call(Method::POST, &format!("{BASE}/evaluation?dry_run=true"), Some(ALICE), None).await;
    assert_eq!(status, StatusCode::OK);
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(chunk)) = body.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("event: decision") && seen.contains("\"runType\":\"api_dry_run\"") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "no decision event arrived: {seen}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hook_runs_beyond_the_budget_get_a_429_with_retry_after() {
    let env = Env::start().await;
    env.wait_for_loop(&TargetKey::new("shop", Kind::Deployment, "web")).await;
    let uri = format!("http://{}{BASE}/metrics?dry_run=true", env.hub.addr);
    // A burst of twice the default 5 a second passes; soon after, runs are refused.
    let mut passed = 0;
    let mut refused = None;
    for _ in 0..40 {
        let req = Request::get(&uri).header("authorization", format!("Bearer {ALICE}")).body(Body::empty()).unwrap();
        let res = env.http.request(req).await.unwrap();
        match res.status() {
            StatusCode::OK => passed += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                refused = Some(res);
                break;
            }
            other => panic!("{other}"),
        }
    }
    assert!(passed >= 10, "the burst of 10 was not allowed: {passed}");
    let res = refused.expect("no run was refused");
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After: {retry}");
    let bytes = axum::body::to_bytes(Body::new(res.into_body()), 1 << 20).await.unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(body["error"].as_str().unwrap().contains("api.hookRunsPerSecond"), "{body}");
    assert_eq!(body["message"], body["error"], "the CPA's error shape: {body}");
    env.stop().await;
}
