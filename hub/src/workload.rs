//! The workload kinds scalehub scales, and what it reads from their objects.
//!
//! Workloads are watched as `DynamicObject`s of three known kinds so that one watch and one
//! scale path serve them all, and kept as a compact [`Workload`].

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::watch::PodSelector;
use kube::ResourceExt;
use kube::api::{ApiResource, DynamicObject};
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

/// What the hub keeps of a watched workload: the few fields a tick reads, and the object as
/// compact JSON text for hooks (parsed only when a hook runs; `managedFields` dropped).
#[derive(Clone, Debug)]
pub struct Workload {
    /// `metadata.uid`, for Events.
    pub uid: Option<String>,
    /// `spec.replicas`; Kubernetes defaults it to 1 when absent.
    pub replicas: i32,
    /// The `scalehub.io/` annotations, from which the target spec is parsed.
    pub annotations: BTreeMap<String, String>,
    /// `spec.selector`, compiled; `None` when absent, an error when invalid.
    pub selector: Option<Result<PodSelector, String>>,
    /// Whether another object controls this one (an ownerReference with `controller: true`).
    pub controlled: bool,
    json: Box<str>,
}

impl Workload {
    /// Keeps what the hub needs of a watched object.
    pub fn from_object(mut obj: DynamicObject) -> Workload {
        obj.metadata.managed_fields = None;
        let replicas = obj
            .data
            .pointer("/spec/replicas")
            .and_then(|v| v.as_i64())
            .map(|v| v.clamp(0, i32::MAX as i64) as i32)
            .unwrap_or(1);
        let selector = obj.data.pointer("/spec/selector").map(|v| {
            serde_json::from_value::<LabelSelector>(v.clone())
                .map_err(|e| format!("invalid spec.selector: {e}"))
                .and_then(|s| PodSelector::new(&s))
        });
        let controlled = obj.metadata.owner_references.iter().flatten().any(|r| r.controller == Some(true));
        Workload {
            uid: obj.metadata.uid.clone(),
            replicas,
            // Only scalehub's own annotations are read (kubectl's last-applied copy of the
            // whole object would double what a target holds); the JSON keeps them all.
            annotations: obj
                .metadata
                .annotations
                .iter()
                .flatten()
                .filter(|(k, _)| k.starts_with(scalehub_core::spec::PREFIX))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            selector,
            controlled,
            json: serde_json::to_string(&obj).unwrap_or_default().into_boxed_str(),
        }
    }

    /// The workload's pod selector, if it has a valid one.
    pub fn pod_selector(&self) -> Option<&PodSelector> {
        self.selector.as_ref().and_then(|s| s.as_ref().ok())
    }

    /// The object as the watch delivered it (without `managedFields`), for hook payloads;
    /// null once [`Workload::without_json`] dropped it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.json).unwrap_or(serde_json::Value::Null)
    }

    /// Whether the JSON is still kept.
    pub fn has_json(&self) -> bool {
        !self.json.is_empty()
    }

    /// The same workload without its JSON, for targets that run no hook.
    pub fn without_json(&self) -> Workload {
        Workload { json: Box::default(), ..self.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workload_keeps_what_ticks_read_and_drops_managed_fields() {
        let obj: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1",
                         "annotations": {"scalehub.io/enabled": "true"},
                         "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}},
        }))
        .unwrap();
        let w = Workload::from_object(obj);
        assert_eq!(w.replicas, 3);
        assert_eq!(w.uid.as_deref(), Some("u1"));
        assert_eq!(w.pod_selector().map(PodSelector::as_str), Some("app=web"));
        assert!(!w.controlled);
        let json = w.to_json();
        assert_eq!(json["spec"]["replicas"], 3);
        assert!(json["metadata"].get("managedFields").is_none());
    }

    #[test]
    fn replicas_default_to_one_and_a_bad_selector_is_an_error() {
        let obj: DynamicObject = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "x", "uid": "u", "controller": true}]},
            "spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}},
        }))
        .unwrap();
        let w = Workload::from_object(obj);
        assert_eq!(w.replicas, 1);
        assert!(w.controlled);
        assert!(matches!(w.selector, Some(Err(_))));
        assert!(w.pod_selector().is_none());
    }

    #[test]
    fn kinds_parse_from_their_usual_spellings() {
        assert_eq!(Kind::parse("deploy"), Some(Kind::Deployment));
        assert_eq!(Kind::parse("StatefulSet"), Some(Kind::StatefulSet));
        assert_eq!(Kind::parse("rs"), Some(Kind::ReplicaSet));
        assert_eq!(Kind::parse("job"), None);
    }
}
