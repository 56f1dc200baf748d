//! The hub's event bus: target loops publish what they record, and whoever listens (the
//! API's live stream) subscribes. The loops know nothing of their listeners.
//!
//! A `tokio::sync::broadcast` channel: publishing never waits, and costs nothing when no one
//! listens (the event is not even built); a subscriber that falls behind loses the oldest
//! events and is told how many.

use std::sync::Arc;

use tokio::sync::broadcast;

use scalehub_store::{DecisionRow, TargetKey, TargetRow};

/// Events buffered per subscriber. 10,000 targets ticking every 15 s make ~670 decisions a
/// second; 4096 gives a browser several seconds of slack before it must refetch.
pub const CAPACITY: usize = 4096;

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
}

/// The publishing side, one per hub.
#[derive(Clone, Debug)]
pub struct Bus {
    tx: broadcast::Sender<HubEvent>,
}

impl Default for Bus {
    fn default() -> Self {
        Self { tx: broadcast::channel(CAPACITY).0 }
    }
}

impl Bus {
    /// Whether anyone listens; a publisher may skip building an event when not.
    pub fn listening(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Publishes the event `event` builds, if anyone listens; never blocks.
    pub fn publish(&self, event: impl FnOnce() -> HubEvent) {
        if self.listening() {
            let _ = self.tx.send(event());
        }
    }

    /// A new subscription, receiving every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<HubEvent> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str) -> HubEvent {
        HubEvent::Target(Arc::new(TargetRow {
            key: TargetKey::new("shop", scalehub_store::Kind::Deployment, name),
            uid: None,
            state: "active".into(),
            spec: serde_json::Value::Null,
            error: None,
            current_replicas: Some(1),
            desired_replicas: Some(1),
            first_seen: 0,
            last_seen: 0,
            removed_at: None,
            updated_at: 0,
        }))
    }

    #[test]
    fn an_event_is_built_only_when_someone_listens() {
        let bus = Bus::default();
        let mut built = 0;
        bus.publish(|| {
            built += 1;
            target("web")
        });
        assert_eq!(built, 0);
        let mut rx = bus.subscribe();
        bus.publish(|| {
            built += 1;
            target("web")
        });
        assert_eq!(built, 1);
        assert_eq!(rx.try_recv().unwrap().key().name, "web");
    }

    #[test]
    fn a_subscriber_that_falls_behind_is_told_how_much_it_missed() {
        let bus = Bus::default();
        let mut rx = bus.subscribe();
        for i in 0..CAPACITY + 3 {
            bus.publish(|| target(&format!("w{i}")));
        }
        assert!(matches!(rx.try_recv(), Err(broadcast::error::TryRecvError::Lagged(3))));
        assert_eq!(rx.try_recv().unwrap().key().name, "w3");
    }
}
