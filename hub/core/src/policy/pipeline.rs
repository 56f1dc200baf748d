//! The steps of [`decide`](super::decide), applied to one working copy of the state.

use super::rate::{self, Limit};
use super::{
    Decision, Detail, Envelope, Lineage, Override, OverrideAction, PauseDirection, PolicyInput, PolicyState,
    RateLimits, Reason, ReasonCode, Step, stabilise,
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
        self.clamp_evaluation(min, max);
        let recommendation = match self.input.lineage {
            Lineage::Hpa => self.input.evaluated_replicas,
            Lineage::Cpa => self.value,
        };
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
