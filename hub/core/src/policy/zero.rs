//! Scale to and from zero (KEDA's activation and cooldown, without keda#7770).
//!
//! With `minReplicas: 0` and a profile's `scaleToZero:`, each tick says whether the target is
//! **active**: its activation value (the evaluation, or for a built-in profile the largest
//! Object/External metric value) is above the activation threshold. Then:
//!
//! - **0 → 1 at once** when a target at zero becomes active (no window or rate policy holds
//!   it; a pause-up override does). The next ticks scale on from 1 as usual.
//! - **N → 1 as any scale-down**: while it has replicas the pipeline runs with a floor of one,
//!   so the scale-down windows and rate policies apply to every step down to 1. KEDA's bug
//!   keda#7770 was to skip them and go from N straight to 0.
//! - **1 → 0 only after the cooldown**: the target must have been inactive, without a break,
//!   for `cooldownPeriod` (counted from the first tick that found it inactive; the time is
//!   kept in the policy state, so a restart does not shorten it).

/// What one tick knows about the target's activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activation {
    /// Whether the activation value is above the threshold.
    pub active: bool,
    /// The activation value, in thousandths; `None` when this tick could not read it (a
    /// failed metric), which counts as active so that missing data never empties a workload.
    pub value_milli: Option<i64>,
    /// The threshold, in thousandths.
    pub threshold_milli: i64,
    /// How long the target must stay inactive before 1 → 0, in milliseconds.
    pub cooldown_ms: i64,
}

impl Activation {
    /// The activation for `value_milli` against `threshold_milli`.
    pub fn new(value_milli: Option<i64>, threshold_milli: i64, cooldown_ms: i64) -> Self {
        let active = value_milli.is_none_or(|v| v > threshold_milli);
        Activation { active, value_milli, threshold_milli, cooldown_ms }
    }

    /// "3 > the activation threshold 0", in the units the user wrote.
    pub(crate) fn comparison(&self) -> String {
        let threshold = milli_text(self.threshold_milli);
        match self.value_milli {
            Some(value) => {
                let op = if self.active { ">" } else { "<=" };
                format!("{} {op} the activation threshold {threshold}", milli_text(value))
            }
            None => format!("no activation value this tick, counted as active; threshold {threshold}"),
        }
    }
}

/// `1500` → `1.5`, `2000` → `2`.
pub(crate) fn milli_text(milli: i64) -> String {
    let sign = if milli < 0 { "-" } else { "" };
    let (whole, frac) = (milli.unsigned_abs() / 1000, milli.unsigned_abs() % 1000);
    if frac == 0 {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{}", format!("{frac:03}").trim_end_matches('0'))
    }
}
