//! Label and field selectors as the API server parses them from query strings.

use scalehub_core::selector::{self, Requirement};
use serde_json::Value;

/// A selector parse error (answered with 400 BadRequest).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SelectorError {
    /// The selector text is malformed.
    #[error("unable to parse requirement: {0}")]
    Syntax(String),
    /// A field selector names a field the resource does not support.
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
}

/// A parsed label selector: all requirements must hold (comma = AND). The text form is
/// parsed by `scalehub_core::selector`, which the hub also uses for `/scale` selectors.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelSelector {
    reqs: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses `app=web,tier!=db,env in (a,b),!legacy`.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let reqs = selector::parse(text).map_err(|e| SelectorError::Syntax(e.0))?;
        Ok(Self { reqs })
    }

    /// Whether the selector has no requirements (matches everything).
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// The first `key=value` requirement, which an index can answer.
    pub fn first_equality(&self) -> Option<(&str, &str)> {
        self.reqs.iter().find_map(|r| match r {
            Requirement::Equal(k, v) => Some((k.as_str(), v.as_str())),
            Requirement::In(k, vs) if vs.len() == 1 => Some((k.as_str(), vs[0].as_str())),
            _ => None,
        })
    }

    /// Whether an object's `metadata.labels` satisfy the selector.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels");
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.reqs.iter().all(|r| r.matches(get))
    }
}

/// A parsed field selector (`metadata.name=x,status.phase!=Running`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

impl FieldSelector {
    /// Parses a field selector, accepting `metadata.name`, `metadata.namespace` and the
    /// resource-specific fields in `extra` (see [`extra_fields`]).
    pub fn parse(text: &str, extra: &[&str]) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, eq, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (f, true, v)
            } else {
                return Err(SelectorError::Syntax(part.to_string()));
            };
            let field = field.trim();
            let supported = matches!(field, "metadata.name" | "metadata.namespace") || extra.contains(&field);
            if !supported {
                return Err(SelectorError::UnsupportedField(field.to_string()));
            }
            reqs.push((field.to_string(), eq, value.trim().to_string()));
        }
        Ok(Self { reqs })
    }

    /// Whether the selector has no requirements.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Both selectors' requirements.
    pub fn and(&self, other: FieldSelector) -> FieldSelector {
        let mut reqs = self.reqs.clone();
        reqs.extend(other.reqs);
        FieldSelector { reqs }
    }

    /// Whether an object satisfies every requirement (a missing field reads as "").
    pub fn matches(&self, obj: &Value) -> bool {
        self.reqs.iter().all(|(field, eq, value)| {
            let pointer = format!("/{}", field.replace('.', "/"));
            let actual = obj.pointer(&pointer).and_then(Value::as_str).unwrap_or("");
            (actual == value) == *eq
        })
    }
}

/// Field selectors a resource supports beyond `metadata.name`/`metadata.namespace`, as the real
/// server registers them (kubectl describe selects events by `involvedObject.*`).
pub fn extra_fields(group: &str, plural: &str) -> &'static [&'static str] {
    match (group, plural) {
        ("", "pods") => &[
            "status.phase",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("events.k8s.io", "events") => &[
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingController",
            "type",
        ],
        ("", "namespaces") => &["status.phase"],
        _ => &[],
    }
}

/// Label and field selectors of one request.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
}

impl Selectors {
    /// Whether an object passes both selectors.
    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }

    /// Whether both selectors are empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "web-1", "namespace": "prod", "labels": labels}, "status": {"phase": "Running"}})
    }

    #[test]
    fn equality_and_inequality_requirements_are_anded() {
        let s = LabelSelector::parse("app=web,tier!=db").unwrap();
        assert!(s.matches(&obj(json!({"app": "web", "tier": "fe"}))));
        assert!(s.matches(&obj(json!({"app": "web"}))));
        assert!(!s.matches(&obj(json!({"app": "web", "tier": "db"}))));
        assert!(!s.matches(&obj(json!({"app": "api"}))));
        assert!(LabelSelector::parse("app==web").unwrap().matches(&obj(json!({"app": "web"}))));
    }

    #[test]
    fn set_based_requirements_follow_kubernetes_semantics() {
        let s = LabelSelector::parse("app in (web, api),env notin (dev)").unwrap();
        assert!(s.matches(&obj(json!({"app": "api"}))));
        assert!(s.matches(&obj(json!({"app": "web", "env": "prod"}))));
        assert!(!s.matches(&obj(json!({"app": "web", "env": "dev"}))));
        assert!(!s.matches(&obj(json!({"app": "db"}))));
        // notin matches objects without the key, like the real server.
        assert!(LabelSelector::parse("env notin (dev)").unwrap().matches(&obj(json!({}))));
    }

    #[test]
    fn existence_requirements_check_keys_only() {
        let s = LabelSelector::parse("app,!legacy").unwrap();
        assert!(s.matches(&obj(json!({"app": ""}))));
        assert!(!s.matches(&obj(json!({"app": "x", "legacy": "y"}))));
        assert!(!s.matches(&obj(json!({}))));
    }

    #[test]
    fn malformed_selectors_are_rejected() {
        for bad in ["app in (a", "app in a)", "app=web=x", "app foo (a)", "=x", "a b"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad} should fail");
        }
        assert!(LabelSelector::parse("").unwrap().is_empty());
    }

    #[test]
    fn field_selectors_support_name_namespace_and_pod_phase() {
        let o = obj(json!({}));
        assert!(FieldSelector::parse("metadata.name=web-1", &[]).unwrap().matches(&o));
        assert!(!FieldSelector::parse("metadata.namespace!=prod", &[]).unwrap().matches(&o));
        assert!(FieldSelector::parse("status.phase=Running", extra_fields("", "pods")).unwrap().matches(&o));
        assert_eq!(
            FieldSelector::parse("status.phase=Running", &[]),
            Err(SelectorError::UnsupportedField("status.phase".into()))
        );
        assert!(FieldSelector::parse("spec.nodeName=", extra_fields("", "pods")).unwrap().matches(&o));
        let ev = json!({"involvedObject": {"name": "web", "kind": "Deployment"}});
        let sel =
            FieldSelector::parse("involvedObject.name=web,involvedObject.kind=Deployment", extra_fields("", "events"))
                .unwrap();
        assert!(sel.matches(&ev));
    }
}
