//! Pipeline tests against the HPA's documented behaviour (hpa-keda.md §1.3).

use std::time::Duration;

use super::*;

mod predict;
mod zero;

const MIN: i64 = 60_000;

/// A target driven tick by tick, persisting state like the hub does.
struct Target {
    state: PolicyState,
    current: i32,
    min: i32,
    max: i32,
    up_window: Duration,
    down_window: Duration,
    rate: Option<RateLimits>,
    override_: Option<Override>,
    lineage: Lineage,
    activation: Option<Activation>,
    predictive: Option<crate::predict::Predictive>,
}

impl Target {
    fn new(current: i32) -> Self {
        Target {
            state: PolicyState::default(),
            current,
            min: 1,
            max: 10,
            up_window: Duration::ZERO,
            down_window: Duration::from_secs(300),
            rate: None,
            override_: None,
            lineage: Lineage::Hpa,
            activation: None,
            predictive: None,
        }
    }

    /// As the CPA: a new target's window starts empty.
    fn cpa(mut self) -> Self {
        self.lineage = Lineage::Cpa;
        self
    }

    fn windows(mut self, up_secs: u64, down_secs: u64) -> Self {
        self.up_window = Duration::from_secs(up_secs);
        self.down_window = Duration::from_secs(down_secs);
        self
    }

    fn bounds(mut self, min: i32, max: i32) -> Self {
        (self.min, self.max) = (min, max);
        self
    }

    fn rate(mut self, rate: RateLimits) -> Self {
        self.rate = Some(rate);
        self
    }

    fn with_override(mut self, action: OverrideAction, until: Option<EpochMillis>) -> Self {
        self.override_ =
            Some(Override { action, until, reason: "incident".into(), set_by: "oncall".into(), set_at: 0 });
        self
    }

    /// Decides without touching the state (a dry run).
    fn peek(&self, now: EpochMillis, evaluated: i32) -> Decision {
        let input = PolicyInput {
            now,
            current_replicas: self.current,
            evaluated_replicas: evaluated,
            min_replicas: self.min,
            max_replicas: self.max,
            upscale_window: self.up_window,
            downscale_window: self.down_window,
            rate_limits: self.rate.as_ref(),
            active_override: self.override_.as_ref(),
            lineage: self.lineage,
            activation: self.activation,
            predictive: self.predictive.as_ref(),
        };
        decide(&self.state, &input)
    }

    /// Decides, "scales" successfully and persists the state through JSON like the store does.
    fn tick(&mut self, now: EpochMillis, evaluated: i32) -> Decision {
        let decision = self.peek(now, evaluated);
        let mut state = decision.next_state.clone();
        if decision.wants_scale {
            state.record_scale(now, self.current, decision.desired_replicas);
            self.current = decision.desired_replicas;
        }
        let json = serde_json::to_string(&state).unwrap();
        self.state = serde_json::from_str(&json).unwrap();
        decision
    }
}

fn codes(decision: &Decision) -> Vec<ReasonCode> {
    decision.reasons.iter().map(|r| r.code).collect()
}

fn rules(select: SelectPolicy, policies: &[(PolicyType, i32, i32)]) -> RateRules {
    RateRules {
        select_policy: select,
        policies: policies
            .iter()
            .map(|&(policy_type, value, period_seconds)| RatePolicy { policy_type, value, period_seconds })
            .collect(),
    }
}

fn unlimited() -> RateRules {
    rules(SelectPolicy::Max, &[(PolicyType::Percent, 1000, 15)])
}

#[test]
fn evaluations_outside_the_bounds_are_clamped() {
    let mut target = Target::new(3).windows(0, 0).bounds(2, 6);
    let high = target.tick(0, 50);
    assert_eq!(high.desired_replicas, 6);
    assert_eq!(codes(&high), [ReasonCode::TooManyReplicas]);
    assert_eq!((high.reasons[0].from, high.reasons[0].to), (50, 6));
    let low = target.tick(1_000, 0);
    assert_eq!(low.desired_replicas, 2);
    assert_eq!(codes(&low), [ReasonCode::TooFewReplicas]);
}

#[test]
fn zero_replicas_with_a_nonzero_minimum_disables_scaling_and_records_nothing() {
    let target = Target::new(0).windows(0, 0);
    let decision = target.peek(0, 5);
    assert_eq!(decision.desired_replicas, 0);
    assert!(!decision.wants_scale);
    assert_eq!(codes(&decision), [ReasonCode::ScalingDisabled]);
    assert_eq!(decision.reasons[0].step, Step::Disabled);
    assert_eq!(decision.next_state, PolicyState::default());
}

#[test]
fn a_zero_minimum_allows_scaling_from_and_to_zero() {
    let mut target = Target::new(0).windows(0, 0).bounds(0, 10);
    assert_eq!(target.tick(0, 3).desired_replicas, 3);
    assert_eq!(target.tick(1_000, 0).desired_replicas, 0);
}

#[test]
fn downscale_is_held_for_the_window_then_released() {
    let mut target = Target::new(10).windows(0, 300);
    assert_eq!(target.tick(0, 10).desired_replicas, 10);
    let held = target.tick(MIN, 4);
    assert_eq!(held.desired_replicas, 10);
    assert!(!held.wants_scale);
    assert_eq!(codes(&held), [ReasonCode::ScaleDownStabilized]);
    assert_eq!(
        held.reasons[0].detail,
        Some(Detail::Sample { at: 0, replicas: 10, window_ms: 300_000, expires_at: 300_000 })
    );
    assert_eq!(held.envelope, Some(Envelope { up: 4, down: 10 }));
    // Still inside the window one tick before it ends.
    assert_eq!(target.tick(5 * MIN - 1, 4).desired_replicas, 10);
    // The 10 leaves the window at exactly 5 minutes (the HPA counts samples strictly after the cutoff).
    let released = target.tick(5 * MIN, 4);
    assert_eq!(released.desired_replicas, 4);
    assert!(released.reasons.is_empty());
}

#[test]
fn a_new_target_does_not_scale_down_before_one_window_has_passed() {
    let mut target = Target::new(8).windows(0, 300);
    let first = target.tick(0, 2);
    assert_eq!(first.desired_replicas, 8);
    assert_eq!(codes(&first), [ReasonCode::ScaleDownStabilized]);
    assert_eq!(target.tick(5 * MIN, 2).desired_replicas, 2);
}

#[test]
fn upscale_waits_until_every_recommendation_in_the_up_window_agrees() {
    let mut target = Target::new(2).windows(180, 0);
    target.tick(0, 2);
    let held = target.tick(MIN, 8);
    assert_eq!(held.desired_replicas, 2);
    assert_eq!(codes(&held), [ReasonCode::ScaleUpStabilized]);
    // At 3 min the 2s from t=0 have left the window; only 8s remain, and without a behavior
    // the HPA's legacy cap lets 2 replicas become at most max(2 × 2, 4) = 4.
    assert_eq!(target.tick(2 * MIN, 8).desired_replicas, 2);
    let released = target.tick(3 * MIN, 8);
    assert_eq!(released.desired_replicas, 4);
    assert_eq!(codes(&released), [ReasonCode::ScaleUpLimit]);
}

#[test]
fn without_a_behavior_the_hpa_caps_a_scale_up_at_twice_current_or_four() {
    // convertDesiredReplicasWithRules: scaleUpLimit = max(2 × current, 4).
    for (current, evaluated, expected) in [(1, 9, 4), (3, 9, 6), (5, 9, 9), (0, 9, 4), (6, 20, 10)] {
        let mut target = Target::new(current).windows(0, 0).bounds(0, 10);
        let decision = target.tick(0, evaluated);
        assert_eq!(decision.desired_replicas, expected, "{current} -> {evaluated}");
    }
    let capped = Target::new(3).windows(0, 0).tick(0, 9);
    let reason = &capped.reasons[0];
    assert_eq!((reason.step, reason.code, reason.from, reason.to), (Step::Rate, ReasonCode::ScaleUpLimit, 9, 6));
    assert_eq!(reason.detail, Some(Detail::ScaleUpCap { factor: 2, minimum: 4 }));
    assert!(reason.message.contains("max(2 × 3, 4) = 6"), "{}", reason.message);
    // The cap applies per tick: the next tick goes on from 6.
    let mut target = Target::new(3).windows(0, 0);
    target.tick(0, 9);
    assert_eq!(target.current, 6);
    assert_eq!(target.tick(15_000, 9).desired_replicas, 9);
    // A scale-down is not capped.
    assert_eq!(Target::new(9).windows(0, 0).tick(0, 1).desired_replicas, 1);
}

#[test]
fn a_cpa_target_without_a_behavior_has_no_rate_limit() {
    let decision = Target::new(1).cpa().windows(0, 0).tick(0, 9);
    assert_eq!(decision.desired_replicas, 9);
    assert!(decision.reasons.is_empty());
}

#[test]
fn a_behavior_replaces_the_legacy_cap() {
    let policies = vec![RatePolicy { policy_type: PolicyType::Pods, value: 20, period_seconds: 15 }];
    let rules = RateRules { select_policy: SelectPolicy::Max, policies };
    let rate = RateLimits { scale_up: rules.clone(), scale_down: rules };
    let decision = Target::new(1).windows(0, 0).rate(rate).tick(0, 9);
    assert_eq!(decision.desired_replicas, 9);
}

#[test]
fn the_hpa_window_records_the_unclamped_recommendation_so_raising_the_maximum_applies_at_once() {
    // The metrics ask for 14 with a maximum of 10; an up window of 3 minutes.
    let mut target = Target::new(10).windows(180, 0);
    assert_eq!(target.tick(0, 14).desired_replicas, 10);
    let clamped = target.tick(4 * MIN, 14);
    assert_eq!(clamped.desired_replicas, 10);
    assert_eq!(codes(&clamped), [ReasonCode::TooManyReplicas]);
    assert_eq!(target.state.recommendations.last().map(|s| s.replicas), Some(14));
    // A minute later the user raises the maximum to 20; the metrics still ask for 14. The HPA
    // stabilises against the recorded 14, so the target rises at once.
    target.max = 20;
    let raised = target.tick(5 * MIN, 14);
    assert_eq!(raised.desired_replicas, 14);
    // A CPA target records what it was clamped to, as the CPA does, so a recorded 10 holds it.
    let mut cpa = Target::new(10).cpa().windows(180, 0);
    cpa.tick(0, 14);
    cpa.tick(4 * MIN, 14);
    assert_eq!(cpa.state.recommendations.last().map(|s| s.replicas), Some(10));
    cpa.max = 20;
    let held = cpa.tick(5 * MIN, 14);
    assert_eq!(held.desired_replicas, 10);
    assert_eq!(codes(&held), [ReasonCode::ScaleUpStabilized]);
}

#[test]
fn the_envelope_does_not_jump_to_an_old_high_recommendation_kubernetes_96671() {
    let mut target = Target::new(10).windows(0, 300);
    target.tick(0, 10);
    // Someone lowered the workload by hand; the metric now asks for 6.
    target.current = 5;
    let decision = target.tick(MIN, 6);
    assert_eq!(decision.desired_replicas, 6);
    assert_eq!(decision.envelope, Some(Envelope { up: 6, down: 10 }));
}

#[test]
fn a_pods_policy_limits_additions_per_period() {
    let scale_up = rules(SelectPolicy::Max, &[(PolicyType::Pods, 2, 60)]);
    let mut target = Target::new(2).windows(0, 0).rate(RateLimits { scale_up, scale_down: unlimited() });
    let first = target.tick(0, 10);
    assert_eq!(first.desired_replicas, 4);
    assert_eq!(codes(&first), [ReasonCode::ScaleUpLimit]);
    assert_eq!(
        first.reasons[0].detail,
        Some(Detail::RatePolicy {
            policy_type: PolicyType::Pods,
            value: 2,
            period_seconds: 60,
            period_start_replicas: 2
        })
    );
    // 30 s later the +2 is still in the period: period start is 2, so the limit stays 4.
    let held = target.tick(30_000, 10);
    assert_eq!(held.desired_replicas, 4);
    assert!(!held.wants_scale);
    // Once the event leaves the 60 s period the budget is back.
    assert_eq!(target.tick(60_000, 10).desired_replicas, 6);
}

#[test]
fn a_percent_policy_rounds_up_when_growing_and_truncates_when_shrinking() {
    let percent = rules(SelectPolicy::Max, &[(PolicyType::Percent, 50, 60)]);
    let limits = RateLimits { scale_up: percent.clone(), scale_down: percent };
    let up = Target::new(3).windows(0, 0).rate(limits.clone()).peek(0, 10);
    assert_eq!(up.desired_replicas, 5); // ceil(3 × 1.5)
    let mut down = Target::new(5).windows(0, 0).rate(limits);
    down.state.seeded = true;
    assert_eq!(down.peek(0, 1).desired_replicas, 2); // int(5 × 0.5)
}

#[test]
fn scale_downs_in_the_period_raise_the_period_start_for_scale_ups() {
    let scale_up = rules(SelectPolicy::Max, &[(PolicyType::Pods, 1, 60)]);
    let mut target = Target::new(6).windows(0, 0).rate(RateLimits { scale_up, scale_down: unlimited() });
    target.tick(0, 6);
    assert_eq!(target.tick(1_000, 3).desired_replicas, 3);
    // Period start = 3 − 0 + 3 = 6, so one more pod than that is allowed: straight back to 7.
    assert_eq!(target.tick(2_000, 9).desired_replicas, 7);
}

#[test]
fn select_policy_min_max_and_disabled_choose_the_allowed_change() {
    let both = [(PolicyType::Pods, 4, 60), (PolicyType::Percent, 100, 60)];
    let make = |select| RateLimits { scale_up: rules(select, &both), scale_down: unlimited() };
    let target = |select| Target::new(10).windows(0, 0).bounds(1, 100).rate(make(select));
    assert_eq!(target(SelectPolicy::Max).peek(0, 50).desired_replicas, 20);
    assert_eq!(target(SelectPolicy::Min).peek(0, 50).desired_replicas, 14);
    let disabled = target(SelectPolicy::Disabled).peek(0, 50);
    assert_eq!(disabled.desired_replicas, 10);
    assert_eq!(codes(&disabled), [ReasonCode::ScaleUpLimit]);
    assert_eq!(disabled.reasons[0].detail, Some(Detail::RateDisabled));
}

#[test]
fn hpa_default_behavior_allows_four_pods_or_double_per_fifteen_seconds() {
    let target = Target::new(1).windows(0, 0).bounds(1, 100).rate(RateLimits::hpa_default());
    assert_eq!(target.peek(0, 50).desired_replicas, 5);
    let target = Target::new(10).windows(0, 0).bounds(1, 100).rate(RateLimits::hpa_default());
    assert_eq!(target.peek(0, 50).desired_replicas, 20);
}

#[test]
fn current_replicas_outside_the_bounds_go_straight_to_the_bound() {
    let rate = RateLimits { scale_up: rules(SelectPolicy::Max, &[(PolicyType::Pods, 1, 60)]), scale_down: unlimited() };
    let decision = Target::new(1).windows(300, 300).bounds(5, 10).rate(rate).peek(0, 7);
    assert_eq!(decision.desired_replicas, 5);
    assert_eq!(codes(&decision), [ReasonCode::TooFewReplicas]);
    assert_eq!(decision.reasons[0].message, "current replicas 1 are below the minimum 5");
}

#[test]
fn a_pin_is_applied_literally_even_outside_the_bounds_and_when_disabled() {
    let pin = OverrideAction::Pin { replicas: 20 };
    let mut target = Target::new(0).with_override(pin, None);
    let decision = target.tick(0, 3);
    assert_eq!(decision.desired_replicas, 20);
    assert_eq!(codes(&decision), [ReasonCode::OverridePinned]);
    assert!(decision.reasons[0].message.contains("outside the bounds [1, 10]"));
    assert!(matches!(&decision.reasons[0].detail, Some(Detail::Override { set_by, .. }) if set_by == "oncall"));
    // The evaluation is still recorded, so the windows are meaningful when the pin expires.
    assert!(decision.next_state.recommendations.iter().any(|s| s.replicas == 3));
}

#[test]
fn an_expired_override_is_ignored() {
    let pin = OverrideAction::Pin { replicas: 7 };
    let target = Target::new(4).windows(0, 0).with_override(pin, Some(10_000));
    assert_eq!(target.peek(9_999, 4).desired_replicas, 7);
    let after = target.peek(10_000, 4);
    assert_eq!(after.desired_replicas, 4);
    assert!(after.reasons.is_empty());
}

#[test]
fn override_bounds_narrow_the_annotation_bounds() {
    let narrowed = OverrideAction::Bounds { min_replicas: Some(4), max_replicas: Some(6) };
    let target = Target::new(5).windows(0, 0).with_override(narrowed, None);
    let high = target.peek(0, 9);
    assert_eq!(high.desired_replicas, 6);
    assert_eq!(codes(&high), [ReasonCode::OverrideMaxReplicas]);
    let low = target.peek(0, 0);
    assert_eq!(low.desired_replicas, 4);
    assert_eq!(codes(&low), [ReasonCode::TooFewReplicas, ReasonCode::OverrideMinReplicas]);
}

#[test]
fn pauses_block_their_direction_only() {
    let pause = |direction| OverrideAction::Pause { direction };
    let up = Target::new(5).windows(0, 0).with_override(pause(PauseDirection::Up), None);
    assert_eq!(up.peek(0, 8).desired_replicas, 5);
    assert_eq!(codes(&up.peek(0, 8)), [ReasonCode::ScaleUpPaused]);
    assert_eq!(up.peek(0, 2).desired_replicas, 2);

    let down = Target::new(5).windows(0, 0).with_override(pause(PauseDirection::Down), None);
    assert_eq!(down.peek(0, 2).desired_replicas, 5);
    assert_eq!(down.peek(0, 8).desired_replicas, 8);

    let both = Target::new(5).windows(0, 0).with_override(pause(PauseDirection::Both), None);
    assert_eq!(both.peek(0, 2).desired_replicas, 5);
    assert_eq!(both.peek(0, 8).desired_replicas, 5);
    // A pause also holds a target whose current replicas are outside the bounds.
    let mut outside = Target::new(15).windows(0, 0).with_override(pause(PauseDirection::Both), None);
    assert_eq!(outside.tick(0, 3).desired_replicas, 15);
}

#[test]
fn a_dry_run_leaves_the_state_untouched_and_is_repeatable() {
    let mut target = Target::new(6).windows(0, 300);
    target.tick(0, 6);
    let before = target.state.clone();
    let first = target.peek(MIN, 2);
    let second = target.peek(MIN, 2);
    assert_eq!(first, second);
    assert_eq!(target.state, before);
    assert_ne!(first.next_state, before);
}

#[test]
fn decisions_serialise_without_the_state() {
    let decision = Target::new(10).windows(0, 300).peek(0, 3);
    let json = serde_json::to_value(&decision).unwrap();
    assert_eq!(json["desiredReplicas"], 10);
    assert_eq!(json["reasons"][0]["step"], "stabilise");
    assert_eq!(json["reasons"][0]["code"], "ScaleDownStabilized");
    assert_eq!(json["reasons"][0]["detail"]["kind"], "sample");
    assert!(json.get("nextState").is_none());
}

#[test]
fn the_stored_state_stays_small_over_a_long_run() {
    let mut target = Target::new(5).windows(60, 300).rate(RateLimits::hpa_default());
    for i in 0..10_000 {
        let evaluated = 1 + i * 7 % 10;
        target.tick(i64::from(i) * 15_000, evaluated);
    }
    assert!(target.state.recommendations.len() <= 20, "{}", target.state.recommendations.len());
    assert!(target.state.scale_up_events.len() <= 2);
}

#[test]
fn a_new_hpa_target_holds_a_scale_down_for_a_window_and_a_new_cpa_target_does_not() {
    // The HPA seeds the window with the current replicas: 8 holds until five minutes pass.
    let mut hpa = Target::new(8).windows(0, 60);
    assert_eq!(hpa.tick(0, 3).desired_replicas, 8);
    assert_eq!(hpa.tick(61_000, 3).desired_replicas, 3);
    // The CPA's window starts empty: the first evaluation applies, later ones are held.
    let mut cpa = Target::new(8).windows(0, 60).cpa();
    assert_eq!(cpa.tick(0, 3).desired_replicas, 3);
    assert_eq!(cpa.tick(10_000, 6).desired_replicas, 6);
    let held = cpa.tick(20_000, 2);
    assert_eq!(held.desired_replicas, 6, "the 6 ten seconds ago is inside the window");
    assert_eq!(cpa.tick(71_000, 2).desired_replicas, 2);
}
