//! The workload kinds scalehub scales, and what it reads from their objects.
//!
//! Workloads are handled as `DynamicObject`s of three known kinds so that one watch,
//! one cache and one scale path serve them all.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{ApiResource, DynamicObject};
use kube::ResourceExt;
use serde::{Deserialize, Serialize};

/// A scalable workload kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 StatefulSet.
    StatefulSet,
    /// apps/v1 ReplicaSet.
    ReplicaSet,
}

impl Kind {
    /// Every kind, in watch order.
    pub const ALL: [Kind; 3] = [Kind::Deployment, Kind::StatefulSet, Kind::ReplicaSet];

    /// The kind's name as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::StatefulSet => "StatefulSet",
            Kind::ReplicaSet => "ReplicaSet",
        }
    }

    /// Parses a kind name, case-insensitively, also accepting the plural and short forms.
    pub fn parse(s: &str) -> Option<Kind> {
        match s.to_ascii_lowercase().as_str() {
            "deployment" | "deployments" | "deploy" => Some(Kind::Deployment),
            "statefulset" | "statefulsets" | "sts" => Some(Kind::StatefulSet),
            "replicaset" | "replicasets" | "rs" => Some(Kind::ReplicaSet),
            _ => None,
        }
    }

    /// The API resource used for dynamic requests of this kind.
    pub fn api_resource(self) -> ApiResource {
        let plural = match self {
            Kind::Deployment => "deployments",
            Kind::StatefulSet => "statefulsets",
            Kind::ReplicaSet => "replicasets",
        };
        ApiResource {
            group: "apps".into(),
            version: "v1".into(),
            api_version: "apps/v1".into(),
            kind: self.as_str().into(),
            plural: plural.into(),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies one target: a workload by namespace, kind and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TargetKey {
    /// Namespace of the workload.
    pub namespace: String,
    /// Kind of the workload.
    pub kind: Kind,
    /// Name of the workload.
    pub name: String,
}

impl TargetKey {
    /// Builds a key.
    pub fn new(namespace: &str, kind: Kind, name: &str) -> Self {
        Self { namespace: namespace.to_owned(), kind, name: name.to_owned() }
    }

    /// The key of a watched workload object.
    pub fn of(kind: Kind, obj: &DynamicObject) -> Self {
        Self::new(&obj.namespace().unwrap_or_default(), kind, &obj.name_any())
    }
}

impl fmt::Display for TargetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.kind, self.name)
    }
}

/// `spec.replicas` of a workload; Kubernetes defaults it to 1 when absent.
pub fn spec_replicas(obj: &DynamicObject) -> i32 {
    obj.data
        .pointer("/spec/replicas")
        .and_then(|v| v.as_i64())
        .map(|v| v.clamp(0, i32::MAX as i64) as i32)
        .unwrap_or(1)
}

/// The annotations of a workload.
pub fn annotations(obj: &DynamicObject) -> BTreeMap<String, String> {
    obj.metadata.annotations.clone().unwrap_or_default()
}

/// The workload's pod selector (`spec.selector`), if it has a valid one.
pub fn selector(obj: &DynamicObject) -> Option<LabelSelector> {
    obj.data.pointer("/spec/selector").and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// Renders a label selector in the string form of the `/scale` subresource's `status.selector`.
pub fn selector_string(sel: &LabelSelector) -> String {
    let mut parts = Vec::new();
    for (k, v) in sel.match_labels.iter().flatten() {
        parts.push(format!("{k}={v}"));
    }
    for expr in sel.match_expressions.iter().flatten() {
        let values = expr.values.clone().unwrap_or_default().join(",");
        match expr.operator.as_str() {
            "In" => parts.push(format!("{} in ({values})", expr.key)),
            "NotIn" => parts.push(format!("{} notin ({values})", expr.key)),
            "Exists" => parts.push(expr.key.clone()),
            "DoesNotExist" => parts.push(format!("!{}", expr.key)),
            _ => {}
        }
    }
    parts.join(",")
}

/// Whether a pod's labels satisfy a label selector. An empty selector matches nothing
/// here: the CPA matched every pod in the namespace, which scaled the wrong pods.
pub fn selector_matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let mut any = false;
    for (k, v) in sel.match_labels.iter().flatten() {
        any = true;
        if labels.get(k) != Some(v) {
            return false;
        }
    }
    for expr in sel.match_expressions.iter().flatten() {
        any = true;
        let values = expr.values.as_deref().unwrap_or_default();
        let value = labels.get(&expr.key);
        let ok = match expr.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn selector_with_labels_and_expressions_matches_like_kubernetes() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![
                LabelSelectorRequirement { key: "tier".into(), operator: "In".into(), values: Some(vec!["a".into(), "b".into()]) },
                LabelSelectorRequirement { key: "canary".into(), operator: "DoesNotExist".into(), values: None },
            ]),
        };
        assert!(selector_matches(&sel, &labels(&[("app", "web"), ("tier", "b")])));
        assert!(!selector_matches(&sel, &labels(&[("app", "web"), ("tier", "c")])));
        assert!(!selector_matches(&sel, &labels(&[("app", "web"), ("tier", "a"), ("canary", "1")])));
        assert_eq!(selector_string(&sel), "app=web,tier in (a,b),!canary");
    }

    #[test]
    fn empty_selector_matches_no_pod() {
        assert!(!selector_matches(&LabelSelector::default(), &labels(&[("app", "web")])));
    }

    #[test]
    fn kinds_parse_from_their_usual_spellings() {
        assert_eq!(Kind::parse("deploy"), Some(Kind::Deployment));
        assert_eq!(Kind::parse("StatefulSet"), Some(Kind::StatefulSet));
        assert_eq!(Kind::parse("rs"), Some(Kind::ReplicaSet));
        assert_eq!(Kind::parse("job"), None);
    }
}
