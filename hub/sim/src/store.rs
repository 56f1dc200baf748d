//! The object store: one global resourceVersion, objects per resource and namespace, a bounded
//! event history per resource for watch replay, and change notification.
//!
//! Every write goes through [`Store::write`], [`Store::create`] or [`Store::delete`], which hold
//! one lock while they read, decide and commit, so resourceVersion checks are race-free.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::error::ApiError;
use crate::meta;
use crate::resources::{self, NAMESPACES, PODS, REPLICASETS, ResourceDef, STORAGE_SLOTS};

/// A stored object; shared between the store, the history and in-flight responses.
pub type Obj = Arc<Value>;

/// Watch event types produced by writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object deleted (carries the final state with a fresh resourceVersion).
    Deleted,
}

impl EventType {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One committed change.
#[derive(Debug)]
pub struct StoredEvent {
    /// resourceVersion of the change.
    pub rv: u64,
    /// Storage slot of the resource.
    pub slot: usize,
    /// What happened.
    pub kind: EventType,
    /// Namespace ("" for cluster-scoped objects).
    pub namespace: String,
    /// The object after the change (for deletes, the last state).
    pub object: Obj,
    /// The object before the change, so selector watches can turn "stopped matching" into DELETED.
    pub prev: Option<Obj>,
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// The main resource: status is kept from the old object when the resource has `/status`.
    Main,
    /// The `/status` subresource: only status changes.
    Status,
}

/// Result of a list.
#[derive(Debug)]
pub struct ListPage {
    /// Matching objects in (namespace, name) order.
    pub items: Vec<Obj>,
    /// The store's resourceVersion at the time of the list.
    pub rv: u64,
    /// Continue token when more items remain.
    pub continue_token: Option<String>,
}

/// Why a watch cannot resume.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("too old resource version: {requested} ({oldest})")]
pub struct Expired {
    /// The resourceVersion asked for.
    pub requested: u64,
    /// The oldest resourceVersion still replayable.
    pub oldest: u64,
}

#[derive(Default)]
struct Slot {
    /// namespace → name → object; cluster-scoped objects live under "".
    objects: BTreeMap<String, BTreeMap<String, Obj>>,
    history: VecDeque<Arc<StoredEvent>>,
    /// resourceVersion of the newest event evicted from `history`; older watches have lost events.
    compacted_rv: u64,
    /// Pods and ReplicaSets: controller owner uid → names (in the owner's namespace), so
    /// controllers and metrics find a workload's pods without scanning all pods.
    owners: HashMap<String, BTreeSet<String>>,
    /// Pods only: `(label key, value)` → (namespace, name), so `labelSelector=app=web` over
    /// 50,000 pods touches only the matching ones.
    labels: HashMap<(String, String), BTreeSet<(String, String)>>,
}

struct Inner {
    rv: u64,
    slots: Vec<Slot>,
}

/// The shared object store.
pub struct Store {
    inner: Mutex<Inner>,
    /// Latest committed rv per slot; watchers wait on it, then read the history.
    notify: Vec<watch::Sender<u64>>,
    /// Feed for the emulated controllers (workloads and pods only).
    internal: OnceLock<mpsc::UnboundedSender<Arc<StoredEvent>>>,
    history_limit: usize,
}

impl Store {
    /// An empty store with the `default`, `kube-system`, `kube-public` namespaces.
    pub fn new(history_limit: usize) -> Arc<Self> {
        let store = Arc::new(Self {
            inner: Mutex::new(Inner { rv: 1, slots: (0..STORAGE_SLOTS).map(|_| Slot::default()).collect() }),
            notify: (0..STORAGE_SLOTS).map(|_| watch::channel(0).0).collect(),
            internal: OnceLock::new(),
            history_limit: history_limit.max(16),
        });
        for ns in ["default", "kube-system", "kube-public"] {
            // Cannot fail: the names are valid and the store is empty.
            let _ = store.create(&resources::RESOURCES[NAMESPACES], "", json!({"metadata": {"name": ns}}), false);
        }
        store
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (commits are single inserts).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Routes workload and pod events to the controllers; only the first call takes effect.
    pub fn set_internal_feed(&self, tx: mpsc::UnboundedSender<Arc<StoredEvent>>) {
        let _ = self.internal.set(tx);
    }

    /// The current global resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// A receiver that changes whenever the slot commits an event.
    pub fn subscribe(&self, slot: usize) -> watch::Receiver<u64> {
        self.notify[slot].subscribe()
    }

    /// One object.
    pub fn get(&self, slot: usize, ns: &str, name: &str) -> Option<Obj> {
        self.lock().slots[slot].objects.get(ns)?.get(name).cloned()
    }

    /// Whether a namespace exists.
    pub fn namespace_exists(&self, ns: &str) -> bool {
        self.get(NAMESPACES, "", ns).is_some()
    }

    /// Number of objects in a slot.
    pub fn count(&self, slot: usize) -> usize {
        self.lock().slots[slot].objects.values().map(BTreeMap::len).sum()
    }

    /// Number of objects in a slot for which `pred` holds (e.g. Ready pods, for `/sim/admin/stats`).
    pub fn count_where(&self, slot: usize, pred: impl Fn(&Value) -> bool) -> usize {
        self.lock().slots[slot].objects.values().flat_map(BTreeMap::values).filter(|o| pred(o)).count()
    }

    /// Pods whose controlling owner has this uid, in the owner's namespace.
    pub fn pods_owned_by(&self, ns: &str, owner_uid: &str) -> Vec<Obj> {
        self.owned_by(PODS, ns, owner_uid)
    }

    /// Objects of a slot (pods or ReplicaSets) whose controlling owner has this uid.
    pub fn owned_by(&self, slot: usize, ns: &str, owner_uid: &str) -> Vec<Obj> {
        let inner = self.lock();
        let slot = &inner.slots[slot];
        let (Some(names), Some(pods)) = (slot.owners.get(owner_uid), slot.objects.get(ns)) else {
            return Vec::new();
        };
        names.iter().filter_map(|n| pods.get(n).cloned()).collect()
    }

    /// Events of a slot newer than `after`, or [`Expired`] when some were already evicted.
    pub fn events_since(&self, slot: usize, after: u64) -> Result<Vec<Arc<StoredEvent>>, Expired> {
        let inner = self.lock();
        let s = &inner.slots[slot];
        if after < s.compacted_rv {
            let oldest = s.history.front().map_or(inner.rv, |e| e.rv);
            return Err(Expired { requested: after, oldest });
        }
        let from = s.history.partition_point(|e| e.rv <= after);
        Ok(s.history.range(from..).cloned().collect())
    }

    /// Creates an object; fills uid, creationTimestamp, generation and resourceVersion.
    pub fn create(&self, def: &ResourceDef, ns: &str, body: Value, dry_run: bool) -> Result<Obj, ApiError> {
        let mut inner = self.lock();
        self.create_locked(&mut inner, def, ns, body, dry_run)
    }

    fn create_locked(
        &self,
        inner: &mut Inner,
        def: &ResourceDef,
        ns: &str,
        mut body: Value,
        dry_run: bool,
    ) -> Result<Obj, ApiError> {
        let Some(m) = meta::metadata_mut(&mut body) else {
            return Err(ApiError::bad_request("the request body is not a JSON object"));
        };
        let mut name = m.get("name").and_then(Value::as_str).unwrap_or("").to_string();
        if name.is_empty() {
            let Some(prefix) = m.get("generateName").and_then(Value::as_str).filter(|p| !p.is_empty()) else {
                return Err(ApiError::invalid(format!(
                    "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                    def.kind
                )));
            };
            name = format!("{prefix}{}", meta::random_suffix(5));
        }
        if !meta::valid_name(&name) {
            return Err(ApiError::invalid(format!("{} \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'", def.kind))
                .with_details(def.group, def.plural, &name));
        }
        if def.namespaced {
            match m.get("namespace").and_then(Value::as_str) {
                Some(body_ns) if !body_ns.is_empty() && body_ns != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {}
            }
            if inner.slots[NAMESPACES].objects.get("").and_then(|n| n.get(ns)).is_none() {
                return Err(ApiError::not_found("", "namespaces", ns));
            }
            m.insert("namespace".into(), json!(ns));
        }
        let key_ns = if def.namespaced { ns } else { "" };
        if inner.slots[def.storage].objects.get(key_ns).is_some_and(|o| o.contains_key(&name)) {
            return Err(ApiError::already_exists(def.group, def.plural, &name));
        }
        let rv = inner.rv + 1;
        m.insert("name".into(), json!(name));
        m.insert("uid".into(), json!(meta::new_uid()));
        m.insert("creationTimestamp".into(), json!(meta::now_rfc3339()));
        m.insert("resourceVersion".into(), json!(rv.to_string()));
        m.insert("generation".into(), json!(1));
        for server_owned in ["deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"] {
            m.remove(server_owned);
        }
        set_type_meta(&mut body, def);
        initial_status(&mut body, def);
        if dry_run {
            return Ok(Arc::new(body));
        }
        inner.rv = rv;
        let obj = Arc::new(body);
        self.commit(inner, def.storage, key_ns, &name, Some(obj.clone()), obj.clone(), None, EventType::Added);
        Ok(obj)
    }

    /// Reads, changes and commits one object under the lock.
    #[allow(clippy::too_many_arguments)]
    ///
    /// `f` gets the current object (None when missing) and returns the desired one; when it is
    /// missing and `create_if_missing` is false the write fails with 404. Immutable metadata is
    /// restored, a change that alters nothing is not committed, spec changes bump `generation`.
    pub fn write<F>(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        mode: WriteMode,
        create_if_missing: bool,
        dry_run: bool,
        f: F,
    ) -> Result<(Obj, bool), ApiError>
    where
        F: FnOnce(Option<&Obj>) -> Result<Value, ApiError>,
    {
        let key_ns = if def.namespaced { ns } else { "" };
        let mut inner = self.lock();
        let old = inner.slots[def.storage].objects.get(key_ns).and_then(|o| o.get(name)).cloned();
        let Some(old) = old else {
            if !create_if_missing {
                return Err(ApiError::not_found(def.group, def.plural, name));
            }
            let mut body = f(None)?;
            if let Some(m) = meta::metadata_mut(&mut body) {
                m.insert("name".into(), json!(name));
            }
            return self.create_locked(&mut inner, def, ns, body, dry_run).map(|o| (o, true));
        };
        let mut new = f(Some(&old))?;
        if !new.is_object() {
            return Err(ApiError::bad_request("the request body is not a JSON object"));
        }
        if def.status {
            let keep_from_old = match mode {
                WriteMode::Main => vec!["status"],
                WriteMode::Status => vec!["spec"],
            };
            for field in keep_from_old {
                match old.get(field) {
                    Some(v) => new[field] = v.clone(),
                    None => {
                        if let Some(o) = new.as_object_mut() {
                            o.remove(field);
                        }
                    }
                }
            }
            if mode == WriteMode::Status {
                // Status writes ignore metadata changes other than what the server keeps.
                new["metadata"] = old["metadata"].clone();
            }
        }
        let Some(m) = meta::metadata_mut(&mut new) else {
            return Err(ApiError::bad_request("the request body is not a JSON object"));
        };
        for immutable in ["name", "namespace", "uid", "creationTimestamp", "generation", "resourceVersion"] {
            match old["metadata"].get(immutable) {
                Some(v) => m.insert(immutable.into(), v.clone()),
                None => m.remove(immutable),
            };
        }
        set_type_meta(&mut new, def);
        if new == *old.as_ref() {
            return Ok((old, false));
        }
        // Deployments also bump generation on annotation changes (they are copied to ReplicaSets).
        let annotations_changed = def.storage == resources::DEPLOYMENTS
            && old.pointer("/metadata/annotations") != new.pointer("/metadata/annotations");
        if (spec_changed(&old, &new) || annotations_changed)
            && let Some(g) = old.pointer("/metadata/generation").and_then(Value::as_i64)
        {
            new["metadata"]["generation"] = json!(g + 1);
        }
        let rv = inner.rv + 1;
        new["metadata"]["resourceVersion"] = json!(rv.to_string());
        if dry_run {
            return Ok((Arc::new(new), false));
        }
        inner.rv = rv;
        let obj = Arc::new(new);
        self.commit(
            &mut inner,
            def.storage,
            key_ns,
            name,
            Some(obj.clone()),
            obj.clone(),
            Some(old),
            EventType::Modified,
        );
        Ok((obj, false))
    }

    /// Deletes an object; `precondition_rv` makes a stale delete a 409. Deleting a namespace
    /// deletes everything in it.
    pub fn delete(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        precondition_rv: Option<&str>,
        dry_run: bool,
    ) -> Result<Obj, ApiError> {
        let key_ns = if def.namespaced { ns } else { "" };
        let mut inner = self.lock();
        let Some(old) = inner.slots[def.storage].objects.get(key_ns).and_then(|o| o.get(name)).cloned() else {
            return Err(ApiError::not_found(def.group, def.plural, name));
        };
        if let Some(rv) = precondition_rv.filter(|rv| !rv.is_empty())
            && meta::meta_str(&old, "resourceVersion") != Some(rv)
        {
            return Err(ApiError::conflict(def.group, def.plural, name));
        }
        if dry_run {
            return Ok(old);
        }
        if def.storage == NAMESPACES {
            for slot in 0..STORAGE_SLOTS {
                let names: Vec<String> =
                    inner.slots[slot].objects.get(name).map(|o| o.keys().cloned().collect()).unwrap_or_default();
                for n in names {
                    self.delete_locked(&mut inner, slot, name, &n);
                }
            }
        }
        Ok(self.delete_locked(&mut inner, def.storage, key_ns, name).unwrap_or(old))
    }

    fn delete_locked(&self, inner: &mut Inner, slot: usize, ns: &str, name: &str) -> Option<Obj> {
        let old = inner.slots[slot].objects.get(ns)?.get(name)?.clone();
        inner.rv += 1;
        let mut last = old.as_ref().clone();
        last["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        let last = Arc::new(last);
        self.commit(inner, slot, ns, name, None, last.clone(), Some(old), EventType::Deleted);
        Some(last)
    }

    /// Applies a change to the maps, the owner index and the history, and notifies watchers.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        inner: &mut Inner,
        slot: usize,
        ns: &str,
        name: &str,
        new: Option<Obj>,
        object: Obj,
        prev: Option<Obj>,
        kind: EventType,
    ) {
        let rv = inner.rv;
        let s = &mut inner.slots[slot];
        if slot == PODS {
            index_labels(&mut s.labels, ns, name, prev.as_deref(), new.as_deref());
        }
        if slot == PODS || slot == REPLICASETS {
            let old_owner = prev.as_deref().and_then(meta::controller_uid).map(str::to_string);
            let new_owner = new.as_deref().and_then(meta::controller_uid).map(str::to_string);
            if old_owner != new_owner {
                if let Some(o) = old_owner
                    && let Some(set) = s.owners.get_mut(&o)
                {
                    set.remove(name);
                    if set.is_empty() {
                        s.owners.remove(&o);
                    }
                }
                if let Some(o) = new_owner {
                    s.owners.entry(o).or_default().insert(name.to_string());
                }
            }
        }
        match &new {
            Some(obj) => {
                s.objects.entry(ns.to_string()).or_default().insert(name.to_string(), obj.clone());
            }
            None => {
                if let Some(by_name) = s.objects.get_mut(ns) {
                    by_name.remove(name);
                    if by_name.is_empty() {
                        s.objects.remove(ns);
                    }
                }
            }
        }
        let event = Arc::new(StoredEvent { rv, slot, kind, namespace: ns.to_string(), object, prev });
        s.history.push_back(event.clone());
        while s.history.len() > self.history_limit {
            if let Some(old) = s.history.pop_front() {
                s.compacted_rv = old.rv;
            }
        }
        if (slot <= PODS || slot == resources::ROLLOUTS)
            && let Some(tx) = self.internal.get()
        {
            let _ = tx.send(event);
        }
        self.notify[slot].send_replace(rv);
    }
}

/// Writes the served kind/apiVersion into an object.
pub fn set_type_meta(obj: &mut Value, def: &ResourceDef) {
    if let Some(o) = obj.as_object_mut() {
        o.insert("kind".into(), json!(def.kind));
        o.insert("apiVersion".into(), json!(def.api_version()));
    }
}

/// Status the real server sets on create: cleared for workloads, Pending for pods, Active for namespaces.
fn initial_status(obj: &mut Value, def: &ResourceDef) {
    match (def.storage, def.status) {
        (PODS, _) => {
            let has_phase = obj.pointer("/status/phase").is_some();
            if !has_phase {
                obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
            }
        }
        (NAMESPACES, _) => {
            obj["status"] = json!({"phase": "Active"});
            if obj.pointer("/spec/finalizers").is_none() {
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
            }
        }
        (_, true) => {
            if let Some(o) = obj.as_object_mut() {
                o.remove("status");
            }
        }
        _ => {}
    }
}

/// Whether anything outside metadata and status differs (what bumps `generation`).
fn spec_changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| -> Vec<(String, Value)> {
        v.as_object()
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    strip(old) != strip(new)
}

#[path = "store_list.rs"]
mod list;
use list::index_labels;

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
