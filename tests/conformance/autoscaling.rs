//! HorizontalPodAutoscalers (so the hub can see a workload an HPA owns) and
//! metrics.k8s.io PodMetrics. A v1.20 apiserver serves neither autoscaling/v2
//! (GA in 1.23) nor metrics.k8s.io (needs a metrics-server): those tests say so
//! and skip there; the simulator must serve both.

use anyhow::{Context as _, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use crate::fixtures::{deployment, names, sorted};
use crate::server::{Ctx, eventually, on_every_server, within};

fn hpa_json(api_version: &str, name: &str, target: &str) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": 1,
            "maxReplicas": 5,
            "metrics": [{
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}
            }]
        }
    })
}

#[tokio::test]
async fn autoscaling_v2_hpas_are_created_and_listed() {
    on_every_server("hpa-v2", async |ctx: &Ctx| {
        if !ctx.caps.autoscaling_v2 && ctx.is_real && ctx.caps.autoscaling_v2beta2 {
            println!(
                "NOTE hpa-v2 on {}: autoscaling/v2 is not served (GA in 1.23); testing autoscaling/v2beta2",
                ctx.name
            );
            return hpa_v2beta2(ctx).await;
        }
        if !ctx.requires(ctx.caps.autoscaling_v2, "autoscaling/v2 (GA in Kubernetes 1.23)")? {
            return Ok(());
        }
        let api: Api<HorizontalPodAutoscaler> = ctx.api();
        let hpa: HorizontalPodAutoscaler = serde_json::from_value(hpa_json("autoscaling/v2", "web", "web"))?;
        let created = within("create", api.create(&PostParams::default(), &hpa)).await??;
        ensure!(created.uid().is_some(), "hpa has no uid");
        let spec = created.spec.as_ref().context("hpa has no spec")?;
        ensure!(
            spec.scale_target_ref.name == "web" && spec.scale_target_ref.kind == "Deployment",
            "scaleTargetRef is {:?}",
            spec.scale_target_ref
        );
        ensure!(
            spec.max_replicas == 5 && spec.min_replicas == Some(1),
            "replica bounds are {:?}..{}",
            spec.min_replicas,
            spec.max_replicas
        );
        let list = within("list", api.list(&ListParams::default())).await??;
        ensure!(names(&list.items) == sorted(&["web"]), "listed {:?}", names(&list.items));
        let all: Api<HorizontalPodAutoscaler> = Api::all(ctx.client.clone());
        let list = within("list all", all.list(&ListParams::default())).await??;
        ensure!(
            list.items.iter().any(|h| h.namespace().as_deref() == Some(ctx.ns.as_str())),
            "cluster-wide list misses it"
        );
        Ok(())
    })
    .await;
}

async fn hpa_v2beta2(ctx: &Ctx) -> anyhow::Result<()> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("autoscaling", "v2beta2", "HorizontalPodAutoscaler"));
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ctx.ns, &ar);
    let hpa: DynamicObject = serde_json::from_value(hpa_json("autoscaling/v2beta2", "web", "web"))?;
    let created = within("create", api.create(&PostParams::default(), &hpa)).await??;
    ensure!(created.data["spec"]["scaleTargetRef"]["name"] == "web", "spec is {}", created.data["spec"]);
    let list = within("list", api.list(&ListParams::default())).await??;
    ensure!(names(&list.items) == sorted(&["web"]), "listed {:?}", names(&list.items));
    Ok(())
}

#[tokio::test]
async fn an_hpa_is_also_served_as_autoscaling_v1_with_converted_fields() {
    on_every_server("hpa-v1-view", async |ctx: &Ctx| {
        // Create through the newest served version: v2 on the sim, v2beta2 on v1.20.
        let version = match (ctx.caps.autoscaling_v2, ctx.caps.autoscaling_v2beta2) {
            (true, _) => "v2",
            (false, true) if ctx.is_real => "v2beta2",
            _ => {
                ctx.requires(false, "autoscaling/v2")?;
                return Ok(());
            }
        };
        let gvk = GroupVersionKind::gvk("autoscaling", version, "HorizontalPodAutoscaler");
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ctx.ns, &ApiResource::from_gvk(&gvk));
        let hpa: DynamicObject = serde_json::from_value(hpa_json(&format!("autoscaling/{version}"), "web", "web"))?;
        within("create", api.create(&PostParams::default(), &hpa)).await??;

        let v1 = GroupVersionKind::gvk("autoscaling", "v1", "HorizontalPodAutoscaler");
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ctx.ns, &ApiResource::from_gvk(&v1));
        let got = within("get as v1", api.get("web")).await??;
        let spec = &got.data["spec"];
        ensure!(spec["scaleTargetRef"]["name"] == "web", "v1 scaleTargetRef is {}", spec["scaleTargetRef"]);
        ensure!(spec["maxReplicas"] == 5 && spec["minReplicas"] == 1, "v1 bounds are {spec}");
        ensure!(
            spec["targetCPUUtilizationPercentage"] == 60,
            "v1 targetCPUUtilizationPercentage is {} (converted from the CPU metric); spec {spec}",
            spec["targetCPUUtilizationPercentage"]
        );
        ensure!(spec.get("metrics").is_none(), "the v1 view carries a v2 field: {spec}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn pod_metrics_are_listed_for_a_workloads_ready_pods() {
    on_every_server("pod-metrics", async |ctx: &Ctx| {
        if !ctx.requires(ctx.caps.pod_metrics, "metrics.k8s.io/v1beta1 (needs a metrics-server)")? {
            return Ok(());
        }
        let deployments: Api<Deployment> = ctx.api();
        within("create", deployments.create(&PostParams::default(), &deployment("web", 2, &[]))).await??;
        within("create", deployments.create(&PostParams::default(), &deployment("api", 1, &[]))).await??;

        let gvk = GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "PodMetrics");
        let ar = ApiResource::from_gvk_with_plural(&gvk, "pods");
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ctx.ns, &ar);
        let lp = ListParams::default().labels("app in (web)");
        let items = eventually("PodMetrics for both web pods", async || {
            let list = api.list(&lp).await?;
            Ok((list.items.len() == 2).then_some(list.items))
        })
        .await?;
        for m in &items {
            ensure!(m.labels().get("app").map(String::as_str) == Some("web"), "metrics for {:?}", m.labels());
            ensure!(m.data["timestamp"].is_string(), "no timestamp: {}", m.data);
            ensure!(m.data["window"].is_string(), "no window: {}", m.data);
            let containers = m.data["containers"].as_array().context("no containers")?;
            ensure!(!containers.is_empty(), "no container metrics");
            for c in containers {
                ensure!(c["usage"]["cpu"].is_string() && c["usage"]["memory"].is_string(), "usage is {}", c["usage"]);
            }
        }
        eventually("PodMetrics for all three pods, unfiltered", async || {
            Ok((api.list(&ListParams::default()).await?.items.len() == 3).then_some(()))
        })
        .await?;
        Ok(())
    })
    .await;
}
