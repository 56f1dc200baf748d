//! The HPA stabilisation envelope (`stabilizeRecommendationWithBehaviors`, kubernetes#97348).
//!
//! `up = min(recommendations in the scale-up window ∪ {desired})` and
//! `down = max(recommendations in the scale-down window ∪ {desired})`; the result is the current
//! replica count raised to `up` and lowered to `down`. A scale-up therefore needs every recent
//! recommendation to agree, and a scale-down waits until no recent one is higher.

use serde::{Deserialize, Serialize};

use super::EpochMillis;
use super::state::Sample;

/// The envelope computed for one tick; the dashboard draws it next to the replica curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Lowest recommendation in the scale-up window (the value may rise at most to here).
    pub up: i32,
    /// Highest recommendation in the scale-down window (the value may fall at most to here).
    pub down: i32,
}

/// The result of stabilising one recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stabilised {
    /// The stabilised replica count.
    pub replicas: i32,
    /// The envelope it was clamped into.
    pub envelope: Envelope,
    /// The newest stored sample equal to `envelope.up`, when a stored sample set it.
    pub up_sample: Option<Sample>,
    /// The newest stored sample equal to `envelope.down`, when a stored sample set it.
    pub down_sample: Option<Sample>,
}

/// Applies the envelope. Samples count when strictly newer than `now - window` (HPA `After`).
pub(crate) fn stabilise(
    samples: &[Sample],
    now: EpochMillis,
    current: i32,
    desired: i32,
    up_window_ms: i64,
    down_window_ms: i64,
) -> Stabilised {
    let up_cutoff = now.saturating_sub(up_window_ms);
    let down_cutoff = now.saturating_sub(down_window_ms);
    let (mut up, mut down) = (desired, desired);
    let (mut up_sample, mut down_sample) = (None, None);
    // Oldest first with `<=`/`>=`, so ties leave the newest sample as the one to report.
    for sample in samples {
        if sample.at > up_cutoff && sample.replicas <= up && sample.replicas < desired {
            up = sample.replicas;
            up_sample = Some(*sample);
        }
        if sample.at > down_cutoff && sample.replicas >= down && sample.replicas > desired {
            down = sample.replicas;
            down_sample = Some(*sample);
        }
    }
    let replicas = current.max(up).min(down);
    Stabilised { replicas, envelope: Envelope { up, down }, up_sample, down_sample }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(pairs: &[(EpochMillis, i32)]) -> Vec<Sample> {
        pairs.iter().map(|&(at, replicas)| Sample { at, replicas }).collect()
    }

    #[test]
    fn downscale_is_held_at_the_highest_recent_recommendation() {
        let recs = samples(&[(0, 8), (10_000, 6), (20_000, 8)]);
        let out = stabilise(&recs, 30_000, 8, 3, 0, 60_000);
        assert_eq!(out.replicas, 8);
        assert_eq!(out.envelope, Envelope { up: 3, down: 8 });
        assert_eq!(out.down_sample, Some(Sample { at: 20_000, replicas: 8 }));
    }

    #[test]
    fn samples_at_the_window_edge_no_longer_count() {
        let recs = samples(&[(0, 8)]);
        let out = stabilise(&recs, 60_000, 8, 3, 0, 60_000);
        assert_eq!(out.replicas, 3);
        assert_eq!(out.down_sample, None);
    }

    #[test]
    fn upscale_needs_every_recommendation_in_the_up_window_to_agree() {
        let recs = samples(&[(0, 2), (10_000, 7)]);
        let out = stabilise(&recs, 20_000, 2, 9, 30_000, 0);
        assert_eq!(out.replicas, 2);
        assert_eq!(out.up_sample, Some(Sample { at: 0, replicas: 2 }));
        let later = stabilise(&recs, 31_000, 2, 9, 30_000, 0);
        assert_eq!(later.replicas, 7);
    }

    #[test]
    fn the_envelope_fixes_kubernetes_96671() {
        // Issue 96671: a max-over-window rule alone scaled a target that had been lowered (to 5)
        // straight back up to an old high recommendation (10) although the metric now asks for 6.
        // With the envelope and no up window, the target rises only to what is asked for.
        let recs = samples(&[(0, 10)]);
        let out = stabilise(&recs, 20_000, 5, 6, 0, 300_000);
        assert_eq!(out.envelope, Envelope { up: 6, down: 10 });
        assert_eq!(out.replicas, 6);
        // And a value inside the envelope is kept as it is.
        let inside = stabilise(&samples(&[(0, 10), (10_000, 4)]), 20_000, 5, 6, 60_000, 60_000);
        assert_eq!(inside.replicas, 5);
    }
}
