//! The reason chain: one entry per pipeline step that changed or pinned the replica count.

use serde::{Deserialize, Serialize};

use super::EpochMillis;

/// The pipeline step that produced a [`Reason`], in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// The evaluation failed too many ticks in a row: the profile's fallback count stands in
    /// for it (before the pipeline proper, which then treats it as the evaluation).
    Fallback,
    /// `current == 0 && min != 0`: autoscaling is switched off.
    Disabled,
    /// Predictive models combined with the evaluation.
    Predict,
    /// Scale to and from zero: activation from 0, the floor of 1 while inactive, the cooldown
    /// before 1 → 0.
    Activation,
    /// Clamping to the bounds (annotation bounds, or the bounds an override narrowed).
    Clamp,
    /// An operator override (pin, narrowed bounds, pause).
    Override,
    /// The HPA stabilisation envelope.
    Stabilise,
    /// The HPA rate policies.
    Rate,
}

/// Machine-readable reason code; the HPA's condition reasons where the step shares its meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReasonCode {
    /// The profile's fallback replaced a failed evaluation (KEDA's `FallbackExists`).
    FallbackReplicas,
    /// Replicas are 0 and the minimum is not: the de facto off switch (HPA `ScalingDisabled`).
    ScalingDisabled,
    /// The predictions changed the evaluation (`decisionType` over the evaluation and them).
    Predicted,
    /// A due model could not predict (too little history, ...); the evaluation stands.
    PredictionUnavailable,
    /// A target at zero became active and goes to one at once (KEDA's activation).
    Activated,
    /// The target is inactive: it stays at zero, or goes down no further than one until the
    /// cooldown has passed.
    Inactive,
    /// Inactive, at one replica, inside the cooldown: zero comes when it ends.
    ScaleToZeroCooldown,
    /// Inactive for the whole cooldown: one → zero.
    ScaledToZero,
    /// Raised to the minimum (HPA `TooFewReplicas`).
    TooFewReplicas,
    /// Lowered to the maximum (HPA `TooManyReplicas`).
    TooManyReplicas,
    /// An override pinned the replica count.
    OverridePinned,
    /// An override's minimum raised the value.
    OverrideMinReplicas,
    /// An override's maximum lowered the value.
    OverrideMaxReplicas,
    /// An override pauses scaling up.
    ScaleUpPaused,
    /// An override pauses scaling down.
    ScaleDownPaused,
    /// Held below the recommendation by a lower recent recommendation (HPA `ScaleUpStabilized`).
    ScaleUpStabilized,
    /// Held above the recommendation by a higher recent recommendation (HPA `ScaleDownStabilized`).
    ScaleDownStabilized,
    /// Scale-up rate policy reached (HPA `ScaleUpLimit`).
    ScaleUpLimit,
    /// Scale-down rate policy reached (HPA `ScaleDownLimit`).
    ScaleDownLimit,
}

/// One link of the explanation a user sees for a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reason {
    /// Which step acted.
    pub step: Step,
    /// What it did, as a stable code.
    pub code: ReasonCode,
    /// A sentence for humans.
    pub message: String,
    /// The value entering the step.
    pub from: i32,
    /// The value leaving the step.
    pub to: i32,
    /// Step-specific facts (the bounding sample, the rate policy, the override).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Detail>,
}

/// Step-specific facts attached to a [`Reason`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Detail {
    /// The bounds that applied.
    Bounds {
        /// Effective minimum.
        min_replicas: i32,
        /// Effective maximum.
        max_replicas: i32,
    },
    /// The recorded recommendation that bounded the stabilised value.
    Sample {
        /// When that recommendation was made.
        at: EpochMillis,
        /// Its value.
        replicas: i32,
        /// The window it was taken from, in milliseconds.
        window_ms: i64,
        /// When it leaves the window, i.e. when this bound can lift.
        expires_at: EpochMillis,
    },
    /// The rate policy that set the limit.
    RatePolicy {
        /// `Pods` or `Percent`.
        policy_type: super::PolicyType,
        /// The policy's value.
        value: i32,
        /// The policy's period.
        period_seconds: i32,
        /// Replicas at the start of the period (current − added + removed within it).
        period_start_replicas: i64,
    },
    /// The rate limit came from `selectPolicy: Disabled`.
    RateDisabled,
    /// The HPA's scale-up cap without a `behavior:`: at most `max(factor × current, minimum)`.
    ScaleUpCap {
        /// The factor on the current replicas (2).
        factor: i32,
        /// The least the cap allows (4).
        minimum: i32,
    },
    /// The predictive step: each model's prediction (or why it has none) and the combination.
    Prediction {
        /// How they were combined.
        decision_type: crate::predict::DecisionType,
        /// Per model, in config order.
        predictions: Vec<crate::predict::ModelPrediction>,
    },
    /// The activation value against its threshold (thousandths of the value's unit).
    Activation {
        /// The activation value, when it could be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value_milli: Option<i64>,
        /// The threshold it is compared with.
        threshold_milli: i64,
    },
    /// The cooldown before one → zero.
    Cooldown {
        /// The first tick of the current inactive stretch.
        inactive_since: EpochMillis,
        /// The cooldown, in milliseconds.
        cooldown_ms: i64,
        /// When the target may go to zero.
        zero_at: EpochMillis,
    },
    /// The override that acted.
    Override {
        /// Who set it.
        set_by: String,
        /// Why.
        reason: String,
        /// When it expires, if ever.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<EpochMillis>,
    },
}
