//! The hub's HTTP server: health, readiness and Prometheus metrics.
//!
//! `app(state)` builds the whole router so tests drive it with `tower::ServiceExt::oneshot`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::telemetry::Metrics;

/// What the HTTP handlers read.
#[derive(Clone)]
pub struct ApiState {
    /// Exported metrics.
    pub metrics: Metrics,
    /// Set once the watches have listed every workload and the database is open.
    pub ready: Arc<AtomicBool>,
    /// Whether this hub currently holds the lease.
    pub leader: tokio::sync::watch::Receiver<bool>,
}

/// The router of the hub's HTTP server.
pub fn app(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(state): State<ApiState>) -> impl IntoResponse {
    if state.ready.load(Ordering::Relaxed) {
        let role = if *state.leader.borrow() { "leader" } else { "standby" };
        (StatusCode::OK, format!("ok ({role})"))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: caches are syncing".to_owned())
    }
}

async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.encode())
}

/// Binds `addr` (port 0 picks one) and serves `router` until `shutdown`; returns the bound address.
pub async fn serve(addr: SocketAddr, router: Router, shutdown: CancellationToken) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        let result = axum::serve(listener, router).with_graceful_shutdown(shutdown.cancelled_owned()).await;
        if let Err(e) = result {
            tracing::error!(error = %e, "http server failed");
        }
    });
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    fn state(ready: bool) -> ApiState {
        let (_tx, leader) = tokio::sync::watch::channel(true);
        ApiState { metrics: Metrics::new(), ready: Arc::new(AtomicBool::new(ready)), leader }
    }

    #[tokio::test]
    async fn readyz_is_503_until_caches_have_synced() {
        let st = state(false);
        let res = app(st.clone()).oneshot(Request::get("/readyz").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        st.ready.store(true, Ordering::Relaxed);
        let res = app(st).oneshot(Request::get("/readyz").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn metrics_are_served_in_prometheus_text_format() {
        let st = state(true);
        st.metrics.tick_lateness.observe(0.01);
        let res = app(st).oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains("scalehub_tick_lateness_seconds_count 1"), "{text}");
    }
}
