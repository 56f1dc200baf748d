//! Scenario files (YAML): namespaces, workloads with their load curves, pod ready delay, faults.
//!
//! ```yaml
//! podReadyDelay: 2s
//! namespaces: [shop]
//! workloads:
//!   - kind: Deployment          # or StatefulSet, ReplicaSet, Rollout (argoproj.io/v1alpha1)
//!     name: web
//!     namespace: shop           # default: default
//!     replicas: 2
//!     count: 1                  # >1 creates web-0 … web-N-1 (size tests)
//!     labels: {tier: frontend}  # app=<name> is always added and used as the selector
//!     annotations: {scalehub.io/enabled: "true"}
//!     load: "sine:base=500m,amp=400m,period=10m"
//!     loadTrace: traces/web.csv # alternative: seconds,millicores lines, relative to the file
//!     memory: "constant:512Mi"
//! faults: {latencyMs: 0}
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::faults::FaultConfig;
use crate::load::{self, Curve, Unit};
use crate::resources::{DEPLOYMENTS, NAMESPACES, REPLICASETS, RESOURCES, ROLLOUTS, STATEFULSETS};
use crate::store::Store;

/// Scenario loading and seeding errors.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The YAML does not match the schema.
    #[error("cannot parse scenario: {0}")]
    Parse(String),
    /// A value is invalid (unknown kind, bad curve, bad duration).
    #[error("invalid scenario: {0}")]
    Invalid(String),
    /// The store rejected an object.
    #[error("cannot create {what}: {source}")]
    Create {
        /// Which object.
        what: String,
        /// The API error.
        #[source]
        source: crate::ApiError,
    },
}

/// A scenario: what the simulated cluster holds at start.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    /// Pod ready delay, e.g. `2s` (overrides the command line).
    #[serde(default)]
    pub pod_ready_delay: Option<String>,
    /// Namespaces to create besides `default`, `kube-system`, `kube-public`.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Workloads to create.
    #[serde(default)]
    pub workloads: Vec<WorkloadSpec>,
    /// Faults active from the start.
    #[serde(default)]
    pub faults: Option<FaultConfig>,
}

/// One workload (or `count` copies of it).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadSpec {
    /// `Deployment`, `StatefulSet` or `ReplicaSet`.
    #[serde(default = "default_kind")]
    pub kind: String,
    /// Name (the prefix when `count` > 1).
    pub name: String,
    /// Namespace.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Initial replicas.
    #[serde(default = "one")]
    pub replicas: u32,
    /// How many copies to create.
    #[serde(default = "one")]
    pub count: u32,
    /// Extra labels on the workload and its pods.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations on the workload.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// CPU demand curve (see [`crate::load`]).
    #[serde(default)]
    pub load: Option<String>,
    /// CSV trace of `seconds,millicores` lines, converted to a `trace:` curve.
    #[serde(default)]
    pub load_trace: Option<String>,
    /// Memory demand curve.
    #[serde(default)]
    pub memory: Option<String>,
}

fn default_kind() -> String {
    "Deployment".into()
}
fn default_namespace() -> String {
    "default".into()
}
fn one() -> u32 {
    1
}

/// Parses `2s`, `500ms`, `1m`.
pub fn parse_duration(text: &str) -> Result<Duration, ScenarioError> {
    load::parse_duration_secs(text).map(Duration::from_secs_f64).map_err(|e| ScenarioError::Invalid(e.to_string()))
}

impl Scenario {
    /// Parses YAML; trace files are resolved relative to `base_dir`.
    pub fn from_yaml(text: &str, base_dir: &Path) -> Result<Self, ScenarioError> {
        let mut s: Scenario = serde_saphyr::from_str(text).map_err(|e| ScenarioError::Parse(e.to_string()))?;
        for w in &mut s.workloads {
            if let Some(trace) = w.load_trace.take() {
                let path = base_dir.join(&trace);
                let csv = std::fs::read_to_string(&path)
                    .map_err(|source| ScenarioError::Read { path: path.display().to_string(), source })?;
                w.load = Some(trace_curve(&csv)?);
            }
        }
        s.validate()?;
        Ok(s)
    }

    /// The built-in demo cluster (`examples/demo-scenario.yaml`): opted-in workloads of each kind
    /// with sine, step and trace load, one shadow-mode target and one workload not opted in.
    pub fn demo() -> Self {
        // The embedded file is covered by a unit test, so a parse failure cannot ship; fall back
        // to an empty scenario rather than panic.
        Self::from_yaml(include_str!("../examples/demo-scenario.yaml"), Path::new(".")).unwrap_or_default()
    }

    /// Reads and parses a scenario file.
    pub fn from_file(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ScenarioError::Read { path: path.display().to_string(), source })?;
        Self::from_yaml(&text, path.parent().unwrap_or(Path::new(".")))
    }

    fn validate(&self) -> Result<(), ScenarioError> {
        if let Some(d) = &self.pod_ready_delay {
            parse_duration(d)?;
        }
        for w in &self.workloads {
            if kind_slot(&w.kind).is_none() {
                return Err(ScenarioError::Invalid(format!("workload {}: unknown kind {}", w.name, w.kind)));
            }
            for (curve, unit) in [(&w.load, Unit::Cpu), (&w.memory, Unit::Memory)] {
                if let Some(c) = curve {
                    Curve::parse(c, unit).map_err(|e| ScenarioError::Invalid(format!("workload {}: {e}", w.name)))?;
                }
            }
        }
        Ok(())
    }

    /// The pod ready delay, if the scenario sets one.
    pub fn pod_ready_delay(&self) -> Option<Duration> {
        self.pod_ready_delay.as_deref().and_then(|d| parse_duration(d).ok())
    }

    /// Creates the namespaces and workloads in the store.
    pub fn apply(&self, store: &Store) -> Result<(), ScenarioError> {
        let ns_def = &RESOURCES[NAMESPACES];
        let mut namespaces: Vec<&str> = self.namespaces.iter().map(String::as_str).collect();
        namespaces.extend(self.workloads.iter().map(|w| w.namespace.as_str()));
        for ns in namespaces {
            if !store.namespace_exists(ns) {
                store
                    .create(ns_def, "", json!({"metadata": {"name": ns}}), false)
                    .map_err(|source| ScenarioError::Create { what: format!("namespace {ns}"), source })?;
            }
        }
        for w in &self.workloads {
            let slot = kind_slot(&w.kind).ok_or_else(|| ScenarioError::Invalid(format!("unknown kind {}", w.kind)))?;
            for i in 0..w.count {
                let name = if w.count > 1 { format!("{}-{i}", w.name) } else { w.name.clone() };
                store.create(&RESOURCES[slot], &w.namespace, workload_object(w, &name), false).map_err(|source| {
                    ScenarioError::Create { what: format!("{} {}/{name}", w.kind, w.namespace), source }
                })?;
            }
        }
        Ok(())
    }
}

fn kind_slot(kind: &str) -> Option<usize> {
    match kind {
        "Deployment" => Some(DEPLOYMENTS),
        "StatefulSet" => Some(STATEFULSETS),
        "ReplicaSet" => Some(REPLICASETS),
        "Rollout" => Some(ROLLOUTS),
        _ => None,
    }
}

fn workload_object(w: &WorkloadSpec, name: &str) -> Value {
    let mut labels: BTreeMap<String, String> = w.labels.clone();
    labels.insert("app".into(), name.to_string());
    let mut annotations = w.annotations.clone();
    if let Some(l) = &w.load {
        annotations.insert(load::LOAD_ANNOTATION.into(), l.clone());
    }
    if let Some(m) = &w.memory {
        annotations.insert(load::MEMORY_ANNOTATION.into(), m.clone());
    }
    let mut obj = json!({
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {
            "replicas": w.replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": "500m", "memory": "128Mi"}}}]}
            }
        }
    });
    if w.kind == "StatefulSet" {
        obj["spec"]["serviceName"] = json!(name);
    }
    obj
}

/// Converts `seconds,millicores` lines (blank lines and `#` comments ignored) to a trace curve.
fn trace_curve(csv: &str) -> Result<String, ScenarioError> {
    let mut points = Vec::new();
    for line in csv.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (t, v) = line
            .split_once(',')
            .ok_or_else(|| ScenarioError::Invalid(format!("trace line {line:?}: expected seconds,millicores")))?;
        let (t, v) = (t.trim(), v.trim());
        if t.parse::<f64>().is_err() || v.parse::<f64>().is_err() {
            // A header row such as `seconds,millicores` is allowed first.
            if points.is_empty() {
                continue;
            }
            return Err(ScenarioError::Invalid(format!("trace line {line:?}: not numbers")));
        }
        points.push(format!("{v}m@{t}s"));
    }
    if points.is_empty() {
        return Err(ScenarioError::Invalid("empty trace".into()));
    }
    Ok(format!("trace:{}", points.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta;

    const YAML: &str = r#"
podReadyDelay: 500ms
namespaces: [shop]
workloads:
  - kind: Deployment
    name: web
    namespace: shop
    replicas: 2
    annotations: {scalehub.io/enabled: "true"}
    load: "step:200m@0s,1200m@60s"
  - kind: StatefulSet
    name: db
    count: 3
faults:
  latencyMs: 5
"#;

    #[test]
    fn scenarios_create_namespaces_and_workloads() {
        let s = Scenario::from_yaml(YAML, Path::new(".")).unwrap();
        assert_eq!(s.pod_ready_delay(), Some(Duration::from_millis(500)));
        assert_eq!(s.faults.as_ref().unwrap().latency_ms, 5);
        let store = Store::new(100);
        s.apply(&store).unwrap();
        let web = store.get(DEPLOYMENTS, "shop", "web").unwrap();
        assert_eq!(meta::annotation(&web, load::LOAD_ANNOTATION), Some("step:200m@0s,1200m@60s"));
        assert_eq!(web["spec"]["replicas"], 2);
        assert!(store.get(STATEFULSETS, "default", "db-2").is_some());
    }

    #[test]
    fn invalid_scenarios_are_rejected() {
        assert!(Scenario::from_yaml("workloads: [{name: x, kind: Job}]", Path::new(".")).is_err());
        assert!(Scenario::from_yaml("workloads: [{name: x, load: 'wave:1'}]", Path::new(".")).is_err());
        assert!(Scenario::from_yaml("bogus: 1", Path::new(".")).is_err());
    }

    #[test]
    fn the_demo_scenario_parses_and_applies() {
        let s = Scenario::from_yaml(include_str!("../examples/demo-scenario.yaml"), Path::new(".")).unwrap();
        assert_eq!(Scenario::demo().workloads.len(), s.workloads.len());
        let store = Store::new(100);
        s.apply(&store).unwrap();
        assert!(store.get(STATEFULSETS, "shop", "queue").is_some());
        assert!(store.get(REPLICASETS, "default", "legacy").is_some());
    }

    #[test]
    fn trace_csv_becomes_an_interpolated_curve() {
        let curve = trace_curve("seconds,millicores\n0,100\n60,700\n").unwrap();
        assert_eq!(curve, "trace:100m@0s,700m@60s");
        assert_eq!(Curve::parse(&curve, Unit::Cpu).unwrap().at(30.0), 400.0);
    }
}
