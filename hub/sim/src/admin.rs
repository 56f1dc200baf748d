//! The simulator's own admin endpoints: faults (GET/PUT) and request accounting (GET/DELETE).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::ApiError;
use crate::faults::FaultConfig;
use crate::objects::json_response;
use crate::AppState;

/// `/sim/admin/...` routes.
pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/sim/admin/faults", get(get_faults).put(put_faults))
        .route("/sim/admin/requests", get(get_requests).delete(reset_requests))
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
