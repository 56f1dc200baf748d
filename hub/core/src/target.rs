//! Which workload a target is: its kind and its key, one type shared by every crate (the
//! watch, the loops, the store and the API all name a target the same way).

use std::fmt;

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

    /// The resource's plural, as in its API path.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Deployment => "deployments",
            Kind::StatefulSet => "statefulsets",
            Kind::ReplicaSet => "replicasets",
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
    pub fn new(namespace: impl Into<String>, kind: Kind, name: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), kind, name: name.into() }
    }
}

impl fmt::Display for TargetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.kind, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_from_their_usual_spellings() {
        assert_eq!(Kind::parse("deploy"), Some(Kind::Deployment));
        assert_eq!(Kind::parse("StatefulSet"), Some(Kind::StatefulSet));
        assert_eq!(Kind::parse("rs"), Some(Kind::ReplicaSet));
        assert_eq!(Kind::parse("job"), None);
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
            assert_eq!(Kind::parse(kind.plural()), Some(kind));
        }
    }

    #[test]
    fn a_key_serialises_its_kind_as_kubernetes_spells_it() {
        let key = TargetKey::new("shop", Kind::StatefulSet, "db");
        let json = serde_json::to_value(&key).unwrap();
        assert_eq!(json, serde_json::json!({"namespace": "shop", "kind": "StatefulSet", "name": "db"}));
        assert_eq!(key.to_string(), "shop/StatefulSet/db");
    }
}
