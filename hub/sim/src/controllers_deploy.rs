//! The Deployment controller: one ReplicaSet `<deployment>-<pod-template-hash>` per Deployment,
//! owned by it, carrying its annotations (the real controller copies them, which is why opted-in
//! Deployments have opted-in-looking ReplicaSets), its replicas and its template. Pods belong to
//! the ReplicaSet. A template change replaces the ReplicaSet (no rolling update).

use serde_json::{Value, json};

use super::Controllers;
use crate::meta;
use crate::resources::{DEPLOYMENTS, PODS, REPLICASETS, RESOURCES};
use crate::store::{Obj, WriteMode};

/// Annotations the real controller does not copy to ReplicaSets.
const NOT_COPIED: &[&str] = &["kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/revision"];

impl Controllers {
    pub(super) fn reconcile_deployment(&self, deploy: &Obj) {
        let ns = meta::meta_str(deploy, "namespace").unwrap_or("default");
        let uid = meta::meta_str(deploy, "uid").unwrap_or("");
        let template = deploy.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let hash = meta::short_hash(&template.to_string());
        let rs_name = format!("{}-{hash}", meta::name(deploy));
        let rs_def = &RESOURCES[REPLICASETS];
        for old in self.store.owned_by(REPLICASETS, ns, uid) {
            if meta::name(&old) != rs_name {
                let _ = self.store.delete(rs_def, ns, meta::name(&old), None, false);
            }
        }
        let desired = replica_set_for(deploy, &template, &hash, &rs_name);
        let result = self.store.write(rs_def, ns, &rs_name, WriteMode::Main, true, false, |old| {
            Ok(match old {
                None => desired,
                Some(old) => {
                    let mut rs = old.as_ref().clone();
                    rs["spec"]["replicas"] = desired["spec"]["replicas"].clone();
                    rs["metadata"]["annotations"] = desired["metadata"]["annotations"].clone();
                    rs
                }
            })
        });
        if let Err(e) = result {
            tracing::debug!(error = %e, deployment = meta::name(deploy), "replicaset sync failed");
        }
        self.update_deployment_status(deploy);
    }

    /// Deployment status from the pods of its ReplicaSets.
    pub(super) fn update_deployment_status(&self, deploy: &Obj) {
        let ns = meta::meta_str(deploy, "namespace").unwrap_or("default");
        let uid = meta::meta_str(deploy, "uid").unwrap_or("");
        let pods: Vec<Obj> = self
            .store
            .owned_by(REPLICASETS, ns, uid)
            .iter()
            .flat_map(|rs| self.store.owned_by(PODS, ns, meta::meta_str(rs, "uid").unwrap_or("")))
            .collect();
        self.write_status(&RESOURCES[DEPLOYMENTS], deploy, &pods);
    }

    /// After a ReplicaSet changed: refresh its owning Deployment's status.
    pub(super) fn refresh_owner_deployment(&self, rs: &Obj) {
        let Some(owner) = meta::controller_ref(rs) else { return };
        if owner.get("kind").and_then(Value::as_str) != Some("Deployment") {
            return;
        }
        let ns = meta::meta_str(rs, "namespace").unwrap_or("default");
        let Some(name) = owner.get("name").and_then(Value::as_str) else { return };
        if let Some(deploy) = self.store.get(DEPLOYMENTS, ns, name)
            && meta::meta_str(&deploy, "uid") == owner.get("uid").and_then(Value::as_str)
        {
            self.update_deployment_status(&deploy);
        }
    }
}

fn replica_set_for(deploy: &Value, template: &Value, hash: &str, name: &str) -> Value {
    let mut template = template.clone();
    template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    let mut selector = deploy.pointer("/spec/selector").cloned().unwrap_or(json!({}));
    selector["matchLabels"]["pod-template-hash"] = json!(hash);
    let mut annotations = deploy.pointer("/metadata/annotations").cloned().unwrap_or(json!({}));
    if let Some(a) = annotations.as_object_mut() {
        a.retain(|k, _| !NOT_COPIED.contains(&k.as_str()));
        a.insert("deployment.kubernetes.io/revision".into(), json!("1"));
    }
    json!({
        "metadata": {
            "name": name,
            "labels": template["metadata"]["labels"],
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "Deployment", "name": meta::name(deploy),
                "uid": meta::meta_str(deploy, "uid"), "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": {"replicas": deploy.pointer("/spec/replicas").cloned().unwrap_or(json!(1)), "selector": selector, "template": template},
    })
}
