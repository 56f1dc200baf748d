//! Watch streams: chunked newline-delimited JSON events, replay from the bounded history, 410
//! Expired as an ERROR event, bookmarks, timeouts and fault-injected drops.
//!
//! With a selector, an object that starts matching arrives as ADDED and one that stops matching
//! as DELETED, as the real server's watch cache does.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use crate::AppState;
use crate::error::ApiError;
use crate::objects::{selectors, typed};
use crate::resources::ResourceDef;
use crate::router::{Params, Target};
use crate::selector::{FieldSelector, Selectors};
use crate::store::{EventType, Store, StoredEvent};

/// Buffered lines per stream: enough to absorb a burst without stalling on a slow reader.
const STREAM_BUFFER: usize = 256;

/// What one watch asks for.
struct WatchSpec {
    def: &'static ResourceDef,
    ns: Option<String>,
    sel: Selectors,
}

impl WatchSpec {
    /// The event as this watcher should see it, if at all.
    fn render(&self, ev: &StoredEvent) -> Option<Bytes> {
        if self.ns.as_deref().is_some_and(|ns| ns != ev.namespace) {
            return None;
        }
        let matches = |o: &Value| self.sel.is_empty() || self.sel.matches(o);
        let (kind, object) = match ev.kind {
            EventType::Added => (matches(&ev.object).then_some("ADDED")?, &ev.object),
            EventType::Deleted => (matches(&ev.object).then_some("DELETED")?, &ev.object),
            EventType::Modified => match (ev.prev.as_deref().is_some_and(matches), matches(&ev.object)) {
                (true, true) => ("MODIFIED", &ev.object),
                (false, true) => ("ADDED", &ev.object),
                // The real server sends the object as it was before it left the selection.
                (true, false) => ("DELETED", ev.prev.as_ref()?),
                (false, false) => return None,
            },
        };
        Some(line(kind, typed(self.def, object).as_ref()))
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    // Serialising a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, object);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

fn bookmark(def: &ResourceDef, rv: u64, initial_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line("BOOKMARK", &json!({"kind": def.kind, "apiVersion": def.api_version(), "metadata": metadata}))
}

/// Starts a watch on a collection (or on one object, via its name as a field selector).
pub(crate) fn serve(
    state: &Arc<AppState>,
    t: &Target,
    name: Option<&str>,
    params: &Params,
) -> Result<Response, ApiError> {
    let mut sel = selectors(t.def, params)?;
    if let Some(name) = name {
        let by_name = FieldSelector::parse(&format!("metadata.name={name}"), &[])
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        sel.fields = merge_fields(&sel.fields, by_name);
    }
    let spec = WatchSpec { def: t.def, ns: t.ns.clone(), sel };
    let requested = params.get("resourceVersion").filter(|rv| !rv.is_empty());
    let requested = match requested {
        Some(rv) => {
            Some(rv.parse::<u64>().map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?)
        }
        None => None,
    };
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(state.default_watch_timeout);
    let bookmarks = params.flag("allowWatchBookmarks");
    let send_initial = params.flag("sendInitialEvents");
    let (tx, rx) = mpsc::channel::<Bytes>(STREAM_BUFFER);
    let store = state.store.clone();
    let opts = StreamOpts {
        timeout,
        bookmarks,
        bookmark_interval: state.bookmark_interval,
        drop_after: state.faults.watch_drop_after(),
        force_expire: requested.is_some_and(|rv| rv > 0) && state.faults.take_expire_next_watch(),
    };
    tokio::spawn(run(store, spec, requested, send_initial, opts, tx));
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx)) });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-cache, private")],
        Body::from_stream(stream),
    )
        .into_response())
}

fn merge_fields(a: &FieldSelector, b: FieldSelector) -> FieldSelector {
    if a.is_empty() { b } else { a.and(b) }
}

struct StreamOpts {
    timeout: Duration,
    bookmarks: bool,
    bookmark_interval: Duration,
    drop_after: Option<Duration>,
    force_expire: bool,
}

/// The body of one watch: initial events or replay, then live events until timeout or disconnect.
async fn run(
    store: Arc<Store>,
    spec: WatchSpec,
    requested: Option<u64>,
    send_initial: bool,
    opts: StreamOpts,
    tx: mpsc::Sender<Bytes>,
) {
    let slot = spec.def.storage;
    // Subscribe before reading so a commit between the read and the wait is not missed.
    let mut changes = store.subscribe(slot);
    let mut last = match requested {
        Some(rv) if rv > 0 && !send_initial => rv,
        _ => {
            // rv "0" or absent: synthetic ADDED for every current object, then live.
            let Ok(page) = store.list(slot, spec.ns.as_deref(), &spec.sel, None, None) else { return };
            for obj in &page.items {
                if tx.send(line("ADDED", typed(spec.def, obj).as_ref())).await.is_err() {
                    return;
                }
            }
            if send_initial && tx.send(bookmark(spec.def, page.rv, true)).await.is_err() {
                return;
            }
            page.rv
        }
    };
    if opts.force_expire {
        let err = ApiError::expired(last, store.current_rv());
        let _ = tx.send(line("ERROR", &err.to_status())).await;
        return;
    }
    let start = Instant::now();
    let deadline = start + opts.timeout;
    let drop_at = opts.drop_after.map(|d| start + d);
    let mut next_bookmark = start + opts.bookmark_interval;
    loop {
        match store.events_since(slot, last) {
            Ok(events) => {
                for ev in events {
                    last = ev.rv;
                    if let Some(l) = spec.render(&ev)
                        && tx.send(l).await.is_err()
                    {
                        return;
                    }
                }
            }
            Err(expired) => {
                let err = ApiError::expired(expired.requested, expired.oldest);
                let _ = tx.send(line("ERROR", &err.to_status())).await;
                return;
            }
        }
        let wake = drop_at.map_or(deadline, |d| d.min(deadline));
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            _ = tx.closed() => return,
            _ = sleep_until(wake) => {
                if opts.bookmarks && Instant::now() >= deadline {
                    let _ = tx.send(bookmark(spec.def, last, false)).await;
                }
                return;
            }
            _ = sleep_until(next_bookmark), if opts.bookmarks => {
                next_bookmark += opts.bookmark_interval;
                if tx.send(bookmark(spec.def, last, false)).await.is_err() {
                    return;
                }
            }
        }
    }
}
