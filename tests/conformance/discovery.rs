//! Discovery: `/version`, `/api`, `/apis` and group-version resource lists, as
//! `kube::Discovery` and the dynamic API use them.

use anyhow::{Context as _, ensure};
use kube::api::{DynamicObject, ListParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Discovery, Scope, verbs};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::server::{Ctx, on_every_server, within};

/// Resolves a kind through discovery and checks scope, verbs and subresources.
fn check_kind(
    discovery: &Discovery,
    (group, version, kind): (&str, &str, &str),
    scope: Scope,
    subresources: &[&str],
) -> anyhow::Result<()> {
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (ar, caps) =
        discovery.resolve_gvk(&gvk).with_context(|| format!("discovery does not list {group}/{version} {kind}"))?;
    ensure!(caps.scope == scope, "{kind}: scope {:?}, expected {scope:?}", caps.scope);
    for verb in [verbs::LIST, verbs::WATCH, verbs::GET, verbs::CREATE, verbs::PATCH, verbs::DELETE] {
        ensure!(caps.supports_operation(verb), "{kind}: verb {verb} missing from {:?}", caps.operations);
    }
    let subs: Vec<&str> = caps.subresources.iter().map(|(sub, _)| sub.plural.as_str()).collect();
    for want in subresources {
        // kube lists subresources by their ApiResource plural, e.g. "deployments/scale".
        let full = format!("{}/{want}", ar.plural);
        ensure!(
            subs.iter().any(|s| *s == full || s == want),
            "{kind}: subresource {want} missing; discovery lists {subs:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn discovery_lists_every_resource_the_hub_uses_with_scale_and_status() {
    on_every_server("discovery", async |ctx: &Ctx| {
        let version = within("/version", ctx.client.apiserver_version()).await??;
        ensure!(version.major == "1", "/version major is {:?}", version.major);
        ensure!(!version.git_version.is_empty(), "/version has no gitVersion");

        let discovery = within("discovery", Discovery::new(ctx.client.clone()).run()).await??;
        for kind in ["Deployment", "StatefulSet", "ReplicaSet"] {
            check_kind(&discovery, ("apps", "v1", kind), Scope::Namespaced, &["scale", "status"])?;
        }
        check_kind(&discovery, ("", "v1", "Pod"), Scope::Namespaced, &["status"])?;
        check_kind(&discovery, ("", "v1", "Namespace"), Scope::Cluster, &[])?;
        check_kind(&discovery, ("", "v1", "Event"), Scope::Namespaced, &[])?;
        check_kind(&discovery, ("events.k8s.io", "v1", "Event"), Scope::Namespaced, &[])?;
        check_kind(&discovery, ("coordination.k8s.io", "v1", "Lease"), Scope::Namespaced, &[])?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_dynamic_api_built_from_discovery_creates_and_lists_workloads() {
    on_every_server("dynamic-api", async |ctx: &Ctx| {
        let discovery = within("discovery", Discovery::new(ctx.client.clone()).run()).await??;
        let (ar, _) = discovery
            .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"))
            .context("resolve apps/v1 Deployment")?;
        ensure!(ar.plural == "deployments", "plural is {}", ar.plural);
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ctx.ns, &ar);
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "dyn", "labels": {"via": "dynamic"}},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "dyn"}},
                "template": {
                    "metadata": {"labels": {"app": "dyn"}},
                    "spec": {"containers": [{"name": "main", "image": "registry.example/app:1"}]}
                }
            }
        }))?;
        let created = within("create", api.create(&PostParams::default(), &obj)).await??;
        ensure!(created.uid().is_some(), "dynamic create returned no uid");
        ensure!(created.data["spec"]["replicas"] == json!(0), "spec lost in the round trip: {}", created.data);
        let listed = within("list", api.list(&ListParams::default().labels("via=dynamic"))).await??;
        ensure!(
            listed.items.iter().map(|o| o.name_any()).collect::<Vec<_>>() == ["dyn"],
            "dynamic list returned {:?}",
            listed.items.iter().map(|o| o.name_any()).collect::<Vec<_>>()
        );
        Ok(())
    })
    .await;
}
