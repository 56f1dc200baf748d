//! The `/scale` subresource of Deployments, StatefulSets and ReplicaSets.

use std::fmt::Debug;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::api::{Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::fixtures::{api_error, check_status, deployment, labels, replicaset, statefulset};
use crate::server::{Ctx, on_every_server, within};
use crate::watching::{describe, wait_for, watch_from};

/// A workload kind with a `/scale` subresource, as the tests need to touch it.
trait Workload:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// A workload with `replicas`, whose selector is `app=<name>,tier in (front)`.
    fn fixture(name: &str, replicas: i32) -> Self;
    /// Its `spec.replicas`.
    fn replicas(&self) -> Option<i32>;
}

/// The selector the fixtures use: one matchLabels entry and one expression, so
/// `status.selector` must render both forms.
fn scale_selector(name: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels(&[("app", name)])),
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "tier".into(),
            operator: "In".into(),
            values: Some(vec!["front".into()]),
        }]),
    }
}

fn tier_labels(name: &str) -> Option<std::collections::BTreeMap<String, String>> {
    Some(labels(&[("app", name), ("tier", "front")]))
}

impl Workload for Deployment {
    fn fixture(name: &str, replicas: i32) -> Self {
        let mut d = deployment(name, replicas, &[]);
        if let Some(spec) = d.spec.as_mut() {
            spec.selector = scale_selector(name);
            spec.template.metadata.get_or_insert_default().labels = tier_labels(name);
        }
        d
    }
    fn replicas(&self) -> Option<i32> {
        self.spec.as_ref().and_then(|s| s.replicas)
    }
}

impl Workload for StatefulSet {
    fn fixture(name: &str, replicas: i32) -> Self {
        let mut s = statefulset(name, replicas);
        if let Some(spec) = s.spec.as_mut() {
            spec.selector = scale_selector(name);
            spec.template.metadata.get_or_insert_default().labels = tier_labels(name);
        }
        s
    }
    fn replicas(&self) -> Option<i32> {
        self.spec.as_ref().and_then(|s| s.replicas)
    }
}

impl Workload for ReplicaSet {
    fn fixture(name: &str, replicas: i32) -> Self {
        let mut r = replicaset(name, replicas);
        if let Some(spec) = r.spec.as_mut() {
            spec.selector = scale_selector(name);
            if let Some(t) = spec.template.as_mut() {
                t.metadata.get_or_insert_default().labels = tier_labels(name);
            }
        }
        r
    }
    fn replicas(&self) -> Option<i32> {
        self.spec.as_ref().and_then(|s| s.replicas)
    }
}

fn scale_replicas(s: &Scale) -> Option<i32> {
    s.spec.as_ref().and_then(|s| s.replicas)
}

/// Reads the scale and the parent until a quiet moment, since controllers may
/// write the parent's status in between; then their rvs must match.
async fn check_scale_rv_matches_parent<K: Workload>(api: &Api<K>, name: &str) -> anyhow::Result<Scale> {
    let mut last = String::new();
    for _ in 0..20 {
        let before = within("get scale", api.get_scale(name)).await??;
        let parent = within("get parent", api.get(name)).await??;
        let after = within("get scale", api.get_scale(name)).await??;
        if before.metadata.resource_version == after.metadata.resource_version {
            ensure!(
                after.metadata.resource_version == parent.meta().resource_version,
                "Scale rv {:?} differs from the workload's rv {:?}",
                after.metadata.resource_version,
                parent.meta().resource_version
            );
            return Ok(after);
        }
        last = format!("{:?} then {:?}", before.metadata.resource_version, after.metadata.resource_version);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the workload never held still long enough to compare rvs (last: {last})")
}

/// `not_found_kind` is the Status `details.kind` for a missing workload's scale:
/// v1.20 says `deployments/scale` and `replicasets/scale` but plain `statefulsets`.
async fn scale_round_trip<K: Workload>(ctx: &Ctx, not_found_kind: &str) -> anyhow::Result<()> {
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let name = "web";
    let created = within("create", api.create(&PostParams::default(), &K::fixture(name, 1))).await??;
    let generation = created.meta().generation;

    let scale = check_scale_rv_matches_parent(&api, name).await?;
    ensure!(scale_replicas(&scale) == Some(1), "Scale spec.replicas is {:?}", scale_replicas(&scale));
    ensure!(scale.metadata.name.as_deref() == Some(name), "Scale name is {:?}", scale.metadata.name);
    ensure!(
        scale.metadata.namespace.as_deref() == Some(ctx.ns.as_str()),
        "Scale namespace is {:?}",
        scale.metadata.namespace
    );
    ensure!(scale.metadata.uid == created.meta().uid, "Scale uid differs from the workload's");
    let selector = scale.status.as_ref().and_then(|s| s.selector.clone());
    ensure!(
        selector.as_deref() == Some("app=web,tier in (front)"),
        "Scale status.selector is {selector:?}, expected \"app=web,tier in (front)\""
    );

    // Patch: the parent's spec and generation follow, and its watchers see it.
    let rv = scale.metadata.resource_version.clone().context("Scale has no rv")?;
    let mut events = watch_from(&api, &WatchParams::default().disable_bookmarks(), &rv).await?;
    let patch = json!({"spec": {"replicas": 3}});
    let patched =
        within("patch scale", api.patch_scale(name, &PatchParams::default(), &Patch::Merge(&patch))).await??;
    ensure!(scale_replicas(&patched) == Some(3), "patched Scale shows {:?}", scale_replicas(&patched));
    ensure!(patched.metadata.resource_version != scale.metadata.resource_version, "a scale patch kept the rv");
    let (seen, _) = wait_for(
        &mut events,
        "MODIFIED with 3 replicas",
        |e| matches!(e, WatchEvent::Modified(o) if o.name_any() == name && o.replicas() == Some(3)),
    )
    .await?;
    let parent = within("get parent", api.get(name)).await??;
    ensure!(parent.replicas() == Some(3), "the workload shows {:?} replicas after a scale patch", parent.replicas());
    ensure!(
        parent.meta().generation > generation,
        "a scale patch left generation at {:?} ({})",
        parent.meta().generation,
        describe(&seen)
    );

    // Replace with the Scale read before the patch: stale.
    let status = api_error(
        "stale scale replace",
        within("replace scale", api.replace_scale(name, &PostParams::default(), &scale)).await?,
    )?;
    check_status("stale scale replace", &status, 409, "Conflict")?;

    // Replace with a fresh Scale. On a real cluster the workload's controller may write its
    // status between our read and our write (a legitimate 409), so read-modify-write again,
    // as every client does; a persistent conflict still fails the test.
    let mut attempt = 0;
    let replaced = loop {
        attempt += 1;
        let mut fresh = within("get scale", api.get_scale(name)).await??;
        fresh.spec.get_or_insert_default().replicas = Some(2);
        match within("replace scale", api.replace_scale(name, &PostParams::default(), &fresh)).await? {
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < 5 => continue,
            other => break other?,
        }
    };
    ensure!(scale_replicas(&replaced) == Some(2), "replaced Scale shows {:?}", scale_replicas(&replaced));
    let parent = within("get parent", api.get(name)).await??;
    ensure!(parent.replicas() == Some(2), "the workload shows {:?} after a scale replace", parent.replicas());

    // A scale patch that changes nothing keeps the rv (retried: controllers may write status meanwhile).
    let same = json!({"spec": {"replicas": 2}});
    let mut kept = false;
    for _ in 0..20 {
        let before = within("get scale", api.get_scale(name)).await??;
        let after =
            within("no-op patch", api.patch_scale(name, &PatchParams::default(), &Patch::Merge(&same))).await??;
        if before.metadata.resource_version == after.metadata.resource_version {
            kept = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(kept, "a no-op scale patch changed the rv every time");

    let missing = api_error("scale of a missing workload", within("get scale", api.get_scale("nope")).await?)?;
    check_status("scale of a missing workload", &missing, 404, "NotFound")?;
    let details = missing.details.as_ref().context("NotFound has no details")?;
    ensure!(details.name == "nope" && details.group == "apps", "details are {details:?}");
    ensure!(details.kind == not_found_kind, "details.kind is {:?}, expected {not_found_kind}", details.kind);
    let message = format!("{not_found_kind}.apps \"nope\" not found");
    ensure!(missing.message == message, "message is {:?}, expected {message:?}", missing.message);
    Ok(())
}

#[tokio::test]
async fn deployment_scale_reads_and_writes_the_deployment() {
    on_every_server("scale-deployment", async |ctx: &Ctx| {
        scale_round_trip::<Deployment>(ctx, "deployments/scale").await
    })
    .await;
}

#[tokio::test]
async fn statefulset_scale_reads_and_writes_the_statefulset() {
    on_every_server("scale-statefulset", async |ctx: &Ctx| scale_round_trip::<StatefulSet>(ctx, "statefulsets").await)
        .await;
}

#[tokio::test]
async fn replicaset_scale_reads_and_writes_the_replicaset() {
    on_every_server("scale-replicaset", async |ctx: &Ctx| {
        scale_round_trip::<ReplicaSet>(ctx, "replicasets/scale").await
    })
    .await;
}
