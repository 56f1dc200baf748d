//! A hook profile: a CPA `config.yaml` body, accepted unchanged, plus an optional `behavior:`.

use std::time::Duration;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::Issues;
use super::behavior::BehaviorConfig;
use super::method::Method;
use super::metrics::{MetricSourceType, MetricSpec};
use crate::spec::{RunMode, ScaleToZero, Source, SpecDefaults};

/// A profile as written in the config. Every field is optional here so that `defaults:` can
/// fill gaps; validation then requires `metric` and `evaluate` on each merged profile.
///
/// A key the hub does not know is kept in [`Profile::unknown`] and reported as a warning, not
/// an error: a CPA config of a newer or older version may carry keys this hub has never heard
/// of, and one unknown key must not stop every target of the hub.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// Gathers the metric (per pod or per resource).
    pub metric: Option<Method>,
    /// Turns metrics into `{"targetReplicas": N}`.
    pub evaluate: Option<Method>,
    /// Hook before the metric stage.
    pub pre_metric: Option<Method>,
    /// Hook after the metric stage.
    pub post_metric: Option<Method>,
    /// Hook before the evaluate stage.
    pub pre_evaluate: Option<Method>,
    /// Hook after the evaluate stage.
    pub post_evaluate: Option<Method>,
    /// Hook before the scale call.
    pub pre_scale: Option<Method>,
    /// Hook after the scale call.
    pub post_scale: Option<Method>,
    /// `per-pod` or `per-resource`; the annotation overrides it.
    pub run_mode: Option<RunMode>,
    /// Kubernetes metrics gathered and passed to the metric stage.
    pub kubernetes_metric_specs: Option<Vec<MetricSpec>>,
    /// Fail the tick when any Kubernetes metric cannot be gathered.
    pub require_kubernetes_metrics: Option<bool>,
    /// Default lower bound.
    pub min_replicas: Option<i32>,
    /// Default upper bound.
    pub max_replicas: Option<i32>,
    /// Default tick period in milliseconds (CPA unit).
    pub interval: Option<i64>,
    /// Default scale-down window in seconds (CPA unit).
    pub downscale_stabilization: Option<i64>,
    /// Seconds after pod start during which readiness flaps are forgiven (CPU metrics).
    pub initial_readiness_delay: Option<i64>,
    /// Seconds after pod start during which CPU samples may be ignored.
    pub cpu_initialization_period: Option<i64>,
    /// HPA-style stabilisation windows and rate policies.
    pub behavior: Option<BehaviorConfig>,
    /// CPA key, ignored: the hub knows each target's namespace.
    pub namespace: Option<IgnoredAny>,
    /// CPA key, ignored: targets come from annotations.
    pub scale_target_ref: Option<IgnoredAny>,
    /// Aligns the first tick (milliseconds, CPA unit): see [`crate::spec::START_TIME`].
    pub start_time: Option<i64>,
    /// What to scale to once metrics or hooks have failed this many ticks in a row (KEDA's
    /// `fallback`); without it a failing target holds its replicas.
    pub fallback: Option<Fallback>,
    /// Predictive models around the evaluation (the predictive HPA's, in Rust).
    pub predictive: Option<crate::predict::Predictive>,
    /// Scale to and from zero for targets with `minReplicas: 0` (KEDA's activation and
    /// cooldown); without it, a target with a minimum of 0 scales to zero like any count.
    pub scale_to_zero: Option<ScaleToZeroConfig>,
    /// CPA key, ignored: the hub serves one API for all targets.
    pub api_config: Option<IgnoredAny>,
    /// CPA key, ignored: logging is configured with `RUST_LOG`.
    pub log_verbosity: Option<IgnoredAny>,
    /// Keys this hub does not know, in document order of their names (reported, ignored).
    #[serde(flatten)]
    pub unknown: std::collections::BTreeMap<String, IgnoredAny>,
}

/// `scaleToZero:` as written in the config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaleToZeroConfig {
    /// The target is active while its activation value is above this (0 when omitted): the
    /// evaluation's `targetReplicas` for a hook profile, the largest Object or External metric
    /// value for a built-in one.
    pub activation_threshold: Option<crate::quantity::Milli>,
    /// Seconds a target must stay inactive before 1 → 0 (KEDA's `cooldownPeriod`, 300 when
    /// omitted).
    pub cooldown_period: Option<i64>,
}

/// KEDA's `cooldownPeriod` default, seconds.
const DEFAULT_COOLDOWN_PERIOD: i64 = 300;
/// The longest cooldown, a day.
const MAX_COOLDOWN_PERIOD: i64 = 86_400;

impl ScaleToZeroConfig {
    /// The resolved settings.
    pub fn resolve(&self) -> ScaleToZero {
        ScaleToZero {
            activation_threshold_milli: self.activation_threshold.unwrap_or_default().0,
            cooldown_period: Duration::from_secs(
                self.cooldown_period.unwrap_or(DEFAULT_COOLDOWN_PERIOD).unsigned_abs(),
            ),
        }
    }
}

/// KEDA's `fallback`: after `failureThreshold` failed ticks in a row the target is decided as
/// if the evaluation had asked for the fallback count, until a tick succeeds again.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fallback {
    /// Failed ticks in a row before the fallback applies (at least 1).
    pub failure_threshold: u32,
    /// The fallback replica count.
    pub replicas: i32,
    /// How `replicas` and the current count combine.
    #[serde(default)]
    pub behavior: FallbackBehavior,
}

/// How a fallback count combines with the workload's current replicas (KEDA's behaviors).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FallbackBehavior {
    /// The fallback count.
    #[default]
    Static,
    /// Keep the current count.
    CurrentReplicas,
    /// The current count if it is higher than the fallback count.
    CurrentReplicasIfHigher,
    /// The current count if it is lower than the fallback count.
    CurrentReplicasIfLower,
}

impl Fallback {
    /// The count a failing target goes to, with `current` replicas now.
    pub fn replicas(&self, current: i32) -> i32 {
        match self.behavior {
            FallbackBehavior::Static => self.replicas,
            FallbackBehavior::CurrentReplicas => current,
            FallbackBehavior::CurrentReplicasIfHigher => current.max(self.replicas),
            FallbackBehavior::CurrentReplicasIfLower => current.min(self.replicas),
        }
    }
}

/// CPA `initialReadinessDelay` default, seconds.
const DEFAULT_INITIAL_READINESS_DELAY: i64 = 30;
/// CPA `cpuInitializationPeriod` default, seconds.
const DEFAULT_CPU_INITIALIZATION_PERIOD: i64 = 300;

impl Profile {
    /// This profile with every unset field taken from `base` (the config's `defaults:`).
    pub(crate) fn over(self, base: &Profile) -> Profile {
        let base = base.clone();
        Profile {
            metric: self.metric.or(base.metric),
            evaluate: self.evaluate.or(base.evaluate),
            pre_metric: self.pre_metric.or(base.pre_metric),
            post_metric: self.post_metric.or(base.post_metric),
            pre_evaluate: self.pre_evaluate.or(base.pre_evaluate),
            post_evaluate: self.post_evaluate.or(base.post_evaluate),
            pre_scale: self.pre_scale.or(base.pre_scale),
            post_scale: self.post_scale.or(base.post_scale),
            run_mode: self.run_mode.or(base.run_mode),
            kubernetes_metric_specs: self.kubernetes_metric_specs.or(base.kubernetes_metric_specs),
            require_kubernetes_metrics: self.require_kubernetes_metrics.or(base.require_kubernetes_metrics),
            min_replicas: self.min_replicas.or(base.min_replicas),
            max_replicas: self.max_replicas.or(base.max_replicas),
            interval: self.interval.or(base.interval),
            downscale_stabilization: self.downscale_stabilization.or(base.downscale_stabilization),
            initial_readiness_delay: self.initial_readiness_delay.or(base.initial_readiness_delay),
            cpu_initialization_period: self.cpu_initialization_period.or(base.cpu_initialization_period),
            behavior: self.behavior.or(base.behavior),
            namespace: None,
            scale_target_ref: None,
            start_time: self.start_time.or(base.start_time),
            fallback: self.fallback.or(base.fallback),
            scale_to_zero: self.scale_to_zero.or(base.scale_to_zero),
            predictive: self.predictive.or(base.predictive),
            api_config: None,
            log_verbosity: None,
            unknown: Default::default(),
        }
    }

    /// The hooks in pipeline order with their config key, for iteration.
    pub fn methods(&self) -> [(&'static str, Option<&Method>); 8] {
        [
            ("preMetric", self.pre_metric.as_ref()),
            ("metric", self.metric.as_ref()),
            ("postMetric", self.post_metric.as_ref()),
            ("preEvaluate", self.pre_evaluate.as_ref()),
            ("evaluate", self.evaluate.as_ref()),
            ("postEvaluate", self.post_evaluate.as_ref()),
            ("preScale", self.pre_scale.as_ref()),
            ("postScale", self.post_scale.as_ref()),
        ]
    }

    /// Whether this profile runs the HPA's own calculation (no metric or evaluate hook).
    pub fn is_builtin(&self) -> bool {
        self.evaluate.is_none() && self.metric.is_none()
    }

    /// What a target using this profile gets when its annotations leave a setting out: the
    /// profile's own keys, then the CPA's defaults for a hook profile or the HPA's for a
    /// built-in one.
    pub fn spec_defaults(&self) -> SpecDefaults {
        let fallback = if self.is_builtin() { SpecDefaults::hpa() } else { SpecDefaults::cpa() };
        let behavior = self.behavior.as_ref();
        let seconds = |s: i32| Duration::from_secs(u64::from(s.unsigned_abs()));
        let downscale = behavior
            .and_then(BehaviorConfig::downscale_window_seconds)
            .map(seconds)
            .or(self.downscale_stabilization.map(|s| Duration::from_secs(s.unsigned_abs())));
        // A `behavior:` is the HPA's: what it leaves out has the HPA's defaults, in a hook
        // profile too (a 5-minute downscale window).
        let mut fallback = fallback;
        if behavior.is_some() && downscale.is_none() {
            fallback.downscale_stabilization = SpecDefaults::hpa().downscale_stabilization;
            fallback.sources.set("downscaleStabilization", Source::HpaDefault);
        }
        let upscale = behavior.and_then(BehaviorConfig::upscale_window_seconds).map(seconds);
        let set = [
            ("minReplicas", self.min_replicas.is_some()),
            ("maxReplicas", self.max_replicas.is_some()),
            ("interval", self.interval.is_some()),
            ("downscaleStabilization", downscale.is_some()),
            ("upscaleStabilization", upscale.is_some()),
            ("runMode", self.run_mode.is_some()),
            ("startTime", self.start_time.is_some()),
        ];
        SpecDefaults {
            min_replicas: self.min_replicas.unwrap_or(fallback.min_replicas),
            max_replicas: self.max_replicas.unwrap_or(fallback.max_replicas),
            interval: self.interval.map_or(fallback.interval, |ms| Duration::from_millis(ms.unsigned_abs())),
            downscale_stabilization: downscale.unwrap_or(fallback.downscale_stabilization),
            upscale_stabilization: upscale.unwrap_or(fallback.upscale_stabilization),
            run_mode: self.run_mode.unwrap_or(fallback.run_mode),
            start_time: self.start_time.map(|ms| Duration::from_millis(ms.unsigned_abs())),
            rate_limits: behavior.map(BehaviorConfig::rate_limits),
            tolerance: behavior.map(BehaviorConfig::tolerances).unwrap_or_default(),
            scale_to_zero: self.scale_to_zero.as_ref().map(ScaleToZeroConfig::resolve),
            predictive: self.predictive.clone(),
            lineage: fallback.lineage,
            sources: {
                let mut sources = fallback.sources;
                for (key, _) in set.iter().filter(|(_, set)| *set) {
                    sources.set(key, Source::Profile);
                }
                sources
            },
        }
    }

    /// `initialReadinessDelay` with the CPA default.
    pub fn initial_readiness_delay(&self) -> Duration {
        let secs = self.initial_readiness_delay.unwrap_or(DEFAULT_INITIAL_READINESS_DELAY);
        Duration::from_secs(secs.unsigned_abs())
    }

    /// `cpuInitializationPeriod` with the CPA default.
    pub fn cpu_initialization_period(&self) -> Duration {
        let secs = self.cpu_initialization_period.unwrap_or(DEFAULT_CPU_INITIALIZATION_PERIOD);
        Duration::from_secs(secs.unsigned_abs())
    }

    /// Reports problems with the fields that are set (used for profiles and for `defaults:`).
    pub(crate) fn validate_fields(&self, path: &str, issues: &mut Issues) {
        for (key, method) in self.methods() {
            if let Some(method) = method {
                method.validate(&format!("{path}.{key}"), issues);
            }
        }
        for (index, spec) in self.kubernetes_metric_specs.iter().flatten().enumerate() {
            spec.validate(&format!("{path}.kubernetesMetricSpecs[{index}]"), issues);
        }
        let non_negative = [
            ("minReplicas", self.min_replicas.map(i64::from)),
            ("downscaleStabilization", self.downscale_stabilization),
            ("initialReadinessDelay", self.initial_readiness_delay),
            ("cpuInitializationPeriod", self.cpu_initialization_period),
        ];
        for (key, value) in non_negative {
            if value.is_some_and(|v| v < 0) {
                issues.push(format!("{path}.{key}"), "must be >= 0");
            }
        }
        if self.max_replicas.is_some_and(|max| max < 1) {
            issues.push(format!("{path}.maxReplicas"), "must be >= 1");
        }
        if let Some(fallback) = &self.fallback {
            if fallback.failure_threshold == 0 {
                issues.push(format!("{path}.fallback.failureThreshold"), "must be >= 1");
            }
            if fallback.replicas < 0 {
                issues.push(format!("{path}.fallback.replicas"), "must be >= 0");
            }
        }
        if let Some(predictive) = &self.predictive {
            predictive.validate(&format!("{path}.predictive"), issues);
        }
        if let Some(zero) = &self.scale_to_zero
            && let Some(cooldown) = zero.cooldown_period
            && !(0..=MAX_COOLDOWN_PERIOD).contains(&cooldown)
        {
            issues.push(
                format!("{path}.scaleToZero.cooldownPeriod"),
                format!("must be between 0 and {MAX_COOLDOWN_PERIOD} (seconds)"),
            );
        }
        if let Some(ms) = self.start_time
            && !(1..=crate::spec::MAX_INTERVAL.as_millis() as i64).contains(&ms)
        {
            issues.push(format!("{path}.startTime"), "must be between 1 and 86400000 (milliseconds)");
        }
        if let Some(ms) = self.interval {
            let interval = Duration::from_millis(ms.unsigned_abs());
            if ms <= 0 {
                issues.push(format!("{path}.interval"), "must be > 0 (milliseconds)");
            } else if let Err(e) = crate::spec::check_interval(interval) {
                issues.push(format!("{path}.interval"), format!("{e} (milliseconds: {ms})"));
            }
        }
        if let Some(behavior) = &self.behavior {
            behavior.validate(&format!("{path}.behavior"), issues);
        }
    }

    /// Reports what a complete (merged) profile must have.
    pub(crate) fn validate_complete(&self, path: &str, issues: &mut Issues) {
        // Without metric and evaluate methods the hub runs the HPA's own calculation over
        // the `kubernetesMetricSpecs`, so those need a target it can aim for.
        let builtin =
            self.is_builtin() && self.kubernetes_metric_specs.iter().flatten().any(MetricSpec::has_builtin_target);
        if !builtin {
            for (key, method) in [("metric", &self.metric), ("evaluate", &self.evaluate)] {
                if method.is_none() {
                    issues.push(
                        format!("{path}.{key}"),
                        "is required (or leave out both metric and evaluate and give kubernetesMetricSpecs \
                         with a target value for the built-in HPA calculation)",
                    );
                }
            }
        }
        // A built-in profile reads its activation value from an Object or External metric: with
        // no pods there is nothing else to read (the HPA's HPAScaleToZero has the same rule).
        let total_metric = self
            .kubernetes_metric_specs
            .iter()
            .flatten()
            .any(|s| matches!(s.source_type, MetricSourceType::Object | MetricSourceType::External));
        if self.scale_to_zero.is_some() && self.is_builtin() && !total_metric {
            issues.push(
                format!("{path}.scaleToZero"),
                "needs an Object or External metric in kubernetesMetricSpecs (a built-in profile is active while \
                 one of their values is above activationThreshold; at zero replicas there are no pod metrics)",
            );
        }
        let defaults = self.spec_defaults();
        if defaults.min_replicas > defaults.max_replicas {
            issues.push(
                format!("{path}.minReplicas"),
                format!("{} is greater than maxReplicas {}", defaults.min_replicas, defaults.max_replicas),
            );
        }
    }
}
