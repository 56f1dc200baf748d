//! The autoscaling/v2 `MetricSpec` subset scalehub gathers: `Resource` and `Pods`.
//!
//! Other source types (`Object`, `External`, `ContainerResource`) parse, so the error can name
//! them, and are then rejected by validation rather than silently skipped.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::Issues;
use crate::quantity::parse_quantity;

/// The `type` of a metric spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum MetricSourceType {
    /// Pod CPU/memory from `metrics.k8s.io`.
    Resource,
    /// A per-pod custom metric.
    Pods,
    /// Not supported by scalehub.
    Object,
    /// Not supported by scalehub.
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
    /// Accepted only so that the unsupported type is reported by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<serde_json::Value>,
    /// Accepted only so that the unsupported type is reported by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<serde_json::Value>,
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
    /// Whether the built-in HPA calculation can aim for this spec: a Resource Utilization or
    /// AverageValue target, or a Pods AverageValue target.
    pub fn has_builtin_target(&self) -> bool {
        let target = match self.source_type {
            MetricSourceType::Resource => self.resource.as_ref().map(|r| &r.target),
            MetricSourceType::Pods => self.pods.as_ref().map(|p| &p.target),
            _ => None,
        };
        target.is_some_and(|t| match t.target_type {
            MetricTargetType::Utilization => t.average_utilization.is_some(),
            MetricTargetType::AverageValue => t.average_value.is_some(),
            MetricTargetType::Value => false,
        })
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
            other => issues.push(
                format!("{path}.type"),
                format!("{other:?} metrics are not supported by scalehub (supported: Resource, Pods)"),
            ),
        }
    }
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
