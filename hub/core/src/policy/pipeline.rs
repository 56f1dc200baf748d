//! The steps of [`decide`](super::decide), applied to one working copy of the state.

use super::rate::{self, Limit};
use super::{
    Activation, Decision, Detail, Envelope, Lineage, Override, OverrideAction, PauseDirection, PolicyInput,
    PolicyState, RateLimits, Reason, ReasonCode, Step, stabilise,
};

/// The HPA's scale-up cap without a `behavior:` (`scaleUpLimitFactor`, `scaleUpLimitMinimum`).
const LEGACY_SCALE_UP_FACTOR: i32 = 2;
const LEGACY_SCALE_UP_MINIMUM: i32 = 4;

/// Runs every step and returns the decision with the next state.
pub(super) fn run(state: &PolicyState, input: &PolicyInput<'_>) -> Decision {
    let mut run = Run::new(state, input);
    run.execute();
    run.finish()
}

/// The working set of one [`decide`] call.
struct Run<'a> {
    input: &'a PolicyInput<'a>,
    state: PolicyState,
    active: Option<&'a Override>,
    value: i32,
    reasons: Vec<Reason>,
    envelope: Option<Envelope>,
    /// The value before the clamp: the evaluation, or its combination with the predictions.
    unclamped: i32,
    /// The combination with the predictions, when the profile has predictive models.
    predicted: Option<i32>,
}

impl<'a> Run<'a> {
    fn new(state: &PolicyState, input: &'a PolicyInput<'a>) -> Self {
        Run {
            input,
            state: state.clone(),
            active: input.active_override.filter(|o| o.active_at(input.now)),
            value: input.evaluated_replicas,
            reasons: Vec::new(),
            envelope: None,
            unclamped: input.evaluated_replicas,
            predicted: None,
        }
    }

    fn execute(&mut self) {
        let PolicyInput { current_replicas: current, min_replicas: min, max_replicas: max, .. } = *self.input;
        let pinned = match self.active.map(|o| o.action) {
            Some(OverrideAction::Pin { replicas }) => Some(replicas),
            _ => None,
        };
        if pinned.is_none() && current == 0 && min != 0 {
            let message = format!("replicas are 0 and the minimum is {min}: autoscaling is off");
            self.step(Step::Disabled, ReasonCode::ScalingDisabled, 0, message, None);
            return;
        }
        self.predict();
        // Scale to zero: only with a minimum of 0, and never against a pin.
        let zero = self.input.activation.filter(|_| min == 0 && pinned.is_none());
        if let Some(activation) = zero {
            self.track_activity(activation);
            if current == 0 {
                self.wake_from_zero(activation);
                return;
            }
        }
        // While it has replicas a scale-to-zero target runs with a floor of one.
        let min = if zero.is_some() { self.floor_at_one(min) } else { min };
        self.clamp_evaluation(min, max);
        let recommendation = self.recommendation();
        self.seed(current);
        if let Some(replicas) = pinned {
            self.state.record_recommendation(self.input.now, recommendation);
            self.pin(replicas);
            return;
        }
        let (low, high) = self.apply_override(min, max);
        if !self.clamp_current(low, high) {
            self.stabilise();
            self.rate_limit(low, high);
        }
        self.state.record_recommendation(self.input.now, recommendation);
        if let Some(activation) = zero {
            self.last_step_to_zero(activation);
        }
    }

    /// What the stabilisation window records: the HPA's unclamped recommendation, or the
    /// CPA's clamped evaluation.
    fn recommendation(&self) -> i32 {
        match self.input.lineage {
            Lineage::Hpa => self.unclamped,
            Lineage::Cpa => self.value,
        }
    }

    /// Runs the predictive models and combines their predictions with the evaluation.
    fn predict(&mut self) {
        let Some(config) = self.input.predictive else {
            return;
        };
        let outcome = crate::predict::run(config, &mut self.state.models, self.input.now, self.value);
        let said: Vec<String> = outcome
            .predictions
            .iter()
            .filter_map(|p| match (p.replicas, &p.note) {
                (Some(replicas), _) => Some(format!("{} predicts {replicas}", p.name)),
                (None, Some(note)) => Some(format!("{} has no prediction ({note})", p.name)),
                (None, None) => None,
            })
            .collect();
        let unavailable = outcome.predictions.iter().any(|p| p.note.is_some());
        let detail = Some(Detail::Prediction { decision_type: config.decision_type, predictions: outcome.predictions });
        let decision = config.decision_type.as_str();
        if outcome.replicas != self.value {
            let message = format!(
                "{}: the {decision} with the evaluation {} is {}",
                said.join(", "),
                self.value,
                outcome.replicas
            );
            self.step(Step::Predict, ReasonCode::Predicted, outcome.replicas, message, detail);
        } else if unavailable {
            let message = format!("{}: the evaluation {} stands", said.join(", "), self.value);
            self.step(Step::Predict, ReasonCode::PredictionUnavailable, outcome.replicas, message, detail);
        }
        self.unclamped = self.value;
        self.predicted = Some(self.value);
    }

    /// Starts or ends the inactive stretch the cooldown counts from.
    fn track_activity(&mut self, activation: Activation) {
        if activation.active {
            self.state.inactive_since = None;
        } else if self.state.inactive_since.is_none() {
            self.state.inactive_since = Some(self.input.now);
        }
    }

    /// A target at zero: to one at once when active (unless an override pauses scaling up),
    /// else it stays at zero.
    fn wake_from_zero(&mut self, activation: Activation) {
        let detail = Some(Detail::Activation {
            value_milli: activation.value_milli,
            threshold_milli: activation.threshold_milli,
        });
        if !activation.active {
            if self.value != 0 {
                let message = format!("inactive ({}): stays at 0", activation.comparison());
                self.step(Step::Activation, ReasonCode::Inactive, 0, message, detail);
            }
        } else if self.paused(true) {
            let message = format!("active ({}), but scaling up is paused by an override", activation.comparison());
            let detail = self.override_detail();
            self.step(Step::Override, ReasonCode::ScaleUpPaused, 0, message, detail);
        } else {
            let message = format!("active ({}): 0 → 1 at once", activation.comparison());
            self.step(Step::Activation, ReasonCode::Activated, 1, message, detail);
        }
        let recommendation = self.recommendation();
        self.seed(0);
        self.state.record_recommendation(self.input.now, recommendation);
    }

    /// The minimum a target with replicas runs with: one, and a reason when the evaluation
    /// asked for less.
    fn floor_at_one(&mut self, min: i32) -> i32 {
        if self.value < 1 {
            let message =
                "below one replica only by the cooldown's last step: the windows and rate policies govern the way down to 1"
                    .to_owned();
            let activation = self
                .input
                .activation
                .map(|a| Detail::Activation { value_milli: a.value_milli, threshold_milli: a.threshold_milli });
            self.step(Step::Activation, ReasonCode::Inactive, 1, message, activation);
        }
        min.max(1)
    }

    /// The last step: one → zero once the target has been inactive for the whole cooldown.
    fn last_step_to_zero(&mut self, activation: Activation) {
        let current = self.input.current_replicas;
        let allows_zero = match self.active.map(|o| o.action) {
            Some(OverrideAction::Bounds { .. }) => self.active.is_some_and(|o| o.narrow(0, i32::MAX).0 == 0),
            Some(OverrideAction::Pause { .. }) => !self.paused(false),
            _ => true,
        };
        let Some(since) = self.state.inactive_since.filter(|_| !activation.active) else {
            return;
        };
        if current != 1 || self.value != 1 || !allows_zero {
            return;
        }
        let now = self.input.now;
        let zero_at = since.saturating_add(activation.cooldown_ms);
        let detail = Some(Detail::Cooldown { inactive_since: since, cooldown_ms: activation.cooldown_ms, zero_at });
        let span = |ms: i64| {
            crate::duration::format_duration(std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
        };
        if now >= zero_at {
            let message = format!(
                "inactive ({}) for {}, the whole cooldown: 1 → 0",
                activation.comparison(),
                span(now.saturating_sub(since))
            );
            self.step(Step::Activation, ReasonCode::ScaledToZero, 0, message, detail);
        } else {
            // The same words every tick of the cooldown, so waiting it out records one decision.
            let message = format!(
                "inactive ({}): 1 → 0 once inactive for the whole cooldown ({})",
                activation.comparison(),
                span(activation.cooldown_ms)
            );
            self.step(Step::Activation, ReasonCode::ScaleToZeroCooldown, 1, message, detail);
        }
    }

    fn finish(mut self) -> Decision {
        let input = self.input;
        let window = input.upscale_window.max(input.downscale_window);
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        let horizon = input.rate_limits.map_or(0, RateLimits::horizon_ms);
        self.state.prune(input.now, window_ms, horizon);
        Decision {
            current_replicas: input.current_replicas,
            evaluated_replicas: input.evaluated_replicas,
            desired_replicas: self.value,
            wants_scale: self.value != input.current_replicas,
            envelope: self.envelope,
            predicted_replicas: self.predicted,
            reasons: self.reasons,
            next_state: self.state,
        }
    }

    /// Appends a reason and moves the value.
    fn step(&mut self, step: Step, code: ReasonCode, to: i32, message: String, detail: Option<Detail>) {
        self.reasons.push(Reason { step, code, message, from: self.value, to, detail });
        self.value = to;
    }

    fn seed(&mut self, current: i32) {
        if !self.state.seeded {
            self.state.seeded = true;
            if self.input.lineage == Lineage::Hpa {
                self.state.record_recommendation(self.input.now, current);
            }
        }
    }

    fn override_detail(&self) -> Option<Detail> {
        self.active.map(|o| Detail::Override { set_by: o.set_by.clone(), reason: o.reason.clone(), until: o.until })
    }

    fn clamp_evaluation(&mut self, min: i32, max: i32) {
        let bounds = Some(Detail::Bounds { min_replicas: min, max_replicas: max });
        if self.value < min {
            let message = format!("the evaluation {} is below the minimum {min}", self.value);
            self.step(Step::Clamp, ReasonCode::TooFewReplicas, min, message, bounds);
        } else if self.value > max {
            let message = format!("the evaluation {} is above the maximum {max}", self.value);
            self.step(Step::Clamp, ReasonCode::TooManyReplicas, max, message, bounds);
        }
    }

    fn pin(&mut self, replicas: i32) {
        let PolicyInput { min_replicas: min, max_replicas: max, .. } = *self.input;
        let mut message = format!("pinned to {replicas} by an override");
        if !(min..=max).contains(&replicas) {
            message.push_str(&format!(" (outside the bounds [{min}, {max}], applied as set)"));
        }
        let detail = self.override_detail();
        self.step(Step::Override, ReasonCode::OverridePinned, replicas, message, detail);
    }

    /// Applies bounds and pause overrides; returns the effective bounds.
    fn apply_override(&mut self, min: i32, max: i32) -> (i32, i32) {
        let Some(active) = self.active else {
            return (min, max);
        };
        let current = self.input.current_replicas;
        let detail = self.override_detail();
        match active.action {
            OverrideAction::Bounds { .. } => {
                let (low, high) = active.narrow(min, max);
                if self.value < low {
                    let message = format!("raised to the override minimum {low}");
                    self.step(Step::Override, ReasonCode::OverrideMinReplicas, low, message, detail);
                } else if self.value > high {
                    let message = format!("lowered to the override maximum {high}");
                    self.step(Step::Override, ReasonCode::OverrideMaxReplicas, high, message, detail);
                }
                return (low, high);
            }
            OverrideAction::Pause { direction } => {
                let blocks_up = direction != PauseDirection::Down;
                let blocks_down = direction != PauseDirection::Up;
                if blocks_up && self.value > current {
                    let message = "scaling up is paused by an override".to_owned();
                    self.step(Step::Override, ReasonCode::ScaleUpPaused, current, message, detail);
                } else if blocks_down && self.value < current {
                    let message = "scaling down is paused by an override".to_owned();
                    self.step(Step::Override, ReasonCode::ScaleDownPaused, current, message, detail);
                }
            }
            OverrideAction::Pin { .. } => {}
        }
        (min, max)
    }

    fn paused(&self, up: bool) -> bool {
        match self.active.map(|o| o.action) {
            Some(OverrideAction::Pause { direction }) => match direction {
                PauseDirection::Both => true,
                PauseDirection::Up => up,
                PauseDirection::Down => !up,
            },
            _ => false,
        }
    }

    /// Moves a target whose current replicas are out of bounds straight to the bound.
    fn clamp_current(&mut self, low: i32, high: i32) -> bool {
        let current = self.input.current_replicas;
        let bounds = Some(Detail::Bounds { min_replicas: low, max_replicas: high });
        if current < low && !self.paused(true) {
            let message = format!("current replicas {current} are below the minimum {low}");
            self.step(Step::Clamp, ReasonCode::TooFewReplicas, low, message, bounds);
            true
        } else if current > high && !self.paused(false) {
            let message = format!("current replicas {current} are above the maximum {high}");
            self.step(Step::Clamp, ReasonCode::TooManyReplicas, high, message, bounds);
            true
        } else {
            false
        }
    }

    fn stabilise(&mut self) {
        let input = self.input;
        let up_ms = i64::try_from(input.upscale_window.as_millis()).unwrap_or(i64::MAX);
        let down_ms = i64::try_from(input.downscale_window.as_millis()).unwrap_or(i64::MAX);
        let desired = self.value;
        let current = input.current_replicas;
        let out = stabilise::stabilise(&self.state.recommendations, input.now, current, desired, up_ms, down_ms);
        self.envelope = Some(out.envelope);
        if out.replicas == desired {
            return;
        }
        let (code, sample, window_ms, message) = if desired >= current {
            let message = format!("a lower recent recommendation ({}) holds the scale-up", out.envelope.up);
            (ReasonCode::ScaleUpStabilized, out.up_sample, up_ms, message)
        } else {
            let message = format!("a higher recent recommendation ({}) holds the scale-down", out.envelope.down);
            (ReasonCode::ScaleDownStabilized, out.down_sample, down_ms, message)
        };
        let detail = sample.map(|s| Detail::Sample {
            at: s.at,
            replicas: s.replicas,
            window_ms,
            expires_at: s.at.saturating_add(window_ms),
        });
        self.step(Step::Stabilise, code, out.replicas, message, detail);
    }

    fn rate_limit(&mut self, low: i32, high: i32) {
        let input = self.input;
        let current = input.current_replicas;
        let Some(limits) = input.rate_limits else {
            if input.lineage == Lineage::Hpa && self.value > current {
                self.legacy_scale_up_cap(current);
            }
            return;
        };
        let (up_events, down_events) = (&self.state.scale_up_events, &self.state.scale_down_events);
        if self.value > current {
            let limit = rate::scale_up_limit(current, up_events, down_events, &limits.scale_up, input.now);
            // The limit never goes backwards past current (stale events are still in the period).
            let allowed = limit.replicas.max(i64::from(current)).min(i64::from(high));
            if i64::from(self.value) > allowed {
                let to = i32::try_from(allowed).unwrap_or(high);
                let message = format!("scale-up rate limit allows at most {to} replicas now");
                self.step(Step::Rate, ReasonCode::ScaleUpLimit, to, message, rate_detail(limit));
            }
        } else if self.value < current {
            let limit = rate::scale_down_limit(current, up_events, down_events, &limits.scale_down, input.now);
            let allowed = limit.replicas.min(i64::from(current)).max(i64::from(low));
            if i64::from(self.value) < allowed {
                let to = i32::try_from(allowed).unwrap_or(low);
                let message = format!("scale-down rate limit allows at least {to} replicas now");
                self.step(Step::Rate, ReasonCode::ScaleDownLimit, to, message, rate_detail(limit));
            }
        }
    }
}

impl Run<'_> {
    /// The HPA without a `behavior:`: a scale-up reaches at most `max(2 × current, 4)`.
    fn legacy_scale_up_cap(&mut self, current: i32) {
        let cap = current.saturating_mul(LEGACY_SCALE_UP_FACTOR).max(LEGACY_SCALE_UP_MINIMUM);
        if self.value > cap {
            let message = format!(
                "without a behavior the HPA scales up to at most max({LEGACY_SCALE_UP_FACTOR} × {current}, \
                 {LEGACY_SCALE_UP_MINIMUM}) = {cap} replicas at a time"
            );
            let detail = Detail::ScaleUpCap { factor: LEGACY_SCALE_UP_FACTOR, minimum: LEGACY_SCALE_UP_MINIMUM };
            self.step(Step::Rate, ReasonCode::ScaleUpLimit, cap, message, Some(detail));
        }
    }
}

fn rate_detail(limit: Limit) -> Option<Detail> {
    Some(match limit.policy {
        Some((policy, start)) => Detail::RatePolicy {
            policy_type: policy.policy_type,
            value: policy.value,
            period_seconds: policy.period_seconds,
            period_start_replicas: start,
        },
        None => Detail::RateDisabled,
    })
}
