//! Scale to and from zero (`zero.rs`): activation, the floor of one, the cooldown.

use super::*;

/// A scale-to-zero target: minimum 0, active while the evaluation is above 0, 5 min cooldown.
fn zero_target(current: i32) -> Target {
    Target::new(current).bounds(0, 10).windows(0, 300)
}

impl Target {
    /// A tick whose activation value is the evaluation itself (a hook profile's rule).
    fn zero_tick(&mut self, now: EpochMillis, evaluated: i32) -> Decision {
        self.activation = Some(Activation::new(Some(i64::from(evaluated) * 1000), 0, 5 * MIN));
        self.tick(now, evaluated)
    }
}

#[test]
fn an_active_target_at_zero_goes_to_one_at_once() {
    let mut target = zero_target(0).windows(600, 300);
    let decision = target.zero_tick(0, 7);
    assert_eq!(decision.desired_replicas, 1, "0 → 1, whatever the up window says");
    assert_eq!(codes(&decision), [ReasonCode::Activated]);
    assert_eq!(decision.reasons[0].detail, Some(Detail::Activation { value_milli: Some(7000), threshold_milli: 0 }));
    assert!(decision.reasons[0].message.contains("7 > the activation threshold 0"), "{}", decision.reasons[0].message);
    // From one the usual pipeline goes on (here held by the 10-minute up window's seed of 0).
    assert_eq!(target.zero_tick(15_000, 7).desired_replicas, 1);
    // An inactive target at zero stays there, saying why when the evaluation asked for more.
    let mut idle = zero_target(0);
    let decision = idle.zero_tick(0, 0);
    assert_eq!((decision.desired_replicas, decision.reasons.len()), (0, 0));
    idle.activation = Some(Activation::new(Some(0), 2000, 5 * MIN));
    let below = idle.tick(15_000, 1);
    assert_eq!(below.desired_replicas, 0);
    assert_eq!(codes(&below), [ReasonCode::Inactive]);
}

#[test]
fn the_way_down_to_one_keeps_the_windows_and_rate_policies_keda_7770() {
    // 8 replicas, the evaluation drops to 0: the 5-minute window and a 1-pod-a-minute rate
    // policy govern every step to 1; zero comes only after the cooldown, never straight from 8.
    let rule = |value| RateRules {
        select_policy: SelectPolicy::Max,
        policies: vec![RatePolicy { policy_type: PolicyType::Pods, value, period_seconds: 60 }],
    };
    let mut target = zero_target(8).rate(RateLimits { scale_up: rule(4), scale_down: rule(2) });
    let first = target.zero_tick(0, 0);
    assert_eq!(first.desired_replicas, 8, "held by the window seeded with 8");
    assert_eq!(codes(&first), [ReasonCode::Inactive, ReasonCode::ScaleDownStabilized]);
    let mut replicas = vec![];
    let mut now = 0;
    while now < 20 * MIN {
        now += 30_000;
        replicas.push(target.zero_tick(now, 0).desired_replicas);
    }
    // After the window: 2 pods a minute, 8 → 6 → 4 → 2 → 1, then 0 once 5 minutes of inactivity
    // have passed (they have by then: inactive since t = 0).
    let first_change = replicas.iter().position(|&r| r != 8).unwrap();
    assert_eq!(first_change, 9, "the window holds until t = 5 min: {replicas:?}");
    let steps: Vec<i32> = replicas.windows(2).filter(|w| w[0] != w[1]).map(|w| w[1]).collect();
    assert_eq!(steps, [6, 4, 2, 1, 0], "{replicas:?}");
    assert!(!replicas[..replicas.iter().position(|&r| r == 1).unwrap()].contains(&0));
}

#[test]
fn one_goes_to_zero_only_after_an_unbroken_cooldown() {
    let mut target = zero_target(1).windows(0, 0);
    let held = target.zero_tick(0, 0);
    assert_eq!(held.desired_replicas, 1);
    assert_eq!(codes(&held), [ReasonCode::Inactive, ReasonCode::ScaleToZeroCooldown]);
    assert_eq!(
        held.reasons[1].detail,
        Some(Detail::Cooldown { inactive_since: 0, cooldown_ms: 5 * MIN, zero_at: 5 * MIN })
    );
    assert_eq!(target.zero_tick(4 * MIN, 0).desired_replicas, 1);
    // One active tick breaks the stretch: the cooldown starts again.
    assert_eq!(target.zero_tick(4 * MIN + 30_000, 1).desired_replicas, 1);
    assert_eq!(target.state.inactive_since, None);
    assert_eq!(target.zero_tick(5 * MIN, 0).desired_replicas, 1);
    assert_eq!(target.state.inactive_since, Some(5 * MIN));
    assert_eq!(target.zero_tick(9 * MIN, 0).desired_replicas, 1);
    let zero = target.zero_tick(10 * MIN, 0);
    assert_eq!(zero.desired_replicas, 0);
    assert_eq!(codes(&zero), [ReasonCode::Inactive, ReasonCode::ScaledToZero]);
    assert_eq!(target.current, 0);
    // The stretch survives a restart: it lives in the persisted state (tick round-trips it).
    let json = serde_json::to_string(&target.state).unwrap();
    assert!(json.contains("\"inactiveSince\""), "{json}");
}

#[test]
fn scale_to_zero_needs_a_minimum_of_zero_and_yields_to_overrides() {
    // A minimum of 1: the activation is ignored, replicas = 0 stays the off switch.
    let mut one = Target::new(0).windows(0, 0);
    one.activation = Some(Activation::new(Some(5000), 0, 0));
    assert_eq!(codes(&one.tick(0, 5)), [ReasonCode::ScalingDisabled]);
    // A pause of scale-downs keeps the last replica.
    let mut paused = zero_target(1).windows(0, 0);
    paused.override_ = Some(Override {
        action: OverrideAction::Pause { direction: PauseDirection::Down },
        set_by: "ops".into(),
        reason: "incident".into(),
        until: None,
        set_at: 0,
    });
    paused.activation = Some(Activation::new(Some(0), 0, 0));
    assert_eq!(paused.tick(0, 0).desired_replicas, 1);
    // A pin wins over everything, zero included.
    let mut pinned = zero_target(0).windows(0, 0);
    pinned.override_ = Some(Override {
        action: OverrideAction::Pin { replicas: 3 },
        set_by: "ops".into(),
        reason: "load test".into(),
        until: None,
        set_at: 0,
    });
    pinned.activation = Some(Activation::new(Some(0), 0, 0));
    assert_eq!(pinned.tick(0, 0).desired_replicas, 3);
}

#[test]
fn a_tick_without_an_activation_value_counts_as_active() {
    let mut target = zero_target(1).windows(0, 0);
    target.zero_tick(0, 0);
    assert_eq!(target.state.inactive_since, Some(0));
    target.activation = Some(Activation::new(None, 0, 5 * MIN));
    let unknown = target.tick(10 * MIN, 0);
    assert_eq!(unknown.desired_replicas, 1, "missing data never empties a workload");
    assert_eq!(target.state.inactive_since, None, "and it breaks the inactive stretch");
}
