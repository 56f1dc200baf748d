//! The kustomize base in `deploy/` and the CPA-equivalent profiles in `examples/`.
//!
//! - The base is rendered with `kubectl kustomize` and its objects are checked: kinds,
//!   RBAC verbs (exactly what the hub calls), the hub Deployment, the config it mounts.
//! - With `SCALEHUB_REAL_KUBECONFIG` (a real kube-apiserver v1.20.2, started by
//!   `scripts/test.sh`), the rendered objects are applied with server-side dry-run.
//! - Every example's python hooks are run with `python3` on sample payloads.
//!
//! Tests that need `kubectl` or `python3` print why and pass when the tool is absent.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

/// The repository root (the root package's manifest directory).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Finds an executable: the well-known path first, then `PATH`.
fn tool(name: &str, well_known: &str) -> Option<PathBuf> {
    let known = PathBuf::from(well_known);
    if known.is_file() {
        return Some(known);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

fn kubectl() -> Option<PathBuf> {
    let found = tool("kubectl", "/usr/bin/kubectl");
    if found.is_none() {
        eprintln!("skipped: kubectl is not installed (scripts/test.sh installs it)");
    }
    found
}

fn python3() -> Option<PathBuf> {
    let found = tool("python3", "/usr/bin/python3");
    if found.is_none() {
        eprintln!("skipped: python3 is not installed (scripts/test.sh installs it)");
    }
    found
}

/// `kubectl kustomize DIR`, parsed into one JSON value per object.
fn render(kubectl: &Path, dir: &str) -> Vec<Value> {
    let out = Command::new(kubectl).arg("kustomize").arg(root().join(dir)).output().unwrap();
    assert!(out.status.success(), "kubectl kustomize {dir} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_saphyr::from_multiple::<Value>(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

/// Parses one YAML file of the repository.
fn yaml_file(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    serde_saphyr::from_multiple::<Value>(&text).unwrap()
}

fn kind_of(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or_default()
}

fn name_of(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap_or_default()
}

/// The one object of `kind` whose name starts with `prefix` (generated names carry a hash).
fn object<'a>(objects: &'a [Value], kind: &str, prefix: &str) -> &'a Value {
    let found: Vec<&Value> =
        objects.iter().filter(|o| kind_of(o) == kind && name_of(o).starts_with(prefix)).collect();
    assert_eq!(found.len(), 1, "expected one {kind} named {prefix}*, found {}", found.len());
    found[0]
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
}

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
        assert_eq!(o["metadata"]["namespace"], "scalehub", "{} {} is outside the hub namespace", kind_of(o), name_of(o));
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
    assert_eq!(binding["roleRef"], json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "scalehub"}));
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
    let env: BTreeMap<&str, &Value> =
        c["env"].as_array().unwrap().iter().map(|e| (e["name"].as_str().unwrap(), &e["valueFrom"]["fieldRef"]["fieldPath"])).collect();
    assert_eq!(env["POD_NAME"], "metadata.name");
    assert_eq!(env["POD_NAMESPACE"], "metadata.namespace");

    // Every mount has its volume, and every volume's source is part of the rendering.
    let mounts: BTreeMap<&str, &str> =
        c["volumeMounts"].as_array().unwrap().iter().map(|m| (m["mountPath"].as_str().unwrap(), m["name"].as_str().unwrap())).collect();
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
fn default_profile_and_hooks_are_the_kubernetes_cpu_example() {
    for script in ["metric.py", "evaluate.py"] {
        let shipped = std::fs::read_to_string(root().join("deploy/hooks").join(script)).unwrap();
        let example = std::fs::read_to_string(root().join("examples/kubernetes-cpu").join(script)).unwrap();
        assert_eq!(shipped, example, "deploy/hooks/{script} drifted from examples/kubernetes-cpu/{script}");
    }
    let deploy = &yaml_file("deploy/config.yaml")[0]["profiles"]["default"];
    let example = &yaml_file("examples/kubernetes-cpu/profile.yaml")[0]["profiles"]["kubernetes-cpu"];
    assert_eq!(deploy, example);
}

#[test]
fn example_workloads_opt_in_with_known_annotations_and_existing_profiles() {
    let mut profiles: BTreeSet<String> = ["default".to_string()].into();
    for dir in ["python-custom-metric", "http-evaluate", "kubernetes-cpu"] {
        let snippet = &yaml_file(&format!("examples/{dir}/profile.yaml"))[0];
        profiles.extend(snippet["profiles"].as_object().unwrap().keys().cloned());
    }
    let known = [
        "enabled", "profile", "min-replicas", "max-replicas", "interval", "downscale-stabilization",
        "upscale-stabilization", "run-mode", "mode",
    ];
    for file in [
        "examples/python-custom-metric/workload.yaml",
        "examples/http-evaluate/workload.yaml",
        "examples/kubernetes-cpu/workload.yaml",
        "examples/sim/web.yaml",
    ] {
        let workload = yaml_file(file).into_iter().find(|o| kind_of(o) == "Deployment").unwrap();
        let annotations = workload["metadata"]["annotations"].as_object().unwrap();
        assert_eq!(annotations["scalehub.io/enabled"], "true", "{file}");
        let profile = annotations.get("scalehub.io/profile").and_then(Value::as_str).unwrap_or("default");
        assert!(profiles.contains(profile), "{file} uses unknown profile {profile}");
        for key in annotations.keys() {
            let Some(rest) = key.strip_prefix("scalehub.io/") else { continue };
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

// ---- the examples' python hooks, run for real ----

/// What a shell hook produced.
struct HookRun {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Pipes `payload` into `python3 examples/<script>` with a clean hook environment.
fn run_hook(python: &Path, script: &str, payload: &Value, env: &[(&str, &str)]) -> HookRun {
    let mut cmd = Command::new(python);
    cmd.arg(root().join("examples").join(script))
        .env_remove("TARGET_UTILIZATION")
        .env_remove("PER_REPLICA")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(payload.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    HookRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Runs an evaluate hook that must succeed and returns its `targetReplicas`.
fn target_replicas(python: &Path, script: &str, payload: &Value, env: &[(&str, &str)]) -> i64 {
    let run = run_hook(python, script, payload, env);
    assert_eq!(run.code, 0, "{script} failed: {}", run.stderr);
    let evaluation: Value = serde_json::from_str(&run.stdout).unwrap();
    evaluation["targetReplicas"].as_i64().unwrap()
}

fn deployment(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": name, "namespace": "default", "labels": labels},
           "spec": {"replicas": 1}})
}

#[test]
fn python_custom_metric_doubles_the_num_pods_label() {
    let Some(python) = python3() else { return };
    let metric_payload = json!({"resource": deployment("hello", json!({"numPods": "3"})), "runType": "scaler"});
    let metric = run_hook(&python, "python-custom-metric/metric.py", &metric_payload, &[]);
    assert_eq!((metric.code, metric.stdout.as_str()), (0, "3"), "{}", metric.stderr);
    // The metric's stdout reaches evaluate verbatim, as metrics[0].value.
    let evaluate_payload = json!({"metrics": [{"resource": "hello", "value": metric.stdout}],
                                  "resource": deployment("hello", json!({"numPods": "3"})), "runType": "api"});
    assert_eq!(target_replicas(&python, "python-custom-metric/evaluate.py", &evaluate_payload, &[]), 6);
}

#[test]
fn python_custom_metric_fails_instead_of_answering_zero() {
    let Some(python) = python3() else { return };
    let unlabelled = json!({"resource": deployment("hello", json!({"app": "hello"})), "runType": "scaler"});
    let run = run_hook(&python, "python-custom-metric/metric.py", &unlabelled, &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("numPods"), "stderr: {}", run.stderr);
    for value in ["three", ""] {
        let bad = json!({"metrics": [{"resource": "hello", "value": value}], "runType": "scaler"});
        let run = run_hook(&python, "python-custom-metric/evaluate.py", &bad, &[]);
        assert_eq!((run.code, run.stdout.as_str()), (1, ""), "value {value:?}");
    }
}

/// A CPU kubernetesMetrics element in the CPA's shape: `(pod, usage milli, request milli)`.
fn cpu_metric(current: i64, pods: &[(&str, i64, i64)], missing: &[&str], unready: &[&str]) -> Value {
    let info: serde_json::Map<String, Value> = pods
        .iter()
        .map(|(p, usage, _)| (p.to_string(), json!({"Timestamp": "2026-01-01T00:00:00Z", "Window": 30_000_000_000u64, "Value": usage})))
        .collect();
    let mut requests: serde_json::Map<String, Value> = pods.iter().map(|(p, _, r)| (p.to_string(), json!(r))).collect();
    for p in missing.iter().chain(unready) {
        requests.insert(p.to_string(), json!(200));
    }
    let set = |names: &[&str]| -> Value { names.iter().map(|p| (p.to_string(), json!({}))).collect::<serde_json::Map<_, _>>().into() };
    json!({"current_replicas": current,
           "spec": {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}},
           "resource": {"pod_metrics_info": info, "requests": requests, "ready_pod_count": pods.len(),
                        "ignored_pods": set(unready), "missing_pods": set(missing),
                        "total_pods": pods.len() + missing.len() + unready.len(), "timestamp": "2026-01-01T00:00:00Z"}})
}

/// Runs kubernetes-cpu's metric.py, then evaluate.py on its output, as the CPA chains them.
fn cpu_replicas(python: &Path, element: Value, params: Value, env: &[(&str, &str)]) -> i64 {
    let metric_payload = json!({"resource": deployment("php-apache", json!({})), "runType": "scaler",
                                "kubernetesMetrics": [element]});
    let metric = run_hook(python, "kubernetes-cpu/metric.py", &metric_payload, &[]);
    assert_eq!(metric.code, 0, "metric.py failed: {}", metric.stderr);
    let payload = json!({"metrics": [{"resource": "php-apache", "value": metric.stdout}], "params": params,
                         "resource": deployment("php-apache", json!({})), "runType": "scaler"});
    target_replicas(python, "kubernetes-cpu/evaluate.py", &payload, env)
}

#[test]
fn kubernetes_cpu_scales_like_the_hpa() {
    let Some(python) = python3() else { return };
    let none = json!({});
    // 2 pods at 100% of a 200m request, goal 50% → ratio 2 → 4 replicas.
    assert_eq!(cpu_replicas(&python, cpu_metric(2, &[("a", 200, 200), ("b", 200, 200)], &[], &[]), none.clone(), &[]), 4);
    // 54% against 50% is within the 10% tolerance → keep 2.
    assert_eq!(cpu_replicas(&python, cpu_metric(2, &[("a", 108, 200), ("b", 108, 200)], &[], &[]), none.clone(), &[]), 2);
    // 3 pods at 10% → ratio 0.2 → ceil(0.6) = 1.
    let idle = cpu_metric(3, &[("a", 20, 200), ("b", 20, 200), ("c", 20, 200)], &[], &[]);
    assert_eq!(cpu_replicas(&python, idle, none.clone(), &[]), 1);
    // The goal comes from params first, then the CPA-style environment variable.
    let busy = || cpu_metric(2, &[("a", 160, 200), ("b", 160, 200)], &[], &[]);
    assert_eq!(cpu_replicas(&python, busy(), json!({"targetUtilization": "80"}), &[]), 2);
    assert_eq!(cpu_replicas(&python, busy(), none.clone(), &[("TARGET_UTILIZATION", "40")]), 4);
    assert_eq!(cpu_replicas(&python, busy(), json!({"targetUtilization": "80"}), &[("TARGET_UTILIZATION", "40")]), 2);
}

#[test]
fn kubernetes_cpu_is_conservative_about_missing_and_unready_pods() {
    let Some(python) = python3() else { return };
    // Scale-down with a missing pod: it counts as using its full request, so
    // (20+20+200)/600 = 40% → ratio 0.8 → ceil(2.4) = 3 instead of the naive 1.
    let down = cpu_metric(3, &[("a", 20, 200), ("b", 20, 200)], &["c"], &[]);
    assert_eq!(cpu_replicas(&python, down, json!({}), &[]), 3);
    // Scale-up (75% of requests) with an unready pod: it counts as idle, so 300/600 = 50%
    // → ratio 1.0, within tolerance → keep 3 rather than scale on two busy pods.
    let up = cpu_metric(3, &[("a", 150, 200), ("b", 150, 200)], &[], &["c"]);
    assert_eq!(cpu_replicas(&python, up, json!({}), &[]), 3);
    // 200%+200% with one unready pod: (400+400)/600 = 133% → ratio 2.67 → ceil(8) = 8.
    let hot = cpu_metric(3, &[("a", 400, 200), ("b", 400, 200)], &[], &["c"]);
    assert_eq!(cpu_replicas(&python, hot, json!({}), &[]), 8);
}

#[test]
fn kubernetes_cpu_reads_kubernetes_metrics_straight_from_the_evaluate_payload() {
    let Some(python) = python3() else { return };
    let payload = json!({"metrics": [], "runType": "api_dry_run",
                         "kubernetesMetrics": [cpu_metric(1, &[("a", 300, 200)], &[], &[])]});
    assert_eq!(target_replicas(&python, "kubernetes-cpu/evaluate.py", &payload, &[]), 3);
}

#[test]
fn kubernetes_cpu_fails_without_samples_or_requests() {
    let Some(python) = python3() else { return };
    let no_spec = json!({"resource": deployment("php-apache", json!({})), "runType": "scaler"});
    assert_eq!(run_hook(&python, "kubernetes-cpu/metric.py", &no_spec, &[]).code, 1);
    let empty = json!({"metrics": [], "runType": "scaler", "kubernetesMetrics": [cpu_metric(2, &[], &["a", "b"], &[])]});
    let run = run_hook(&python, "kubernetes-cpu/evaluate.py", &empty, &[]);
    assert_eq!((run.code, run.stdout.as_str()), (1, ""));
    assert!(run.stderr.contains("did not receive metrics"), "stderr: {}", run.stderr);
    let mut no_requests = cpu_metric(1, &[("a", 100, 200)], &[], &[]);
    no_requests["resource"]["requests"] = json!({});
    let payload = json!({"metrics": [], "runType": "scaler", "kubernetesMetrics": [no_requests]});
    assert_eq!(run_hook(&python, "kubernetes-cpu/evaluate.py", &payload, &[]).code, 1);
}

/// The http-evaluate example's server, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(python: &Path) -> Self {
        let mut child = Command::new(python)
            .arg(root().join("examples/http-evaluate/server.py"))
            .args(["--host", "127.0.0.1", "--port", "0"])
            .env_remove("PER_REPLICA")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().rsplit(':').next().unwrap().parse().unwrap();
        Self { child, port }
    }

    /// One HTTP/1.1 request; returns the status code and the body.
    fn call(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        (head.split(' ').nth(1).unwrap().parse().unwrap(), body.to_string())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn http_evaluate_server_answers_the_cpa_payloads_as_bodies() {
    let Some(python) = python3() else { return };
    let server = Server::start(&python);
    assert_eq!(server.call("GET", "/healthz", ""), (200, "ok".into()));
    let metric_body = json!({"resource": deployment("worker", json!({})), "runType": "scaler"}).to_string();
    assert_eq!(server.call("POST", "/metric", &metric_body), (200, "0".into()));
    assert_eq!(server.call("PUT", "/queue/default/worker", "42").0, 204);
    let (code, length) = server.call("POST", "/metric", &metric_body);
    assert_eq!((code, length.as_str()), (200, "42"));

    let evaluate = |params: Value| {
        let body = json!({"metrics": [{"resource": "worker", "value": length}], "params": params, "runType": "scaler"});
        let (code, body) = server.call("POST", "/evaluate", &body.to_string());
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };
    assert_eq!(evaluate(json!({})), json!({"targetReplicas": 5}));
    assert_eq!(evaluate(json!({"perReplica": "6"})), json!({"targetReplicas": 7}));
}

#[test]
fn http_evaluate_server_rejects_bad_input_with_a_status_outside_success_codes() {
    let Some(python) = python3() else { return };
    let server = Server::start(&python);
    let bad_metric = json!({"metrics": [{"resource": "worker", "value": "lots"}], "runType": "scaler"});
    let (code, body) = server.call("POST", "/evaluate", &bad_metric.to_string());
    assert_eq!(code, 400);
    assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].is_string());
    assert_eq!(server.call("POST", "/evaluate", "not json").0, 400);
    assert_eq!(server.call("POST", "/metric", "{}").0, 400);
    assert_eq!(server.call("PUT", "/queue/default/worker", "-1").0, 400);
    assert_eq!(server.call("GET", "/nope", "").0, 404);
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
    assert_eq!((service["metadata"]["namespace"].as_str(), &service["spec"]["ports"][0]["port"]), (Some("scalehub"), &json!(8000)));
    let server = object(&objects, "ConfigMap", "queue-scaler-server");
    assert!(server["data"]["server.py"].as_str().unwrap().contains("ThreadingHTTPServer"));
}

// ---- a real kube-apiserver (v1.20.2), when scripts/test.sh started one ----

/// `kubectl --kubeconfig K apply --server-side [ARGS] -f -` with `objects` as a List on stdin.
fn apply(kubectl: &Path, kubeconfig: &str, objects: &[Value], args: &[&str]) -> (bool, String) {
    let mut child = Command::new(kubectl)
        .args(["--kubeconfig", kubeconfig, "apply", "--server-side", "--field-manager=scalehub-deploy-test", "-o", "name"])
        .args(args)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    child.stdin.take().unwrap().write_all(list.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Moves everything the base puts in `scalehub` into `ns`, the Namespace object included.
fn relocate(objects: &mut [Value], ns: &str) {
    for o in objects.iter_mut() {
        if kind_of(o) == "Namespace" && name_of(o) == "scalehub" {
            o["metadata"]["name"] = json!(ns);
        }
        if o["metadata"]["namespace"] == "scalehub" {
            o["metadata"]["namespace"] = json!(ns);
        }
        // `get_mut`, not `o["subjects"]`: indexing mutably would add `subjects: null` everywhere.
        for subject in o.get_mut("subjects").and_then(Value::as_array_mut).into_iter().flatten() {
            subject["namespace"] = json!(ns);
        }
    }
}

#[test]
fn rendered_manifests_are_accepted_by_a_real_apiserver() {
    let Ok(kubeconfig) = std::env::var("SCALEHUB_REAL_KUBECONFIG") else {
        eprintln!("skipped: SCALEHUB_REAL_KUBECONFIG is not set (scripts/test.sh starts a real kube-apiserver)");
        return;
    };
    let Some(kubectl) = kubectl() else { return };
    let mut objects = render(&kubectl, "deploy");
    objects.extend(render(&kubectl, "examples/http-evaluate"));
    for file in ["python-custom-metric/workload.yaml", "http-evaluate/workload.yaml", "kubernetes-cpu/workload.yaml", "sim/web.yaml"] {
        objects.extend(yaml_file(&format!("examples/{file}")));
    }
    // Server-side dry-run runs admission, and NamespaceLifecycle rejects objects in a
    // namespace that does not exist (`namespaces "scalehub" not found`) even in dry-run;
    // a dry-run Namespace is never stored, so applying it in the same call does not help.
    // So the Namespace is created for real first and the rest is dry-run. It gets a unique
    // name so that other tests on the same apiserver, which may own `scalehub`, are not
    // disturbed; cluster-scoped objects are only dry-run, so their fixed names clash with nothing.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let ns = format!("scalehub-deploy-{}-{nanos}", std::process::id());
    relocate(&mut objects, &ns);
    let (namespaces, rest): (Vec<Value>, Vec<Value>) = objects.into_iter().partition(|o| kind_of(o) == "Namespace");
    let (ok, out) = apply(&kubectl, &kubeconfig, &namespaces, &[]);
    assert!(ok, "creating the namespace failed: {out}");
    let _cleanup = DeleteNamespace { kubectl: kubectl.clone(), kubeconfig: kubeconfig.clone(), ns };

    let (ok, out) = apply(&kubectl, &kubeconfig, &rest, &["--dry-run=server"]);
    // On v1.20 server-side apply needs `protocol` on every container and Service port (it
    // is a key of those lists and has no default there), so the manifests always spell it.
    assert!(ok, "server-side dry-run apply failed: {out}");
    for o in &rest {
        let name = format!("/{}", name_of(o));
        assert!(out.lines().any(|l| l.ends_with(&name)), "{} {name} not applied: {out}", kind_of(o));
    }
    // The server really validates in dry-run: a broken object is refused.
    let mut broken = rest.iter().find(|o| kind_of(o) == "Deployment").unwrap().clone();
    broken["spec"]["strategy"] = json!({"type": "Sideways"});
    let (ok, out) = apply(&kubectl, &kubeconfig, &[broken], &["--dry-run=server"]);
    assert!(!ok && out.contains("Sideways"), "a bad strategy was accepted: {out}");
}

/// Deletes the test's namespace when dropped, even after a failed assertion.
struct DeleteNamespace {
    kubectl: PathBuf,
    kubeconfig: String,
    ns: String,
}

impl Drop for DeleteNamespace {
    fn drop(&mut self) {
        // Best effort: without a namespace controller it may stay Terminating, which is harmless.
        let _ = Command::new(&self.kubectl)
            .args(["--kubeconfig", &self.kubeconfig, "delete", "namespace", &self.ns, "--wait=false"])
            .output();
    }
}
