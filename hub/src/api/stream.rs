//! `GET /api/v1/stream`: Server-Sent Events of decisions and target changes.
//!
//! Ticks publish into a `tokio::sync::broadcast` channel and never wait for it: a
//! subscriber that falls behind loses the oldest events and is told so with a `lagged`
//! event (it should refetch), and a tick never blocks on a slow browser.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast;

use scalehub_store::{DecisionRow, TargetKey, TargetRow};

use super::ApiState;
use super::auth::CanRead;
use super::error::{ApiError, ApiQuery};

/// Events buffered per subscriber. 10,000 targets ticking every 15 s make ~670 decisions a
/// second; 4096 gives a browser several seconds of slack before it must refetch.
pub const CAPACITY: usize = 4096;

/// One thing the stream reports.
#[derive(Clone, Debug)]
pub enum StreamEvent {
    /// A decision was recorded (its `id` is 0: the stream does not wait for the commit).
    Decision(Arc<DecisionRow>),
    /// A target's row changed (state, error or replicas).
    Target(Arc<TargetRow>),
}

impl StreamEvent {
    fn key(&self) -> &TargetKey {
        match self {
            StreamEvent::Decision(d) => &d.key,
            StreamEvent::Target(t) => &t.key,
        }
    }

    fn to_sse(&self) -> Event {
        let (name, data) = match self {
            StreamEvent::Decision(d) => ("decision", serde_json::to_string(d.as_ref())),
            StreamEvent::Target(t) => ("target", serde_json::to_string(t.as_ref())),
        };
        // Rows are plain JSON values; encoding them cannot fail, but never panic a stream.
        Event::default().event(name).data(data.unwrap_or_else(|_| "{}".into()))
    }
}

/// The sending side, kept in `Shared`; sending without subscribers is a no-op.
pub fn channel() -> broadcast::Sender<StreamEvent> {
    broadcast::channel(CAPACITY).0
}

/// Publishes an event if anyone listens; never blocks.
pub fn publish(tx: &broadcast::Sender<StreamEvent>, event: impl FnOnce() -> StreamEvent) {
    if tx.receiver_count() > 0 {
        let _ = tx.send(event());
    }
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
    let rx = state.shared.stream.subscribe();
    let events = futures::stream::unfold(rx, move |mut rx| {
        let wanted = wanted.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok(event) if wanted(event.key()) => return Some((Ok(event.to_sse()), rx)),
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
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
