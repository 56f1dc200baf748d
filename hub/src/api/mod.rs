//! The hub's HTTP server: the REST API (`/api/v1`), health, readiness, Prometheus metrics,
//! and the dashboard at `/`.
//!
//! `app(state)` builds the whole router so tests drive it with `tower::ServiceExt::oneshot`.
//! One router per API area: [`targets`] (list, one, history), [`cpa`] (the CPA's two calls),
//! [`overrides`], [`hub_info`], [`stream`] (Server-Sent Events) and [`openapi`]; [`auth`]
//! checks tokens and [`error`] turns every failure into `{"error", "code"}` JSON.

pub mod auth;
pub mod cpa;
pub mod error;
pub mod forward;
pub mod hub_info;
pub mod kube_auth;
pub mod limit;
pub mod openapi;
pub mod overrides;
pub mod replay;
pub mod server;
pub mod stream;
pub mod targets;
pub mod testing;
pub mod views;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use tokio_util::sync::CancellationToken;

use crate::hub::Context;

/// Largest request body accepted (overrides are a few hundred bytes); more is a 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What the HTTP handlers read; cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    /// The hub-wide context: store, overrides, loops, metrics, leadership, the bus.
    pub ctx: Arc<Context>,
    /// Set once the watches have listed every workload and the database is open.
    pub ready: Arc<AtomicBool>,
    /// Who may read and write.
    pub auth: Arc<auth::Auth>,
    /// Identity and start time, for `/api/v1/hub`.
    pub info: Arc<hub_info::HubInfo>,
    /// Fires at shutdown; ends live streams so the server can stop.
    pub shutdown: CancellationToken,
    /// Serialises override writes so the store and the hub's memory agree on the last one.
    pub override_writes: Arc<tokio::sync::Mutex<()>>,
    /// Bounds the hook runs that API calls trigger.
    pub hook_runs: Arc<limit::RateLimit>,
    /// Slots for live streams ([`stream::MAX_STREAMS`]).
    pub streams: Arc<tokio::sync::Semaphore>,
    /// The client calls that need a target's owner are forwarded with (sharded hubs).
    pub peers: forward::Peers,
}

impl ApiState {
    /// The state of a hub whose loops share `ctx`.
    pub fn new(
        ctx: Arc<Context>,
        ready: Arc<AtomicBool>,
        auth: auth::Auth,
        identity: &str,
        shutdown: CancellationToken,
    ) -> Self {
        let auth_rate = auth.hook_runs_per_second();
        let started_at = (ctx.clock)();
        Self {
            ctx,
            ready,
            auth: Arc::new(auth),
            info: Arc::new(hub_info::HubInfo { identity: identity.to_owned(), started_at }),
            shutdown,
            override_writes: Arc::new(tokio::sync::Mutex::new(())),
            hook_runs: Arc::new(limit::RateLimit::new(auth_rate)),
            streams: Arc::new(tokio::sync::Semaphore::new(stream::MAX_STREAMS)),
            peers: forward::Peers::default(),
        }
    }
}

/// The router of the hub's HTTP server.
pub fn app(state: ApiState) -> Router {
    const TARGET: &str = "/targets/{namespace}/{kind}/{name}";
    let api = Router::new()
        .route("/targets", get(targets::list))
        .route(TARGET, get(targets::get_one))
        .route(&format!("{TARGET}/decisions"), get(targets::decisions))
        .route(&format!("{TARGET}/series"), get(targets::series))
        .route(&format!("{TARGET}/metrics"), get(cpa::metrics))
        .route(&format!("{TARGET}/evaluation"), post(cpa::evaluation))
        .route(&format!("{TARGET}/override"), put(overrides::put).delete(overrides::delete))
        .route(&format!("{TARGET}/replay"), post(replay::target))
        .route("/replay", post(replay::fleet))
        .route("/replicas", get(targets::replicas))
        .route("/hub", get(hub_info::hub))
        .route("/stream", get(stream::stream))
        .route("/openapi.json", get(openapi::document))
        .fallback(error::no_such_endpoint)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::map_response(api_headers));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/livez", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .nest("/api/v1", api)
        .with_state(state)
        .fallback_service(crate::web::router())
}

/// API answers are live data: never cached, never sniffed into another content type.
async fn api_headers(mut res: axum::response::Response) -> axum::response::Response {
    let headers = res.headers_mut();
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    res
}

/// Liveness: the process serves HTTP.
#[utoipa::path(get, path = "/healthz", tag = "hub", responses((status = 200, description = "ok")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: caches synced and the database answers; says whether this hub leads.
#[utoipa::path(get, path = "/readyz", tag = "hub", responses((status = 200, description = "ok (leader), ok (standby), or sharded ok (member)"), (status = 503, description = "not ready")))]
pub async fn readyz(State(state): State<ApiState>) -> impl IntoResponse {
    if !state.ready.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready: caches are syncing".to_owned());
    }
    if let Err(e) = state.ctx.store.ping().await {
        tracing::warn!(error = %e, "readiness: database does not answer");
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready: the database does not answer".to_owned());
    }
    let stats = state.ctx.store.stats();
    if stats.failing {
        let why = stats.last_error.unwrap_or_default();
        return (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: the database cannot be written: {why}"));
    }
    let role = match (state.ctx.shard.is_some(), *state.ctx.leader.borrow()) {
        (false, true) => "leader",
        (false, false) => "standby",
        // Sharded: a member ticks its share; one whose Lease is stale ticks nothing for now.
        (true, true) => "member",
        (true, false) => "member, not live",
    };
    (StatusCode::OK, format!("ok ({role})"))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "hub", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(_: auth::CanRead, State(state): State<ApiState>) -> impl IntoResponse {
    state.ctx.metrics.observe_store(&state.ctx.store.stats());
    state.ctx.metrics.leader.set(i64::from(*state.ctx.leader.borrow()));
    // Targets by state, from the counts the store keeps (one small read per scrape).
    if let Ok(counts) = state.ctx.store.counts_by_state().await {
        state.ctx.metrics.set_target_counts(&counts);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.ctx.metrics.encode())
}

/// Serves `router` on a bound `listener` until `shutdown`, with the default [`server::Limits`].
pub fn serve_on(listener: tokio::net::TcpListener, router: Router, shutdown: CancellationToken) {
    server::serve_on(listener, router, server::Limits::default(), shutdown)
}
