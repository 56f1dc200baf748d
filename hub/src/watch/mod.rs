//! Watches of the cluster: workloads, pods and HPAs, through kube-runtime watchers.
//!
//! Nothing here polls. Workload changes are forwarded to the registry; pods and HPAs
//! are kept in indexes that ticks read without any API call. A watch that breaks is
//! retried with kube's default backoff and re-listed, and the registry is told which
//! workloads exist after each (re)list so a delete missed during an outage is noticed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::workload::{Kind, TargetKey, Workload};

pub mod pods;
pub use pods::{PodIndex, PodInfo, PodSelector};

/// A change to a workload, as the registry needs it.
#[derive(Debug)]
pub enum WorkloadChange {
    /// The workload was created or changed.
    Applied(TargetKey, Arc<Workload>),
    /// The workload was deleted.
    Deleted(TargetKey),
    /// A (re)list of one kind in one scope finished: these are all the workloads that exist there.
    Listed { kind: Kind, namespace: Option<String>, keys: HashSet<TargetKey> },
}

/// Which namespaces the hub watches: all of them, or a list.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// Empty means all namespaces.
    pub namespaces: Vec<String>,
}

impl Scope {
    fn apis(&self, client: &Client, ar: &ApiResource) -> Vec<(Option<String>, Api<DynamicObject>)> {
        if self.namespaces.is_empty() {
            vec![(None, Api::all_with(client.clone(), ar))]
        } else {
            self.namespaces.iter().map(|ns| (Some(ns.clone()), Api::namespaced_with(client.clone(), ns, ar))).collect()
        }
    }
}

/// Starts one watch per workload kind and namespace, sending changes to `tx`. An extra kind's
/// opted-in objects are completed from their `/scale` subresource on every change, each read
/// bounded by `timeout`.
pub fn watch_workloads(
    client: &Client,
    scope: &Scope,
    kinds: &[Kind],
    timeout: Duration,
    tx: mpsc::Sender<WorkloadChange>,
    shutdown: CancellationToken,
) {
    for &kind in kinds {
        let ar = crate::workload::api_resource(kind);
        let scales = (!kind.is_builtin()).then(|| ScaleReader { client: client.clone(), ar: ar.clone(), timeout });
        for (namespace, api) in scope.apis(client, &ar) {
            let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
            let forward = Forward { kind, namespace, scales: scales.clone(), tx: tx.clone() };
            tokio::spawn(forward.run(stream, shutdown.clone()));
        }
    }
}

/// Reads `/scale` of an extra kind's objects.
#[derive(Clone)]
struct ScaleReader {
    client: Client,
    ar: ApiResource,
    timeout: Duration,
}

impl ScaleReader {
    async fn complete(&self, key: &TargetKey, workload: Workload) -> Workload {
        if !scalehub_core::is_opted_in(&workload.annotations) {
            return workload;
        }
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), &key.namespace, &self.ar);
        match tokio::time::timeout(self.timeout, api.get_scale(&key.name)).await {
            Ok(Ok(scale)) => workload.with_scale(&scale),
            Ok(Err(e)) => {
                tracing::warn!(target_key = %key, error = %e, "reading the /scale subresource failed");
                workload.without_scale(format!("reading /scale of {key} failed: {e}"))
            }
            Err(_) => {
                tracing::warn!(target_key = %key, "reading the /scale subresource timed out");
                workload.without_scale(format!("reading /scale of {key} timed out after {:?}", self.timeout))
            }
        }
    }
}

/// Forwards one watch's events to the registry.
struct Forward {
    kind: Kind,
    namespace: Option<String>,
    scales: Option<ScaleReader>,
    tx: mpsc::Sender<WorkloadChange>,
}

impl Forward {
    async fn applied(&self, obj: DynamicObject) -> (TargetKey, Arc<Workload>) {
        let key = crate::workload::key_of(self.kind, &obj);
        let mut workload = Workload::from_object(obj);
        if let Some(scales) = &self.scales {
            workload = scales.complete(&key, workload).await;
        }
        (key, Arc::new(workload))
    }

    async fn run(
        self,
        stream: impl Stream<Item = Result<Event<DynamicObject>, watcher::Error>>,
        shutdown: CancellationToken,
    ) {
        let kind = self.kind;
        let mut stream = std::pin::pin!(stream);
        let mut listing: HashSet<TargetKey> = HashSet::new();
        loop {
            let item = tokio::select! {
                _ = shutdown.cancelled() => return,
                item = stream.next() => item,
            };
            let change = match item {
                None => return,
                Some(Err(e)) => {
                    tracing::warn!(%kind, error = %e, "workload watch error; retrying");
                    continue;
                }
                Some(Ok(Event::Init)) => {
                    listing.clear();
                    continue;
                }
                Some(Ok(Event::InitApply(obj))) => {
                    let (key, workload) = self.applied(obj).await;
                    listing.insert(key.clone());
                    WorkloadChange::Applied(key, workload)
                }
                Some(Ok(Event::InitDone)) => WorkloadChange::Listed {
                    kind,
                    namespace: self.namespace.clone(),
                    keys: std::mem::take(&mut listing),
                },
                Some(Ok(Event::Apply(obj))) => {
                    let (key, workload) = self.applied(obj).await;
                    WorkloadChange::Applied(key, workload)
                }
                Some(Ok(Event::Delete(obj))) => WorkloadChange::Deleted(crate::workload::key_of(kind, &obj)),
            };
            if self.tx.send(change).await.is_err() {
                return;
            }
        }
    }
}

/// The workloads one HPA watch scope targets: target key → HPA name.
type HpaTargets = HashMap<TargetKey, String>;

/// Workloads that an HorizontalPodAutoscaler already targets, by target key → HPA name.
#[derive(Clone, Default)]
pub struct HpaIndex {
    /// One map per watch scope (all namespaces, or one namespace), so scopes never overwrite each other.
    inner: Arc<RwLock<HashMap<Option<String>, HpaTargets>>>,
    /// Scopes still to finish their first list; until then no target may scale, or it
    /// could scale a workload whose HPA the hub has not seen yet.
    unsynced: Arc<std::sync::atomic::AtomicUsize>,
}

impl HpaIndex {
    /// Whether every HPA watch has listed once (conflicts are known).
    pub fn synced(&self) -> bool {
        self.unsynced.load(std::sync::atomic::Ordering::Acquire) == 0
    }

    /// The HPA that targets this workload, if any.
    pub fn owner(&self, key: &TargetKey) -> Option<String> {
        let map = self.inner.read().ok()?;
        map.values().find_map(|scope| scope.get(key).cloned())
    }

    fn target_of(hpa: &DynamicObject) -> Option<TargetKey> {
        let r = hpa.data.pointer("/spec/scaleTargetRef")?;
        let api_version = r.get("apiVersion").and_then(|v| v.as_str()).unwrap_or("apps/v1");
        let kind = Kind::from_ref(api_version, r.get("kind")?.as_str()?)?;
        Some(TargetKey::new(hpa.namespace().unwrap_or_default(), kind, r.get("name")?.as_str()?))
    }

    fn rebuild(&self, scope: Option<String>, hpas: &HashMap<(String, String), DynamicObject>) {
        let map: HashMap<TargetKey, String> =
            hpas.values().filter_map(|h| Self::target_of(h).map(|k| (k, h.name_any()))).collect();
        if let Ok(mut inner) = self.inner.write() {
            inner.insert(scope, map);
        }
    }

    /// Starts the HPA watch: autoscaling/v2 where served, else autoscaling/v1 (every
    /// HPA is readable through v1, and both carry `spec.scaleTargetRef`).
    pub fn watch(&self, client: &Client, scope: &Scope, shutdown: CancellationToken) {
        let index = self.clone();
        let client = client.clone();
        let scope = scope.clone();
        self.unsynced.store(scope.namespaces.len().max(1), std::sync::atomic::Ordering::Release);
        tokio::spawn(async move {
            let version = match client.list_api_group_resources("autoscaling/v2").await {
                Ok(list) if list.resources.iter().any(|r| r.name == "horizontalpodautoscalers") => "v2",
                _ => "v1",
            };
            let ar = ApiResource {
                group: "autoscaling".into(),
                version: version.into(),
                api_version: format!("autoscaling/{version}"),
                kind: "HorizontalPodAutoscaler".into(),
                plural: "horizontalpodautoscalers".into(),
            };
            for (namespace, api) in scope.apis(&client, &ar) {
                let index = index.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
                    let mut stream = std::pin::pin!(stream);
                    let mut all: HashMap<(String, String), DynamicObject> = HashMap::new();
                    let mut listing = HashMap::new();
                    let mut first_list = true;
                    loop {
                        let item = tokio::select! {
                            _ = shutdown.cancelled() => return,
                            item = stream.next() => item,
                        };
                        match item {
                            None => return,
                            Some(Err(e)) => {
                                tracing::warn!(error = %e, "hpa watch error (targets wait for the first HPA list); retrying");
                                continue;
                            }
                            Some(Ok(Event::Init)) => listing.clear(),
                            Some(Ok(Event::InitApply(h))) => {
                                listing.insert((h.namespace().unwrap_or_default(), h.name_any()), h);
                            }
                            Some(Ok(Event::InitDone)) => {
                                all = std::mem::take(&mut listing);
                                if std::mem::take(&mut first_list) {
                                    index.rebuild(namespace.clone(), &all);
                                    index.unsynced.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                                }
                            }
                            Some(Ok(Event::Apply(h))) => {
                                all.insert((h.namespace().unwrap_or_default(), h.name_any()), h);
                            }
                            Some(Ok(Event::Delete(h))) => {
                                all.remove(&(h.namespace().unwrap_or_default(), h.name_any()));
                            }
                        }
                        index.rebuild(namespace.clone(), &all);
                    }
                });
            }
        });
    }
}
