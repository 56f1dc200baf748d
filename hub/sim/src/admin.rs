//! The simulator's own admin endpoints: faults (GET/PUT), request accounting (GET/DELETE),
//! object counts (`stats`, so a benchmark knows when its fleet is up), and two fixed hook
//! answers (`hooks/metric`, `hooks/evaluate`) that `scalehub bench --profile http` calls, so
//! the hook server's work is not charged to the hub's process.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::faults::FaultConfig;
use crate::objects::json_response;

/// `/sim/admin/...` routes.
pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/sim/admin/faults", get(get_faults).put(put_faults))
        .route("/sim/admin/requests", get(get_requests).delete(reset_requests))
        .route("/sim/admin/stats", get(get_stats))
        .route("/sim/hooks/metric", post(|| async { "1" }))
        .route("/sim/hooks/evaluate", post(hook_evaluate))
}

/// Object counts by resource, and how many pods are Ready.
async fn get_stats(State(state): State<Arc<AppState>>) -> Response {
    use crate::resources::{DEPLOYMENTS, PODS, REPLICASETS, STATEFULSETS};
    let store = &state.store;
    let ready = store.count_where(PODS, |pod| {
        pod.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
    });
    let stats = json!({
        "deployments": store.count(DEPLOYMENTS),
        "statefulsets": store.count(STATEFULSETS),
        "replicasets": store.count(REPLICASETS),
        "pods": store.count(PODS),
        "readyPods": ready,
    });
    json_response(StatusCode::OK, &stats)
}

/// A CPA evaluate hook that keeps the target where it is: `{"targetReplicas": currentReplicas}`
/// from the CPA payload (2 when the payload has no replica count).
async fn hook_evaluate(body: Bytes) -> Response {
    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let replicas = payload.pointer("/resource/spec/replicas").and_then(Value::as_i64).unwrap_or(2);
    json_response(StatusCode::OK, &json!({ "targetReplicas": replicas }))
}

async fn get_faults(State(state): State<Arc<AppState>>) -> Response {
    json_response(StatusCode::OK, &state.faults.get())
}

async fn put_faults(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    match serde_json::from_slice::<FaultConfig>(&body) {
        Ok(config) => {
            state.faults.set(config);
            json_response(StatusCode::OK, &state.faults.get())
        }
        Err(e) => ApiError::bad_request(format!("invalid fault config: {e}")).into_response(),
    }
}

async fn get_requests(State(state): State<Arc<AppState>>) -> Response {
    json_response(StatusCode::OK, &state.accounting.snapshot())
}

async fn reset_requests(State(state): State<Arc<AppState>>) -> Response {
    state.accounting.reset();
    StatusCode::NO_CONTENT.into_response()
}
