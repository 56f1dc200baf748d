//! The pure decision pipeline: evaluated replicas in, final replicas and the reasons out.
//!
//! # Steps, in order
//!
//! 1. **disabled** — `current == 0 && min != 0`: no scaling and nothing recorded (HPA/CPA
//!    semantics: replicas = 0 is the de facto off switch); `min == 0` enables scale to/from zero.
//!    Only an active pin overrides this (see 4).
//! 2. **predict** — with a profile's `predictive:` models, the evaluation joins each model's
//!    history and is combined with the due models' predictions (`decisionType`); from here on
//!    the combination stands in for the evaluation (see `crate::predict`).
//! 3. **clamp** — the evaluation is clamped to the annotation bounds `[min, max]`
//!    (`TooFewReplicas` / `TooManyReplicas`). The stabilisation history records the
//!    *recommendation* whatever the later steps do, so the windows still reflect what the metrics
//!    said when an override ends: for an HPA-lineage target the unclamped evaluation, as the HPA
//!    records `prenormalizedDesiredReplicas` (so raising `maxReplicas` during a window lets the
//!    target rise at once to what the metrics asked for); for a CPA-lineage target the clamped
//!    one, as the CPA records it. Stabilising the clamped value against either history gives the
//!    same result as the HPA's stabilise-then-clamp.
//! 4. **override** — precedence: *pin > pause > bounds*, as only one override exists per target.
//!    - A **pin** is applied *literally* and ends the pipeline: it wins over the evaluation, the
//!      annotation bounds, the windows, the rate limits and the replicas = 0 off switch. An
//!      on-call operator who says "hold 20 until 18:00" means 20; the pin is audited (who, why,
//!      until), expires by itself, and its reason says when it lies outside the bounds.
//!    - **Bounds** narrow `[min, max]` (they are clamped into it, so they never widen it).
//!    - A **pause** keeps the value at or below (`up`), at or above (`down`) or equal to
//!      (`both`) the current replicas; it also wins over step 5.
//! 5. **clamp (current)** — like the HPA, a target whose *current* replicas lie outside the
//!    effective bounds goes straight to the nearest bound, bypassing windows and rate limits.
//! 6. **stabilise** — the HPA envelope (see `stabilise.rs`); the reason names the recorded
//!    recommendation that bounded the value and when it leaves its window.
//! 7. **rate** — the HPA rate policies, when the profile has a `behavior:`; the result never
//!    leaves the effective bounds. Without a `behavior:`, an HPA-lineage target gets the HPA's
//!    legacy cap (a scale-up reaches at most `max(2 × current, 4)` per tick,
//!    `convertDesiredReplicasWithRules`) and a CPA-lineage one no rate limit, as in the CPA.
//!
//! **Scale to and from zero** (`activation` set and `min == 0`, see `zero.rs`): a target at 0
//! goes to 1 at once when active and stays at 0 otherwise; a target with replicas runs the steps
//! above with a floor of 1, and goes 1 → 0 as a last step only after an unbroken inactive
//! cooldown, so windows and rate policies govern every step down to 1.
//!
//! Expired overrides are ignored here too, but removing them is the caller's job
//! ([`Override::active_at`]).
//!
//! An HPA-lineage state is seeded with the current replicas (HPA `recordInitialRecommendation`),
//! so a newly opted-in target does not scale down before one downscale window has passed.
//!
//! # State and dry runs
//!
//! [`decide`] never mutates its input: it returns the next [`PolicyState`] inside the
//! [`Decision`]. A dry run discards it; a real tick persists it (shadow mode too — the
//! recommendation history is what the metrics said). After a *successful* scale call the caller
//! records the event with [`PolicyState::record_scale`] and persists again; failed or skipped
//! scales (shadow, dry run) record nothing, so rate budgets reflect only real changes.

mod overrides;
mod pipeline;
mod rate;
mod reason;
mod stabilise;
mod state;
#[cfg(test)]
mod tests;
mod zero;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use overrides::{Override, OverrideAction, OverrideError, PauseDirection};
pub use rate::{PolicyType, RateLimits, RatePolicy, RateRules, SelectPolicy};
pub use reason::{Detail, Reason, ReasonCode, Step};
pub use stabilise::Envelope;
pub use state::{MAX_RECOMMENDATIONS, MAX_SCALE_EVENTS, PolicyState, Sample, ScaleEvent};
pub use zero::Activation;

/// A point in time as milliseconds since the Unix epoch (serialisable, easy to store in SQLite).
pub type EpochMillis = i64;

/// Everything one decision needs besides the stored state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolicyInput<'a> {
    /// The time of this tick.
    pub now: EpochMillis,
    /// Replicas the workload has now (its `/scale` `spec.replicas`).
    pub current_replicas: i32,
    /// What the evaluate hook (or built-in logic) asked for.
    pub evaluated_replicas: i32,
    /// Lower bound from the annotations / profile.
    pub min_replicas: i32,
    /// Upper bound from the annotations / profile.
    pub max_replicas: i32,
    /// Scale-up stabilisation window (0 = react at once).
    pub upscale_window: Duration,
    /// Scale-down stabilisation window.
    pub downscale_window: Duration,
    /// Rate policies, if the profile has a `behavior:`.
    pub rate_limits: Option<&'a RateLimits>,
    /// The target's override, if any; ignored when not active at `now`.
    pub active_override: Option<&'a Override>,
    /// Whose rules the steps follow where the HPA and the CPA differ (see [`Lineage`]).
    pub lineage: Lineage,
    /// With scale to zero (a profile's `scaleToZero:`): whether the target is active this tick.
    /// Acts only when `min_replicas` is 0; see `zero.rs`.
    pub activation: Option<Activation>,
    /// Predictive models whose predictions combine with the evaluation before the other steps.
    pub predictive: Option<&'a crate::predict::Predictive>,
}

/// Whose rules fill in what neither the annotations nor the profile set, and whose rules the
/// pipeline follows where the HPA and the CPA differ.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lineage {
    /// A CPA profile (hooks): the CPA's defaults and rules — no downscale window, `per-pod`; a
    /// new target's window starts empty, so the first evaluation applies at once; the window
    /// records the clamped evaluation; no `behavior:` means no rate limits.
    Cpa,
    /// A built-in profile (the HPA's calculation): the HPA's defaults and rules — a 5-minute
    /// downscale window seeded with the current replicas (`recordInitialRecommendation`); the
    /// window records the unclamped recommendation; no `behavior:` means the HPA's legacy
    /// scale-up cap of `max(2 × current, 4)` per tick.
    #[default]
    Hpa,
}

/// The outcome of one pass through the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// Replicas before the decision.
    pub current_replicas: i32,
    /// The raw evaluation.
    pub evaluated_replicas: i32,
    /// The final replica count.
    pub desired_replicas: i32,
    /// Whether a scale call is wanted (`desired != current`); shadow mode only records it.
    pub wants_scale: bool,
    /// The stabilisation envelope, when the stabilise step ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<Envelope>,
    /// The evaluation combined with the predictive models' predictions, when the profile has
    /// any (what the dashboard draws beside the evaluation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_replicas: Option<i32>,
    /// Every step that changed or pinned the value, in order.
    pub reasons: Vec<Reason>,
    /// The state to persist after this decision (not part of the decision record).
    #[serde(skip)]
    pub next_state: PolicyState,
}

/// Runs the pipeline; see the module documentation for the order and precedence of the steps.
pub fn decide(state: &PolicyState, input: &PolicyInput<'_>) -> Decision {
    pipeline::run(state, input)
}
