//! A profile's optional `behavior:` block, in the HPA autoscaling/v2 shape, with the HPA's
//! defaults filled in for whatever is left out (hpa-keda.md §1.3).

use serde::Deserialize;

use super::Issues;
use crate::policy::{RateLimits, RatePolicy, RateRules, SelectPolicy};
use crate::tolerance::{Tolerance, Tolerances};

/// The HPA's longest allowed policy period.
const MAX_PERIOD_SECONDS: i32 = 1800;
/// The HPA's longest allowed stabilisation window.
const MAX_WINDOW_SECONDS: i32 = 3600;

/// `behavior:` as written in the config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BehaviorConfig {
    /// Rules for scaling up; HPA defaults when omitted.
    pub scale_up: Option<ScalingRulesConfig>,
    /// Rules for scaling down; HPA defaults when omitted.
    pub scale_down: Option<ScalingRulesConfig>,
}

/// One direction's rules as written in the config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalingRulesConfig {
    /// Stabilisation window in seconds (0..=3600).
    pub stabilization_window_seconds: Option<i32>,
    /// `Max`, `Min` or `Disabled`; `Max` when omitted.
    pub select_policy: Option<SelectPolicy>,
    /// Rate policies; the HPA defaults when omitted, never empty.
    pub policies: Option<Vec<RatePolicy>>,
    /// How far the usage ratio may stray in this direction before the built-in calculation
    /// scales (Kubernetes 1.33+); 0.1 when omitted.
    pub tolerance: Option<Tolerance>,
}

impl BehaviorConfig {
    /// The rate limits with HPA defaults for anything left out.
    pub fn rate_limits(&self) -> RateLimits {
        let resolve = |rules: &Option<ScalingRulesConfig>, default: RateRules| match rules {
            None => default,
            Some(rules) => RateRules {
                select_policy: rules.select_policy.unwrap_or(default.select_policy),
                policies: rules.policies.clone().unwrap_or(default.policies),
            },
        };
        RateLimits {
            scale_up: resolve(&self.scale_up, RateRules::hpa_scale_up_default()),
            scale_down: resolve(&self.scale_down, RateRules::hpa_scale_down_default()),
        }
    }

    /// The tolerances, with the HPA's 0.1 for a direction that leaves it out.
    pub fn tolerances(&self) -> Tolerances {
        let of = |rules: &Option<ScalingRulesConfig>| rules.as_ref().and_then(|r| r.tolerance).unwrap_or_default();
        Tolerances { scale_up: of(&self.scale_up), scale_down: of(&self.scale_down) }
    }

    /// The scale-up window, if set here.
    pub fn upscale_window_seconds(&self) -> Option<i32> {
        self.scale_up.as_ref().and_then(|r| r.stabilization_window_seconds)
    }

    /// The scale-down window, if set here.
    pub fn downscale_window_seconds(&self) -> Option<i32> {
        self.scale_down.as_ref().and_then(|r| r.stabilization_window_seconds)
    }

    /// Reports every problem under `path` (e.g. `profiles.default.behavior`).
    pub(crate) fn validate(&self, path: &str, issues: &mut Issues) {
        for (name, rules) in [("scaleUp", &self.scale_up), ("scaleDown", &self.scale_down)] {
            if let Some(rules) = rules {
                rules.validate(&format!("{path}.{name}"), issues);
            }
        }
    }
}

impl ScalingRulesConfig {
    fn validate(&self, path: &str, issues: &mut Issues) {
        if let Some(window) = self.stabilization_window_seconds
            && !(0..=MAX_WINDOW_SECONDS).contains(&window)
        {
            issues.push(
                format!("{path}.stabilizationWindowSeconds"),
                format!("must be between 0 and {MAX_WINDOW_SECONDS}"),
            );
        }
        let Some(policies) = &self.policies else {
            return;
        };
        if policies.is_empty() {
            issues.push(format!("{path}.policies"), "must list at least one policy");
        }
        for (index, policy) in policies.iter().enumerate() {
            let at = format!("{path}.policies[{index}]");
            if policy.value <= 0 {
                issues.push(format!("{at}.value"), "must be > 0");
            }
            if !(1..=MAX_PERIOD_SECONDS).contains(&policy.period_seconds) {
                issues.push(format!("{at}.periodSeconds"), format!("must be between 1 and {MAX_PERIOD_SECONDS}"));
            }
        }
    }
}
