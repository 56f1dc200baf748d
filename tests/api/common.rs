//! An API over an in-memory store, a settable clock and a request helper.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

use scalehub::api::auth::Auth;
use scalehub::api::testing::{self, ManualClock};
use scalehub::hub::Context;
use scalehub_store::{Kind, Store, TargetKey, TargetRow};

/// A token that may write, named `alice`.
pub const ALICE: &str = "alice-0123456789abcdef";
/// A token that may only read, named `viewer`.
pub const VIEWER: &str = "viewer-0123456789abcdef";
/// The test clock's start: 2026-11-27T00:00:00Z.
pub const T0: i64 = 1_795_737_600_000;

/// The token file of these tests.
pub fn token_file() -> String {
    format!("# test tokens\nalice:{ALICE}\nviewer:{VIEWER}:read\n")
}

/// An API under test.
pub struct TestApi {
    /// The router.
    pub app: Router,
    /// The hub state behind it.
    pub ctx: Arc<Context>,
    /// Its clock.
    pub clock: ManualClock,
}

impl TestApi {
    /// An API with the test tokens; reads open.
    pub async fn new() -> Self {
        Self::with_auth(Auth::from_text(&token_file(), false).unwrap()).await
    }

    /// An API with these access rules.
    pub async fn with_auth(auth: Auth) -> Self {
        Self::with_store(auth, Store::open("sqlite::memory:").await.unwrap()).await
    }

    /// An API over `store`, with these access rules.
    pub async fn with_store(auth: Auth, store: Store) -> Self {
        let clock = ManualClock::at(T0);
        let ctx = testing::context(store, clock.clock(), true).unwrap();
        let app = scalehub::api::app(testing::state(ctx.clone(), auth));
        Self { app, ctx, clock }
    }

    /// Sends a request; returns the status and the body as JSON (`Value::String` when not JSON).
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
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
        self.send(req.body(body).unwrap()).await
    }

    /// Sends a prepared request.
    pub async fn send(&self, req: Request<Body>) -> (StatusCode, Value) {
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 16 << 20).await.unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// `GET uri` without a token.
    pub async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call(Method::GET, uri, None, None).await
    }

    /// Inserts a target row (state `active`, 2 → 3 replicas).
    pub async fn add_target(&self, namespace: &str, kind: &str, name: &str) {
        self.ctx.store.upsert_target(row(namespace, kind, name, "active", self.clock.now())).await.unwrap();
    }
}

/// A target row.
pub fn row(namespace: &str, kind: &str, name: &str, state: &str, now: i64) -> TargetRow {
    TargetRow {
        key: TargetKey::new(namespace, Kind::parse(kind).expect("a workload kind"), name),
        uid: Some(format!("uid-{name}")),
        state: state.into(),
        spec: serde_json::json!({"minReplicas": 1, "maxReplicas": 10, "interval": "15s", "downscaleStabilization": "5m",
            "upscaleStabilization": "0s", "profile": "default", "runMode": "per-resource", "mode": "active", "params": {}})
        .into(),
        error: None,
        current_replicas: Some(2),
        desired_replicas: Some(3),
        first_seen: now,
        last_seen: now,
        removed_at: None,
        updated_at: now,
    }
}

/// Asserts an error response: the status, and a JSON body with `error` and the same `code`.
pub fn assert_error(got: &(StatusCode, Value), status: StatusCode) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["code"], status.as_u16(), "{}", got.1);
    assert!(got.1["error"].as_str().is_some_and(|e| !e.is_empty()), "{}", got.1);
}
