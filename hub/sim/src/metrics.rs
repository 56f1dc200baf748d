//! PodMetrics (placeholder).
use axum::response::Response;
use crate::error::ApiError;
use crate::router::{Params, Target};
use crate::AppState;
pub(crate) fn serve(_state: &AppState, _t: &Target, _p: &Params) -> Result<Response, ApiError> {
    Err(ApiError::no_route("metrics"))
}
