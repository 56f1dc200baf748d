//! Minimal valid objects (they pass a real apiserver's validation) and checks
//! shared by the conformance tests.

use std::collections::BTreeMap;
use std::fmt::Debug;

use anyhow::{bail, ensure};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, ReplicaSet, ReplicaSetSpec, StatefulSet, StatefulSetSpec,
};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, MicroTime, ObjectMeta};
use kube::core::Status;

/// Labels from `(key, value)` pairs.
pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Object metadata with a name and labels.
pub fn meta(name: &str, pairs: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        labels: if pairs.is_empty() { None } else { Some(labels(pairs)) },
        ..ObjectMeta::default()
    }
}

/// A one-container pod template labelled `app=<app>`.
pub fn template(app: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta { labels: Some(labels(&[("app", app)])), ..ObjectMeta::default() }),
        spec: Some(pod_spec(&["main"])),
    }
}

/// A pod spec with one container per name.
pub fn pod_spec(containers: &[&str]) -> PodSpec {
    PodSpec {
        containers: containers
            .iter()
            .map(|c| Container {
                name: c.to_string(),
                image: Some("registry.example/app:1".to_string()),
                ..Container::default()
            })
            .collect(),
        ..PodSpec::default()
    }
}

/// The selector every workload fixture uses: `app=<app>`.
pub fn selector(app: &str) -> LabelSelector {
    LabelSelector { match_labels: Some(labels(&[("app", app)])), ..LabelSelector::default() }
}

/// A Deployment named `name` selecting `app=<name>`, with extra metadata labels.
pub fn deployment(name: &str, replicas: i32, extra_labels: &[(&str, &str)]) -> Deployment {
    Deployment {
        metadata: meta(name, extra_labels),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: selector(name),
            template: template(name),
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

/// A StatefulSet named `name` selecting `app=<name>`.
pub fn statefulset(name: &str, replicas: i32) -> StatefulSet {
    StatefulSet {
        metadata: meta(name, &[]),
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            // v1.20 requires a governing service name.
            service_name: Some(name.to_string()),
            selector: selector(name),
            template: template(name),
            ..StatefulSetSpec::default()
        }),
        status: None,
    }
}

/// A ReplicaSet named `name` selecting `app=<name>`.
pub fn replicaset(name: &str, replicas: i32) -> ReplicaSet {
    ReplicaSet {
        metadata: meta(name, &[]),
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            selector: selector(name),
            template: Some(template(name)),
            ..ReplicaSetSpec::default()
        }),
        status: None,
    }
}

/// A bare pod with the given labels.
pub fn pod(name: &str, pairs: &[(&str, &str)]) -> Pod {
    Pod { metadata: meta(name, pairs), spec: Some(pod_spec(&["main"])), status: None }
}

/// Now, truncated to the microsecond precision a MicroTime keeps on the wire.
pub fn micro_now() -> MicroTime {
    let now = jiff::Timestamp::now();
    MicroTime(jiff::Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now))
}

/// A Lease held by `holder`, with extra labels.
pub fn lease(name: &str, holder: &str, pairs: &[(&str, &str)]) -> Lease {
    Lease {
        metadata: meta(name, pairs),
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.to_string()),
            lease_duration_seconds: Some(15),
            acquire_time: Some(micro_now()),
            renew_time: Some(micro_now()),
            lease_transitions: Some(0),
            ..LeaseSpec::default()
        }),
    }
}

/// The API `Status` of a call that must fail with one.
pub fn api_error<T: Debug>(what: &str, result: Result<T, kube::Error>) -> anyhow::Result<Box<Status>> {
    match result {
        Ok(v) => bail!("{what}: expected an API error, got success: {v:?}"),
        Err(kube::Error::Api(status)) => Ok(status),
        Err(e) => bail!("{what}: expected an API error with a Status body, got {e:#}"),
    }
}

/// Checks a failure `Status` has the given HTTP code and reason.
pub fn check_status(what: &str, status: &Status, code: u16, reason: &str) -> anyhow::Result<()> {
    ensure!(
        status.code == code && status.reason == reason && status.is_failure(),
        "{what}: expected a Failure Status with code {code} reason {reason}, got {status:?}"
    );
    ensure!(!status.message.is_empty(), "{what}: Status has no message: {status:?}");
    Ok(())
}

/// Sorted names of a list of objects.
pub fn names<K: kube::ResourceExt>(items: &[K]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|o| o.name_any()).collect();
    v.sort();
    v
}

/// Sorted owned names from string slices, to compare with [`names`].
pub fn sorted(expected: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}
