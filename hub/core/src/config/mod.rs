//! The hub config file (YAML): listen address, database, namespaces, retention, hook
//! concurrency, and the hook profiles that annotations refer to by name.
//!
//! Unknown keys are errors everywhere except directly inside a profile, so a typo in the hub's
//! own settings never silently turns one off. Inside a profile (a CPA `config.yaml` body) an
//! unknown key is a warning ([`Config::warnings`]): CPA versions add and drop keys, and one the
//! hub does not know must not stop the whole hub. Every error names the field path, e.g.
//! `profiles.default.evaluate.timeout: must be > 0`.

mod behavior;
mod method;
mod metrics;
mod profile;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use behavior::{BehaviorConfig, ScalingRulesConfig};
pub use method::{HttpMethod, Method, MethodType, ParameterMode, ShellMethod};
pub use metrics::{
    LabelSelector, LabelSelectorRequirement, MetricIdentifier, MetricSourceType, MetricSpec, MetricTarget,
    MetricTargetType, PodsMetricSource, ResourceMetricSource,
};
pub use profile::{Fallback, FallbackBehavior, Profile, ScaleToZeroConfig};

use crate::spec::SpecDefaults;

/// The whole hub config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Address of the REST API, dashboard and `/metrics`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// URL of the state and decision store: `sqlite://FILE` (embedded, the default) or
    /// `postgres://USER@HOST/DB` (a server several hubs share). A password belongs in the
    /// `SCALEHUB_DATABASE` environment variable (from a Secret), not in this file.
    #[serde(default = "default_database")]
    pub database: String,
    /// Whether replicas sharing a PostgreSQL database split the targets between them (each
    /// replica holds a membership Lease and ticks its share); `false` keeps one leader that
    /// ticks every target. Unset: sharded on PostgreSQL. SQLite is never sharded.
    #[serde(default)]
    pub sharding: Option<bool>,
    /// Namespaces to watch; empty means all.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Decisions older than this are pruned.
    #[serde(default = "default_retention", with = "crate::duration::serde_human")]
    pub retention: Duration,
    /// How many hooks may run at once across all targets.
    #[serde(default = "default_hook_concurrency")]
    pub hook_concurrency: usize,
    /// How long one read of a namespace's PodMetrics serves every target of that namespace
    /// (metrics-server refreshes every 15 s by default); `0s` reads per target and tick.
    #[serde(default = "default_metrics_resolution", with = "crate::duration::serde_human")]
    pub metrics_resolution: Duration,
    /// How long one request to the Kubernetes API server may take (a scale write, a Lease
    /// renewal, an Event, a token review) before it counts as failed; watches are not bound
    /// by it. 1s to 5m.
    #[serde(default = "default_kubernetes_timeout", with = "crate::duration::serde_human")]
    pub kubernetes_timeout: Duration,
    /// API access settings.
    #[serde(default)]
    pub api: ApiConfig,
    /// Kinds to scale beyond Deployment, StatefulSet and ReplicaSet: any resource with a
    /// `/scale` subresource (read at start; a change needs a restart).
    #[serde(default)]
    pub extra_kinds: Vec<ExtraKind>,
    /// Profile-shaped defaults merged under every profile.
    #[serde(default)]
    pub defaults: Option<Profile>,
    /// Named hook profiles (already merged with `defaults` after loading).
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
    /// What loading found questionable but not wrong: keys of a profile the hub does not know.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// A resource with a `/scale` subresource that the hub watches and scales like the built-in
/// kinds (the CPA's and the HPA's "any scalable resource"): an Argo Rollout, a
/// ReplicationController, a custom resource.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtraKind {
    /// API group, e.g. `argoproj.io` (`""` for the core group).
    #[serde(default)]
    pub group: String,
    /// API version, e.g. `v1alpha1`.
    pub version: String,
    /// Kind, e.g. `Rollout`; targets are named by it (`shop/Rollout/web`).
    pub kind: String,
    /// Plural as in the API path, e.g. `rollouts`.
    pub plural: String,
}

impl ExtraKind {
    fn validate(&self, path: &str, issues: &mut Issues) {
        let dns_label = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !s.starts_with('-')
                && !s.ends_with('-')
        };
        if !self.group.is_empty() && !self.group.split('.').all(dns_label) {
            issues.push(format!("{path}.group"), "must be a DNS subdomain, e.g. argoproj.io");
        }
        if !dns_label(&self.version) {
            issues.push(format!("{path}.version"), "must be an API version, e.g. v1alpha1");
        }
        if !dns_label(&self.plural) {
            issues.push(format!("{path}.plural"), "must be the lowercase plural of the API path, e.g. rollouts");
        }
        let kind_ok = self.kind.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && self.kind.len() <= 63
            && self.kind.chars().all(|c| c.is_ascii_alphanumeric());
        if !kind_ok {
            issues.push(format!("{path}.kind"), "must be a Kubernetes kind in CamelCase, e.g. Rollout");
        }
        if crate::target::Kind::BUILTIN.iter().any(|k| k.as_str().eq_ignore_ascii_case(&self.kind)) {
            issues.push(format!("{path}.kind"), format!("{} is a built-in kind", self.kind));
        }
    }
}

/// Who may use the REST API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiConfig {
    /// File holding the bearer token that writes require (read at startup, never logged).
    pub token_file: Option<PathBuf>,
    /// Require the token for reads too.
    #[serde(default)]
    pub protect_reads: bool,
    /// Also accept Kubernetes bearer tokens, checked with TokenReview and authorised with
    /// SubjectAccessReview (as kube-rbac-proxy does); the hub's ServiceAccount then needs
    /// the `system:auth-delegator` ClusterRole.
    #[serde(default)]
    pub kubernetes_auth: bool,
    /// Let anyone who may read run a target's hooks through the CPA calls (`GET …/metrics`,
    /// `POST …/evaluation?dry_run=true`), as the CPA's unauthenticated API did. Off by
    /// default: running hooks costs the cluster work, so it needs a token that may write.
    #[serde(default)]
    pub open_hook_runs: bool,
    /// API-triggered hook runs per second, hub-wide (bursts of twice as many), so they
    /// cannot starve scheduled ticks of the hook concurrency; more get 429. Default 5.
    #[serde(default)]
    pub hook_runs_per_second: Option<u32>,
}

impl ApiConfig {
    /// API-triggered hook runs allowed per second.
    pub fn hook_runs_per_second(&self) -> u32 {
        self.hook_runs_per_second.unwrap_or(5).max(1)
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_database() -> String {
    "sqlite://scalehub.db".to_owned()
}

fn default_retention() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}

fn default_hook_concurrency() -> usize {
    32
}

fn default_kubernetes_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_metrics_resolution() -> Duration {
    Duration::from_secs(15)
}

/// The longest `retention` accepted: ten years keeps every time computation far from overflow.
const MAX_RETENTION: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

/// One problem found in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path of the offending field, e.g. `profiles.default.evaluate.timeout`.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or does not fit the schema (unknown key, wrong type).
    #[error("{0}")]
    Parse(FieldError),
    /// The config parsed but some values are invalid; every problem is listed.
    #[error("invalid config: {}", join(.0))]
    Invalid(Vec<FieldError>),
}

fn join(errors: &[FieldError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Collects validation problems with their paths.
#[derive(Debug, Default)]
pub(crate) struct Issues(pub(crate) Vec<FieldError>);

impl Issues {
    /// Records a problem at `path`.
    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError { path: path.into(), message: message.into() });
    }
}

impl Config {
    /// Reads and validates the config file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Config::from_yaml_str(&text)
    }

    /// Parses, merges `defaults:` into every profile, and validates.
    pub fn from_yaml_str(text: &str) -> Result<Config, ConfigError> {
        let mut config = parse_yaml(text)?;
        let mut issues = Issues::default();
        config.validate_top_level(&mut issues);
        let defaults = config.defaults.clone().unwrap_or_default();
        if config.defaults.is_some() {
            defaults.validate_fields("defaults", &mut issues);
            config.warnings.extend(unknown_keys("defaults", &defaults));
        }
        let profiles = std::mem::take(&mut config.profiles);
        for (name, profile) in profiles {
            let path = format!("profiles.{name}");
            config.warnings.extend(unknown_keys(&path, &profile));
            if name.trim().is_empty() {
                issues.push("profiles", "a profile name must not be empty");
            }
            profile.validate_fields(&path, &mut issues);
            let merged = profile.over(&defaults);
            merged.validate_complete(&path, &mut issues);
            config.profiles.insert(name, merged);
        }
        if issues.0.is_empty() {
            Ok(config)
        } else {
            // An invalid config shows its unknown keys too: `evalute:` explains a missing `evaluate`.
            let mut all = issues.0;
            all.extend(config.warnings.iter().filter_map(|w| {
                let (path, reason) = w.split_once(": ")?;
                Some(FieldError { path: path.to_owned(), message: reason.to_owned() })
            }));
            Err(ConfigError::Invalid(all))
        }
    }

    /// A config with no profiles and every default (useful for tests and `scalehub sim`).
    pub fn empty() -> Config {
        Config {
            listen: default_listen(),
            database: default_database(),
            sharding: None,
            namespaces: Vec::new(),
            retention: default_retention(),
            hook_concurrency: default_hook_concurrency(),
            metrics_resolution: default_metrics_resolution(),
            kubernetes_timeout: default_kubernetes_timeout(),
            api: ApiConfig::default(),
            extra_kinds: Vec::new(),
            defaults: None,
            profiles: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }

    /// The profile called `name`, merged with `defaults:`.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    /// Per profile name, what a target's annotations default to; the input of
    /// [`TargetSpec::from_annotations`](crate::spec::TargetSpec::from_annotations).
    pub fn spec_defaults(&self) -> BTreeMap<String, SpecDefaults> {
        self.profiles.iter().map(|(name, p)| (name.clone(), p.spec_defaults())).collect()
    }

    fn validate_top_level(&self, issues: &mut Issues) {
        if self.sharding == Some(true) && self.database.starts_with("sqlite:") {
            issues.push("sharding", "needs a postgres:// database that the replicas share");
        }
        let known = ["sqlite:", "postgres://", "postgresql://"];
        if !known.iter().any(|scheme| self.database.starts_with(scheme)) {
            issues.push(
                "database",
                "must be a sqlite: or postgres:// URL, e.g. sqlite://scalehub.db or postgres://scalehub@db/scalehub",
            );
        }
        if self.retention.is_zero() {
            issues.push("retention", "must be > 0");
        } else if self.retention > MAX_RETENTION {
            issues.push("retention", "must be at most 3660d (10 years)");
        }
        if self.metrics_resolution > Duration::from_secs(3600) {
            issues.push("metricsResolution", "must be at most 1h");
        }
        if self.kubernetes_timeout < Duration::from_secs(1) || self.kubernetes_timeout > Duration::from_secs(300) {
            issues.push("kubernetesTimeout", "must be between 1s and 5m");
        }
        if self.api.hook_runs_per_second == Some(0) {
            issues.push("api.hookRunsPerSecond", "must be > 0");
        }
        if self.hook_concurrency == 0 {
            issues.push("hookConcurrency", "must be > 0");
        }
        for (index, namespace) in self.namespaces.iter().enumerate() {
            if namespace.trim().is_empty() {
                issues.push(format!("namespaces[{index}]"), "must not be empty");
            }
        }
        for (index, extra) in self.extra_kinds.iter().enumerate() {
            extra.validate(&format!("extraKinds[{index}]"), issues);
            if self.extra_kinds[..index].iter().any(|e| e.kind.eq_ignore_ascii_case(&extra.kind)) {
                issues.push(
                    format!("extraKinds[{index}].kind"),
                    format!("{} is listed twice; targets are named by kind, so kinds must differ", extra.kind),
                );
            }
        }
    }
}

/// Deserialises with serde-saphyr, tracking the field path so errors can name it.
fn parse_yaml(text: &str) -> Result<Config, ConfigError> {
    let path = std::cell::RefCell::new(String::new());
    let options = serde_saphyr::options! { with_snippet: false };
    let parsed = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize(de).map_err(|err| {
            *path.borrow_mut() = err.path().to_string();
            err.into_inner()
        })
    });
    parsed.map_err(|err| {
        let path = path.into_inner();
        let path = if path.is_empty() || path == "." { "config".to_owned() } else { path };
        ConfigError::Parse(FieldError { path, message: err.to_string() })
    })
}

/// A warning for each key of a profile that the hub does not know.
fn unknown_keys(path: &str, profile: &Profile) -> Vec<String> {
    profile
        .unknown
        .keys()
        .map(|key| {
            format!("{path}.{key}: not a key this hub knows (a CPA key of another version, or a typo?); ignored")
        })
        .collect()
}
