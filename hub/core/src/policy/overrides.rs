//! Operator overrides: pin the replica count, narrow the bounds, or pause a direction, each
//! until an optional expiry. The API stores them; the pipeline applies an active one.

use serde::{Deserialize, Serialize};

use super::EpochMillis;

/// Which direction a pause blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PauseDirection {
    /// No scaling at all: hold the current replicas.
    Both,
    /// Never go above the current replicas.
    Up,
    /// Never go below the current replicas.
    Down,
}

/// What an override does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum OverrideAction {
    /// Hold exactly this many replicas.
    Pin {
        /// The pinned replica count.
        replicas: i32,
    },
    /// Narrow the annotation bounds (never widen them).
    Bounds {
        /// Raised minimum, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_replicas: Option<i32>,
        /// Lowered maximum, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_replicas: Option<i32>,
    },
    /// Block one or both directions.
    Pause {
        /// The blocked direction(s).
        direction: PauseDirection,
    },
}

/// An override as stored, with its audit fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Override {
    /// What it does.
    #[serde(flatten)]
    pub action: OverrideAction,
    /// When it stops applying (exclusive); `None` means until deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<EpochMillis>,
    /// Why it was set, shown in every decision it shapes.
    #[serde(default)]
    pub reason: String,
    /// Who set it (token subject or user name), for the audit trail.
    #[serde(default)]
    pub set_by: String,
    /// When it was set.
    pub set_at: EpochMillis,
}

/// Why an override request is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    /// None of replicas, minReplicas/maxReplicas or paused was given.
    #[error("an override needs one of replicas, minReplicas/maxReplicas or paused")]
    Empty,
    /// More than one kind of override was given at once.
    #[error("an override sets only one of replicas, minReplicas/maxReplicas or paused")]
    Ambiguous,
    /// A replica count below zero.
    #[error("{field} must be >= 0, got {value}")]
    Negative {
        /// The field name as the API spells it.
        field: &'static str,
        /// The rejected value.
        value: i32,
    },
    /// minReplicas above maxReplicas.
    #[error("minReplicas {min} is greater than maxReplicas {max}")]
    MinAboveMax {
        /// The minimum given.
        min: i32,
        /// The maximum given.
        max: i32,
    },
    /// An expiry at or before the time the override is set.
    #[error("until must be in the future")]
    ExpiryInPast,
}

impl OverrideAction {
    /// Builds an action from the REST API's flat fields, requiring exactly one kind.
    pub fn from_fields(
        replicas: Option<i32>,
        min_replicas: Option<i32>,
        max_replicas: Option<i32>,
        paused: Option<PauseDirection>,
    ) -> Result<Self, OverrideError> {
        let bounds = min_replicas.is_some() || max_replicas.is_some();
        let action = match (replicas, bounds, paused) {
            (Some(replicas), false, None) => OverrideAction::Pin { replicas },
            (None, true, None) => OverrideAction::Bounds { min_replicas, max_replicas },
            (None, false, Some(direction)) => OverrideAction::Pause { direction },
            (None, false, None) => return Err(OverrideError::Empty),
            _ => return Err(OverrideError::Ambiguous),
        };
        action.validate()?;
        Ok(action)
    }

    /// Checks counts are non-negative and min <= max.
    pub fn validate(&self) -> Result<(), OverrideError> {
        let non_negative = |field, value: Option<i32>| match value {
            Some(value) if value < 0 => Err(OverrideError::Negative { field, value }),
            _ => Ok(()),
        };
        match *self {
            OverrideAction::Pin { replicas } => non_negative("replicas", Some(replicas)),
            OverrideAction::Bounds { min_replicas, max_replicas } => {
                non_negative("minReplicas", min_replicas)?;
                non_negative("maxReplicas", max_replicas)?;
                match (min_replicas, max_replicas) {
                    (Some(min), Some(max)) if min > max => Err(OverrideError::MinAboveMax { min, max }),
                    _ => Ok(()),
                }
            }
            OverrideAction::Pause { .. } => Ok(()),
        }
    }
}

impl Override {
    /// Whether the override applies at `now` (it expires at `until`, exclusive).
    pub fn active_at(&self, now: EpochMillis) -> bool {
        self.until.is_none_or(|until| now < until)
    }

    /// Validates the action and that `until`, if set, lies after `set_at`.
    pub fn validate(&self) -> Result<(), OverrideError> {
        self.action.validate()?;
        match self.until {
            Some(until) if until <= self.set_at => Err(OverrideError::ExpiryInPast),
            _ => Ok(()),
        }
    }

    /// The bounds after narrowing `[min, max]` with this override; the override's own values
    /// are clamped into `[min, max]` so narrowing can never widen or invert the hard bounds.
    pub fn narrow(&self, min: i32, max: i32) -> (i32, i32) {
        match self.action {
            OverrideAction::Bounds { min_replicas, max_replicas } => {
                let low = min_replicas.map_or(min, |m| m.clamp(min, max));
                let high = max_replicas.map_or(max, |m| m.clamp(min, max));
                (low, high.max(low))
            }
            _ => (min, max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(min: Option<i32>, max: Option<i32>) -> Override {
        Override {
            action: OverrideAction::Bounds { min_replicas: min, max_replicas: max },
            until: None,
            reason: String::new(),
            set_by: String::new(),
            set_at: 0,
        }
    }

    #[test]
    fn an_override_is_active_until_its_expiry() {
        let mut o = bounds(Some(2), None);
        assert!(o.active_at(i64::MAX));
        o.until = Some(1_000);
        assert!(o.active_at(999));
        assert!(!o.active_at(1_000));
    }

    #[test]
    fn api_fields_map_to_exactly_one_action() {
        assert_eq!(OverrideAction::from_fields(Some(3), None, None, None), Ok(OverrideAction::Pin { replicas: 3 }));
        assert_eq!(
            OverrideAction::from_fields(None, None, Some(4), None),
            Ok(OverrideAction::Bounds { min_replicas: None, max_replicas: Some(4) })
        );
        assert_eq!(OverrideAction::from_fields(None, None, None, None), Err(OverrideError::Empty));
        assert_eq!(
            OverrideAction::from_fields(Some(3), None, None, Some(PauseDirection::Up)),
            Err(OverrideError::Ambiguous)
        );
        assert_eq!(
            OverrideAction::from_fields(None, Some(5), Some(4), None),
            Err(OverrideError::MinAboveMax { min: 5, max: 4 })
        );
        assert!(matches!(
            OverrideAction::from_fields(Some(-1), None, None, None),
            Err(OverrideError::Negative { field: "replicas", .. })
        ));
    }

    #[test]
    fn narrowing_never_widens_the_hard_bounds() {
        assert_eq!(bounds(Some(3), Some(6)).narrow(1, 10), (3, 6));
        assert_eq!(bounds(Some(0), Some(20)).narrow(1, 10), (1, 10));
        assert_eq!(bounds(Some(12), None).narrow(1, 10), (10, 10));
    }

    #[test]
    fn overrides_serialise_in_the_api_shape() {
        let pin = Override {
            action: OverrideAction::Pin { replicas: 4 },
            until: Some(5_000),
            reason: "incident 42".into(),
            set_by: "alice".into(),
            set_at: 1_000,
        };
        let json = serde_json::to_value(&pin).unwrap();
        assert_eq!(json["type"], "pin");
        assert_eq!(json["replicas"], 4);
        assert_eq!(json["setBy"], "alice");
        let back: Override = serde_json::from_value(json).unwrap();
        assert_eq!(back, pin);
        let pause: Override = serde_json::from_str(r#"{"type":"pause","direction":"down","setAt":1}"#).unwrap();
        assert_eq!(pause.action, OverrideAction::Pause { direction: PauseDirection::Down });
        assert_eq!(pause.validate(), Ok(()));
    }
}
