//! `GET /api/v1/stream`: Server-Sent Events of decisions and target changes.
//!
//! The stream subscribes to the hub's [`Bus`](crate::bus::Bus) and never slows a tick. A
//! subscriber that falls too far behind (see [`crate::bus::SUBSCRIBER_BYTES`]) gets an `end`
//! event and the stream closes; so does every stream when the hub shuts down. A browser's
//! `EventSource` reconnects by itself, and should refetch what it shows.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;

use crate::bus::{Filter, Message, Subscription};

use super::ApiState;
use super::auth::CanRead;
use super::error::{ApiError, ApiQuery};

/// Live streams open at once, hub-wide, well below the server's connection cap.
pub const MAX_STREAMS: usize = 128;

/// The last event of a stream: why it ends.
fn end(reason: &str, queued_bytes: usize) -> Event {
    Event::default().event("end").data(format!("{{\"reason\":\"{reason}\",\"queuedBytes\":{queued_bytes}}}"))
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

/// Server-Sent Events: `decision` and `target` events with JSON data, `end` before the stream closes.
#[utoipa::path(get, path = "/api/v1/stream", tag = "stream", params(StreamQuery),
    responses((status = 200, description = "text/event-stream of `decision` (Decision JSON), `target` (Target row JSON) events, and a last `end` event ({\"reason\": \"slow\" | \"shutdown\", \"queuedBytes\": n}) when the client fell too far behind or the hub stops; keep-alive comments every 15 s", content_type = "text/event-stream")))]
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
    let filter = Filter { namespace: filter.namespace, kind, name: filter.name };
    // Each stream holds a connection for as long as it lasts: they are capped (MAX_STREAMS).
    let slot = state.streams.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("too many live streams ({MAX_STREAMS}); retry later, or poll /api/v1/targets"),
        )
    })?;
    let subscription = state.ctx.bus.subscribe(filter);
    let shutdown = state.shutdown.clone();
    // The slot is released when the stream is dropped (the client went away, or it ended).
    let events = futures::stream::unfold(Some((subscription, slot)), move |open| {
        let shutdown = shutdown.clone();
        async move {
            let (mut subscription, slot): (Subscription, _) = open?;
            // End on shutdown, or graceful shutdown would wait for browsers forever.
            let message = tokio::select! {
                message = subscription.recv() => message,
                () = shutdown.cancelled() => return Some((Ok(end("shutdown", 0)), None)),
            };
            match message? {
                Message::Event(published) => {
                    let event = Event::default().event(published.name).data(&published.data);
                    Some((Ok::<_, Infallible>(event), Some((subscription, slot))))
                }
                Message::End { queued_bytes } => Some((Ok(end("slow", queued_bytes)), None)),
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
