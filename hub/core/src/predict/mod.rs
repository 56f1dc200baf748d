//! Predictive evaluation: the predictive HPA's models, in Rust, around any evaluation.
//!
//! A profile's `predictive:` lists models; every tick each model's history gets the evaluation
//! (the hook's or the built-in calculation's), every `perSyncPeriod` ticks the model predicts,
//! and `decisionType` combines the evaluation with the predictions (`maximum`, `minimum`,
//! `mean`, `median`, as the predictive HPA does). The combined count then goes through the
//! policy like any evaluation.
//!
//! Unlike the predictive HPA, a model that cannot predict — too little history, a
//! multiplicative model meeting a zero — is left out of the combination and the reason says
//! so; the predictive HPA returns 0 there, which then enters the decision.
//!
//! Model histories live in the [`PolicyState`](crate::policy::PolicyState), so they are
//! persisted with the windows, survive restarts and are replayed with them.

pub mod holt_winters;
pub mod linear;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Issues;
use crate::duration::serde_human_opt;
use crate::policy::{EpochMillis, Sample};
use holt_winters::Component;

/// How the evaluation and the predictions combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecisionType {
    /// The largest (the predictive HPA's default).
    #[default]
    Maximum,
    /// The smallest.
    Minimum,
    /// The mean, rounded.
    Mean,
    /// The median (of an even count, the truncated mean of the middle two).
    Median,
}

impl DecisionType {
    /// Its name in the config (`maximum`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionType::Maximum => "maximum",
            DecisionType::Minimum => "minimum",
            DecisionType::Mean => "mean",
            DecisionType::Median => "median",
        }
    }

    /// Combines `values` (never empty: the evaluation is always one of them).
    pub fn combine(self, values: &[i32]) -> i32 {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        match (self, sorted.as_slice()) {
            (_, []) => 0,
            (DecisionType::Maximum, [.., last]) => *last,
            (DecisionType::Minimum, [first, ..]) => *first,
            (DecisionType::Mean, all) => {
                let total: i64 = all.iter().map(|&v| i64::from(v)).sum();
                let mean = (total as f64 / all.len() as f64).round();
                mean.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
            }
            (DecisionType::Median, all) => {
                let half = all.len() / 2;
                if all.len() % 2 == 0 {
                    ((i64::from(all[half - 1]) + i64::from(all[half])) / 2) as i32
                } else {
                    all[half]
                }
            }
        }
    }
}

/// A profile's `predictive:` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Predictive {
    /// How the evaluation and the predictions combine.
    #[serde(default)]
    pub decision_type: DecisionType,
    /// The models, each with a unique name.
    pub models: Vec<Model>,
}

/// One model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Model {
    /// Its name: the key of its history.
    pub name: String,
    /// `Linear` or `HoltWinters`.
    #[serde(rename = "type")]
    pub model_type: ModelType,
    /// Predict every this many ticks (1 when omitted).
    #[serde(default = "one")]
    pub per_sync_period: u32,
    /// Forget the history when no point was added for this long (a stopped hub, an opted-out
    /// target), so a model never bridges a gap with stale data.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_human_opt")]
    pub reset_duration: Option<Duration>,
    /// Settings of a `Linear` model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear: Option<Linear>,
    /// Settings of a `HoltWinters` model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holt_winters: Option<HoltWinters>,
}

fn one() -> u32 {
    1
}

/// The model kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelType {
    /// Linear regression over the latest evaluations.
    Linear,
    /// Holt-Winters exponential smoothing over whole seasons of evaluations.
    HoltWinters,
}

/// `linear:` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Linear {
    /// Evaluations kept (at least 1).
    pub history_size: usize,
    /// How far ahead the line is read, in milliseconds (the predictive HPA's unit).
    pub look_ahead: i64,
}

/// `holtWinters:` settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HoltWinters {
    /// Ticks in one season (at least 2).
    pub seasonal_periods: usize,
    /// Whole seasons kept (at least 2: the model needs two to start).
    pub stored_seasons: usize,
    /// `add` or `mul`.
    pub trend: Component,
    /// `add` or `mul`.
    pub seasonal: Component,
    /// Level smoothing α; fitted to the history when all of α, β and γ are left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// Trend smoothing β.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    /// Seasonal smoothing γ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gamma: Option<f64>,
    /// Damp the trend.
    #[serde(default)]
    pub damped_trend: bool,
    /// The damping factor φ of a damped trend (0.98 when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damping_trend: Option<f64>,
}

/// φ when a damped trend leaves it out.
const DEFAULT_DAMPING: f64 = 0.98;

impl HoltWinters {
    /// Observations kept: whole seasons.
    pub fn capacity(&self) -> usize {
        self.seasonal_periods * self.stored_seasons
    }

    fn params(&self) -> holt_winters::Params {
        holt_winters::Params {
            trend: self.trend,
            seasonal: self.seasonal,
            seasonal_periods: self.seasonal_periods,
            alpha: self.alpha.unwrap_or(0.5),
            beta: self.beta.unwrap_or(0.1),
            gamma: self.gamma.unwrap_or(0.1),
            damping: self.damped_trend.then(|| self.damping_trend.unwrap_or(DEFAULT_DAMPING)),
        }
    }

    fn fitted(&self) -> bool {
        self.alpha.is_none() && self.beta.is_none() && self.gamma.is_none()
    }
}

/// The most points a model keeps (a day of 10-second ticks, four times over).
const MAX_HISTORY: usize = 40_000;

impl Predictive {
    /// Reports every problem under `path` (e.g. `profiles.web.predictive`).
    pub(crate) fn validate(&self, path: &str, issues: &mut Issues) {
        if self.models.is_empty() {
            issues.push(format!("{path}.models"), "must list at least one model");
        }
        let mut names = std::collections::BTreeSet::new();
        for (index, model) in self.models.iter().enumerate() {
            let at = format!("{path}.models[{index}]");
            if model.name.is_empty() {
                issues.push(format!("{at}.name"), "must not be empty");
            } else if !names.insert(model.name.as_str()) {
                issues.push(format!("{at}.name"), format!("{:?} is used by another model", model.name));
            }
            if model.per_sync_period == 0 {
                issues.push(format!("{at}.perSyncPeriod"), "must be >= 1");
            }
            match (model.model_type, &model.linear, &model.holt_winters) {
                (ModelType::Linear, Some(linear), _) => {
                    if !(1..=MAX_HISTORY).contains(&linear.history_size) {
                        issues.push(format!("{at}.linear.historySize"), format!("must be between 1 and {MAX_HISTORY}"));
                    }
                    if linear.look_ahead < 0 {
                        issues.push(format!("{at}.linear.lookAhead"), "must be >= 0 (milliseconds)");
                    }
                }
                (ModelType::HoltWinters, _, Some(hw)) => hw.validate(&format!("{at}.holtWinters"), issues),
                (ModelType::Linear, None, _) => issues.push(format!("{at}.linear"), "is required for type Linear"),
                (ModelType::HoltWinters, _, None) => {
                    issues.push(format!("{at}.holtWinters"), "is required for type HoltWinters")
                }
            }
        }
    }
}

impl HoltWinters {
    fn validate(&self, path: &str, issues: &mut Issues) {
        if self.seasonal_periods < 2 {
            issues.push(format!("{path}.seasonalPeriods"), "must be >= 2");
        }
        if self.stored_seasons < 2 {
            issues.push(format!("{path}.storedSeasons"), "must be >= 2 (the model needs two seasons to start)");
        }
        if self.capacity() > MAX_HISTORY {
            issues.push(
                format!("{path}.storedSeasons"),
                format!("seasonalPeriods × storedSeasons must be <= {MAX_HISTORY}"),
            );
        }
        let set = [self.alpha.is_some(), self.beta.is_some(), self.gamma.is_some()];
        if set.iter().any(|s| *s) && !set.iter().all(|s| *s) {
            issues.push(path.to_owned(), "give all of alpha, beta and gamma, or none to fit them");
        }
        for (key, value) in [("alpha", self.alpha), ("beta", self.beta), ("gamma", self.gamma)] {
            if value.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
                issues.push(format!("{path}.{key}"), "must be between 0 and 1");
            }
        }
        if self.damping_trend.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
            issues.push(format!("{path}.dampingTrend"), "must be between 0 and 1");
        }
    }
}

/// One model's memory between ticks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ModelState {
    /// The model kind the history was kept for (a changed type starts afresh).
    pub model_type: Option<ModelType>,
    /// Ticks since the model last predicted.
    pub sync_periods_passed: u32,
    /// Evaluations, oldest first.
    pub history: Vec<Sample>,
}

/// What one model said this tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelPrediction {
    /// The model's name.
    pub name: String,
    /// Its prediction, when it made one that counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Why it has none although it was due (too little history, ...); neither a prediction nor
    /// a note means it was not its tick (`perSyncPeriod`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The outcome of the predictive step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The combined count.
    pub replicas: i32,
    /// Each model's prediction or why it has none, in config order.
    pub predictions: Vec<ModelPrediction>,
}

/// Adds `evaluated` at `now` to every model's history, lets the models due this tick predict,
/// and combines. `states` is updated in place (the caller owns a working copy).
pub fn run(
    config: &Predictive,
    states: &mut BTreeMap<String, ModelState>,
    now: EpochMillis,
    evaluated: i32,
) -> Outcome {
    states.retain(|name, _| config.models.iter().any(|m| &m.name == name));
    let mut values = vec![evaluated];
    let mut predictions = Vec::with_capacity(config.models.len());
    for model in &config.models {
        let state = states.entry(model.name.clone()).or_default();
        if state.model_type != Some(model.model_type) {
            *state = ModelState { model_type: Some(model.model_type), sync_periods_passed: 1, history: Vec::new() };
        }
        let gap = state.history.last().map(|last| now.saturating_sub(last.at));
        if let (Some(reset), Some(gap)) = (model.reset_duration, gap)
            && u128::try_from(gap).unwrap_or(0) > reset.as_millis()
        {
            state.history.clear();
        }
        state.history.push(Sample { at: now, replicas: evaluated });
        let due = state.sync_periods_passed >= model.per_sync_period;
        let prediction = if due {
            state.sync_periods_passed = 1;
            Some(predict(model, &state.history, now))
        } else {
            state.sync_periods_passed += 1;
            None
        };
        prune(model, &mut state.history);
        let name = model.name.clone();
        predictions.push(match prediction {
            Some(Ok(replicas)) => {
                values.push(replicas);
                ModelPrediction { name, replicas: Some(replicas), note: None }
            }
            Some(Err(note)) => ModelPrediction { name, replicas: None, note: Some(note) },
            None => ModelPrediction { name, replicas: None, note: None },
        });
    }
    Outcome { replicas: config.decision_type.combine(&values), predictions }
}

fn ceil_replicas(value: f64) -> i32 {
    value.ceil().clamp(0.0, f64::from(i32::MAX)) as i32
}

fn predict(model: &Model, history: &[Sample], now: EpochMillis) -> Result<i32, String> {
    match (model.model_type, &model.linear, &model.holt_winters) {
        (ModelType::Linear, Some(linear), _) => linear::predict(history, now.saturating_add(linear.look_ahead))
            .map(ceil_replicas)
            .ok_or_else(|| "no history".to_owned()),
        (ModelType::HoltWinters, _, Some(hw)) => {
            let series: Vec<f64> = history.iter().map(|s| f64::from(s.replicas)).collect();
            let needed = holt_winters::min_observations(hw.seasonal_periods);
            if series.len() < needed {
                return Err(format!("too little history: needs {needed} ticks"));
            }
            let params = if hw.fitted() {
                holt_winters::fit(&series, &hw.params()).map_err(|e| e.to_string())?
            } else {
                hw.params()
            };
            holt_winters::forecast(&series, &params).map(|f| ceil_replicas(f.next)).map_err(|e| e.to_string())
        }
        _ => Err("the model has no settings".to_owned()),
    }
}

/// Keeps what the model reads: the latest `historySize` points, or whole seasons up to
/// `storedSeasons` (the oldest season goes once another is complete).
fn prune(model: &Model, history: &mut Vec<Sample>) {
    let keep = match (model.model_type, &model.linear, &model.holt_winters) {
        (ModelType::Linear, Some(linear), _) => linear.history_size,
        (ModelType::HoltWinters, _, Some(hw)) => {
            let m = hw.seasonal_periods.max(1);
            let seasons = history.len() / m;
            if seasons > hw.stored_seasons { history.len() - (seasons - hw.stored_seasons) * m } else { history.len() }
        }
        _ => history.len(),
    };
    if history.len() > keep {
        history.drain(..history.len() - keep);
    }
}

#[cfg(test)]
mod tests;
