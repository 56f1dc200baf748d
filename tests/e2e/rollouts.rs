//! A custom resource scaled through its `/scale` subresource: the Argo Rollouts example's
//! config and CPA scripts, unchanged, on an `extraKinds:` Rollout.

use anyhow::{Context as _, ensure};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use scalehub_store::{Kind, TargetKey};
use serde_json::{Value, json};

use crate::fixtures::{shell, summary};
use crate::harness::{Env, WAIT, eventually, on_every_server};
use crate::process::http;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_is_scaled_through_its_scale_subresource_by_the_cpa_example_scripts() {
    on_every_server("rollouts", async |env: &Env| rollouts(env).await).await;
}

fn rollout_resource() -> ApiResource {
    ApiResource {
        group: "argoproj.io".into(),
        version: "v1alpha1".into(),
        api_version: "argoproj.io/v1alpha1".into(),
        kind: "Rollout".into(),
        plural: "rollouts".into(),
    }
}

/// The example's hooks, run as the example's profile runs them.
fn example_profile() -> Value {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let script = |dir: &str, file: &str| examples.join(dir).join(file).to_string_lossy().into_owned();
    json!({
        "metric": shell(crate::fixtures::python3(), &[&script("python-custom-metric", "metric.py")], 10_000),
        "evaluate": shell(crate::fixtures::python3(), &[&script("argo-rollouts", "evaluate.py")], 10_000),
        "runMode": "per-resource",
    })
}

async fn rollouts(env: &Env) -> anyhow::Result<()> {
    if env.is_real {
        install_rollout_crd(&env.client).await?;
    }
    let mut config = env.config(json!({"argo-rollouts": example_profile()}));
    config["extraKinds"] =
        json!([{"group": "argoproj.io", "version": "v1alpha1", "kind": "Rollout", "plural": "rollouts"}]);
    let hub = env.start_hub(&config, "hub.db", "hub-a").await?;
    let store = &hub.ctx.store;

    let rollouts: Api<DynamicObject> = Api::namespaced_with(env.client.clone(), &env.ns, &rollout_resource());
    let rollout: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "name": "rollouts-demo",
            "labels": {"numPods": "5"},
            "annotations": {
                "scalehub.io/enabled": "true",
                "scalehub.io/profile": "argo-rollouts",
                "scalehub.io/max-replicas": "10",
                "scalehub.io/interval": "1s",
            },
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "rollouts-demo"}},
            "template": {
                "metadata": {"labels": {"app": "rollouts-demo"}},
                "spec": {"containers": [{"name": "rollouts-demo", "image": "argoproj/rollouts-demo:blue"}]},
            },
        },
    }))?;
    rollouts.create(&PostParams::default(), &rollout).await.context("create the Rollout")?;

    let replicas = async || -> anyhow::Result<i64> {
        let r = rollouts.get("rollouts-demo").await.context("get the Rollout")?;
        Ok(r.data.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1))
    };
    eventually("the Rollout at its numPods label, 5", WAIT, async || Ok((replicas().await? == 5).then_some(())))
        .await?;
    let key = TargetKey::new(&env.ns, Kind::parse("Rollout").context("Rollout is registered")?, "rollouts-demo");
    let scaled = eventually("a scaled decision of the Rollout", WAIT, async || {
        Ok(store.decisions(&key, None, 50).await?.into_iter().find(|d| d.outcome == "scaled"))
    })
    .await?;
    ensure!(
        scaled.final_replicas == Some(5) && scaled.current_replicas == Some(2),
        "the Rollout's scale decision: {}",
        summary(std::slice::from_ref(&scaled))
    );

    // The metric hook reads the label from the object the watch delivered.
    let relabel = json!({"metadata": {"labels": {"numPods": "3"}}});
    rollouts.patch("rollouts-demo", &PatchParams::default(), &Patch::Merge(&relabel)).await.context("relabel")?;
    eventually("the Rollout at 3", WAIT, async || Ok((replicas().await? == 3).then_some(()))).await?;

    if !env.is_real {
        // The simulator runs a Rollout controller: its pods follow, and /scale reports them.
        let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
        eventually("3 pods of the Rollout", WAIT, async || {
            let list = pods.list(&ListParams::default().labels("app=rollouts-demo")).await?;
            let live = list.items.iter().filter(|p| p.metadata.deletion_timestamp.is_none()).count();
            Ok((live == 3).then_some(()))
        })
        .await?;
    }

    let path = format!("/api/v1/targets/{}/Rollout/rollouts-demo", env.ns);
    let (status, body) = http(hub.addr, "GET", &path, None, None).await?;
    ensure!(status == 200, "GET {path}: {status} {body}");
    ensure!(body["kind"] == "Rollout" && body["name"] == "rollouts-demo", "GET {path}: {body}");
    let (status, body) = http(hub.addr, "GET", &format!("/api/v1/targets/{}/Rollouts/x", env.ns), None, None).await?;
    ensure!(status == 404 && body.to_string().contains("Rollout"), "an unknown kind lists the served ones: {body}");
    hub.shutdown().await;
    Ok(())
}

/// Installs the Rollout CRD with Argo's scale paths (cluster-wide, so once for every test), and
/// waits until it is served.
async fn install_rollout_crd(client: &Client) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "rollouts.argoproj.io"},
        "spec": {
            "group": "argoproj.io",
            "names": {"kind": "Rollout", "listKind": "RolloutList", "plural": "rollouts", "singular": "rollout", "shortNames": ["ro"]},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1alpha1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.HPAReplicas",
                        "labelSelectorPath": ".status.selector",
                    },
                },
            }],
        },
    }))?;
    match crds.create(&PostParams::default(), &crd).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e).context("create the Rollout CRD"),
    }
    eventually("the Rollout CRD to be established", WAIT, async || {
        let crd = crds.get("rollouts.argoproj.io").await?;
        let established = crd
            .status
            .and_then(|s| s.conditions)
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "Established" && c.status == "True");
        Ok(established.then_some(()))
    })
    .await
}
