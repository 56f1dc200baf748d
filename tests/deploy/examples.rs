//! The examples' profiles and workloads: they reference what exists and opt in properly.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::*;

#[test]
fn default_profile_and_hooks_are_the_kubernetes_cpu_example() {
    for script in ["metric.py", "evaluate.py"] {
        let shipped = std::fs::read_to_string(root().join("deploy/base/hooks").join(script)).unwrap();
        let example = std::fs::read_to_string(root().join("examples/kubernetes-cpu").join(script)).unwrap();
        assert_eq!(shipped, example, "deploy/base/hooks/{script} drifted from examples/kubernetes-cpu/{script}");
    }
    let deploy = &yaml_file("deploy/base/config.yaml")[0]["profiles"]["default"];
    let example = &yaml_file("examples/kubernetes-cpu/profile.yaml")[0]["profiles"]["kubernetes-cpu"];
    assert_eq!(deploy, example);
}

#[test]
fn example_workloads_opt_in_with_known_annotations_and_existing_profiles() {
    let mut profiles: BTreeSet<String> = ["default".to_string()].into();
    for dir in ["python-custom-metric", "http-evaluate", "kubernetes-cpu", "argo-rollouts"] {
        let snippet = &yaml_file(&format!("examples/{dir}/profile.yaml"))[0];
        profiles.extend(snippet["profiles"].as_object().unwrap().keys().cloned());
    }
    let known = [
        "enabled",
        "profile",
        "min-replicas",
        "max-replicas",
        "interval",
        "downscale-stabilization",
        "upscale-stabilization",
        "run-mode",
        "mode",
    ];
    for file in [
        "examples/python-custom-metric/workload.yaml",
        "examples/http-evaluate/workload.yaml",
        "examples/kubernetes-cpu/workload.yaml",
        "examples/sim/web.yaml",
        "examples/argo-rollouts/rollout.yaml",
    ] {
        let workload = yaml_file(file).into_iter().find(|o| ["Deployment", "Rollout"].contains(&kind_of(o))).unwrap();
        let annotations = workload["metadata"]["annotations"].as_object().unwrap();
        assert_eq!(annotations["scalehub.io/enabled"], "true", "{file}");
        let profile = annotations.get("scalehub.io/profile").and_then(Value::as_str).unwrap_or("default");
        assert!(profiles.contains(profile), "{file} uses unknown profile {profile}");
        for key in annotations.keys() {
            let Some(rest) = key.strip_prefix("scalehub.io/") else {
                continue;
            };
            assert!(known.contains(&rest) || rest.starts_with("param."), "{file}: unknown annotation {key}");
        }
    }
}

#[test]
fn sim_web_is_an_annotated_two_replica_deployment_with_cpu_requests() {
    let docs = yaml_file("examples/sim/web.yaml");
    assert_eq!(docs.len(), 1);
    let web = &docs[0];
    assert_eq!((kind_of(web), name_of(web)), ("Deployment", "web"));
    assert_eq!(web["spec"]["replicas"], 2);
    assert_eq!(web["spec"]["selector"]["matchLabels"], json!({"app": "web"}));
    assert_eq!(web["spec"]["template"]["metadata"]["labels"]["app"], "web");
    assert_eq!(web["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"], "200m");
}

#[test]
fn http_evaluate_profile_calls_the_server_over_http_with_body_parameters() {
    let profile = &yaml_file("examples/http-evaluate/profile.yaml")[0]["profiles"]["http-queue"];
    for method in ["metric", "evaluate"] {
        assert_eq!(profile[method]["type"], "http");
        assert_eq!(profile[method]["http"]["parameterMode"], "body");
        assert_eq!(profile[method]["http"]["successCodes"], json!([200]));
        let url = profile[method]["http"]["url"].as_str().unwrap();
        assert_eq!(url, format!("http://queue-scaler.scalehub.svc.cluster.local:8000/{method}"));
    }
    let Some(kubectl) = kubectl() else { return };
    let objects = render(&kubectl, "examples/http-evaluate");
    let service = object(&objects, "Service", "queue-scaler");
    assert_eq!(
        (service["metadata"]["namespace"].as_str(), &service["spec"]["ports"][0]["port"]),
        (Some("scalehub"), &json!(8000))
    );
    let server = object(&objects, "ConfigMap", "queue-scaler-server");
    assert!(server["data"]["server.py"].as_str().unwrap().contains("ThreadingHTTPServer"));
}

/// The hub config of `deploy/base/` with every example profile added, as the hub would load it.
fn hub_config_with_example_profiles() -> scalehub_core::config::Config {
    let text = std::fs::read_to_string(root().join("deploy/base/config.yaml")).unwrap();
    let mut config = scalehub_core::config::Config::from_yaml_str(&text)
        .unwrap_or_else(|e| panic!("deploy/base/config.yaml is not a valid hub config: {e}"));
    for dir in ["python-custom-metric", "http-evaluate", "kubernetes-cpu", "argo-rollouts"] {
        let text = std::fs::read_to_string(root().join(format!("examples/{dir}/profile.yaml"))).unwrap();
        // A snippet is `profiles:` alone, which is itself a complete (all-defaults) config.
        let snippet = scalehub_core::config::Config::from_yaml_str(&text)
            .unwrap_or_else(|e| panic!("examples/{dir}/profile.yaml is not a valid profile: {e}"));
        config.profiles.extend(snippet.profiles);
        config.extra_kinds.extend(snippet.extra_kinds);
    }
    config
}

#[test]
fn deploy_config_and_example_profiles_load_as_the_hub_loads_them() {
    let config = hub_config_with_example_profiles();
    assert_eq!(config.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(config.database, "sqlite:///data/scalehub.db");
    assert!(config.namespaces.is_empty());
    assert_eq!(config.retention, std::time::Duration::from_secs(7 * 24 * 3600));
    assert_eq!(config.hook_concurrency, 32);
    let names: BTreeSet<&str> = config.profiles.keys().map(String::as_str).collect();
    assert_eq!(names, ["argo-rollouts", "default", "http-queue", "kubernetes-cpu", "python-custom-metric"].into());
    let kinds: Vec<(&str, &str, &str, &str)> = config
        .extra_kinds
        .iter()
        .map(|k| (k.group.as_str(), k.version.as_str(), k.kind.as_str(), k.plural.as_str()))
        .collect();
    assert_eq!(kinds, [("argoproj.io", "v1alpha1", "Rollout", "rollouts")]);
}

#[test]
fn example_workload_annotations_parse_into_target_specs() {
    use scalehub_core::spec::{TargetSpec, is_opted_in};
    let profiles = hub_config_with_example_profiles().spec_defaults();
    let mut specs = BTreeMap::new();
    for file in [
        "examples/python-custom-metric/workload.yaml",
        "examples/http-evaluate/workload.yaml",
        "examples/kubernetes-cpu/workload.yaml",
        "examples/sim/web.yaml",
        "examples/argo-rollouts/rollout.yaml",
    ] {
        let workload = yaml_file(file).into_iter().find(|o| ["Deployment", "Rollout"].contains(&kind_of(o))).unwrap();
        let annotations: BTreeMap<String, String> =
            serde_json::from_value(workload["metadata"]["annotations"].clone()).unwrap();
        assert!(is_opted_in(&annotations), "{file}");
        let spec = TargetSpec::from_annotations(&annotations, &profiles).unwrap_or_else(|e| panic!("{file}: {e}"));
        specs.insert(file, spec);
    }
    let worker = &specs["examples/http-evaluate/workload.yaml"];
    assert_eq!((worker.profile.as_str(), worker.min_replicas), ("http-queue", 0));
    assert_eq!(worker.params["perReplica"], "10");
    let hello = &specs["examples/python-custom-metric/workload.yaml"];
    assert_eq!(hello.interval, std::time::Duration::from_secs(10));
    let web = &specs["examples/sim/web.yaml"];
    assert_eq!((web.profile.as_str(), web.min_replicas, web.max_replicas), ("default", 1, 10));
    assert_eq!(web.params["targetUtilization"], "50");
    let rollout = &specs["examples/argo-rollouts/rollout.yaml"];
    assert_eq!((rollout.profile.as_str(), rollout.max_replicas), ("argo-rollouts", 10));
}

#[test]
fn argo_rollouts_profile_runs_the_python_custom_metric_scripts_and_its_rbac_covers_scale() {
    let profile = &yaml_file("examples/argo-rollouts/profile.yaml")[0]["profiles"]["argo-rollouts"];
    for (method, script) in [("metric", "metric.py"), ("evaluate", "evaluate.py")] {
        assert_eq!(profile[method]["shell"]["command"], json!([format!("/hooks/argo-rollouts/{script}")]));
    }
    let rbac = yaml_file("examples/argo-rollouts/rbac.yaml");
    let role = rbac.iter().find(|o| kind_of(o) == "ClusterRole").unwrap();
    let resources: BTreeSet<&str> = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["resources"].as_array().unwrap().iter().filter_map(Value::as_str))
        .collect();
    assert_eq!(resources, ["rollouts", "rollouts/scale"].into());
}

#[test]
fn the_readme_config_is_a_valid_hub_config() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let (_, rest) = readme.split_once("### Configure the hub\n\n```yaml\n").expect("the README shows a hub config");
    let (yaml, _) = rest.split_once("```").unwrap();
    let config = scalehub_core::Config::from_yaml_str(yaml).unwrap_or_else(|e| panic!("README config: {e}"));
    let cpu = config.profile("cpu").unwrap().spec_defaults();
    assert_eq!((cpu.tolerance.scale_up.milli(), cpu.tolerance.scale_down.milli()), (50, 200));
    assert_eq!(cpu.lineage, scalehub_core::spec::Lineage::Hpa);
    assert!(config.profile("default").unwrap().fallback.is_some());
}
