//! The kustomize base in `deploy/`, rendered and checked object by object.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::*;

/// Verbs granted per "group/resource" by a list of RBAC rules.
fn grants(rules: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for rule in rules.as_array().unwrap() {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                map.entry(format!("{group}/{resource}")).or_default().extend(strings(&rule["verbs"]));
            }
        }
    }
    map
}

fn expect(pairs: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
    pairs.iter().map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect())).collect()
}

fn hub_container(objects: &[Value]) -> &Value {
    &object(objects, "Deployment", "scalehub")["spec"]["template"]["spec"]["containers"][0]
}

#[test]
fn deploy_base_renders_every_object_the_hub_needs_in_its_namespace() {
    let Some(kubectl) = kubectl() else { return };
    let objects = render(&kubectl, "deploy");
    let kinds: BTreeMap<&str, usize> = objects.iter().fold(BTreeMap::new(), |mut m, o| {
        *m.entry(kind_of(o)).or_default() += 1;
        m
    });
    let expected: BTreeMap<&str, usize> = [
        ("ClusterRole", 1),
        ("ClusterRoleBinding", 1),
        ("ConfigMap", 2),
        ("Deployment", 1),
        ("Namespace", 1),
        ("PersistentVolumeClaim", 1),
        ("Role", 1),
        ("RoleBinding", 1),
        ("Service", 1),
        ("ServiceAccount", 1),
    ]
    .into();
    assert_eq!(kinds, expected);
    assert_eq!(name_of(object(&objects, "Namespace", "")), "scalehub");
    for o in objects.iter().filter(|o| !matches!(kind_of(o), "Namespace" | "ClusterRole" | "ClusterRoleBinding")) {
        assert_eq!(
            o["metadata"]["namespace"],
            "scalehub",
            "{} {} is outside the hub namespace",
            kind_of(o),
            name_of(o)
        );
    }
    let pvc = object(&objects, "PersistentVolumeClaim", "scalehub-data");
    assert_eq!(strings(&pvc["spec"]["accessModes"]), ["ReadWriteOnce".to_string()].into());
    assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "1Gi");
}

#[test]
fn cluster_role_grants_exactly_what_the_hub_calls() {
    let Some(kubectl) = kubectl() else { return };
    let objects = render(&kubectl, "deploy");
    let role = object(&objects, "ClusterRole", "scalehub");
    let expected = expect(&[
        ("apps/deployments", &["get", "list", "watch"]),
        ("apps/statefulsets", &["get", "list", "watch"]),
        ("apps/replicasets", &["get", "list", "watch"]),
        ("apps/deployments/scale", &["get", "patch", "update"]),
        ("apps/statefulsets/scale", &["get", "patch", "update"]),
        ("apps/replicasets/scale", &["get", "patch", "update"]),
        ("/pods", &["list", "watch"]),
        ("autoscaling/horizontalpodautoscalers", &["list", "watch"]),
        ("metrics.k8s.io/pods", &["get", "list"]),
        ("custom.metrics.k8s.io/*", &["get"]),
        ("events.k8s.io/events", &["create", "patch"]),
        ("/events", &["create", "patch"]),
    ]);
    assert_eq!(grants(&role["rules"]), expected);
    let binding = object(&objects, "ClusterRoleBinding", "scalehub");
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "scalehub"})
    );
    assert_eq!(binding["subjects"], json!([{"kind": "ServiceAccount", "name": "scalehub", "namespace": "scalehub"}]));
}

#[test]
fn leader_election_may_only_touch_the_scalehub_lease_in_the_hub_namespace() {
    let Some(kubectl) = kubectl() else { return };
    let objects = render(&kubectl, "deploy");
    let role = object(&objects, "Role", "scalehub-leader-election");
    assert_eq!(role["metadata"]["namespace"], "scalehub");
    assert_eq!(grants(&role["rules"]), expect(&[("coordination.k8s.io/leases", &["create", "get", "update"])]));
    // get/update are pinned to the Lease's name; create cannot be (no name at authorisation).
    for rule in role["rules"].as_array().unwrap() {
        let verbs = strings(&rule["verbs"]);
        if verbs.contains("get") || verbs.contains("update") {
            assert_eq!(strings(&rule["resourceNames"]), ["scalehub".to_string()].into());
        }
    }
    let binding = object(&objects, "RoleBinding", "scalehub-leader-election");
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["subjects"], json!([{"kind": "ServiceAccount", "name": "scalehub", "namespace": "scalehub"}]));
}

#[test]
fn hub_deployment_is_one_hardened_pod_replaced_by_recreate() {
    let Some(kubectl) = kubectl() else { return };
    let objects = render(&kubectl, "deploy");
    let deploy = object(&objects, "Deployment", "scalehub");
    let spec = &deploy["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["strategy"], json!({"type": "Recreate"}));
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "scalehub");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let c = hub_container(&objects);
    assert_eq!(c["image"], "ghcr.io/scalehub/scalehub:latest");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    assert!(c["resources"]["requests"]["cpu"].is_string() && c["resources"]["limits"]["memory"].is_string());
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert_eq!(c["livenessProbe"]["httpGet"], json!({"path": "/healthz", "port": "http"}));
    assert_eq!(c["readinessProbe"]["httpGet"], json!({"path": "/readyz", "port": "http"}));
    let env: BTreeMap<&str, &Value> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), &e["valueFrom"]["fieldRef"]["fieldPath"]))
        .collect();
    assert_eq!(env["POD_NAME"], "metadata.name");
    assert_eq!(env["POD_NAMESPACE"], "metadata.namespace");

    // Every mount has its volume, and every volume's source is part of the rendering.
    let mounts: BTreeMap<&str, &str> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["mountPath"].as_str().unwrap(), m["name"].as_str().unwrap()))
        .collect();
    let volumes: BTreeMap<&str, &Value> =
        pod["volumes"].as_array().unwrap().iter().map(|v| (v["name"].as_str().unwrap(), v)).collect();
    let config = volumes[mounts["/etc/scalehub"]]["configMap"]["name"].as_str().unwrap();
    assert_eq!(name_of(object(&objects, "ConfigMap", "scalehub-config")), config);
    let hooks = volumes[mounts["/hooks"]]["configMap"]["name"].as_str().unwrap();
    assert_eq!(name_of(object(&objects, "ConfigMap", "scalehub-hooks")), hooks);
    assert_eq!(volumes[mounts["/data"]]["persistentVolumeClaim"]["claimName"], "scalehub-data");
    assert!(volumes[mounts["/tmp"]]["emptyDir"].is_object(), "a read-only root needs a writable /tmp");

    let service = object(&objects, "Service", "scalehub");
    assert_eq!(service["spec"]["ports"][0]["port"], 8080);
    let labels = &spec["template"]["metadata"]["labels"];
    for (k, v) in service["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&labels[k], v, "the Service selector must match the hub pod");
    }
}

#[test]
fn config_map_holds_the_hub_config_the_container_is_started_with() {
    let Some(kubectl) = kubectl() else { return };
    let objects = render(&kubectl, "deploy");
    let c = hub_container(&objects);
    assert_eq!(c["args"], json!(["--config", "/etc/scalehub/config.yaml"]));
    let text = object(&objects, "ConfigMap", "scalehub-config")["data"]["config.yaml"].as_str().unwrap();
    let config: Value = serde_saphyr::from_str(text).unwrap();
    assert_eq!(config["listen"], "0.0.0.0:8080");
    assert_eq!(config["database"], "sqlite:///data/scalehub.db");
    assert_eq!(config["namespaces"], json!([]));
    let default = &config["profiles"]["default"];
    assert_eq!(default["runMode"], "per-resource");
    // Every script the default profile runs is a key of the ConfigMap mounted at /hooks.
    let hooks = object(&objects, "ConfigMap", "scalehub-hooks")["data"].as_object().unwrap();
    for method in ["metric", "evaluate"] {
        let command = default[method]["shell"]["command"][0].as_str().unwrap();
        let key = command.strip_prefix("/hooks/").unwrap();
        assert!(hooks.contains_key(key), "{method} runs {command}, which the hooks ConfigMap lacks");
    }
}

#[test]
fn the_postgres_overlay_runs_three_replicas_on_the_secret_url_without_a_volume() {
    let Some(kubectl) = kubectl() else { return };
    let objects = render(&kubectl, "deploy/postgres");
    assert!(objects.iter().all(|o| kind_of(o) != "PersistentVolumeClaim"), "a database volume is left");
    let spec = &object(&objects, "Deployment", "scalehub")["spec"];
    assert_eq!(spec["replicas"], 3);
    assert_eq!(spec["strategy"]["type"], "RollingUpdate");
    let c = hub_container(&objects);
    let env: BTreeMap<&str, &Value> =
        c["env"].as_array().unwrap().iter().map(|e| (e["name"].as_str().unwrap(), &e["valueFrom"])).collect();
    assert_eq!(env["SCALEHUB_DATABASE"]["secretKeyRef"], json!({"name": "scalehub-postgres", "key": "url"}));
    assert_eq!(env["POD_NAME"]["fieldRef"]["fieldPath"], "metadata.name", "the member identity is the pod name");
    // The API address a member announces: the pod's IP, defined before it is used.
    assert_eq!(env["POD_IP"]["fieldRef"]["fieldPath"], "status.podIP");
    let names: Vec<&str> = c["env"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    let advertise = c["env"].as_array().unwrap().iter().find(|e| e["name"] == "SCALEHUB_ADVERTISE_ADDRESS").unwrap();
    assert_eq!(advertise["value"], "$(POD_IP)");
    let at = |name: &str| names.iter().position(|n| *n == name).unwrap();
    assert!(
        at("POD_IP") < at("SCALEHUB_ADVERTISE_ADDRESS"),
        "Kubernetes expands $(POD_IP) only if defined above: {names:?}"
    );
    let mounts: BTreeSet<&str> =
        c["volumeMounts"].as_array().unwrap().iter().map(|m| m["mountPath"].as_str().unwrap()).collect();
    assert_eq!(mounts, ["/etc/scalehub", "/hooks", "/tmp"].into());
    let volumes = spec["template"]["spec"]["volumes"].as_array().unwrap();
    assert!(volumes.iter().all(|v| v["persistentVolumeClaim"].is_null()));
    // The membership Leases: in the hub's namespace only, bound to the hub's ServiceAccount.
    let role = object(&objects, "Role", "scalehub-membership");
    assert_eq!(role["metadata"]["namespace"], "scalehub");
    assert_eq!(
        grants(&role["rules"]),
        expect(&[("coordination.k8s.io/leases", &["create", "delete", "get", "list", "update"])])
    );
    let binding = object(&objects, "RoleBinding", "scalehub-membership");
    assert_eq!(binding["subjects"], json!([{"kind": "ServiceAccount", "name": "scalehub", "namespace": "scalehub"}]));
    // Everything else is the base's.
    assert_eq!(object(&objects, "ConfigMap", "scalehub-config")["metadata"]["namespace"], "scalehub");
}
