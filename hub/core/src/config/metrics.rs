//! The autoscaling/v2 `MetricSpec` types scalehub gathers, the CPA's four: `Resource`, `Pods`,
//! `Object` and `External`.
//!
//! `ContainerResource` (which the CPA does not gather either) parses, so the error can name
//! it, and is then rejected by validation rather than silently skipped.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::Issues;
use crate::calc::{BuiltinMetric, Goal, MetricGoal, TotalGoal};
use crate::quantity::{parse_milli, parse_quantity};

/// The `type` of a metric spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum MetricSourceType {
    /// Pod CPU/memory from `metrics.k8s.io`.
    Resource,
    /// A per-pod custom metric.
    Pods,
    /// A metric describing one object (custom.metrics.k8s.io).
    Object,
    /// A metric from outside the cluster (external.metrics.k8s.io).
    External,
    /// Not supported by scalehub (nor by the CPA).
    ContainerResource,
}

/// One entry of `kubernetesMetricSpecs`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricSpec {
    /// Which source this is.
    #[serde(rename = "type")]
    pub source_type: MetricSourceType,
    /// Set for `type: Resource`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceMetricSource>,
    /// Set for `type: Pods`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pods: Option<PodsMetricSource>,
    /// Set for `type: Object`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectMetricSource>,
    /// Set for `type: External`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalMetricSource>,
    /// Accepted only so that the unsupported type is reported by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_resource: Option<serde_json::Value>,
}

/// A resource (cpu/memory) metric.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceMetricSource {
    /// `cpu` or `memory`.
    pub name: String,
    /// The target; its `type` selects the gather mode.
    pub target: MetricTarget,
}

/// A per-pod custom metric.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodsMetricSource {
    /// Which metric.
    pub metric: MetricIdentifier,
    /// The target; must be `AverageValue`.
    pub target: MetricTarget,
}

/// A metric describing one Kubernetes object, e.g. requests per second of an Ingress.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMetricSource {
    /// The object the metric describes, in the workload's namespace.
    pub described_object: ObjectReference,
    /// Which metric.
    pub metric: MetricIdentifier,
    /// The target: `Value` or `AverageValue`.
    pub target: MetricTarget,
}

/// A metric not associated with any Kubernetes object, e.g. a queue's length.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalMetricSource {
    /// Which metric (its selector picks the series, whose values are summed).
    pub metric: MetricIdentifier,
    /// The target: `Value` or `AverageValue`.
    pub target: MetricTarget,
}

/// An autoscaling/v2 `CrossVersionObjectReference`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectReference {
    /// `group/version`, or `v1` for the core group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// The object's kind, e.g. `Ingress`.
    pub kind: String,
    /// The object's name.
    pub name: String,
}

/// Names a custom metric.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricIdentifier {
    /// The metric name.
    pub name: String,
    /// Optional series selector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// A Kubernetes label selector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    /// Exact label matches.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements.
    #[serde(default)]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One set-based selector requirement.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    /// Label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// Values for `In`/`NotIn`.
    #[serde(default)]
    pub values: Vec<String>,
}

/// The kind of target value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum MetricTargetType {
    /// Percent of the pods' requests (Resource only).
    Utilization,
    /// A total value.
    Value,
    /// A per-pod average.
    AverageValue,
}

/// A metric target. The CPA passes only the `type` on (values are for the user's logic).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricTarget {
    /// Selects how the metric is gathered.
    #[serde(rename = "type")]
    pub target_type: MetricTargetType,
    /// Percent of requests, for `Utilization`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub average_utilization: Option<i32>,
    /// A quantity such as `500m` or `1k`, for `AverageValue`.
    #[serde(default, deserialize_with = "quantity_text")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub average_value: Option<String>,
    /// A quantity, for `Value`.
    #[serde(default, deserialize_with = "quantity_text")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Reads a quantity written either as a YAML string (`1k`) or a number (`100`).
fn quantity_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Int(i64),
        Float(f64),
        Str(String),
    }
    Ok(Option::<Text>::deserialize(deserializer)?.map(|text| match text {
        Text::Int(n) => n.to_string(),
        Text::Float(f) => f.to_string(),
        Text::Str(s) => s,
    }))
}

impl MetricSpec {
    /// The spec's target, whatever its type.
    pub fn target(&self) -> Option<&MetricTarget> {
        match self.source_type {
            MetricSourceType::Resource => self.resource.as_ref().map(|r| &r.target),
            MetricSourceType::Pods => self.pods.as_ref().map(|p| &p.target),
            MetricSourceType::Object => self.object.as_ref().map(|o| &o.target),
            MetricSourceType::External => self.external.as_ref().map(|e| &e.target),
            MetricSourceType::ContainerResource => None,
        }
    }

    /// Whether the built-in HPA calculation can aim for this spec: a target whose type's value
    /// is given (a Resource Utilization or AverageValue, a Pods AverageValue, an Object or
    /// External Value or AverageValue).
    pub fn has_builtin_target(&self) -> bool {
        self.target().is_some_and(|t| match t.target_type {
            MetricTargetType::Utilization => t.average_utilization.is_some(),
            MetricTargetType::AverageValue => t.average_value.is_some(),
            MetricTargetType::Value => t.value.is_some(),
        })
    }

    /// The name of the series this spec reads, as the tick series keeps its observations:
    /// `cpu`, `pods/<metric>`, `object/<Kind>/<name>/<metric>`, `external/<metric>`, with the
    /// metric's selector appended as JSON when it has one (another selector is another series).
    pub fn usage_key(&self) -> Option<String> {
        let with_selector = |base: String, id: &MetricIdentifier| match &id.selector {
            Some(s) if *s != LabelSelector::default() => {
                format!("{base}{}", serde_json::to_string(s).unwrap_or_default())
            }
            _ => base,
        };
        match self.source_type {
            MetricSourceType::Resource => self.resource.as_ref().map(|r| r.name.clone()),
            MetricSourceType::Pods => {
                self.pods.as_ref().map(|p| with_selector(format!("pods/{}", p.metric.name), &p.metric))
            }
            MetricSourceType::Object => self.object.as_ref().map(|o| {
                let d = &o.described_object;
                with_selector(format!("object/{}/{}/{}", d.kind, d.name, o.metric.name), &o.metric)
            }),
            MetricSourceType::External => {
                self.external.as_ref().map(|e| with_selector(format!("external/{}", e.metric.name), &e.metric))
            }
            MetricSourceType::ContainerResource => None,
        }
    }

    /// What the built-in calculation aims at with this spec: its series and goal, if the spec
    /// has a target the calculation can use (see [`MetricSpec::has_builtin_target`]).
    pub fn builtin(&self) -> Option<BuiltinMetric> {
        let milli = |v: &Option<String>| v.as_deref().and_then(|v| parse_milli(v).ok());
        let target = self.target()?;
        let goal = match (self.source_type, target.target_type) {
            (MetricSourceType::Resource, MetricTargetType::Utilization) => {
                MetricGoal::Pods(Goal::Utilization(target.average_utilization?.into()))
            }
            (MetricSourceType::Resource | MetricSourceType::Pods, MetricTargetType::AverageValue) => {
                MetricGoal::Pods(Goal::AverageValue(milli(&target.average_value)?))
            }
            (MetricSourceType::Object | MetricSourceType::External, MetricTargetType::Value) => {
                MetricGoal::Total(TotalGoal::Value(milli(&target.value)?))
            }
            (MetricSourceType::Object | MetricSourceType::External, MetricTargetType::AverageValue) => {
                MetricGoal::Total(TotalGoal::AverageValue(milli(&target.average_value)?))
            }
            _ => return None,
        };
        Some(BuiltinMetric { key: self.usage_key()?, goal })
    }

    /// Reports every problem under `path` (e.g. `profiles.cpu.kubernetesMetricSpecs[0]`).
    pub(crate) fn validate(&self, path: &str, issues: &mut Issues) {
        match self.source_type {
            MetricSourceType::Resource => match &self.resource {
                None => issues.push(format!("{path}.resource"), "is required when type is Resource"),
                Some(resource) => {
                    if resource.name.trim().is_empty() {
                        issues.push(format!("{path}.resource.name"), "is required, e.g. cpu");
                    }
                    if resource.target.target_type == MetricTargetType::Value {
                        issues.push(
                            format!("{path}.resource.target.type"),
                            "must be Utilization or AverageValue for a Resource metric",
                        );
                    }
                    resource.target.validate(&format!("{path}.resource.target"), issues);
                }
            },
            MetricSourceType::Pods => match &self.pods {
                None => issues.push(format!("{path}.pods"), "is required when type is Pods"),
                Some(pods) => {
                    if pods.metric.name.trim().is_empty() {
                        issues.push(format!("{path}.pods.metric.name"), "is required");
                    }
                    if pods.target.target_type != MetricTargetType::AverageValue {
                        issues.push(format!("{path}.pods.target.type"), "must be AverageValue for a Pods metric");
                    }
                    pods.target.validate(&format!("{path}.pods.target"), issues);
                }
            },
            MetricSourceType::Object => match &self.object {
                None => issues.push(format!("{path}.object"), "is required when type is Object"),
                Some(object) => {
                    let reference = &object.described_object;
                    if reference.kind.trim().is_empty() {
                        issues.push(format!("{path}.object.describedObject.kind"), "is required, e.g. Ingress");
                    }
                    if reference.name.trim().is_empty() {
                        issues.push(format!("{path}.object.describedObject.name"), "is required");
                    }
                    if object.metric.name.trim().is_empty() {
                        issues.push(format!("{path}.object.metric.name"), "is required");
                    }
                    value_target(&object.target, &format!("{path}.object.target"), "an Object", issues);
                }
            },
            MetricSourceType::External => match &self.external {
                None => issues.push(format!("{path}.external"), "is required when type is External"),
                Some(external) => {
                    if external.metric.name.trim().is_empty() {
                        issues.push(format!("{path}.external.metric.name"), "is required");
                    }
                    value_target(&external.target, &format!("{path}.external.target"), "an External", issues);
                }
            },
            MetricSourceType::ContainerResource => issues.push(
                format!("{path}.type"),
                "ContainerResource metrics are not supported by scalehub, nor by the CPA (supported: Resource, Pods, Object, External)",
            ),
        }
    }
}

/// An Object or External target: `Value` or `AverageValue`.
fn value_target(target: &MetricTarget, path: &str, what: &str, issues: &mut Issues) {
    if target.target_type == MetricTargetType::Utilization {
        issues.push(format!("{path}.type"), format!("must be Value or AverageValue for {what} metric"));
    }
    target.validate(path, issues);
}

impl MetricTarget {
    fn validate(&self, path: &str, issues: &mut Issues) {
        if let Some(percent) = self.average_utilization
            && percent <= 0
        {
            issues.push(format!("{path}.averageUtilization"), "must be > 0");
        }
        for (field, value) in [("averageValue", &self.average_value), ("value", &self.value)] {
            if let Some(text) = value
                && let Err(err) = parse_quantity(text)
            {
                issues.push(format!("{path}.{field}"), err.to_string());
            }
        }
    }
}
