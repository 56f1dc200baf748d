//! The JSON shapes the API returns that are not store rows as they are.
//!
//! Store rows (`TargetRow`, `DecisionRow`) are camelCase already and are embedded
//! unchanged; overrides get their own view because the store's row spells its key's
//! `kind` and its own `kind` with the same name.

use serde::Serialize;

use scalehub_core::policy::{Override, OverrideAction, PauseDirection, PolicyState};
use scalehub_core::spec::TargetSpec;
use scalehub_store::{DecisionRow, OverrideKind, OverrideRow, PauseDirection as StorePause, TargetRow};

/// One target: its row, its newest decision and its active override.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// The store's row (namespace, kind, name, uid, state, spec, error, replicas, times).
    #[serde(flatten)]
    pub row: TargetRow,
    /// The newest decision, if any.
    pub last_decision: Option<DecisionRow>,
    /// The override in force now, if any.
    #[serde(rename = "override")]
    pub active_override: Option<OverrideView>,
}

/// An override as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverrideView {
    /// Store id (absent for an override read from the hub's memory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// `pin`, `bounds` or `pause`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Pinned replicas (`pin`).
    pub replicas: Option<i32>,
    /// Raised minimum (`bounds`).
    pub min_replicas: Option<i32>,
    /// Lowered maximum (`bounds`).
    pub max_replicas: Option<i32>,
    /// Paused direction (`pause`): `up`, `down` or `both`.
    pub paused: Option<String>,
    /// Expiry, unix milliseconds.
    pub until: Option<i64>,
    /// Why it was set.
    pub reason: String,
    /// Who set it (the token's name).
    pub author: String,
    /// When it was set, unix milliseconds.
    pub created_at: i64,
    /// When it ended (cleared, replaced or expired), if it has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<i64>,
    /// Who or what ended it: a token name, `replaced` or `expired`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<String>,
    /// Whether it applies now.
    pub active: bool,
}

fn pause_text(d: PauseDirection) -> &'static str {
    match d {
        PauseDirection::Both => "both",
        PauseDirection::Up => "up",
        PauseDirection::Down => "down",
    }
}

impl OverrideView {
    /// The view of an override the hub holds in memory, as of `now`.
    pub fn from_override(o: &Override, now: i64) -> Self {
        let (kind, replicas, min, max, paused) = match o.action {
            OverrideAction::Pin { replicas } => ("pin", Some(replicas), None, None, None),
            OverrideAction::Bounds { min_replicas, max_replicas } => ("bounds", None, min_replicas, max_replicas, None),
            OverrideAction::Pause { direction } => ("pause", None, None, None, Some(pause_text(direction).to_owned())),
        };
        Self {
            id: None,
            kind: kind.into(),
            replicas,
            min_replicas: min,
            max_replicas: max,
            paused,
            until: o.until,
            reason: o.reason.clone(),
            author: o.set_by.clone(),
            created_at: o.set_at,
            ended_at: None,
            ended_by: None,
            active: o.active_at(now),
        }
    }

    /// The view of a stored override, as of `now`.
    pub fn from_row(row: &OverrideRow, now: i64) -> Self {
        let kind = match row.kind {
            OverrideKind::Pin => "pin",
            OverrideKind::Bounds => "bounds",
            OverrideKind::Pause => "pause",
        };
        let paused = row.pause_direction.map(|d| match d {
            StorePause::Both => "both".to_owned(),
            StorePause::Up => "up".to_owned(),
            StorePause::Down => "down".to_owned(),
        });
        Self {
            id: Some(row.id),
            kind: kind.into(),
            replicas: row.replicas,
            min_replicas: row.min_replicas,
            max_replicas: row.max_replicas,
            paused,
            until: row.until,
            reason: row.reason.clone(),
            author: row.author.clone(),
            created_at: row.created_at,
            ended_at: row.ended_at,
            ended_by: row.ended_by.clone(),
            active: row.is_active(now),
        }
    }
}

/// One recommendation in a stabilisation window.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SampleView {
    /// When it was made, unix milliseconds.
    pub at: i64,
    /// Recommended replicas.
    pub replicas: i32,
}

/// One scale event counted by the rate limits.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScaleEventView {
    /// When the scale happened, unix milliseconds.
    pub at: i64,
    /// How many replicas it added or removed.
    pub change: i32,
}

/// The stabilisation state of a target and the bounds it sets now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stabilisation {
    /// Recent recommendations, oldest first (already pruned of dominated ones).
    pub recommendations: Vec<SampleView>,
    /// Recent scale-ups.
    pub scale_up_events: Vec<ScaleEventView>,
    /// Recent scale-downs.
    pub scale_down_events: Vec<ScaleEventView>,
    /// The scale-up window, milliseconds.
    pub upscale_window_ms: Option<i64>,
    /// The scale-down window, milliseconds.
    pub downscale_window_ms: Option<i64>,
    /// Scale-down cannot go below this now: the highest recommendation in the down window.
    pub lower_bound: Option<i32>,
    /// Scale-up cannot go above this now: the lowest recommendation in the up window
    /// (absent with a zero window).
    pub upper_bound: Option<i32>,
    /// When the state was last saved, unix milliseconds.
    pub updated_at: Option<i64>,
}

impl Stabilisation {
    /// The view of a policy state under `spec`'s windows, as of `now`.
    pub fn new(state: &PolicyState, spec: Option<&TargetSpec>, updated_at: Option<i64>, now: i64) -> Self {
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let up = spec.map(|s| ms(s.upscale_stabilization));
        let down = spec.map(|s| ms(s.downscale_stabilization));
        let within = |window: i64| state.recommendations.iter().filter(move |s| s.at > now.saturating_sub(window));
        Self {
            recommendations: state
                .recommendations
                .iter()
                .map(|s| SampleView { at: s.at, replicas: s.replicas })
                .collect(),
            scale_up_events: state
                .scale_up_events
                .iter()
                .map(|e| ScaleEventView { at: e.at, change: e.change })
                .collect(),
            scale_down_events: state
                .scale_down_events
                .iter()
                .map(|e| ScaleEventView { at: e.at, change: e.change })
                .collect(),
            upscale_window_ms: up,
            downscale_window_ms: down,
            lower_bound: down.filter(|w| *w > 0).and_then(|w| within(w).map(|s| s.replicas).max()),
            upper_bound: up.filter(|w| *w > 0).and_then(|w| within(w).map(|s| s.replicas).min()),
            updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scalehub_core::policy::Sample;

    fn spec(up_secs: u64, down_secs: u64) -> TargetSpec {
        let mut spec: TargetSpec = serde_json::from_value(serde_json::json!({"profile": "default", "minReplicas": 1, "maxReplicas": 10,
            "interval": "15s", "downscaleStabilization": "5m", "upscaleStabilization": "0s", "runMode": "per-resource", "mode": "active", "params": {}}))
        .unwrap();
        spec.upscale_stabilization = std::time::Duration::from_secs(up_secs);
        spec.downscale_stabilization = std::time::Duration::from_secs(down_secs);
        spec
    }

    #[test]
    fn stabilisation_bounds_come_from_the_samples_inside_each_window() {
        let state = PolicyState {
            recommendations: vec![
                Sample { at: 0, replicas: 9 },
                Sample { at: 100_000, replicas: 4 },
                Sample { at: 170_000, replicas: 6 },
            ],
            ..PolicyState::default()
        };
        let view = Stabilisation::new(&state, Some(&spec(60, 120)), Some(170_000), 180_000);
        assert_eq!(view.lower_bound, Some(6), "9 left the 2-minute window; 6 is the highest inside it");
        assert_eq!(view.upper_bound, Some(6), "only 6 is inside the 1-minute up window");
        assert_eq!((view.upscale_window_ms, view.downscale_window_ms), (Some(60_000), Some(120_000)));
        let unknown = Stabilisation::new(&state, None, None, 180_000);
        assert_eq!((unknown.lower_bound, unknown.upper_bound), (None, None), "no spec, no windows, no bounds");
    }

    #[test]
    fn an_override_view_names_its_kind_and_direction() {
        let o = Override {
            action: OverrideAction::Pause { direction: PauseDirection::Up },
            until: Some(10),
            reason: "r".into(),
            set_by: "alice".into(),
            set_at: 1,
        };
        let view = OverrideView::from_override(&o, 5);
        assert_eq!((view.kind.as_str(), view.paused.as_deref(), view.active), ("pause", Some("up"), true));
        assert!(!OverrideView::from_override(&o, 10).active, "until is exclusive");
    }
}
