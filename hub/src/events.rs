//! Kubernetes Events on workloads, like the HPA's, without an event storm.
//!
//! Ticks hand events to one bounded queue and never wait for the API server; one
//! writer publishes them through kube's `Recorder` (which itself folds repeats into an
//! event series). A repeat of the same reason and note for a target is suppressed for
//! `repeat_after`, so a hook failing every 15 s yields one Event, not 240 an hour.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::workload::TargetKey;

/// Room for events waiting to be written; when full, new events are dropped and counted,
/// because a tick must never block on the API server for an Event.
const QUEUE: usize = 1024;

/// One event to publish on a workload.
#[derive(Clone, Debug)]
pub struct WorkloadEvent {
    /// The workload.
    pub key: TargetKey,
    /// Its uid, so `kubectl describe` finds the event.
    pub uid: Option<String>,
    /// Warning or normal.
    pub warning: bool,
    /// PascalCase reason, e.g. `SuccessfulRescale`.
    pub reason: String,
    /// Human-readable note.
    pub note: String,
}

/// An event on anything, as the writer publishes it.
#[derive(Clone, Debug)]
struct Pending {
    reference: ObjectReference,
    /// Repeats of the same key, reason and note are suppressed.
    key: String,
    warning: bool,
    reason: String,
    note: String,
    action: &'static str,
}

impl From<WorkloadEvent> for Pending {
    fn from(ev: WorkloadEvent) -> Self {
        let reference = ObjectReference {
            api_version: Some("apps/v1".into()),
            kind: Some(ev.key.kind.as_str().into()),
            namespace: Some(ev.key.namespace.clone()),
            name: Some(ev.key.name.clone()),
            uid: ev.uid.clone(),
            ..Default::default()
        };
        Pending {
            reference,
            key: ev.key.to_string(),
            warning: ev.warning,
            reason: ev.reason,
            note: ev.note,
            action: "Scale",
        }
    }
}

/// Cheap-to-clone handle that queues events.
#[derive(Clone)]
pub struct Events {
    tx: Option<mpsc::Sender<Pending>>,
}

impl Events {
    /// Starts the writer task publishing as `reporter`.
    /// Each publication may take `timeout`; a hung API server delays Events, never ticks.
    pub fn spawn(client: Client, reporter: &str, repeat_after: Duration, timeout: Duration) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let recorder = Recorder::new(client, Reporter { controller: reporter.into(), instance: None });
        tokio::spawn(writer(recorder, rx, repeat_after, timeout));
        Self { tx: Some(tx) }
    }

    /// A sink that drops everything (tests, dry runs).
    pub fn disabled() -> Self {
        Self { tx: None }
    }

    /// Queues an event; returns false if it had to be dropped.
    pub fn emit(&self, ev: WorkloadEvent) -> bool {
        self.queue(ev.into())
    }

    /// Queues an event on the hub's own Pod (`namespace/name`), e.g. a config reload.
    pub fn emit_on_pod(&self, namespace: &str, name: &str, warning: bool, reason: &str, note: String) -> bool {
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: Some(namespace.to_owned()),
            name: Some(name.to_owned()),
            ..Default::default()
        };
        let key = format!("{namespace}/Pod/{name}");
        self.queue(Pending { reference, key, warning, reason: reason.to_owned(), note, action: "Reload" })
    }

    fn queue(&self, ev: Pending) -> bool {
        match &self.tx {
            Some(tx) => tx.try_send(ev).is_ok(),
            None => false,
        }
    }
}

async fn writer(recorder: Recorder, mut rx: mpsc::Receiver<Pending>, repeat_after: Duration, timeout: Duration) {
    let mut last: HashMap<(String, String), (String, Instant)> = HashMap::new();
    while let Some(ev) = rx.recv().await {
        let now = Instant::now();
        let slot = (ev.key.clone(), ev.reason.clone());
        if let Some((note, at)) = last.get(&slot)
            && *note == ev.note
            && now.duration_since(*at) < repeat_after
        {
            continue;
        }
        last.insert(slot, (ev.note.clone(), now));
        if last.len() > 50_000 {
            last.retain(|_, (_, at)| now.duration_since(*at) < repeat_after);
        }
        let event = Event {
            type_: if ev.warning { EventType::Warning } else { EventType::Normal },
            reason: ev.reason.clone(),
            note: Some(truncate(&ev.note, 1000)),
            action: ev.action.into(),
            secondary: None,
        };
        match tokio::time::timeout(timeout, recorder.publish(&event, &ev.reference)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(regarding = %ev.key, error = %e, "event not published"),
            Err(_) => {
                tracing::debug!(regarding = %ev.key, ?timeout, "event not published: the API server did not answer")
            }
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
