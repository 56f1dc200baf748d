//! The hub's event bus: target loops publish what they record, and whoever listens (the
//! API's live stream) subscribes. The loops know nothing of their listeners.
//!
//! Publishing never waits, and costs nothing when no one listens (the event is not even
//! built). An event is encoded to JSON once, only if a subscriber's filter wants it, and shared
//! by every subscriber that does. Each subscriber's queue is bounded by bytes
//! ([`SUBSCRIBER_BYTES`]), not events: one that does not keep up is dropped with an
//! [`Message::End`] saying so (it should reconnect and refetch), so a client that never reads
//! costs the hub at most that much.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::mpsc;

use scalehub_store::{DecisionRow, Kind, TargetKey, TargetRow};

/// Bytes of encoded events queued for one subscriber before it is dropped. 10,000 targets
/// ticking every 15 s publish ~670 decisions a second of ~1–2 KB each: several seconds of
/// slack for a browser, while 128 streams that all stopped reading hold at most 512 MiB.
pub const SUBSCRIBER_BYTES: usize = 4 << 20;

/// Something a target loop recorded.
#[derive(Clone, Debug)]
pub enum HubEvent {
    /// A decision was recorded (its `id` is 0: the bus does not wait for the commit).
    Decision(Arc<DecisionRow>),
    /// A target's row changed (state, error or replicas).
    Target(Arc<TargetRow>),
}

impl HubEvent {
    /// The target the event is about.
    pub fn key(&self) -> &TargetKey {
        match self {
            HubEvent::Decision(d) => &d.key,
            HubEvent::Target(t) => &t.key,
        }
    }

    /// The event's name and its JSON, as subscribers receive it.
    fn encode(&self) -> Published {
        let (name, data) = match self {
            HubEvent::Decision(d) => ("decision", serde_json::to_string(d.as_ref())),
            HubEvent::Target(t) => ("target", serde_json::to_string(t.as_ref())),
        };
        // Rows are plain JSON values; encoding them cannot fail, but never panic a publisher.
        Published { name, data: data.unwrap_or_else(|_| "{}".into()) }
    }
}

/// An encoded event: its name (`decision`, `target`) and JSON data.
#[derive(Debug)]
pub struct Published {
    pub name: &'static str,
    pub data: String,
}

/// What a subscription receives.
#[derive(Debug, Clone)]
pub enum Message {
    Event(Arc<Published>),
    /// The last message: the subscriber fell this many bytes behind and was dropped.
    End {
        queued_bytes: usize,
    },
}

/// Which targets a subscriber wants; `None` matches any.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub namespace: Option<String>,
    pub kind: Option<Kind>,
    pub name: Option<String>,
}

impl Filter {
    fn wants(&self, key: &TargetKey) -> bool {
        self.namespace.as_ref().is_none_or(|n| *n == key.namespace)
            && self.kind.is_none_or(|k| k == key.kind)
            && self.name.as_ref().is_none_or(|n| *n == key.name)
    }
}

struct Subscriber {
    id: u64,
    filter: Filter,
    tx: mpsc::UnboundedSender<Message>,
    /// Bytes sent and not yet received.
    queued: Arc<AtomicUsize>,
}

#[derive(Default)]
struct Subscribers {
    next_id: u64,
    list: Vec<Subscriber>,
}

/// The publishing side, one per hub.
#[derive(Clone, Default)]
pub struct Bus {
    subscribers: Arc<Mutex<Subscribers>>,
    /// `subscribers.list.len()`, read without the lock on every publish.
    count: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").field("subscribers", &self.count.load(Ordering::Relaxed)).finish()
    }
}

impl Bus {
    fn lock(&self) -> MutexGuard<'_, Subscribers> {
        // The list stays consistent whatever a panicking holder was doing.
        self.subscribers.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether anyone listens; a publisher may skip building an event when not.
    pub fn listening(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    /// Publishes the event `event` builds, if anyone listens; never blocks.
    pub fn publish(&self, event: impl FnOnce() -> HubEvent) {
        if !self.listening() {
            return;
        }
        let event = event();
        let key = event.key();
        if !self.lock().list.iter().any(|s| s.filter.wants(key)) {
            return;
        }
        // Encoded outside the lock: publishers on other threads need not wait for it.
        let published = Arc::new(event.encode());
        let size = published.data.len();
        let mut subscribers = self.lock();
        subscribers.list.retain(|s| {
            if !s.filter.wants(key) {
                return true;
            }
            let queued = s.queued.load(Ordering::Acquire);
            if queued + size > SUBSCRIBER_BYTES {
                tracing::info!(queued_bytes = queued, "a live stream fell behind and was dropped");
                let _ = s.tx.send(Message::End { queued_bytes: queued });
                return false;
            }
            s.queued.fetch_add(size, Ordering::AcqRel);
            // A receiver that went away without unsubscribing is removed here.
            s.tx.send(Message::Event(published.clone())).is_ok()
        });
        self.count.store(subscribers.list.len(), Ordering::Relaxed);
    }

    /// A new subscription to the events `filter` wants, from now on.
    pub fn subscribe(&self, filter: Filter) -> Subscription {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let mut subscribers = self.lock();
        let id = subscribers.next_id;
        subscribers.next_id += 1;
        subscribers.list.push(Subscriber { id, filter, tx, queued: queued.clone() });
        self.count.store(subscribers.list.len(), Ordering::Relaxed);
        Subscription { id, rx, queued, bus: Arc::downgrade(&self.subscribers), count: self.count.clone() }
    }
}

/// The receiving side; dropping it unsubscribes.
pub struct Subscription {
    id: u64,
    rx: mpsc::UnboundedReceiver<Message>,
    queued: Arc<AtomicUsize>,
    bus: Weak<Mutex<Subscribers>>,
    count: Arc<AtomicUsize>,
}

impl Subscription {
    /// The next message; `None` once the bus has dropped this subscriber (after its `End`).
    pub async fn recv(&mut self) -> Option<Message> {
        let message = self.rx.recv().await?;
        self.took(&message);
        Some(message)
    }

    /// The next message if one is queued.
    pub fn try_recv(&mut self) -> Option<Message> {
        let message = self.rx.try_recv().ok()?;
        self.took(&message);
        Some(message)
    }

    fn took(&self, message: &Message) {
        if let Message::Event(published) = message {
            self.queued.fetch_sub(published.data.len(), Ordering::AcqRel);
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(subscribers) = self.bus.upgrade() {
            let mut subscribers = subscribers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            subscribers.list.retain(|s| s.id != self.id);
            self.count.store(subscribers.list.len(), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(namespace: &str, name: &str, padding: usize) -> HubEvent {
        HubEvent::Target(Arc::new(TargetRow {
            key: TargetKey::new(namespace, Kind::Deployment, name),
            uid: None,
            state: "active".into(),
            spec: serde_json::json!({ "padding": "x".repeat(padding) }).into(),
            error: None,
            current_replicas: Some(1),
            desired_replicas: Some(1),
            first_seen: 0,
            last_seen: 0,
            removed_at: None,
            updated_at: 0,
        }))
    }

    fn name_of(message: Option<Message>) -> String {
        match message {
            Some(Message::Event(p)) => {
                let row: serde_json::Value = serde_json::from_str(&p.data).unwrap();
                row["name"].as_str().unwrap().to_owned()
            }
            other => panic!("expected an event, got {other:?}"),
        }
    }

    #[test]
    fn an_event_is_built_only_when_someone_listens() {
        let bus = Bus::default();
        let mut built = 0;
        bus.publish(|| {
            built += 1;
            target("shop", "web", 0)
        });
        assert_eq!(built, 0);
        let mut sub = bus.subscribe(Filter::default());
        bus.publish(|| {
            built += 1;
            target("shop", "web", 0)
        });
        assert_eq!(built, 1);
        assert_eq!(name_of(sub.try_recv()), "web");
        drop(sub);
        assert!(!bus.listening());
    }

    #[test]
    fn a_subscriber_gets_only_what_its_filter_wants() {
        let bus = Bus::default();
        let mut shop = bus.subscribe(Filter { namespace: Some("shop".into()), ..Filter::default() });
        bus.publish(|| target("batch", "workers", 0));
        bus.publish(|| target("shop", "web", 0));
        assert_eq!(name_of(shop.try_recv()), "web");
        assert!(shop.try_recv().is_none());
    }

    #[test]
    fn a_subscriber_that_falls_behind_by_bytes_is_dropped_with_an_end() {
        let bus = Bus::default();
        let mut slow = bus.subscribe(Filter::default());
        let mut fast = bus.subscribe(Filter::default());
        // 64 KiB events: the slow subscriber's queue is full after 64 of them.
        let events = SUBSCRIBER_BYTES / (64 << 10) + 8;
        for i in 0..events {
            bus.publish(|| target("shop", &format!("w{i}"), 64 << 10));
            assert_eq!(name_of(fast.try_recv()), format!("w{i}"), "a subscriber that keeps up loses nothing");
        }
        let mut received = 0;
        let end = loop {
            match slow.try_recv() {
                Some(Message::Event(_)) => received += 1,
                Some(Message::End { queued_bytes }) => break queued_bytes,
                None => panic!("no end of stream after {received} events"),
            }
        };
        assert!(received < events && end <= SUBSCRIBER_BYTES, "{received} events, {end} bytes queued");
        assert!(end > SUBSCRIBER_BYTES - (64 << 10) - 100, "dropped early: {end} bytes queued");
        assert!(slow.try_recv().is_none(), "nothing after the end");
        bus.publish(|| target("shop", "after", 0));
        assert_eq!(name_of(fast.try_recv()), "after");
        assert!(slow.try_recv().is_none());
    }
}
