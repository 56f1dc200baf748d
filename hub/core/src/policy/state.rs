//! Per-target policy memory: recent recommendations and scale events, stored as JSON.
//!
//! The HPA keeps these in process memory and loses them on restart (hpa-keda.md §1.5); scalehub
//! persists them so a restart neither resets the downscale window nor hands out a fresh rate
//! budget. The state prunes itself so the JSON stays small however long a target lives.

use serde::{Deserialize, Serialize};

use super::EpochMillis;

/// Hard cap on stored recommendations; dominance pruning keeps far fewer in practice.
pub const MAX_RECOMMENDATIONS: usize = 1024;
/// Hard cap on stored scale events per direction (one per second for the HPA's longest period).
pub const MAX_SCALE_EVENTS: usize = 2048;

/// A recommendation as the stabilisation step saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// When it was made.
    pub at: EpochMillis,
    /// The recommended replicas (evaluation clamped to the annotation bounds).
    pub replicas: i32,
}

/// A scale that happened, for the rate policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleEvent {
    /// When the scale call succeeded.
    pub at: EpochMillis,
    /// The size of the change, always positive (the list says which direction).
    pub change: i32,
}

/// Everything the policy remembers between ticks for one target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PolicyState {
    /// Whether the initial recommendation (current replicas) was recorded: like the HPA's
    /// `recordInitialRecommendation`, a new target does not scale down for one window.
    pub seeded: bool,
    /// Recent recommendations, oldest first.
    pub recommendations: Vec<Sample>,
    /// Recent scale-ups, oldest first.
    pub scale_up_events: Vec<ScaleEvent>,
    /// Recent scale-downs, oldest first.
    pub scale_down_events: Vec<ScaleEvent>,
    /// With scale to zero: the first tick of the current inactive stretch (cleared by an
    /// active tick); the cooldown before 1 → 0 counts from here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inactive_since: Option<EpochMillis>,
    /// The predictive models' histories, by model name.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub models: std::collections::BTreeMap<String, crate::predict::ModelState>,
}

impl PolicyState {
    /// Records a successful scale from `from` to `to` replicas; call it after the scale call
    /// succeeded (never in shadow mode or dry runs). No-op when nothing changed.
    pub fn record_scale(&mut self, at: EpochMillis, from: i32, to: i32) {
        let change = i64::from(to) - i64::from(from);
        let event = ScaleEvent { at, change: i32::try_from(change.abs()).unwrap_or(i32::MAX) };
        let events = match change {
            0 => return,
            c if c > 0 => &mut self.scale_up_events,
            _ => &mut self.scale_down_events,
        };
        events.push(event);
        cap_oldest(events, MAX_SCALE_EVENTS);
    }

    /// Appends a recommendation.
    pub(crate) fn record_recommendation(&mut self, at: EpochMillis, replicas: i32) {
        self.recommendations.push(Sample { at, replicas });
    }

    /// Drops what no window or period can read any more.
    ///
    /// Recommendations older than `window_ms` go, then every recommendation that a newer one
    /// makes redundant for both the min (scale-up) and the max (scale-down) envelope. That is
    /// exact for any window length: a sample is only dropped when a newer one is both <= and
    /// >= it, i.e. equal or bracketed by newer values that stay in every window longer.
    pub fn prune(&mut self, now: EpochMillis, window_ms: i64, event_horizon_ms: i64) {
        let cutoff = now.saturating_sub(window_ms);
        self.recommendations.retain(|s| s.at > cutoff);
        self.recommendations = drop_dominated(&self.recommendations);
        cap_oldest(&mut self.recommendations, MAX_RECOMMENDATIONS);

        let cutoff = now.saturating_sub(event_horizon_ms);
        self.scale_up_events.retain(|e| e.at > cutoff);
        self.scale_down_events.retain(|e| e.at > cutoff);
    }
}

/// Keeps a sample only if it is a strict new minimum or maximum scanning from the newest.
fn drop_dominated(samples: &[Sample]) -> Vec<Sample> {
    let mut kept = Vec::with_capacity(samples.len());
    let (mut low, mut high) = (i32::MAX, i32::MIN);
    for sample in samples.iter().rev() {
        if sample.replicas < low || sample.replicas > high {
            kept.push(*sample);
        }
        low = low.min(sample.replicas);
        high = high.max(sample.replicas);
    }
    kept.reverse();
    kept
}

fn cap_oldest<T>(items: &mut Vec<T>, cap: usize) {
    if items.len() > cap {
        items.drain(..items.len() - cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: EpochMillis, replicas: i32) -> Sample {
        Sample { at, replicas }
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut state = PolicyState { seeded: true, ..PolicyState::default() };
        state.record_recommendation(1_000, 3);
        state.record_scale(2_000, 3, 5);
        state.record_scale(3_000, 5, 4);
        let json = serde_json::to_string(&state).unwrap();
        assert!(json.contains("\"scaleUpEvents\""), "{json}");
        let back: PolicyState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, state);
        // An empty document (a target stored before any tick) reads as the default state.
        assert_eq!(serde_json::from_str::<PolicyState>("{}").unwrap(), PolicyState::default());
    }

    #[test]
    fn scale_events_are_kept_per_direction_with_positive_changes() {
        let mut state = PolicyState::default();
        state.record_scale(1, 2, 6);
        state.record_scale(2, 6, 1);
        state.record_scale(3, 1, 1);
        assert_eq!(state.scale_up_events, vec![ScaleEvent { at: 1, change: 4 }]);
        assert_eq!(state.scale_down_events, vec![ScaleEvent { at: 2, change: 5 }]);
    }

    #[test]
    fn pruning_drops_expired_and_dominated_samples_but_keeps_envelope_extremes() {
        let mut state = PolicyState::default();
        for (at, replicas) in [(0, 9), (10, 5), (20, 7), (30, 5), (40, 6), (50, 4)] {
            state.record_recommendation(at, replicas);
        }
        state.prune(50, 45, 0);
        // 0 expired; 10 (5) is equal to the newer 30 (5); 30 (5) is bracketed by the newer 4 and 6.
        assert_eq!(state.recommendations, vec![sample(20, 7), sample(40, 6), sample(50, 4)]);
    }

    #[test]
    fn pruning_expires_scale_events_beyond_the_horizon_and_caps_sizes() {
        let mut state = PolicyState::default();
        state.record_scale(100, 1, 2);
        state.record_scale(200, 2, 1);
        state.prune(300, 0, 150);
        assert_eq!(state.scale_up_events, vec![]);
        assert_eq!(state.scale_down_events.len(), 1);

        for i in 0..(MAX_SCALE_EVENTS as i64 + 10) {
            state.record_scale(i, 1, 2);
        }
        assert_eq!(state.scale_up_events.len(), MAX_SCALE_EVENTS);
        assert_eq!(state.scale_up_events[0].at, 10);
    }
}
