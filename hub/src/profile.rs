//! Profiles from the hub config, resolved for the loops: CPA methods become hook specs,
//! metric specs become queries, `behavior:` becomes rate limits.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use scalehub_core::config::{self, Config, MethodType, MetricSourceType, MetricTargetType};
use scalehub_core::spec::{self, TargetSpec};
use scalehub_hooks::{HookSpec, HttpSpec, ParameterMode, ShellSpec, TlsFiles};

use crate::k8smetrics::{MetricQuery, QuerySource, Readiness};

/// A profile ready for ticks.
#[derive(Debug)]
pub struct Profile {
    /// Its name in the config.
    pub name: String,
    /// Hook before the metric stage.
    pub pre_metric: Option<HookSpec>,
    /// The metric method.
    pub metric: Option<HookSpec>,
    /// Hook after the metric stage.
    pub post_metric: Option<HookSpec>,
    /// Hook before evaluation.
    pub pre_evaluate: Option<HookSpec>,
    /// The evaluate method; without it the built-in HPA calculation runs on the metric specs.
    pub evaluate: Option<HookSpec>,
    /// Hook after evaluation.
    pub post_evaluate: Option<HookSpec>,
    /// Hook before scaling.
    pub pre_scale: Option<HookSpec>,
    /// Hook after scaling.
    pub post_scale: Option<HookSpec>,
    /// `kubernetesMetricSpecs`, resolved.
    pub metric_specs: Vec<MetricQuery>,
    /// `requireKubernetesMetrics`.
    pub require_kubernetes_metrics: bool,
    /// CPU readiness rules (`cpuInitializationPeriod`, `initialReadinessDelay`).
    pub readiness: Readiness,
    /// What a target goes to after failing this many ticks in a row, if anything.
    pub fallback: Option<config::Fallback>,
}

/// All profiles, and the spec parser that knows them; replaced whole when the config is
/// reloaded (a tick holds the `Arc<Profile>` it started with).
pub struct Profiles {
    current: std::sync::RwLock<Arc<ProfileSet>>,
}

/// The profiles of one config.
struct ProfileSet {
    /// What annotations default to, per profile name.
    defaults: BTreeMap<String, spec::SpecDefaults>,
    by_name: HashMap<String, Arc<Profile>>,
}

impl ProfileSet {
    fn new(config: &Config) -> Self {
        let by_name = config.profiles.iter().map(|(name, p)| (name.clone(), Arc::new(resolve(name, p)))).collect();
        Self { defaults: config.spec_defaults(), by_name }
    }
}

impl Profile {
    /// Whether any hook of the profile runs (and so gets the workload's JSON).
    pub fn has_hooks(&self) -> bool {
        [
            &self.pre_metric,
            &self.metric,
            &self.post_metric,
            &self.pre_evaluate,
            &self.evaluate,
            &self.post_evaluate,
            &self.pre_scale,
            &self.post_scale,
        ]
        .iter()
        .any(|h| h.is_some())
    }
}

impl Profiles {
    /// Resolves every profile of a validated config.
    pub fn new(config: &Config) -> Self {
        Self { current: std::sync::RwLock::new(Arc::new(ProfileSet::new(config))) }
    }

    /// Puts the profiles of a newly loaded (validated) config in force.
    pub fn replace(&self, config: &Config) {
        let set = Arc::new(ProfileSet::new(config));
        match self.current.write() {
            Ok(mut current) => *current = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
    }

    fn set(&self) -> Arc<ProfileSet> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The profile named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Profile>> {
        self.set().by_name.get(name).cloned()
    }

    /// Parses a workload's annotations against the config: every problem in one message.
    pub fn parse_spec(&self, annotations: &BTreeMap<String, String>) -> Result<TargetSpec, String> {
        TargetSpec::from_annotations(annotations, &self.set().defaults).map_err(|e| e.to_string())
    }
}

fn resolve(name: &str, p: &config::Profile) -> Profile {
    Profile {
        name: name.to_owned(),
        pre_metric: p.pre_metric.as_ref().map(hook),
        metric: p.metric.as_ref().map(hook),
        post_metric: p.post_metric.as_ref().map(hook),
        pre_evaluate: p.pre_evaluate.as_ref().map(hook),
        evaluate: p.evaluate.as_ref().map(hook),
        post_evaluate: p.post_evaluate.as_ref().map(hook),
        pre_scale: p.pre_scale.as_ref().map(hook),
        post_scale: p.post_scale.as_ref().map(hook),
        metric_specs: p.kubernetes_metric_specs.iter().flatten().filter_map(query).collect(),
        require_kubernetes_metrics: p.require_kubernetes_metrics.unwrap_or(false),
        readiness: Readiness {
            cpu_initialization_period: p.cpu_initialization_period(),
            initial_readiness_delay: p.initial_readiness_delay(),
        },
        fallback: p.fallback.clone(),
    }
}

/// Maps a validated CPA method onto a hook spec.
fn hook(m: &config::Method) -> HookSpec {
    let timeout = m.timeout();
    match (m.method_type, &m.shell, &m.http) {
        (MethodType::Http, _, Some(h)) => {
            let mut spec = HttpSpec::new(h.method.clone(), h.url.clone(), timeout);
            spec.headers = h.headers.clone();
            spec.success_codes = h.success_codes.clone();
            spec.parameter_mode = match h.parameter_mode {
                config::ParameterMode::Body => ParameterMode::Body,
                config::ParameterMode::Query => ParameterMode::Query,
            };
            spec.tls = TlsFiles {
                ca_cert: h.ca_cert.as_ref().map(PathBuf::from),
                client_cert: h.client_cert.as_ref().map(PathBuf::from),
                client_key: h.client_key.as_ref().map(PathBuf::from),
            };
            HookSpec::Http(spec)
        }
        (_, Some(s), _) => {
            let mut spec = ShellSpec::new(s.entrypoint.clone(), timeout).args(s.command.iter().cloned());
            spec.log_stderr = s.log_stderr;
            HookSpec::Shell(spec)
        }
        // Validation guarantees a shell or http block; this keeps the mapping total.
        _ => HookSpec::Shell(ShellSpec::new("false", timeout)),
    }
}

/// Resolves a metric spec into a query; specs scalehub doesn't gather are left out
/// (config validation already rejected them).
fn query(s: &config::MetricSpec) -> Option<MetricQuery> {
    let spec: Value = serde_json::to_value(s).unwrap_or(Value::Null);
    let builtin = s.builtin();
    let key = s.usage_key()?;
    let source = match s.source_type {
        MetricSourceType::Resource => {
            let r = s.resource.as_ref()?;
            let utilization = r.target.target_type == MetricTargetType::Utilization;
            QuerySource::Resource { name: r.name.clone(), utilization }
        }
        MetricSourceType::Pods => {
            let p = s.pods.as_ref()?;
            QuerySource::Pods { metric: p.metric.name.clone(), selector: metric_selector(p.metric.selector.as_ref()) }
        }
        MetricSourceType::Object => {
            let o = s.object.as_ref()?;
            let (group, version) = match o.described_object.api_version.as_deref().unwrap_or("v1").split_once('/') {
                Some((group, version)) => (group.to_owned(), version.to_owned()),
                None => (String::new(), o.described_object.api_version.clone().unwrap_or_else(|| "v1".into())),
            };
            let gvk = kube::api::GroupVersionKind::gvk(&group, &version, &o.described_object.kind);
            let plural = kube::api::ApiResource::from_gvk(&gvk).plural;
            let resource = if group.is_empty() { plural } else { format!("{plural}.{group}") };
            QuerySource::Object {
                resource,
                name: o.described_object.name.clone(),
                metric: o.metric.name.clone(),
                selector: metric_selector(o.metric.selector.as_ref()),
                average: o.target.target_type == MetricTargetType::AverageValue,
            }
        }
        MetricSourceType::External => {
            let e = s.external.as_ref()?;
            QuerySource::External {
                metric: e.metric.name.clone(),
                selector: metric_selector(e.metric.selector.as_ref()),
                average: e.target.target_type == MetricTargetType::AverageValue,
            }
        }
        MetricSourceType::ContainerResource => return None,
    };
    Some(MetricQuery { spec, source, builtin, key })
}

/// own `Selector`; `None` when it selects everything, an error for an invalid requirement.
fn metric_selector(selector: Option<&config::LabelSelector>) -> Result<Option<String>, String> {
    let Some(selector) = selector else { return Ok(None) };
    let invalid = |e: String| format!("invalid metric selector: {e}");
    let k8s: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector =
        serde_json::to_value(selector).and_then(serde_json::from_value).map_err(|e| invalid(e.to_string()))?;
    let selector = kube::core::Selector::try_from(k8s).map_err(|e| invalid(e.0))?;
    Ok((!selector.selects_all()).then(|| selector.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use scalehub_core::calc::{MetricGoal, TotalGoal};

    #[test]
    fn a_metric_selector_reaches_the_metrics_api_as_kubernetes_writes_it() {
        let selector: config::LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"queue": "jobs"},
            "matchExpressions": [{"key": "region", "operator": "In", "values": ["eu", "us"]}],
        }))
        .unwrap();
        assert_eq!(metric_selector(Some(&selector)).unwrap().as_deref(), Some("queue=jobs,region in (eu,us)"));
        assert_eq!(metric_selector(None), Ok(None));
        assert_eq!(metric_selector(Some(&config::LabelSelector::default())), Ok(None));
        let bad: config::LabelSelector = serde_json::from_value(serde_json::json!({
            "matchExpressions": [{"key": "region", "operator": "Near", "values": ["eu"]}],
        }))
        .unwrap();
        assert!(metric_selector(Some(&bad)).unwrap_err().starts_with("invalid metric selector"));
    }

    #[test]
    fn an_object_metric_names_its_resource_as_the_custom_metrics_api_does() {
        let spec: config::MetricSpec = serde_json::from_value(serde_json::json!({"type": "Object", "object": {
            "describedObject": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "main"},
            "metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "1k"},
        }}))
        .unwrap();
        let q = query(&spec).unwrap();
        let QuerySource::Object { resource, name, average, .. } = &q.source else { panic!("{:?}", q.source) };
        assert_eq!((resource.as_str(), name.as_str(), *average), ("ingresses.networking.k8s.io", "main", true));
        assert_eq!(q.builtin.unwrap().goal, MetricGoal::Total(TotalGoal::AverageValue(1_000_000)));
        assert_eq!(q.key, "object/Ingress/main/rps");
        let core: config::MetricSpec = serde_json::from_value(serde_json::json!({"type": "Object", "object": {
            "describedObject": {"apiVersion": "v1", "kind": "Service", "name": "web"},
            "metric": {"name": "rps"}, "target": {"type": "Value", "value": "20"},
        }}))
        .unwrap();
        let q = query(&core).unwrap();
        assert!(matches!(&q.source, QuerySource::Object { resource, .. } if resource == "services"), "{:?}", q.source);
        assert_eq!(q.builtin.unwrap().goal, MetricGoal::Total(TotalGoal::Value(20_000)));
    }
}
