//! HPA rate policies (`behavior.scaleUp/scaleDown.policies`), with the HPA's formulas copied
//! exactly from `calculateScaleUpLimitWithScalingRules` / `calculateScaleDownLimitWithBehaviors`.

use serde::{Deserialize, Serialize};

use super::EpochMillis;
use super::state::ScaleEvent;

/// How a rate policy measures change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyType {
    /// An absolute number of pods per period.
    Pods,
    /// A percentage of the replicas at the start of the period.
    Percent,
}

/// How several policies of one direction combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SelectPolicy {
    /// The policy allowing the largest change wins (HPA default).
    #[default]
    Max,
    /// The policy allowing the smallest change wins.
    Min,
    /// No scaling in this direction at all.
    Disabled,
}

/// One rate policy: at most `value` pods (or percent) per `period_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RatePolicy {
    /// `Pods` or `Percent`.
    #[serde(rename = "type")]
    pub policy_type: PolicyType,
    /// Pods or percent allowed per period; > 0.
    pub value: i32,
    /// Length of the look-back period; 1..=1800 like the HPA.
    pub period_seconds: i32,
}

/// The rate rules of one direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateRules {
    /// How the policies combine.
    pub select_policy: SelectPolicy,
    /// The policies; never empty after config validation (the HPA requires one).
    pub policies: Vec<RatePolicy>,
}

/// Rate rules for both directions: the resolved form of a profile's `behavior:`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimits {
    /// Rules for scaling up.
    pub scale_up: RateRules,
    /// Rules for scaling down.
    pub scale_down: RateRules,
}

impl RateRules {
    /// The HPA's scale-up default: max(4 pods, 100%) per 15 s.
    pub fn hpa_scale_up_default() -> Self {
        RateRules {
            select_policy: SelectPolicy::Max,
            policies: vec![
                RatePolicy { policy_type: PolicyType::Pods, value: 4, period_seconds: 15 },
                RatePolicy { policy_type: PolicyType::Percent, value: 100, period_seconds: 15 },
            ],
        }
    }

    /// The HPA's scale-down default: 100% per 15 s.
    pub fn hpa_scale_down_default() -> Self {
        RateRules {
            select_policy: SelectPolicy::Max,
            policies: vec![RatePolicy { policy_type: PolicyType::Percent, value: 100, period_seconds: 15 }],
        }
    }

    /// The longest period of these policies, in milliseconds: how much event history they read.
    pub fn longest_period_ms(&self) -> i64 {
        self.policies.iter().map(|p| i64::from(p.period_seconds) * 1000).max().unwrap_or(0)
    }
}

impl RateLimits {
    /// The HPA's defaults for both directions (what `behavior: {}` means).
    pub fn hpa_default() -> Self {
        RateLimits { scale_up: RateRules::hpa_scale_up_default(), scale_down: RateRules::hpa_scale_down_default() }
    }

    /// How far back scale events matter, in milliseconds (both directions read both histories).
    pub fn horizon_ms(&self) -> i64 {
        self.scale_up.longest_period_ms().max(self.scale_down.longest_period_ms())
    }
}

/// A limit and what set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limit {
    /// The replica count the direction may reach.
    pub replicas: i64,
    /// The policy that set it with its period-start replicas; `None` when the direction is disabled.
    pub policy: Option<(RatePolicy, i64)>,
}

/// Sum of the changes recorded strictly after `now - period` (HPA `getReplicasChangePerPeriod`).
fn change_in_period(events: &[ScaleEvent], now: EpochMillis, period_seconds: i32) -> i64 {
    let cutoff = now - i64::from(period_seconds) * 1000;
    events.iter().filter(|e| e.at > cutoff).map(|e| i64::from(e.change)).sum()
}

fn period_start(current: i32, up: &[ScaleEvent], down: &[ScaleEvent], now: EpochMillis, period_seconds: i32) -> i64 {
    i64::from(current) - change_in_period(up, now, period_seconds) + change_in_period(down, now, period_seconds)
}

/// The highest replica count the scale-up rules allow now.
pub(crate) fn scale_up_limit(
    current: i32,
    up: &[ScaleEvent],
    down: &[ScaleEvent],
    rules: &RateRules,
    now: EpochMillis,
) -> Limit {
    let prefer_min = match rules.select_policy {
        SelectPolicy::Disabled => {
            return Limit { replicas: i64::from(current), policy: None };
        }
        SelectPolicy::Min => true,
        SelectPolicy::Max => false,
    };
    let mut best: Option<Limit> = None;
    for policy in &rules.policies {
        let start = period_start(current, up, down, now, policy.period_seconds);
        let proposed = match policy.policy_type {
            PolicyType::Pods => start + i64::from(policy.value),
            // Rounded up so a small target can always grow by at least one pod.
            PolicyType::Percent => (start as f64 * (1.0 + f64::from(policy.value) / 100.0)).ceil() as i64,
        };
        let candidate = Limit { replicas: proposed, policy: Some((*policy, start)) };
        best = Some(pick(best, candidate, prefer_min));
    }
    // With no policies (never after validation) there is no limit to apply.
    best.unwrap_or(Limit { replicas: i64::MAX, policy: None })
}

/// The lowest replica count the scale-down rules allow now.
pub(crate) fn scale_down_limit(
    current: i32,
    up: &[ScaleEvent],
    down: &[ScaleEvent],
    rules: &RateRules,
    now: EpochMillis,
) -> Limit {
    // For scaling down, the smallest change is the highest limit, hence the inverted choice.
    let prefer_min = match rules.select_policy {
        SelectPolicy::Disabled => {
            return Limit { replicas: i64::from(current), policy: None };
        }
        SelectPolicy::Min => false,
        SelectPolicy::Max => true,
    };
    let mut best: Option<Limit> = None;
    for policy in &rules.policies {
        let start = period_start(current, up, down, now, policy.period_seconds);
        let proposed = match policy.policy_type {
            PolicyType::Pods => start - i64::from(policy.value),
            // Truncated toward zero like Go's int32(float64) conversion.
            PolicyType::Percent => (start as f64 * (1.0 - f64::from(policy.value) / 100.0)) as i64,
        };
        let candidate = Limit { replicas: proposed, policy: Some((*policy, start)) };
        best = Some(pick(best, candidate, prefer_min));
    }
    best.unwrap_or(Limit { replicas: i64::MIN, policy: None })
}

/// Keeps the first of equal candidates so the reported policy is the first one listed.
fn pick(best: Option<Limit>, candidate: Limit, prefer_min: bool) -> Limit {
    match best {
        None => candidate,
        Some(best) if prefer_min && candidate.replicas < best.replicas => candidate,
        Some(best) if !prefer_min && candidate.replicas > best.replicas => candidate,
        Some(best) => best,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at: EpochMillis, change: i32) -> ScaleEvent {
        ScaleEvent { at, change }
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

    #[test]
    fn period_start_subtracts_recent_additions_and_adds_back_recent_removals() {
        let now = 100_000;
        let up = [event(now - 10_000, 3), event(now - 70_000, 5)];
        let down = [event(now - 20_000, 2)];
        // 60 s period: the +3 and the −2 are inside, the +5 is outside.
        assert_eq!(period_start(10, &up, &down, now, 60), 10 - 3 + 2);
        // An event exactly at the cutoff is outside (the HPA uses After(cutoff)).
        assert_eq!(period_start(10, &[event(now - 60_000, 4)], &[], now, 60), 10);
    }

    #[test]
    fn pods_and_percent_up_limits_follow_the_hpa_formulas() {
        let pods = rules(SelectPolicy::Max, &[(PolicyType::Pods, 4, 60)]);
        assert_eq!(scale_up_limit(5, &[], &[], &pods, 0).replicas, 9);
        let percent = rules(SelectPolicy::Max, &[(PolicyType::Percent, 50, 60)]);
        // ceil(3 × 1.5) = 5
        assert_eq!(scale_up_limit(3, &[], &[], &percent, 0).replicas, 5);
    }

    #[test]
    fn percent_down_limit_truncates() {
        let percent = rules(SelectPolicy::Max, &[(PolicyType::Percent, 50, 60)]);
        // int(5 × 0.5) = 2, not 3
        assert_eq!(scale_down_limit(5, &[], &[], &percent, 0).replicas, 2);
    }

    #[test]
    fn select_policy_max_and_min_pick_the_largest_and_smallest_change() {
        let both = [(PolicyType::Pods, 4, 60), (PolicyType::Percent, 100, 60)];
        let max = rules(SelectPolicy::Max, &both);
        let min = rules(SelectPolicy::Min, &both);
        assert_eq!(scale_up_limit(10, &[], &[], &max, 0).replicas, 20);
        assert_eq!(scale_up_limit(10, &[], &[], &min, 0).replicas, 14);
        assert_eq!(scale_down_limit(10, &[], &[], &max, 0).replicas, 0);
        assert_eq!(scale_down_limit(10, &[], &[], &min, 0).replicas, 6);
    }

    #[test]
    fn select_policy_disabled_allows_no_change() {
        let disabled = rules(SelectPolicy::Disabled, &[(PolicyType::Pods, 4, 60)]);
        let up = scale_up_limit(10, &[], &[], &disabled, 0);
        assert_eq!(up, Limit { replicas: 10, policy: None });
        assert_eq!(scale_down_limit(10, &[], &[], &disabled, 0).replicas, 10);
    }
}
