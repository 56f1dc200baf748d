//! Workload annotations → a typed [`TargetSpec`] (DESIGN.md, "Opt-in annotations").
//!
//! Parsing never stops at the first problem: a user fixing a workload sees every bad
//! annotation at once, each with its key, value and reason. Annotation values are data only —
//! nothing here (or downstream) ever hands them to a shell.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::{format_duration, parse_duration, serde_human, serde_human_opt};
pub use crate::policy::Lineage;
use crate::policy::{Activation, EpochMillis, Override, PolicyInput, RateLimits};
use crate::predict::Predictive;
use crate::tolerance::Tolerances;

#[cfg(test)]
mod tests;

/// Prefix of every scalehub annotation.
pub const PREFIX: &str = "scalehub.io/";
/// `"true"` opts a workload in.
pub const ENABLED: &str = "scalehub.io/enabled";
/// Name of the hook profile.
pub const PROFILE: &str = "scalehub.io/profile";
/// Lower replica bound.
pub const MIN_REPLICAS: &str = "scalehub.io/min-replicas";
/// Upper replica bound.
pub const MAX_REPLICAS: &str = "scalehub.io/max-replicas";
/// Tick period.
pub const INTERVAL: &str = "scalehub.io/interval";
/// Scale-down stabilisation window.
pub const DOWNSCALE_STABILIZATION: &str = "scalehub.io/downscale-stabilization";
/// Scale-up stabilisation window.
pub const UPSCALE_STABILIZATION: &str = "scalehub.io/upscale-stabilization";
/// `per-pod` or `per-resource`.
pub const RUN_MODE: &str = "scalehub.io/run-mode";
/// `active` or `shadow`.
pub const MODE: &str = "scalehub.io/mode";
/// Aligns the first tick to a multiple of this period of wall-clock time (the CPA's `startTime`).
pub const START_TIME: &str = "scalehub.io/start-time";
/// Prefix of hook parameters (`scalehub.io/param.<key>`).
pub const PARAM_PREFIX: &str = "scalehub.io/param.";

/// The profile used when the annotation is absent.
pub const DEFAULT_PROFILE: &str = "default";
/// The longest stabilisation window accepted (the HPA's limit).
pub const MAX_WINDOW: Duration = Duration::from_secs(3600);
/// The shortest tick interval: a target's loop never ticks more often.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The longest tick interval accepted: a day.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Checks an interval against [`MIN_INTERVAL`] and [`MAX_INTERVAL`].
pub fn check_interval(interval: Duration) -> Result<Duration, String> {
    if interval < MIN_INTERVAL || interval > MAX_INTERVAL {
        return Err(format!(
            "must be between {} and {} (got {})",
            format_duration(MIN_INTERVAL),
            format_duration(MAX_INTERVAL),
            format_duration(interval)
        ));
    }
    Ok(interval)
}

/// Whether the metric method runs once per pod or once per workload (CPA meaning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunMode {
    /// Once per pod, each run receiving the Pod.
    PerPod,
    /// Once per tick, receiving the workload.
    PerResource,
}

/// Whether decisions are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Decide and scale.
    Active,
    /// Decide and record, never scale.
    Shadow,
}

/// Where one of a target's settings came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The workload's `scalehub.io/…` annotation.
    Annotation,
    /// The profile's own key (`minReplicas`, `downscaleStabilization`, `behavior`, …).
    Profile,
    /// The CPA's default (a CPA profile that leaves the key out).
    CpaDefault,
    /// The HPA's default (a built-in profile that leaves the key out).
    HpaDefault,
}

/// The settings whose source a target shows: their profile key and their annotation.
pub const SOURCED: [(&str, &str); 7] = [
    ("minReplicas", MIN_REPLICAS),
    ("maxReplicas", MAX_REPLICAS),
    ("interval", INTERVAL),
    ("downscaleStabilization", DOWNSCALE_STABILIZATION),
    ("upscaleStabilization", UPSCALE_STABILIZATION),
    ("runMode", RUN_MODE),
    ("startTime", START_TIME),
];

/// Where each of the [`SOURCED`] settings came from, one byte per setting in `SOURCED`'s
/// order (every target's spec carries one). Serialised as a map from the setting's profile
/// key to its source, leaving out the settings without one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sources([Option<Source>; SOURCED.len()]);

impl Sources {
    /// Every setting but `startTime` (which has no default) from `source`.
    pub fn lineage(source: Source) -> Self {
        let mut sources = Sources::default();
        for (key, _) in SOURCED.iter().filter(|(key, _)| *key != "startTime") {
            sources.set(key, source);
        }
        sources
    }

    fn index(key: &str) -> Option<usize> {
        SOURCED.iter().position(|(k, _)| *k == key)
    }

    /// The source of the setting with profile key `key`, if it has one.
    pub fn get(&self, key: &str) -> Option<Source> {
        Self::index(key).and_then(|i| self.0[i])
    }

    /// Records where `key` came from; `key` must be one of [`SOURCED`]'s.
    pub fn set(&mut self, key: &str, source: Source) {
        debug_assert!(Self::index(key).is_some(), "{key} is not a sourced setting");
        if let Some(i) = Self::index(key) {
            self.0[i] = Some(source);
        }
    }

    /// The settings that have a source, in [`SOURCED`]'s order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, Source)> + '_ {
        SOURCED.iter().zip(self.0).filter_map(|((key, _), source)| Some((*key, source?)))
    }
}

impl Serialize for Sources {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Sources {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, Source>::deserialize(deserializer)?;
        let mut sources = Sources::default();
        for (key, source) in map {
            let Some(i) = Self::index(&key) else {
                return Err(serde::de::Error::custom(format!("{key:?} is not a setting with a source")));
            };
            sources.0[i] = Some(source);
        }
        Ok(sources)
    }
}

/// What a profile provides when the annotations leave a setting out.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecDefaults {
    /// Default lower bound (1 unless the profile says otherwise).
    pub min_replicas: i32,
    /// Default upper bound (10 unless the profile says otherwise).
    pub max_replicas: i32,
    /// Default tick period (15 s).
    pub interval: Duration,
    /// Default scale-down window (CPA profiles 0 s, built-in profiles 5 m).
    pub downscale_stabilization: Duration,
    /// Default scale-up window (0 s).
    pub upscale_stabilization: Duration,
    /// Default run mode (CPA profiles `per-pod`, built-in profiles `per-resource`).
    pub run_mode: RunMode,
    /// The profile's `startTime`, if it sets one: the first tick's alignment.
    pub start_time: Option<Duration>,
    /// The profile's rate policies, if it has a `behavior:`.
    pub rate_limits: Option<RateLimits>,
    /// The built-in calculation's tolerances (the HPA's 0.1 unless the `behavior:` sets them).
    pub tolerance: Tolerances,
    /// The profile's `scaleToZero:`, if it has one.
    pub scale_to_zero: Option<ScaleToZero>,
    /// The profile's predictive models, if it has any.
    pub predictive: Option<Predictive>,
    /// Whose defaults the rest are.
    pub lineage: Lineage,
    /// Where each [`SOURCED`] setting's default comes from (the profile key, or a lineage's
    /// default); `startTime` only when there is one.
    pub sources: Sources,
}

impl SpecDefaults {
    /// The CPA's defaults (its `config.yaml` reference).
    pub fn cpa() -> Self {
        SpecDefaults {
            downscale_stabilization: Duration::ZERO,
            run_mode: RunMode::PerPod,
            lineage: Lineage::Cpa,
            sources: Sources::lineage(Source::CpaDefault),
            ..SpecDefaults::hpa()
        }
    }

    /// The HPA's defaults (kube-controller-manager's flags and `behavior` defaults).
    pub fn hpa() -> Self {
        SpecDefaults {
            min_replicas: 1,
            max_replicas: 10,
            interval: Duration::from_secs(15),
            downscale_stabilization: Duration::from_secs(300),
            upscale_stabilization: Duration::ZERO,
            run_mode: RunMode::PerResource,
            start_time: None,
            rate_limits: None,
            tolerance: Tolerances::default(),
            scale_to_zero: None,
            predictive: None,
            lineage: Lineage::Hpa,
            sources: Sources::lineage(Source::HpaDefault),
        }
    }
}

impl Default for SpecDefaults {
    fn default() -> Self {
        SpecDefaults::hpa()
    }
}

/// Everything the hub needs to autoscale one workload, from its annotations and its profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetSpec {
    /// The hook profile's name.
    pub profile: String,
    /// Lower bound; 0 allows scaling to and from zero.
    pub min_replicas: i32,
    /// Upper bound.
    pub max_replicas: i32,
    /// Tick period.
    #[serde(with = "serde_human")]
    pub interval: Duration,
    /// Scale-down stabilisation window.
    #[serde(with = "serde_human")]
    pub downscale_stabilization: Duration,
    /// Scale-up stabilisation window.
    #[serde(with = "serde_human")]
    pub upscale_stabilization: Duration,
    /// How the metric method runs.
    pub run_mode: RunMode,
    /// Active or shadow.
    pub mode: Mode,
    /// Passed to hooks as `params`.
    pub params: BTreeMap<String, String>,
    /// Rate policies from the profile's `behavior:`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<RateLimits>,
    /// The tolerances of the built-in calculation (a hook's evaluation is its own).
    #[serde(default)]
    pub tolerance: Tolerances,
    /// Scale to and from zero, from the profile; acts only with a minimum of 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_to_zero: Option<ScaleToZero>,
    /// Predictive models around the evaluation, from the profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predictive: Option<Predictive>,
    /// The first tick waits for the next multiple of this period of wall-clock time, then one
    /// interval (the CPA's `startTime`); without it the first tick is jittered.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_human_opt")]
    pub start_time: Option<Duration>,
    /// Whose defaults fill what is not set.
    #[serde(default)]
    pub lineage: Lineage,
    /// Where each of the [`SOURCED`] settings came from.
    #[serde(default)]
    pub sources: Sources,
}

/// One bad annotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecError {
    /// The annotation key.
    pub key: String,
    /// Its value, when it is present.
    pub value: Option<String>,
    /// Why it is rejected.
    pub reason: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}: {:?} {}", self.key, value, self.reason),
            None => write!(f, "{}: {}", self.key, self.reason),
        }
    }
}

/// Every bad annotation of a workload (never empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}", self.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct SpecErrors(pub Vec<SpecError>);

/// Whether the workload opted in: only the exact value `"true"` does.
pub fn is_opted_in(annotations: &BTreeMap<String, String>) -> bool {
    annotations.get(ENABLED).is_some_and(|value| value == "true")
}

/// Accumulates errors while reading annotations.
struct Reader<'a> {
    annotations: &'a BTreeMap<String, String>,
    errors: Vec<SpecError>,
}

impl Reader<'_> {
    fn fail(&mut self, key: &str, reason: impl Into<String>) {
        let value = self.annotations.get(key).cloned();
        self.errors.push(SpecError { key: key.to_owned(), value, reason: reason.into() });
    }

    /// Reads `key` with `parse`, falling back to `default` when absent or invalid.
    fn read<T>(&mut self, key: &str, default: T, parse: impl FnOnce(&str) -> Result<T, String>) -> T {
        let Some(value) = self.annotations.get(key) else {
            return default;
        };
        match parse(value) {
            Ok(parsed) => parsed,
            Err(reason) => {
                self.fail(key, reason);
                default
            }
        }
    }
}

fn whole_number(value: &str) -> Result<i32, String> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        value.parse().map_err(|_| "is too large".to_owned())
    } else if value
        .strip_prefix('-')
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
    {
        Err("must be >= 0".to_owned())
    } else {
        Err("is not a whole number".to_owned())
    }
}

/// A `start-time` annotation: a period from 1 s to a day.
fn start_time(value: &str) -> Result<Duration, String> {
    let period = parse_duration(value).map_err(|err| format!("is not a duration: {err}"))?;
    if period < Duration::from_secs(1) || period > MAX_INTERVAL {
        return Err(format!("must be between 1s and {}", format_duration(MAX_INTERVAL)));
    }
    Ok(period)
}

fn window(value: &str) -> Result<Duration, String> {
    let window = parse_duration(value).map_err(|err| format!("is not a duration: {err}"))?;
    if window > MAX_WINDOW {
        return Err(format!("must be at most {}", format_duration(MAX_WINDOW)));
    }
    Ok(window)
}

impl TargetSpec {
    /// Parses the annotations of an opted-in workload against the profiles in the hub config
    /// (profile name → its defaults, see [`Config::spec_defaults`](crate::config::Config::spec_defaults)).
    pub fn from_annotations(
        annotations: &BTreeMap<String, String>,
        profiles: &BTreeMap<String, SpecDefaults>,
    ) -> Result<TargetSpec, SpecErrors> {
        let mut reader = Reader { annotations, errors: Vec::new() };
        let profile = annotations.get(PROFILE).map_or(DEFAULT_PROFILE, String::as_str).to_owned();
        let fallback = SpecDefaults::default();
        let defaults = match profiles.get(&profile) {
            Some(defaults) => defaults,
            None => {
                let known = profiles.keys().map(String::as_str).collect::<Vec<_>>().join(", ");
                let reason = if annotations.contains_key(PROFILE) {
                    format!("is not a profile in the hub config (known: {known})")
                } else {
                    format!("is absent and the hub config has no {DEFAULT_PROFILE:?} profile (known: {known})")
                };
                reader.fail(PROFILE, reason);
                &fallback
            }
        };

        let min_replicas = reader.read(MIN_REPLICAS, defaults.min_replicas, whole_number);
        let max_replicas = reader.read(MAX_REPLICAS, defaults.max_replicas, |v| match whole_number(v) {
            Ok(n) if n >= 1 => Ok(n),
            Ok(_) => Err("must be >= 1".into()),
            // A negative count breaks the same rule as 0 does: say that rule.
            Err(e) if v.starts_with('-') && e.starts_with("must be") => Err("must be >= 1".into()),
            Err(e) => Err(e),
        });
        if min_replicas > max_replicas {
            let key = if annotations.contains_key(MIN_REPLICAS) { MIN_REPLICAS } else { MAX_REPLICAS };
            reader.fail(key, format!("leaves min-replicas {min_replicas} above max-replicas {max_replicas}"));
        }
        let interval = reader.read(INTERVAL, defaults.interval, |v| {
            check_interval(parse_duration(v).map_err(|err| format!("is not a duration: {err}"))?)
        });
        let downscale_stabilization = reader.read(DOWNSCALE_STABILIZATION, defaults.downscale_stabilization, window);
        let upscale_stabilization = reader.read(UPSCALE_STABILIZATION, defaults.upscale_stabilization, window);
        let run_mode = reader.read(RUN_MODE, defaults.run_mode, |v| match v {
            "per-pod" => Ok(RunMode::PerPod),
            "per-resource" => Ok(RunMode::PerResource),
            _ => Err("is not a run mode (per-pod or per-resource)".into()),
        });
        let start_time = match annotations.contains_key(START_TIME) {
            true => reader.read(START_TIME, None, |v| start_time(v).map(Some)),
            false => defaults.start_time,
        };
        let mode = reader.read(MODE, Mode::Active, |v| match v {
            "active" => Ok(Mode::Active),
            "shadow" => Ok(Mode::Shadow),
            _ => Err("is not a mode (active or shadow)".into()),
        });

        let mut params = BTreeMap::new();
        for (key, value) in annotations {
            if let Some(param) = key.strip_prefix(PARAM_PREFIX) {
                if param.is_empty() {
                    reader.fail(key, "has no parameter name after \"param.\"");
                } else {
                    params.insert(param.to_owned(), value.clone());
                }
            } else if key.starts_with(PREFIX) && !KNOWN.contains(&key.as_str()) {
                reader.fail(key, "is not a scalehub annotation (check the spelling)");
            }
        }

        if !reader.errors.is_empty() {
            return Err(SpecErrors(reader.errors));
        }
        let mut sources = defaults.sources;
        for (key, annotation) in SOURCED {
            if annotations.contains_key(annotation) {
                sources.set(key, Source::Annotation);
            }
        }
        Ok(TargetSpec {
            profile,
            min_replicas,
            max_replicas,
            interval,
            downscale_stabilization,
            upscale_stabilization,
            run_mode,
            mode,
            params,
            rate_limits: defaults.rate_limits.clone(),
            tolerance: defaults.tolerance,
            scale_to_zero: defaults.scale_to_zero,
            predictive: defaults.predictive.clone(),
            start_time,
            lineage: defaults.lineage,
            sources,
        })
    }

    /// The policy input for one tick of this target.
    pub fn policy_input<'a>(
        &'a self,
        now: EpochMillis,
        current_replicas: i32,
        evaluated_replicas: i32,
        active_override: Option<&'a Override>,
    ) -> PolicyInput<'a> {
        PolicyInput {
            now,
            current_replicas,
            evaluated_replicas,
            min_replicas: self.min_replicas,
            max_replicas: self.max_replicas,
            upscale_window: self.upscale_stabilization,
            downscale_window: self.downscale_stabilization,
            rate_limits: self.rate_limits.as_ref(),
            active_override,
            lineage: self.lineage,
            activation: None,
            predictive: self.predictive.as_ref(),
        }
    }

    /// This tick's activation for an activation value of `value_milli` (`None`: not readable
    /// this tick, counted as active), when the target scales to zero (a profile's
    /// `scaleToZero:` and a minimum of 0).
    pub fn activation(&self, value_milli: Option<i64>) -> Option<Activation> {
        let zero = self.scale_to_zero.filter(|_| self.min_replicas == 0)?;
        let cooldown_ms = i64::try_from(zero.cooldown_period.as_millis()).unwrap_or(i64::MAX);
        Some(Activation::new(value_milli, zero.activation_threshold_milli, cooldown_ms))
    }
}

/// Scale to and from zero, resolved from a profile's `scaleToZero:` (see `policy/zero.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleToZero {
    /// Active above this value, in thousandths.
    pub activation_threshold_milli: i64,
    /// How long a target stays inactive at one replica before it goes to zero.
    #[serde(with = "serde_human")]
    pub cooldown_period: Duration,
}

/// The annotation keys with fixed names (params are matched by prefix).
const KNOWN: [&str; 10] = [
    ENABLED,
    START_TIME,
    PROFILE,
    MIN_REPLICAS,
    MAX_REPLICAS,
    INTERVAL,
    DOWNSCALE_STABILIZATION,
    UPSCALE_STABILIZATION,
    RUN_MODE,
    MODE,
];
