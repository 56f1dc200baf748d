//! HTTP hooks against a real local server.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::any;
use scalehub_hooks::{HookError, HookKind, HookRunner, HookRunnerConfig, HookSpec, HttpSpec, ParameterMode};
use serde_json::json;

const SECOND: Duration = Duration::from_secs(1);

/// What the server saw of the last request to `/echo`.
#[derive(Debug, Clone, Default)]
struct Seen {
    method: String,
    query: HashMap<String, String>,
    content_type: Option<String>,
    custom_header: Option<String>,
    body: String,
    peer: Option<SocketAddr>,
}

#[derive(Default)]
struct ServerState {
    seen: Mutex<Vec<Seen>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// A local server; dropped with the test's runtime.
struct Server {
    base: String,
    state: Arc<ServerState>,
}

impl Server {
    async fn start() -> Self {
        let state = Arc::new(ServerState::default());
        let app = Router::new()
            .route("/echo", any(echo))
            .route("/status/{code}", any(status))
            .route("/slow", any(slow))
            .route("/concurrent", any(concurrent))
            .route("/big", any(big))
            .route("/redirect", any(redirect))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await;
        });
        Server { base: format!("http://{addr}"), state }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }
}

/// Records the request and answers with the body (body mode) or the `value` parameter.
async fn echo(
    State(state): State<Arc<ServerState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = String::from_utf8_lossy(&body).into_owned();
    let reply = query.get("value").cloned().unwrap_or_else(|| body.clone());
    state.seen.lock().unwrap().push(Seen {
        method: method.to_string(),
        query,
        content_type: header("content-type"),
        custom_header: header("x-scalehub-test"),
        body,
        peer: Some(peer),
    });
    reply
}

async fn status(Path(code): Path<u16>) -> (StatusCode, &'static str) {
    (StatusCode::from_u16(code).unwrap(), "upstream says no")
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(30)).await;
    "late"
}

async fn concurrent(State(state): State<Arc<ServerState>>) -> &'static str {
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(150)).await;
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    "ok"
}

/// 307 to the `to` parameter.
async fn redirect(
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> axum::response::Response {
    let to = q.get("to").cloned().unwrap_or_default();
    axum::response::Response::builder()
        .status(StatusCode::TEMPORARY_REDIRECT)
        .header("location", to)
        .body(axum::body::Body::empty())
        .unwrap()
}

async fn big() -> Vec<u8> {
    vec![b'z'; 2 * 1024 * 1024]
}

fn http(method: &str, url: String) -> HttpSpec {
    HttpSpec::new(method, url, 5 * SECOND)
}

#[tokio::test]
async fn body_mode_posts_the_payload_as_json() {
    let server = Server::start().await;
    let payload = json!({"resource": {"metadata": {"name": "web"}}, "runType": "api"});
    let mut spec = http("POST", server.url("/echo"));
    spec.headers.insert("X-Scalehub-Test".into(), "yes".into());
    let out = HookRunner::new(HookRunnerConfig::default()).run(&HookSpec::Http(spec), &payload).await.unwrap();

    let seen = server.seen().pop().unwrap();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.content_type.as_deref(), Some("application/json"));
    assert_eq!(seen.custom_header.as_deref(), Some("yes"));
    assert_eq!(serde_json::from_str::<serde_json::Value>(&seen.body).unwrap(), payload);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap(), payload);
    assert_eq!(out.outcome.kind, HookKind::Http);
    assert_eq!(out.outcome.http_status, Some(200));
}

#[tokio::test]
async fn query_mode_appends_the_payload_as_the_value_parameter() {
    let server = Server::start().await;
    let payload = json!({"params": {"q": "a b&c=d?e#f"}, "runType": "scaler"});
    let mut spec = http("get", server.url("/echo?fixed=1"));
    spec.parameter_mode = ParameterMode::Query;
    let out = common::runner().run(&HookSpec::Http(spec), &payload).await.unwrap();

    let seen = server.seen().pop().unwrap();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.query.get("fixed").map(String::as_str), Some("1"));
    let value = seen.query.get("value").unwrap();
    assert_eq!(serde_json::from_str::<serde_json::Value>(value).unwrap(), payload);
    assert!(seen.body.is_empty());
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap(), payload);
}

#[tokio::test]
async fn a_status_outside_success_codes_is_an_error_with_the_body() {
    let server = Server::start().await;
    let spec = HookSpec::Http(http("GET", server.url("/status/201")));
    let failure = common::runner().run(&spec, &json!({})).await.unwrap_err();
    assert!(matches!(failure.error, HookError::HttpStatus { status: 201, .. }), "{:?}", failure.error);
    assert_eq!(failure.to_string(), "hook returned http status 201: upstream says no");
    assert_eq!(failure.outcome.http_status, Some(201));
    assert_eq!(failure.outcome.stderr.as_deref(), Some("upstream says no"));

    let mut accepting = http("GET", server.url("/status/201"));
    accepting.success_codes = vec![200, 201];
    let out = common::runner().run(&HookSpec::Http(accepting), &json!({})).await.unwrap();
    assert_eq!(out.stdout, "upstream says no");

    let server_error = HookSpec::Http(http("GET", server.url("/status/503")));
    let failure = common::runner().run(&server_error, &json!({})).await.unwrap_err();
    assert_eq!(failure.error.reason(), "http_status");
}

#[tokio::test]
async fn a_slow_endpoint_times_out() {
    let server = Server::start().await;
    let spec = HookSpec::Http(HttpSpec::new("GET", server.url("/slow"), Duration::from_millis(300)));
    let started = std::time::Instant::now();
    let failure = common::runner().run(&spec, &json!({})).await.unwrap_err();
    assert!(matches!(failure.error, HookError::Timeout(_)), "{:?}", failure.error);
    assert_eq!(failure.to_string(), "hook timed out after 300 ms");
    assert!(failure.outcome.timed_out);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_oversized_body_is_an_error() {
    let server = Server::start().await;
    let spec = HookSpec::Http(http("GET", server.url("/big")));
    let failure = common::runner().run(&spec, &json!({})).await.unwrap_err();
    assert!(matches!(failure.error, HookError::OutputTooLarge(1048576)), "{:?}", failure.error);
    assert_eq!(failure.outcome.http_status, Some(200));
}

#[tokio::test]
async fn a_refused_connection_is_a_transport_error_without_the_url() {
    // Bind then drop, so the port is very likely closed.
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let spec = HookSpec::Http(http("GET", format!("http://{addr}/hook?token=s3cret")));
    let failure = common::runner().run(&spec, &json!({})).await.unwrap_err();
    assert!(matches!(failure.error, HookError::HttpTransport(_)), "{:?}", failure.error);
    let message = failure.to_string();
    assert!(message.contains("refused"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
}

#[tokio::test]
async fn invalid_specs_are_reported_before_any_request() {
    let runner = common::runner();
    let bad_url = HookSpec::Http(http("GET", "not a url".into()));
    assert_eq!(runner.run(&bad_url, &json!({})).await.unwrap_err().error.reason(), "invalid_spec");
    let bad_method = HookSpec::Http(http("GE T", "http://127.0.0.1:1/".into()));
    let failure = runner.run(&bad_method, &json!({})).await.unwrap_err();
    assert_eq!(failure.to_string(), "invalid hook http method \"GE T\"");
    let mut bad_header = http("GET", "http://127.0.0.1:1/".into());
    bad_header.headers.insert("Authorization".into(), "Bearer x\ny".into());
    let failure = runner.run(&HookSpec::Http(bad_header), &json!({})).await.unwrap_err();
    assert_eq!(failure.to_string(), "invalid hook http header \"authorization\"");
}

#[tokio::test]
async fn one_client_serves_every_hook_and_keeps_connections_alive() {
    let server = Server::start().await;
    let runner = common::runner();
    for _ in 0..3 {
        runner.run(&HookSpec::Http(http("POST", server.url("/echo"))), &json!({})).await.unwrap();
    }
    let peers: Vec<_> = server.seen().iter().map(|s| s.peer).collect();
    assert_eq!(peers.len(), 3);
    assert!(peers.iter().all(|p| *p == peers[0]), "connections were not reused: {peers:?}");
    assert_eq!(runner.http_clients(), 1);
    // Clones share the cache.
    runner.clone().run(&HookSpec::Http(http("POST", server.url("/echo"))), &json!({})).await.unwrap();
    assert_eq!(runner.http_clients(), 1);
}

#[tokio::test]
async fn the_concurrency_bound_caps_hooks_in_flight() {
    let server = Server::start().await;
    let runner = HookRunner::new(HookRunnerConfig { max_concurrent: 3, ..HookRunnerConfig::default() });
    let spec = HookSpec::Http(http("GET", server.url("/concurrent")));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (runner, spec) = (runner.clone(), spec.clone());
        tasks.push(tokio::spawn(async move { runner.run(&spec, &json!({})).await }));
    }
    let mut queued = 0;
    for task in tasks {
        let out = task.await.unwrap().unwrap();
        assert_eq!(out.stdout, "ok");
        queued += u64::from(out.outcome.queued_ms > 0);
    }
    assert_eq!(server.state.max_in_flight.load(Ordering::SeqCst), 3);
    assert!(queued >= 7, "only {queued} runs waited for a permit");
    assert_eq!(runner.in_flight(), 0);
}

#[tokio::test]
async fn the_concurrency_bound_applies_to_shell_hooks_too() {
    let dir = common::TempDir::new("bound");
    let runner = HookRunner::new(HookRunnerConfig { max_concurrent: 2, ..HookRunnerConfig::default() });
    // Each hook notes its start and end; at most 2 may overlap.
    let log = dir.path().join("log");
    let script = "echo start >> \"$1\"; sleep 0.2; echo end >> \"$1\"";
    let spec = HookSpec::Shell(scalehub_hooks::ShellSpec::new("sh", 10 * SECOND).args([
        "-c",
        script,
        "sh",
        &log.to_string_lossy(),
    ]));
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (runner, spec) = (runner.clone(), spec.clone());
        tasks.push(tokio::spawn(async move { runner.run(&spec, &json!({})).await }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let mut running = 0i32;
    let mut peak = 0;
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        running += if line == "start" { 1 } else { -1 };
        peak = peak.max(running);
    }
    assert_eq!(peak, 2);
}

#[tokio::test]
async fn redirects_are_followed_within_the_hooks_origin_only() {
    let server = Server::start().await;
    let elsewhere = Server::start().await;
    let same = format!("{}?to={}", server.url("/redirect"), server.url("/echo"));
    let out = common::runner().run(&HookSpec::Http(http("POST", same)), &json!({"a": 1})).await.unwrap();
    assert!(out.stdout.contains("\"a\""), "{}", out.stdout);

    let away = format!("{}?to={}", server.url("/redirect"), elsewhere.url("/echo"));
    let failure = common::runner().run(&HookSpec::Http(http("POST", away)), &json!({"a": 1})).await.unwrap_err();
    assert!(matches!(failure.error, HookError::HttpStatus { status: 307, .. }), "{:?}", failure.error);
    assert!(elsewhere.seen().is_empty(), "the payload went to another host");
}
