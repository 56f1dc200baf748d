//! Workloads, hook profiles and readers of what the hub left behind (store rows, Events).

use std::collections::BTreeMap;

use anyhow::Context as _;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec, ResourceRequirements};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use scalehub_store::{DecisionRow, Store, TargetKey, TargetRow};
use serde_json::{Value, json};

use crate::harness::{Env, hooks_dir};

/// Labels from `(key, value)` pairs.
pub fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The annotations every opted-in test workload carries: enabled, a 1 s tick, the given extras.
pub fn opted_in(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut a = map(&[("scalehub.io/enabled", "true"), ("scalehub.io/interval", "1s")]);
    a.extend(map(extra));
    a
}

/// A Deployment selecting `app=<name>` whose pods request 500m CPU, with these annotations.
pub fn deployment(name: &str, replicas: i32, annotations: BTreeMap<String, String>) -> Deployment {
    let container = Container {
        name: "app".into(),
        image: Some("registry.k8s.io/pause:3.9".into()),
        resources: Some(ResourceRequirements {
            requests: Some([("cpu".to_string(), Quantity("500m".into()))].into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    Deployment {
        metadata: ObjectMeta { name: Some(name.into()), annotations: Some(annotations), ..Default::default() },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector { match_labels: Some(map(&[("app", name)])), ..Default::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(map(&[("app", name)])), ..Default::default() }),
                spec: Some(PodSpec { containers: vec![container], ..Default::default() }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Creates `deployment` in the test namespace.
pub async fn create(env: &Env, deployment: &Deployment) -> anyhow::Result<()> {
    let name = deployment.metadata.name.clone().unwrap_or_default();
    env.deployments()
        .create(&PostParams::default(), deployment)
        .await
        .with_context(|| format!("create deployment {name}"))?;
    Ok(())
}

/// Merge-patches annotations of Deployment `name`; a `None` value removes the annotation.
pub async fn annotate(env: &Env, name: &str, changes: &[(&str, Option<&str>)]) -> anyhow::Result<()> {
    let annotations: serde_json::Map<String, Value> = changes.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let patch = json!({"metadata": {"annotations": annotations}});
    env.deployments()
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("annotate deployment {name}"))?;
    Ok(())
}

/// A CPA shell method: `entrypoint args...` with the payload on stdin.
pub fn shell(entrypoint: &str, args: &[&str], timeout_ms: u64) -> Value {
    json!({"type": "shell", "timeout": timeout_ms, "shell": {"entrypoint": entrypoint, "command": args}})
}

/// A `sh -c SCRIPT` method.
pub fn sh(script: &str, timeout_ms: u64) -> Value {
    shell("sh", &["-c", script], timeout_ms)
}

/// One of the python hooks in `tests/e2e/hooks/`.
pub fn python(script: &str) -> Value {
    let path = hooks_dir().join(script);
    shell(python3(), &[&path.to_string_lossy()], 10_000)
}

/// The system python when there is one: a version manager's shim on `PATH` (pyenv) costs
/// ~200 ms per start, which many hubs ticking every second on two cores turn into seconds.
pub fn python3() -> &'static str {
    const SYSTEM: &str = "/usr/bin/python3";
    if std::path::Path::new(SYSTEM).exists() { SYSTEM } else { "python3" }
}

/// The profile most tests use: `metric.py` reports the target's `param.replicas` (or the file named
/// by `param.valueFile`), `evaluate.py` asks for the largest metric value.
/// Once per resource (the CPA's default is per pod): one python start per tick, not one per pod.
pub fn param_profile() -> Value {
    json!({"metric": python("metric.py"), "evaluate": python("evaluate.py"), "runMode": "per-resource"})
}

/// `param_profile` with another evaluate method.
pub fn with_evaluate(evaluate: Value) -> Value {
    json!({"metric": python("metric.py"), "evaluate": evaluate, "runMode": "per-resource"})
}

/// The store key of Deployment `name` in the test namespace.
pub fn key(env: &Env, name: &str) -> TargetKey {
    TargetKey::new(&env.ns, scalehub_store::Kind::Deployment, name)
}

/// The newest decisions of Deployment `name`, newest first.
pub async fn decisions(env: &Env, store: &Store, name: &str) -> anyhow::Result<Vec<DecisionRow>> {
    store.decisions(&key(env, name), None, 200).await.context("read decisions")
}

/// The decisions of Deployment `name` once `until` holds for them. A decision is written just
/// after its scale call, so a test that saw the workload change waits for it here.
pub async fn decisions_once(
    env: &Env,
    store: &Store,
    name: &str,
    what: &str,
    until: impl Fn(&[DecisionRow]) -> bool,
) -> anyhow::Result<Vec<DecisionRow>> {
    let mut last = Vec::new();
    let found = crate::harness::eventually(what, crate::harness::WAIT, async || {
        last = decisions(env, store, name).await?;
        Ok(until(&last).then(|| last.clone()))
    })
    .await;
    found.with_context(|| format!("{name}'s decisions: {}", summary(&last)))
}

/// The oldest `scaled` decision of Deployment `name`, if there is one.
pub async fn first_scaled(env: &Env, store: &Store, name: &str) -> anyhow::Result<Option<DecisionRow>> {
    Ok(decisions(env, store, name).await?.into_iter().filter(|d| d.outcome == "scaled").min_by_key(|d| (d.time, d.id)))
}

/// Every tick of Deployment `name` in its series, oldest first (ticks that changed nothing
/// leave a point there but no decision row).
pub async fn ticks(env: &Env, store: &Store, name: &str) -> anyhow::Result<Vec<scalehub_store::TickPoint>> {
    store.ticks(&key(env, name), 0, i64::MAX, 10_000).await.context("read the tick series")
}

/// The target row of Deployment `name`, if the hub wrote one.
pub async fn target(env: &Env, store: &Store, name: &str) -> anyhow::Result<Option<TargetRow>> {
    store.get_target(&key(env, name)).await.context("read target row")
}

/// Events (events.k8s.io/v1) whose `regarding` object is Deployment `name`.
pub async fn events_of(env: &Env, name: &str) -> anyhow::Result<Vec<Event>> {
    let api: Api<Event> = Api::namespaced(env.client.clone(), &env.ns);
    let list = api.list(&ListParams::default()).await.context("list events")?;
    Ok(list
        .items
        .into_iter()
        .filter(|e| {
            e.regarding
                .as_ref()
                .is_some_and(|r| r.name.as_deref() == Some(name) && r.kind.as_deref() == Some("Deployment"))
        })
        .collect())
}

/// Short summary of decisions for failure messages.
pub fn summary(decisions: &[DecisionRow]) -> String {
    decisions
        .iter()
        .take(5)
        .map(|d| {
            format!(
                "{{outcome: {}, raw: {:?}, final: {:?}, current: {:?}, error: {:?}, reasons: {}}}",
                d.outcome, d.raw_evaluation, d.final_replicas, d.current_replicas, d.error, d.reasons
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
