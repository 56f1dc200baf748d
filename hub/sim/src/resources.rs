//! The table of served resources: what discovery advertises and what the router accepts.

/// One served resource (a group/version/plural).
#[derive(Debug)]
pub struct ResourceDef {
    /// Index into [`RESOURCES`]; also the store's slot.
    pub id: usize,
    /// API group ("" for core).
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Plural name used in paths.
    pub plural: &'static str,
    /// Singular name for discovery.
    pub singular: &'static str,
    /// Kind of one object.
    pub kind: &'static str,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// kubectl short names.
    pub short_names: &'static [&'static str],
    /// Whether a `/scale` subresource exists.
    pub scale: bool,
    /// Whether a `/status` subresource exists (status is then ignored on the main resource).
    pub status: bool,
    /// Read-only resources (metrics) serve only get and list.
    pub read_only: bool,
    /// Storage slot shared by versions of the same resource.
    pub storage: usize,
}

impl ResourceDef {
    /// `apps/v1` or `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }

    /// Accounting label, e.g. `deployments` (group omitted: plurals served here are unique enough).
    pub fn label(&self) -> &'static str {
        self.plural
    }

    /// Verbs advertised in discovery.
    pub fn verbs(&self) -> &'static [&'static str] {
        if self.read_only {
            &["get", "list"]
        } else {
            &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
        }
    }
}

macro_rules! res {
    ($id:expr, $storage:expr, $g:expr, $v:expr, $p:expr, $s:expr, $k:expr, $ns:expr, $short:expr, $scale:expr, $status:expr, $ro:expr) => {
        ResourceDef {
            id: $id,
            storage: $storage,
            group: $g,
            version: $v,
            plural: $p,
            singular: $s,
            kind: $k,
            namespaced: $ns,
            short_names: $short,
            scale: $scale,
            status: $status,
            read_only: $ro,
        }
    };
}

/// Slot of Deployments.
pub const DEPLOYMENTS: usize = 0;
/// Slot of StatefulSets.
pub const STATEFULSETS: usize = 1;
/// Slot of ReplicaSets.
pub const REPLICASETS: usize = 2;
/// Slot of Pods.
pub const PODS: usize = 3;
/// Slot of Namespaces.
pub const NAMESPACES: usize = 4;
/// Slot of PodMetrics (computed, never stored).
pub const POD_METRICS: usize = 10;
/// Slot of Argo Rollouts (`argoproj.io/v1alpha1`), served natively as the stand-in for a
/// custom resource with a `/scale` subresource.
pub const ROLLOUTS: usize = 11;

/// Every served resource. Both Event groups share storage, as do autoscaling/v1 and v2 HPAs
/// (converted on read by `convert`).
pub static RESOURCES: [ResourceDef; 12] = [
    res!(0, 0, "apps", "v1", "deployments", "deployment", "Deployment", true, &["deploy"], true, true, false),
    res!(1, 1, "apps", "v1", "statefulsets", "statefulset", "StatefulSet", true, &["sts"], true, true, false),
    res!(2, 2, "apps", "v1", "replicasets", "replicaset", "ReplicaSet", true, &["rs"], true, true, false),
    res!(3, 3, "", "v1", "pods", "pod", "Pod", true, &["po"], false, true, false),
    res!(4, 4, "", "v1", "namespaces", "namespace", "Namespace", false, &["ns"], false, true, false),
    res!(5, 5, "", "v1", "events", "event", "Event", true, &["ev"], false, false, false),
    res!(6, 5, "events.k8s.io", "v1", "events", "event", "Event", true, &["ev"], false, false, false),
    res!(7, 7, "coordination.k8s.io", "v1", "leases", "lease", "Lease", true, &[], false, false, false),
    res!(
        8,
        8,
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        true,
        &["hpa"],
        false,
        true,
        false
    ),
    res!(
        9,
        8,
        "autoscaling",
        "v1",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        true,
        &["hpa"],
        false,
        true,
        false
    ),
    res!(10, 10, "metrics.k8s.io", "v1beta1", "pods", "", "PodMetrics", true, &[], false, false, true),
    res!(11, 11, "argoproj.io", "v1alpha1", "rollouts", "rollout", "Rollout", true, &["ro"], true, true, false),
];

/// Number of storage slots.
pub const STORAGE_SLOTS: usize = 12;

/// Finds a resource by group, version and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES.iter().find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The groups served, each with its versions (preferred first), in discovery order.
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) if !versions.contains(&r.version) => versions.push(r.version),
            Some(_) => {}
            None => out.push((r.group, vec![r.version])),
        }
    }
    out
}

/// Whether this group/version is served.
pub fn serves(group: &str, version: &str) -> bool {
    RESOURCES.iter().any(|r| r.group == group && r.version == version)
}

/// The workload resource for a kind name as it appears in ownerReferences.
pub fn workload_by_kind(kind: &str) -> Option<&'static ResourceDef> {
    match kind {
        "Deployment" => Some(&RESOURCES[DEPLOYMENTS]),
        "StatefulSet" => Some(&RESOURCES[STATEFULSETS]),
        "ReplicaSet" => Some(&RESOURCES[REPLICASETS]),
        "Rollout" => Some(&RESOURCES[ROLLOUTS]),
        _ => None,
    }
}
