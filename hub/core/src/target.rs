//! Which workload a target is: its kind and its key, one type shared by every crate (the
//! watch, the loops, the store and the API all name a target the same way).

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

/// A scalable workload kind: one of the three built-in `apps/v1` kinds, or a kind the hub
/// config adds under `extraKinds:` (any resource with a `/scale` subresource: an Argo
/// Rollout, a ReplicationController, a custom resource).
///
/// A `Kind` is a small copyable handle into a process-wide, append-only registry, so keys
/// stay cheap to copy, hash and compare. The built-in kinds are always there; extra kinds
/// are registered once at start-up ([`Kind::register`]), which is why changing
/// `extraKinds` needs a restart. Targets are named by the kind's name alone
/// (`shop/Rollout/web`), so two registered kinds may not share a name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kind(u16);

/// What the hub knows of a kind: where its API lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindInfo {
    /// API group (`""` for the core group).
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Kind, as in the object's `kind` field.
    pub kind: &'static str,
    /// Plural, as in the API path.
    pub plural: &'static str,
    /// Short names accepted where a kind is parsed (`deploy`).
    pub short: &'static [&'static str],
    /// Whether the hub may watch and scale it. A kind known only from stored history (the
    /// config no longer lists it) is not served: its targets' history stays readable.
    pub served: bool,
}

impl KindInfo {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_owned() } else { format!("{}/{}", self.group, self.version) }
    }
}

/// Why an extra kind could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KindError {
    /// Another kind of the same name is registered with a different API.
    #[error(
        "kind {kind} is already registered as {existing}; targets are named by kind, so two kinds may not share a name"
    )]
    Conflict {
        /// The kind name.
        kind: String,
        /// The registered one, as `plural.group/version`.
        existing: String,
    },
    /// The registry is full.
    #[error("at most {0} kinds can be registered")]
    Full(usize),
}

const BUILTIN: [KindInfo; 3] = [
    KindInfo {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        plural: "deployments",
        short: &["deploy"],
        served: true,
    },
    KindInfo {
        group: "apps",
        version: "v1",
        kind: "StatefulSet",
        plural: "statefulsets",
        short: &["sts"],
        served: true,
    },
    KindInfo { group: "apps", version: "v1", kind: "ReplicaSet", plural: "replicasets", short: &["rs"], served: true },
];

/// Room for extra kinds; a hub config lists a handful.
const EXTRA_SLOTS: usize = 253;

static EXTRA: [OnceLock<KindInfo>; EXTRA_SLOTS] = [const { OnceLock::new() }; EXTRA_SLOTS];
static EXTRA_LEN: AtomicUsize = AtomicUsize::new(0);
static REGISTER: Mutex<()> = Mutex::new(());

#[allow(non_upper_case_globals)]
impl Kind {
    /// apps/v1 Deployment.
    pub const Deployment: Kind = Kind(0);
    /// apps/v1 StatefulSet.
    pub const StatefulSet: Kind = Kind(1);
    /// apps/v1 ReplicaSet.
    pub const ReplicaSet: Kind = Kind(2);

    /// The built-in kinds, in watch order.
    pub const BUILTIN: [Kind; 3] = [Kind::Deployment, Kind::StatefulSet, Kind::ReplicaSet];

    /// Where the kind's API lives.
    pub fn info(self) -> &'static KindInfo {
        let i = usize::from(self.0);
        match BUILTIN.get(i) {
            Some(info) => info,
            // Every Kind past the built-ins was made by `register` after its slot was set.
            None => EXTRA[i - BUILTIN.len()].get().expect("a registered kind's slot is set"),
        }
    }

    /// The kind's name as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        self.info().kind
    }

    /// The resource's plural, as in its API path.
    pub fn plural(self) -> &'static str {
        self.info().plural
    }

    /// Whether this is one of the three built-in `apps/v1` kinds.
    pub fn is_builtin(self) -> bool {
        usize::from(self.0) < BUILTIN.len()
    }

    /// Every registered kind: the built-ins, then extras in registration order.
    pub fn all() -> impl DoubleEndedIterator<Item = Kind> {
        let extras = EXTRA_LEN.load(Ordering::Acquire);
        (0..BUILTIN.len() + extras).map(|i| Kind(i as u16))
    }

    /// Parses a kind name, case-insensitively, also accepting the plural and short forms.
    pub fn parse(s: &str) -> Option<Kind> {
        // Newest first: a kind registered for serving shadows an unserved one of its name.
        Kind::all().rev().find(|k| {
            let info = k.info();
            info.kind.eq_ignore_ascii_case(s)
                || info.plural.eq_ignore_ascii_case(s)
                || info.short.iter().any(|short| short.eq_ignore_ascii_case(s))
        })
    }

    /// The kind a `scaleTargetRef` (apiVersion and kind) names, if registered.
    pub fn from_ref(api_version: &str, kind: &str) -> Option<Kind> {
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        Kind::all().rev().find(|k| k.info().served && k.info().group == group && k.info().kind == kind)
    }

    /// Registers an extra kind, or returns the one already registered with the same API.
    /// A kind first registered unserved (from stored history) becomes served.
    pub fn register(group: &str, version: &str, kind: &str, plural: &str) -> Result<Kind, KindError> {
        Kind::insert(KindInfo {
            group: leak(group),
            version: leak(version),
            kind: leak(kind),
            plural: leak(plural),
            short: &[],
            served: true,
        })
    }

    /// The kind of this name; a name the registry does not know (a stored target whose kind
    /// the config no longer lists) is registered as not served, so its history stays readable.
    pub fn named(name: &str) -> Kind {
        Kind::all().rev().find(|k| k.as_str() == name).unwrap_or_else(|| {
            let info = KindInfo { group: "", version: "", kind: leak(name), plural: "", short: &[], served: false };
            Kind::insert(info).unwrap_or(Kind::Deployment)
        })
    }

    fn insert(info: KindInfo) -> Result<Kind, KindError> {
        let _guard = REGISTER.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = Kind::all().rev().find(|k| k.as_str() == info.kind) {
            let have = existing.info();
            let same_api = have.group == info.group && have.version == info.version && have.plural == info.plural;
            if same_api || !info.served {
                return Ok(existing);
            }
            if have.served || existing.is_builtin() {
                return Err(KindError::Conflict {
                    kind: info.kind.to_owned(),
                    existing: format!("{}.{}/{}", have.plural, have.group, have.version),
                });
            }
            // Known from history only: a slot cannot be rewritten, so the unserved entry stays
            // and the new one shadows it (lookups search newest first).
        }
        let len = EXTRA_LEN.load(Ordering::Acquire);
        let slot = EXTRA.get(len).ok_or(KindError::Full(EXTRA_SLOTS))?;
        let _ = slot.set(info);
        EXTRA_LEN.store(len + 1, Ordering::Release);
        Ok(Kind((BUILTIN.len() + len) as u16))
    }
}

/// Registered names live for the whole process (the registry is append-only and small).
fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Kind::parse(&name).ok_or_else(|| serde::de::Error::custom(format!("unknown kind {name:?}")))
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
        for kind in Kind::BUILTIN {
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

    #[test]
    fn an_extra_kind_is_registered_once_and_parses_like_a_built_in() {
        let rollout = Kind::register("argoproj.io", "v1alpha1", "Rollout", "rollouts").unwrap();
        assert!(!rollout.is_builtin());
        assert_eq!(Kind::register("argoproj.io", "v1alpha1", "Rollout", "rollouts"), Ok(rollout));
        assert_eq!(Kind::parse("rollouts"), Some(rollout));
        assert_eq!(Kind::parse("ROLLOUT"), Some(rollout));
        assert_eq!(Kind::from_ref("argoproj.io/v1alpha1", "Rollout"), Some(rollout));
        assert_eq!(Kind::from_ref("apps/v1", "Rollout"), None);
        assert_eq!(Kind::from_ref("apps/v1", "Deployment"), Some(Kind::Deployment));
        assert_eq!(rollout.info().api_version(), "argoproj.io/v1alpha1");
        assert!(Kind::all().any(|k| k == rollout));
        let key = TargetKey::new("shop", rollout, "web");
        assert_eq!(serde_json::to_value(&key).unwrap()["kind"], "Rollout");
        assert_eq!(serde_json::from_value::<TargetKey>(serde_json::to_value(&key).unwrap()).unwrap(), key);
        // The core group: ReplicationControllers have a /scale subresource too.
        let rc = Kind::register("", "v1", "ReplicationController", "replicationcontrollers").unwrap();
        assert_eq!(rc.info().api_version(), "v1");
        assert_eq!(Kind::from_ref("v1", "ReplicationController"), Some(rc));
    }

    #[test]
    fn two_kinds_may_not_share_a_name() {
        let err = Kind::register("example.com", "v1", "Deployment", "deployments").unwrap_err();
        assert!(err.to_string().contains("already registered as deployments.apps/v1"), "{err}");
        Kind::register("a.example.com", "v1", "Widget", "widgets").unwrap();
        let err = Kind::register("b.example.com", "v1", "Widget", "widgets").unwrap_err();
        assert!(matches!(err, KindError::Conflict { .. }), "{err}");
    }

    #[test]
    fn a_kind_known_only_from_history_is_readable_but_not_served_until_registered() {
        let old = Kind::named("Gadget");
        assert!(!old.info().served);
        assert_eq!(old.as_str(), "Gadget");
        assert_eq!(Kind::named("Gadget"), old);
        assert_eq!(Kind::from_ref("", "Gadget"), None);
        assert_eq!(Kind::named("Deployment"), Kind::Deployment);
        let served = Kind::register("example.com", "v1", "Gadget", "gadgets").unwrap();
        assert!(served.info().served);
        assert_eq!(Kind::parse("Gadget"), Some(served));
        assert_eq!(Kind::named("Gadget"), served);
    }
}
