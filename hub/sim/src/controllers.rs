//! Emulated controllers: the Deployment/StatefulSet/ReplicaSet controllers and a minimal Argo
//! Rollout controller (it owns its pods directly, as a ReplicaSet does; pods follow
//! `spec.replicas`), the kubelet (pods turn Running and Ready after a delay) and the garbage
//! collector (a deleted workload's pods go). They react to store events; nothing polls.
//!
//! Deployments get one ReplicaSet each (see `controllers_deploy.rs`), which owns the pods.
//! Simplifications: pods are named `<replicaset>-<5 random chars>` (`<sts>-<ordinal>` for
//! StatefulSets), StatefulSet pods are created in parallel, a template change replaces the
//! ReplicaSet instead of rolling.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::meta;
use crate::resources::{self, DEPLOYMENTS, PODS, REPLICASETS, RESOURCES, ROLLOUTS, ResourceDef, STATEFULSETS};
use crate::store::{EventType, Obj, Store, StoredEvent, WriteMode};

/// Spawns the controllers; they receive every workload and pod change from the store.
pub fn spawn(store: Arc<Store>, ready_delay: Duration) -> JoinHandle<()> {
    let (tx, rx) = mpsc::unbounded_channel();
    store.set_internal_feed(tx);
    let ctl = Controllers { store, ready_delay, next_ip: Arc::new(AtomicU32::new(0)) };
    tokio::spawn(ctl.run(rx))
}

#[derive(Clone)]
struct Controllers {
    store: Arc<Store>,
    ready_delay: Duration,
    /// Pod IP allocator (10.244.0.0/16).
    next_ip: Arc<AtomicU32>,
}

impl Controllers {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Arc<StoredEvent>>) {
        while let Some(ev) = rx.recv().await {
            match ev.slot {
                DEPLOYMENTS | STATEFULSETS | REPLICASETS | ROLLOUTS => self.on_workload(&RESOURCES[ev.slot], &ev),
                PODS => self.on_pod(&ev),
                _ => {}
            }
        }
    }

    fn on_workload(&self, def: &'static ResourceDef, ev: &StoredEvent) {
        let ns = ev.namespace.as_str();
        let Some(uid) = meta::meta_str(&ev.object, "uid") else { return };
        if ev.kind == EventType::Deleted {
            // Garbage collection of dependents (a ReplicaSet's pods go when its DELETED arrives).
            for rs in self.store.owned_by(REPLICASETS, ns, uid) {
                let _ = self.store.delete(&RESOURCES[REPLICASETS], ns, meta::name(&rs), None, false);
            }
            for pod in self.store.pods_owned_by(ns, uid) {
                let _ = self.store.delete(&RESOURCES[PODS], ns, meta::name(&pod), None, false);
            }
            if def.storage == REPLICASETS {
                self.refresh_owner_deployment(&ev.object);
            }
            return;
        }
        // Only act on the current state; a stale event is followed by a newer one.
        let Some(current) = self.store.get(def.storage, ns, meta::name(&ev.object)) else { return };
        if meta::meta_str(&current, "uid") != Some(uid) {
            return;
        }
        if def.storage == DEPLOYMENTS {
            self.reconcile_deployment(&current);
            return;
        }
        self.reconcile(def, &current);
        if def.storage == REPLICASETS {
            self.refresh_owner_deployment(&current);
        }
    }

    fn reconcile(&self, def: &'static ResourceDef, workload: &Obj) {
        let ns = meta::meta_str(workload, "namespace").unwrap_or("default");
        let uid = meta::meta_str(workload, "uid").unwrap_or("");
        let desired = workload.pointer("/spec/replicas").and_then(Value::as_u64).unwrap_or(1) as usize;
        let mut pods = self.store.pods_owned_by(ns, uid);
        if def.storage == STATEFULSETS {
            self.reconcile_ordinals(def, workload, &pods, desired);
        } else if pods.len() < desired {
            for _ in pods.len()..desired {
                self.create_pod(def, workload, None);
            }
        } else if pods.len() > desired {
            // Like the ReplicaSet controller: unready pods first, then the newest.
            pods.sort_by_key(|p| {
                (
                    meta::pod_ready(p),
                    std::cmp::Reverse(meta::meta_str(p, "creationTimestamp").unwrap_or("").to_string()),
                )
            });
            for pod in pods.iter().take(pods.len() - desired) {
                let _ = self.store.delete(&RESOURCES[PODS], ns, meta::name(pod), None, false);
            }
        }
        self.update_status(def, workload);
    }

    fn reconcile_ordinals(&self, def: &'static ResourceDef, sts: &Obj, pods: &[Obj], desired: usize) {
        let ns = meta::meta_str(sts, "namespace").unwrap_or("default");
        let prefix = format!("{}-", meta::name(sts));
        let ordinal = |p: &Obj| meta::name(p).strip_prefix(&prefix).and_then(|o| o.parse::<usize>().ok());
        let mut extra: Vec<(usize, &Obj)> =
            pods.iter().filter_map(|p| ordinal(p).filter(|o| *o >= desired).map(|o| (o, p))).collect();
        extra.sort_by_key(|(o, _)| std::cmp::Reverse(*o));
        for (_, pod) in extra {
            let _ = self.store.delete(&RESOURCES[PODS], ns, meta::name(pod), None, false);
        }
        for i in 0..desired {
            if !pods.iter().any(|p| ordinal(p) == Some(i)) {
                self.create_pod(def, sts, Some(i));
            }
        }
    }

    fn create_pod(&self, def: &'static ResourceDef, workload: &Obj, ordinal: Option<usize>) {
        let ns = meta::meta_str(workload, "namespace").unwrap_or("default");
        let wname = meta::name(workload);
        let template = workload.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let mut labels = template.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
        if let Some(i) = ordinal {
            labels["statefulset.kubernetes.io/pod-name"] = json!(format!("{wname}-{i}"));
        }
        let mut spec = template.get("spec").cloned().unwrap_or(json!({"containers": []}));
        spec["nodeName"] = json!("sim-node-1");
        let mut pod = json!({
            "metadata": {
                "labels": labels,
                "ownerReferences": [{
                    "apiVersion": def.api_version(), "kind": def.kind, "name": wname,
                    "uid": meta::meta_str(workload, "uid"), "controller": true, "blockOwnerDeletion": true,
                }],
            },
            "spec": spec,
        });
        if let Some(a) = template.pointer("/metadata/annotations") {
            pod["metadata"]["annotations"] = a.clone();
        }
        let pods_def = &RESOURCES[PODS];
        for _attempt in 0..5 {
            let name = match ordinal {
                Some(i) => format!("{wname}-{i}"),
                None => format!("{wname}-{}", meta::random_suffix(5)),
            };
            pod["metadata"]["name"] = json!(name);
            match self.store.create(pods_def, ns, pod.clone(), false) {
                Ok(_) => return,
                Err(e) if e.code == 409 && ordinal.is_none() => continue,
                Err(e) => {
                    tracing::debug!(error = %e, workload = wname, "pod create failed");
                    return;
                }
            }
        }
    }

    fn on_pod(&self, ev: &StoredEvent) {
        let pod = &ev.object;
        if ev.kind == EventType::Added && pod.pointer("/status/phase").and_then(Value::as_str) == Some("Pending") {
            self.schedule_ready(
                ev.namespace.clone(),
                meta::name(pod).to_string(),
                meta::meta_str(pod, "uid").unwrap_or("").to_string(),
            );
        }
        let Some(owner) = meta::controller_ref(pod) else { return };
        let Some(def) = owner.get("kind").and_then(Value::as_str).and_then(resources::workload_by_kind) else { return };
        let Some(name) = owner.get("name").and_then(Value::as_str) else { return };
        let Some(workload) = self.store.get(def.storage, &ev.namespace, name) else { return };
        if meta::meta_str(&workload, "uid") != owner.get("uid").and_then(Value::as_str) {
            return;
        }
        if ev.kind == EventType::Deleted {
            // A pod deleted by someone else is replaced, like the real controllers do.
            self.reconcile(def, &workload);
        } else {
            self.update_status(def, &workload);
        }
    }

    fn schedule_ready(&self, ns: String, name: String, uid: String) {
        let ctl = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(ctl.ready_delay).await;
            ctl.mark_ready(&ns, &name, &uid);
        });
    }

    /// The kubelet's part: Running, Ready, IPs and container statuses.
    fn mark_ready(&self, ns: &str, name: &str, uid: &str) {
        let n = self.next_ip.fetch_add(1, Ordering::Relaxed);
        let ip = format!("10.244.{}.{}", (n / 250) % 256, n % 250 + 2);
        let now = meta::now_rfc3339();
        let _ = self.store.write(&RESOURCES[PODS], ns, name, WriteMode::Status, false, false, |old| {
            let Some(old) = old else { return Err(crate::ApiError::not_found("", "pods", name)) };
            let mut pod = old.as_ref().clone();
            if meta::meta_str(old, "uid") != Some(uid) || pod.pointer("/status/phase").and_then(Value::as_str) != Some("Pending") {
                return Ok(pod);
            }
            let containers: Vec<Value> = pod
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|c| {
                    json!({"name": c["name"], "image": c["image"], "imageID": "", "containerID": format!("sim://{uid}/{}", c["name"].as_str().unwrap_or("")),
                        "ready": true, "started": true, "restartCount": 0, "state": {"running": {"startedAt": now}}})
                })
                .collect();
            let cond = |t: &str| json!({"type": t, "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
            pod["status"] = json!({
                "phase": "Running",
                "conditions": [cond("PodReadyToStartContainers"), cond("Initialized"), cond("Ready"), cond("ContainersReady"), cond("PodScheduled")],
                "hostIP": "10.0.0.1", "hostIPs": [{"ip": "10.0.0.1"}], "podIP": ip, "podIPs": [{"ip": ip}],
                "startTime": now, "qosClass": "BestEffort", "containerStatuses": containers,
            });
            Ok(pod)
        });
    }

    fn update_status(&self, def: &'static ResourceDef, workload: &Obj) {
        let ns = meta::meta_str(workload, "namespace").unwrap_or("default");
        let uid = meta::meta_str(workload, "uid").unwrap_or("");
        let pods = self.store.pods_owned_by(ns, uid);
        self.write_status(def, workload, &pods);
    }

    /// Writes workload status computed from its pods (no event when nothing changed).
    fn write_status(&self, def: &'static ResourceDef, workload: &Obj, pods: &[Obj]) {
        let ns = meta::meta_str(workload, "namespace").unwrap_or("default");
        let replicas = pods.len();
        let ready = pods.iter().filter(|p| meta::pod_ready(p)).count();
        let generation = workload.pointer("/metadata/generation").cloned().unwrap_or(json!(1));
        let desired = workload.pointer("/spec/replicas").and_then(Value::as_u64).unwrap_or(1) as usize;
        let mut status = json!({
            "observedGeneration": generation, "replicas": replicas, "readyReplicas": ready,
            "availableReplicas": ready, "updatedReplicas": replicas,
        });
        match def.storage {
            DEPLOYMENTS => {
                let available = if ready >= desired { "True" } else { "False" };
                let reason = if ready >= desired { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" };
                status["conditions"] = json!([{"type": "Available", "status": available, "reason": reason}]);
            }
            STATEFULSETS => {
                status["currentReplicas"] = json!(replicas);
            }
            ROLLOUTS => {
                // Argo's status: `HPAReplicas` and `selector` are what its CRD's scale
                // subresource reads (statusReplicasPath, labelSelectorPath).
                status["HPAReplicas"] = json!(replicas);
                status["selector"] = json!(crate::scale::selector_string(workload));
            }
            _ => {
                status["fullyLabeledReplicas"] = json!(replicas);
            }
        }
        let _ = self.store.write(def, ns, meta::name(workload), WriteMode::Status, false, false, |old| {
            let Some(old) = old else { return Err(crate::ApiError::not_found(def.group, def.plural, "")) };
            let mut new = old.as_ref().clone();
            // Keep the Available condition's transition time stable so no-op updates stay no-ops.
            new["status"] = status;
            Ok(new)
        });
    }
}

#[path = "controllers_deploy.rs"]
mod deploy;

#[cfg(test)]
#[path = "controllers_tests.rs"]
mod tests;
