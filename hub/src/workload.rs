//! The workload kinds scalehub scales, and what it reads from their objects.
//!
//! Workloads are watched as `DynamicObject`s so that one watch and one scale path serve the
//! three built-in kinds and every `extraKinds:` resource alike, and kept as a compact
//! [`Workload`]. A built-in kind's replicas and selector are read from the object; an extra
//! kind's come from its `/scale` subresource, the one contract such a resource has
//! ([`Workload::with_scale`]).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::watch::PodSelector;
use k8s_openapi::api::autoscaling::v1::Scale;
use kube::ResourceExt;
use kube::api::{ApiResource, DynamicObject};

pub use scalehub_core::target::{Kind, TargetKey};

/// The API resource used for dynamic requests of `kind`.
pub fn api_resource(kind: Kind) -> ApiResource {
    let info = kind.info();
    ApiResource {
        group: info.group.into(),
        version: info.version.into(),
        api_version: info.api_version(),
        kind: info.kind.into(),
        plural: info.plural.into(),
    }
}

/// The key of a watched workload object.
pub fn key_of(kind: Kind, obj: &DynamicObject) -> TargetKey {
    TargetKey::new(obj.namespace().unwrap_or_default(), kind, obj.name_any())
}

/// What the hub keeps of a watched workload: the few fields a tick reads, and the object as
/// compact JSON text for hooks (parsed only when a hook runs; `managedFields` dropped).
#[derive(Clone, Debug)]
pub struct Workload {
    /// `metadata.uid`, for Events.
    pub uid: Option<String>,
    /// `spec.replicas`; Kubernetes defaults it to 1 when absent.
    pub replicas: i32,
    /// `status.replicas`, the count the HPA's per-replica averages divide by (0 when absent).
    pub status_replicas: i32,
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
            status_replicas: obj
                .data
                .pointer("/status/replicas")
                .and_then(|v| v.as_i64())
                .map_or(0, |v| v.clamp(0, i64::from(i32::MAX)) as i32),
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

    /// Takes replicas, status replicas and the pod selector from the object's `/scale`
    /// subresource, as the HPA and the CPA do for any scalable resource: a custom resource's
    /// fields are wherever its CRD's scale paths say. An empty `status.selector` (a
    /// controller that has not reported yet) selects no pod.
    pub fn with_scale(mut self, scale: &Scale) -> Workload {
        self.replicas = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0).max(0);
        let status = scale.status.as_ref();
        self.status_replicas = status.map_or(0, |s| s.replicas.max(0));
        self.selector =
            status.and_then(|s| s.selector.as_deref()).filter(|text| !text.trim().is_empty()).map(PodSelector::parse);
        self
    }

    /// Marks the workload's `/scale` as unreadable: ticks that need its pods fail with `why`.
    pub fn without_scale(mut self, why: String) -> Workload {
        self.selector = Some(Err(why));
        self
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
    fn an_extra_kinds_replicas_and_selector_come_from_its_scale_subresource() {
        let obj: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "shop", "annotations": {"scalehub.io/enabled": "true"}},
            "spec": {"replicaCount": 7},
        }))
        .unwrap();
        let scale: Scale = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web"}, "spec": {"replicas": 4},
            "status": {"replicas": 3, "selector": "app=web,track in (stable,canary)"},
        }))
        .unwrap();
        let w = Workload::from_object(obj).with_scale(&scale);
        assert_eq!((w.replicas, w.status_replicas), (4, 3));
        assert_eq!(w.pod_selector().map(PodSelector::as_str), Some("app=web,track in (canary,stable)"));
        assert_eq!(w.annotations.get("scalehub.io/enabled").map(String::as_str), Some("true"));

        let unreported: Scale = serde_json::from_value(
            serde_json::json!({"spec": {"replicas": 2}, "status": {"replicas": 0, "selector": ""}}),
        )
        .unwrap();
        let w = w.with_scale(&unreported);
        assert!(w.selector.is_none(), "an empty status.selector selects no pod");
        let w = w.without_scale("no /scale".into());
        assert!(matches!(w.selector, Some(Err(ref e)) if e == "no /scale"));
    }
}
