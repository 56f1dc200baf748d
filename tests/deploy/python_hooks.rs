//! The python-custom-metric and kubernetes-cpu hooks, run with python3 on sample payloads.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::*;

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

#[test]
fn argo_rollouts_evaluate_asks_for_the_metric_value_and_fails_without_one() {
    let Some(python) = python3() else { return };
    let payload = json!({"metrics": [{"resource": "rollouts-demo", "value": "5"}], "runType": "scaler"});
    assert_eq!(target_replicas(&python, "argo-rollouts/evaluate.py", &payload, &[]), 5);
    for bad in [json!({"metrics": [], "runType": "scaler"}), json!({"metrics": [{"value": "five"}]})] {
        let run = run_hook(&python, "argo-rollouts/evaluate.py", &bad, &[]);
        assert_eq!((run.code, run.stdout.as_str()), (1, ""), "payload {bad}");
    }
}

/// A CPU kubernetesMetrics element in the CPA's shape: `(pod, usage milli, request milli)`.
fn cpu_metric(current: i64, pods: &[(&str, i64, i64)], missing: &[&str], unready: &[&str]) -> Value {
    let info: serde_json::Map<String, Value> = pods
        .iter()
        .map(|(p, usage, _)| {
            (p.to_string(), json!({"Timestamp": "2026-01-01T00:00:00Z", "Window": 30_000_000_000u64, "Value": usage}))
        })
        .collect();
    let mut requests: serde_json::Map<String, Value> = pods.iter().map(|(p, _, r)| (p.to_string(), json!(r))).collect();
    for p in missing.iter().chain(unready) {
        requests.insert(p.to_string(), json!(200));
    }
    let set = |names: &[&str]| -> Value {
        names.iter().map(|p| (p.to_string(), json!({}))).collect::<serde_json::Map<_, _>>().into()
    };
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
    assert_eq!(
        cpu_replicas(&python, cpu_metric(2, &[("a", 200, 200), ("b", 200, 200)], &[], &[]), none.clone(), &[]),
        4
    );
    // 54% against 50% is within the 10% tolerance → keep 2.
    assert_eq!(
        cpu_replicas(&python, cpu_metric(2, &[("a", 108, 200), ("b", 108, 200)], &[], &[]), none.clone(), &[]),
        2
    );
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
    let empty =
        json!({"metrics": [], "runType": "scaler", "kubernetesMetrics": [cpu_metric(2, &[], &["a", "b"], &[])]});
    let run = run_hook(&python, "kubernetes-cpu/evaluate.py", &empty, &[]);
    assert_eq!((run.code, run.stdout.as_str()), (1, ""));
    assert!(run.stderr.contains("did not receive metrics"), "stderr: {}", run.stderr);
    let mut no_requests = cpu_metric(1, &[("a", 100, 200)], &[], &[]);
    no_requests["resource"]["requests"] = json!({});
    let payload = json!({"metrics": [], "runType": "scaler", "kubernetesMetrics": [no_requests]});
    assert_eq!(run_hook(&python, "kubernetes-cpu/evaluate.py", &payload, &[]).code, 1);
}
