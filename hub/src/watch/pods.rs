//! The pod cache: what a tick needs of each pod, kept current by one watch, with a label
//! index so that selecting a target's pods costs what the target has, not what the
//! namespace has.
//!
//! A full `Pod` is several kilobytes; a tick reads only its name, labels, phase, Ready
//! condition, start time, deletion mark and container requests, so that is all that is kept
//! ([`PodInfo`]). Per-pod hooks, which get the whole pod as the CPA gave it, read it from the
//! API server instead (see `stages`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::Api;
use kube::core::{Expression, Selector, SelectorExt};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use tokio_util::sync::CancellationToken;

use super::Scope;
use scalehub_core::quantity::parse_milli;

/// A pod's phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not yet running (or no status yet).
    Pending,
    /// Running.
    Running,
    /// Ended successfully.
    Succeeded,
    /// Ended in failure.
    Failed,
    /// Anything else.
    Unknown,
}

/// The status of a pod condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    /// `True`.
    True,
    /// `False`.
    False,
    /// `Unknown`.
    Unknown,
}

/// A pod's `Ready` condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadyCondition {
    /// Its status.
    pub status: ConditionStatus,
    /// When it last changed.
    pub last_transition: Option<Timestamp>,
}

/// One container's requests, in milli-units; `None` for a quantity that does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerRequests {
    /// The container's name (for the HPA's "missing request" error).
    pub name: Box<str>,
    /// Resource name → request.
    pub requests: Box<[(Box<str>, Option<i64>)]>,
}

/// What a tick needs of one pod.
#[derive(Clone, Debug, PartialEq)]
pub struct PodInfo {
    /// The pod's name.
    pub name: Arc<str>,
    /// Its labels (matched by workload selectors), shared by the namespace's pods that carry
    /// the same set (a ReplicaSet's pods all do).
    pub labels: Arc<BTreeMap<String, String>>,
    /// `status.phase`.
    pub phase: Phase,
    /// The `Ready` condition, if reported.
    pub ready: Option<ReadyCondition>,
    /// `status.startTime`.
    pub start_time: Option<Timestamp>,
    /// Whether the pod is being deleted.
    pub deleting: bool,
    /// Requests of each container.
    pub containers: Box<[ContainerRequests]>,
}

impl PodInfo {
    /// Keeps what a tick reads of `pod`.
    pub fn from_pod(pod: &Pod) -> PodInfo {
        let status = pod.status.as_ref();
        let phase = match status.and_then(|s| s.phase.as_deref()) {
            None | Some("Pending") => Phase::Pending,
            Some("Running") => Phase::Running,
            Some("Succeeded") => Phase::Succeeded,
            Some("Failed") => Phase::Failed,
            Some(_) => Phase::Unknown,
        };
        let ready =
            status.and_then(|s| s.conditions.as_ref()).and_then(|c| c.iter().find(|c| c.type_ == "Ready")).map(|c| {
                ReadyCondition {
                    status: match c.status.as_str() {
                        "True" => ConditionStatus::True,
                        "False" => ConditionStatus::False,
                        _ => ConditionStatus::Unknown,
                    },
                    last_transition: c.last_transition_time.as_ref().map(|t| t.0),
                }
            });
        let containers = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .map(|c| ContainerRequests {
                name: c.name.as_str().into(),
                requests: c
                    .resources
                    .as_ref()
                    .and_then(|r| r.requests.as_ref())
                    .into_iter()
                    .flatten()
                    .map(|(resource, q)| (resource.as_str().into(), parse_milli(&q.0).ok()))
                    .collect(),
            })
            .collect();
        PodInfo {
            name: pod.name_any().into(),
            labels: Arc::new(pod.metadata.labels.clone().unwrap_or_default()),
            phase,
            ready,
            start_time: status.and_then(|s| s.start_time.as_ref()).map(|t| t.0),
            deleting: pod.metadata.deletion_timestamp.is_some(),
            containers,
        }
    }
}

/// A workload's pod selector, compiled once per workload version: kube's `Selector` for the
/// match, the equality requirements for the index lookup, and the string form for API calls.
#[derive(Clone, Debug, PartialEq)]
pub struct PodSelector {
    selector: Selector,
    /// `key=value` requirements the index can look up (matchLabels, and `In` with one value).
    equalities: Vec<String>,
    text: String,
}

impl PodSelector {
    /// Compiles `spec.selector`; an invalid requirement is an error. A selector without
    /// requirements selects no pod here: the CPA matched every pod of the namespace, which
    /// scaled on the wrong pods.
    pub fn new(sel: &LabelSelector) -> Result<PodSelector, String> {
        let selector = Selector::try_from(sel.clone()).map_err(|e| format!("invalid pod selector: {}", e.0))?;
        Ok(PodSelector::of(selector))
    }

    /// Compiles a selector in its text form, as a `/scale` subresource's `status.selector`
    /// gives it (the only selector a custom resource offers).
    pub fn parse(text: &str) -> Result<PodSelector, String> {
        use scalehub_core::selector::Requirement;
        let requirements = scalehub_core::selector::parse(text).map_err(|e| format!("invalid pod selector: {e}"))?;
        let selector = requirements
            .into_iter()
            .map(|r| match r {
                Requirement::Equal(k, v) => Expression::Equal(k, v),
                Requirement::NotEqual(k, v) => Expression::NotEqual(k, v),
                Requirement::In(k, vs) => Expression::In(k, vs.into_iter().collect()),
                Requirement::NotIn(k, vs) => Expression::NotIn(k, vs.into_iter().collect()),
                Requirement::Exists(k) => Expression::Exists(k),
                Requirement::DoesNotExist(k) => Expression::DoesNotExist(k),
            })
            .collect();
        Ok(PodSelector::of(selector))
    }

    fn of(selector: Selector) -> PodSelector {
        let equalities = selector
            .clone()
            .into_iter()
            .filter_map(|e| match e {
                Expression::Equal(k, v) => Some(index_key(&k, &v)),
                Expression::In(k, values) if values.len() == 1 => values.first().map(|v| index_key(&k, v)),
                _ => None,
            })
            .collect();
        let text = selector.to_string();
        PodSelector { selector, equalities, text }
    }

    /// Whether a pod with these labels is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.selector.selects_all() && self.selector.matches(labels)
    }

    /// The `labelSelector` string form (`app=web,tier in (a,b)`).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn index_key(key: &str, value: &str) -> String {
    // `=` cannot occur in a label key, so `key=value` is unambiguous.
    format!("{key}={value}")
}

/// The pods of one namespace, with the label index.
#[derive(Default)]
struct NamespacePods {
    pods: HashMap<Arc<str>, Arc<PodInfo>>,
    /// `key=value` → names of the pods that carry that label.
    by_label: HashMap<String, HashSet<Arc<str>>>,
    /// Every label set held, once, with the number of pods here that carry it: pods with
    /// equal labels share one map.
    label_sets: HashMap<Arc<BTreeMap<String, String>>, usize>,
}

impl NamespacePods {
    fn insert(&mut self, mut pod: PodInfo) {
        self.remove(&pod.name.clone());
        if let Some((shared, _)) = self.label_sets.get_key_value(&*pod.labels) {
            pod.labels = shared.clone();
        }
        *self.label_sets.entry(pod.labels.clone()).or_insert(0) += 1;
        for (k, v) in pod.labels.iter() {
            self.by_label.entry(index_key(k, v)).or_default().insert(pod.name.clone());
        }
        self.pods.insert(pod.name.clone(), Arc::new(pod));
    }

    fn remove(&mut self, name: &str) {
        let Some(old) = self.pods.remove(name) else { return };
        // Counted, not read off the Arc: a tick may still hold the pod that left.
        if let Some(count) = self.label_sets.get_mut(&*old.labels) {
            *count -= 1;
            if *count == 0 {
                self.label_sets.remove(&*old.labels);
            }
        }
        for (k, v) in old.labels.iter() {
            let key = index_key(k, v);
            if let Some(names) = self.by_label.get_mut(&key) {
                names.remove(name);
                if names.is_empty() {
                    self.by_label.remove(&key);
                }
            }
        }
    }

    fn select(&self, sel: &PodSelector) -> Vec<Arc<PodInfo>> {
        // The smallest posting list among the equality requirements; without one, every pod.
        let candidates: Option<&HashSet<Arc<str>>> =
            match sel.equalities.iter().map(|k| self.by_label.get(k)).collect::<Option<Vec<_>>>() {
                None => return Vec::new(),
                Some(lists) => lists.into_iter().min_by_key(|l| l.len()),
            };
        let mut out: Vec<Arc<PodInfo>> = match candidates {
            Some(names) => {
                names.iter().filter_map(|n| self.pods.get(n)).filter(|p| sel.matches(&p.labels)).cloned().collect()
            }
            None => self.pods.values().filter(|p| sel.matches(&p.labels)).cloned().collect(),
        };
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

/// Pods by namespace, kept current by a watch; ticks select from it instead of listing.
#[derive(Clone, Default)]
pub struct PodIndex {
    inner: Arc<RwLock<HashMap<String, NamespacePods>>>,
}

impl PodIndex {
    /// Pods of `namespace` that `selector` selects, sorted by name.
    pub fn select(&self, namespace: &str, selector: &PodSelector) -> Vec<Arc<PodInfo>> {
        let Ok(map) = self.inner.read() else { return Vec::new() };
        map.get(namespace).map(|pods| pods.select(selector)).unwrap_or_default()
    }

    /// Pods held, across namespaces.
    pub fn len(&self) -> usize {
        self.inner.read().map(|m| m.values().map(|n| n.pods.len()).sum()).unwrap_or(0)
    }

    /// Whether no pod is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn apply(&self, pod: &Pod) {
        if let Ok(mut map) = self.inner.write() {
            map.entry(pod.namespace().unwrap_or_default()).or_default().insert(PodInfo::from_pod(pod));
        }
    }

    fn delete(&self, pod: &Pod) {
        if let Ok(mut map) = self.inner.write()
            && let Some(pods) = map.get_mut(&pod.namespace().unwrap_or_default())
        {
            pods.remove(&pod.name_any());
        }
    }

    fn replace_scope(&self, namespace: Option<&str>, pods: Vec<(String, PodInfo)>) {
        if let Ok(mut map) = self.inner.write() {
            match namespace {
                None => map.clear(),
                Some(ns) => {
                    map.remove(ns);
                }
            }
            for (ns, pod) in pods {
                map.entry(ns).or_default().insert(pod);
            }
        }
    }

    /// Starts the pod watches that keep this index current.
    pub fn watch(&self, client: &Client, scope: &Scope, shutdown: CancellationToken) {
        let apis: Vec<(Option<String>, Api<Pod>)> = if scope.namespaces.is_empty() {
            vec![(None, Api::all(client.clone()))]
        } else {
            scope.namespaces.iter().map(|ns| (Some(ns.clone()), Api::namespaced(client.clone(), ns))).collect()
        };
        for (namespace, api) in apis {
            let index = self.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
                let mut stream = std::pin::pin!(stream);
                // A relist builds its pods aside and swaps them in at the end, so ticks never
                // see a half-listed namespace.
                let mut listing = Vec::new();
                loop {
                    let item = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        item = stream.next() => item,
                    };
                    match item {
                        None => return,
                        Some(Err(e)) => tracing::warn!(error = %e, "pod watch error; retrying"),
                        Some(Ok(Event::Init)) => listing.clear(),
                        Some(Ok(Event::InitApply(p))) => {
                            listing.push((p.namespace().unwrap_or_default(), PodInfo::from_pod(&p)))
                        }
                        Some(Ok(Event::InitDone)) => {
                            index.replace_scope(namespace.as_deref(), std::mem::take(&mut listing))
                        }
                        Some(Ok(Event::Apply(p))) => index.apply(&p),
                        Some(Ok(Event::Delete(p))) => index.delete(&p),
                    }
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn pod(name: &str, labels: &[(&str, &str)]) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.namespace = Some("shop".into());
        p.metadata.labels = Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        p
    }

    fn selector(labels: &[(&str, &str)], exprs: Vec<LabelSelectorRequirement>) -> PodSelector {
        PodSelector::new(&LabelSelector {
            match_labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            match_expressions: Some(exprs),
        })
        .unwrap()
    }

    fn names(pods: &[Arc<PodInfo>]) -> Vec<&str> {
        pods.iter().map(|p| &*p.name).collect()
    }

    #[test]
    fn selection_follows_labels_and_expressions_like_kubernetes() {
        let index = PodIndex::default();
        index.apply(&pod("web-b", &[("app", "web"), ("tier", "b")]));
        index.apply(&pod("web-a", &[("app", "web"), ("tier", "a")]));
        index.apply(&pod("web-canary", &[("app", "web"), ("tier", "a"), ("canary", "1")]));
        index.apply(&pod("db-0", &[("app", "db")]));
        let sel = selector(
            &[("app", "web")],
            vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["a".into(), "b".into()]),
                },
                LabelSelectorRequirement { key: "canary".into(), operator: "DoesNotExist".into(), values: None },
            ],
        );
        assert_eq!(names(&index.select("shop", &sel)), ["web-a", "web-b"]);
        assert_eq!(sel.as_str(), "app=web,tier in (a,b),!canary");
        assert!(index.select("other", &sel).is_empty());
    }

    #[test]
    fn a_scale_subresources_text_selector_selects_as_the_structured_one_does() {
        let index = PodIndex::default();
        index.apply(&pod("web-a", &[("app", "web"), ("tier", "a")]));
        index.apply(&pod("web-canary", &[("app", "web"), ("tier", "a"), ("canary", "1")]));
        index.apply(&pod("db-0", &[("app", "db")]));
        let sel = PodSelector::parse("app=web,tier in (a,b),!canary").unwrap();
        assert_eq!(names(&index.select("shop", &sel)), ["web-a"]);
        assert_eq!(sel.as_str(), "app=web,tier in (a,b),!canary");
        let err = PodSelector::parse("app=(web").err().unwrap();
        assert!(err.contains("invalid pod selector"), "{err}");
        assert!(index.select("shop", &PodSelector::parse("").unwrap()).is_empty(), "an empty selector selects nothing");
    }

    #[test]
    fn a_selector_without_an_equality_scans_the_namespace() {
        let index = PodIndex::default();
        index.apply(&pod("a", &[("tier", "x")]));
        index.apply(&pod("b", &[("tier", "y")]));
        let sel = selector(
            &[],
            vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "NotIn".into(),
                values: Some(vec!["y".into()]),
            }],
        );
        assert_eq!(names(&index.select("shop", &sel)), ["a"]);
    }

    #[test]
    fn an_empty_selector_selects_no_pod() {
        let index = PodIndex::default();
        index.apply(&pod("a", &[("app", "web")]));
        assert!(index.select("shop", &selector(&[], vec![])).is_empty());
    }

    #[test]
    fn pods_with_equal_labels_share_one_label_set_until_the_last_goes() {
        let index = PodIndex::default();
        index.apply(&pod("web-1", &[("app", "web"), ("pod-template-hash", "7f")]));
        index.apply(&pod("web-2", &[("app", "web"), ("pod-template-hash", "7f")]));
        index.apply(&pod("db-0", &[("app", "db")]));
        let sets = |index: &PodIndex| index.inner.read().unwrap()["shop"].label_sets.len();
        let web = index.select("shop", &selector(&[("app", "web")], vec![]));
        assert!(Arc::ptr_eq(&web[0].labels, &web[1].labels), "equal labels are held twice");
        assert_eq!(sets(&index), 2);
        // A relabelled pod leaves the shared set for its own; the set goes with its last pod.
        index.apply(&pod("web-2", &[("app", "web"), ("pod-template-hash", "9c")]));
        assert_eq!(sets(&index), 3);
        index.delete(&pod("web-1", &[]));
        index.delete(&pod("db-0", &[]));
        assert_eq!(sets(&index), 1);
        assert_eq!(names(&index.select("shop", &selector(&[("pod-template-hash", "9c")], vec![]))), ["web-2"]);
    }

    #[test]
    fn relabelled_and_deleted_pods_leave_the_index() {
        let index = PodIndex::default();
        index.apply(&pod("a", &[("app", "web")]));
        index.apply(&pod("b", &[("app", "web")]));
        let web = selector(&[("app", "web")], vec![]);
        assert_eq!(names(&index.select("shop", &web)), ["a", "b"]);
        index.apply(&pod("a", &[("app", "api")]));
        assert_eq!(names(&index.select("shop", &web)), ["b"]);
        assert_eq!(names(&index.select("shop", &selector(&[("app", "api")], vec![]))), ["a"]);
        index.delete(&pod("b", &[]));
        assert!(index.select("shop", &web).is_empty());
        assert_eq!(index.len(), 1);
        let inner = index.inner.read().unwrap();
        assert!(!inner["shop"].by_label.contains_key("app=web"), "empty posting lists are dropped");
    }

    #[test]
    fn a_relist_replaces_the_namespace() {
        let index = PodIndex::default();
        index.apply(&pod("old", &[("app", "web")]));
        index.replace_scope(Some("shop"), vec![("shop".into(), PodInfo::from_pod(&pod("new", &[("app", "web")])))]);
        assert_eq!(names(&index.select("shop", &selector(&[("app", "web")], vec![]))), ["new"]);
    }
}
