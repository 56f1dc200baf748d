//! `GET /api/v1/stream`: Server-Sent Events of decisions and target changes.
//!
//! The stream subscribes to the hub's [`Bus`](crate::bus::Bus) and never slows a tick: a
//! subscriber that falls behind loses the oldest events and is told so with a `lagged`
//! event (it should refetch).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast;

use scalehub_store::TargetKey;

use crate::bus::HubEvent;

use super::ApiState;
use super::auth::CanRead;
use super::error::{ApiError, ApiQuery};

/// Live streams open at once, hub-wide, well below the server's connection cap.
pub const MAX_STREAMS: usize = 128;

/// An event as the stream sends it.
fn to_sse(event: &HubEvent) -> Event {
    let (name, data) = match event {
        HubEvent::Decision(d) => ("decision", serde_json::to_string(d.as_ref())),
        HubEvent::Target(t) => ("target", serde_json::to_string(t.as_ref())),
    };
    // Rows are plain JSON values; encoding them cannot fail, but never panic a stream.
    Event::default().event(name).data(data.unwrap_or_else(|_| "{}".into()))
}

/// Optional filters of the stream; a target page subscribes to its own target only.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only this kind (`Deployment`, `deploy`, ...).
    pub kind: Option<String>,
    /// Only this workload name.
    pub name: Option<String>,
}

/// Server-Sent Events: `decision` and `target` events with JSON data, `lagged` when events were skipped.
#[utoipa::path(get, path = "/api/v1/stream", tag = "stream", params(StreamQuery),
    responses((status = 200, description = "text/event-stream of `decision` (Decision JSON), `target` (Target row JSON) and `lagged` ({\"skipped\": n}) events; keep-alive comments every 15 s", content_type = "text/event-stream")))]
pub async fn stream(
    _: CanRead,
    State(state): State<ApiState>,
    ApiQuery(filter): ApiQuery<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let kind = match filter.kind.as_deref() {
        Some(k) => {
            Some(crate::workload::Kind::parse(k).ok_or_else(|| ApiError::bad_request(format!("unknown kind {k:?}")))?)
        }
        None => None,
    };
    let wanted = move |key: &TargetKey| {
        filter.namespace.as_ref().is_none_or(|n| *n == key.namespace)
            && kind.is_none_or(|k| k == key.kind)
            && filter.name.as_ref().is_none_or(|n| *n == key.name)
    };
    // Each stream holds a connection for as long as it lasts: they are capped (MAX_STREAMS).
    let slot = state.streams.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("too many live streams ({MAX_STREAMS}); retry later, or poll /api/v1/targets"),
        )
    })?;
    let rx = state.ctx.bus.subscribe();
    let events = futures::stream::unfold(rx, move |mut rx| {
        let wanted = wanted.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok(event) if wanted(event.key()) => return Some((Ok(to_sse(&event)), rx)),
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        let lagged = Event::default().event("lagged").data(format!("{{\"skipped\":{n}}}"));
                        return Some((Ok(lagged), rx));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    // End the stream on shutdown, or graceful shutdown would wait for browsers forever.
    let events = events.take_until(state.shutdown.clone().cancelled_owned());
    // The slot is released when the stream is dropped (the client went away, or shutdown).
    let events = events.map(move |event| {
        let _held = &slot;
        event
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
