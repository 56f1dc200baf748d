//! Process hooks against real processes.

mod common;

use std::time::Duration;

use common::{TempDir, context, dies_soon, runner, sh};
use scalehub_hooks::{
    EvaluatePayload, HookError, HookKind, HookRunner, HookRunnerConfig, HookSpec, MetricPayload, MetricValue,
    ShellSpec, payload::to_json,
};
use serde_json::json;

const SECOND: Duration = Duration::from_secs(1);

/// The CPA documentation's example metric script: the label `numPods` of the resource.
const METRIC_PY: &str = r#"
import json
import sys

def main():
    spec = json.loads(sys.stdin.read())
    metric(spec)

def metric(spec):
    resource = spec["resource"]
    metadata = resource["metadata"]
    labels = metadata["labels"]
    if "numPods" in labels:
        sys.stdout.write(labels["numPods"])
    else:
        sys.stderr.write("No 'numPods' label on resource being managed")
        exit(1)

if __name__ == "__main__":
    main()
"#;

/// The CPA documentation's example evaluate script: twice the metric.
const EVALUATE_PY: &str = r#"
import json
import sys
import math

def main():
    spec = json.loads(sys.stdin.read())
    evaluate(spec)

def evaluate(spec):
    if len(spec["metrics"]) != 1:
        sys.stderr.write("Expected 1 metric")
        exit(1)
    value = int(spec["metrics"][0]["value"])
    evaluation = {}
    evaluation["targetReplicas"] = value * 2
    sys.stdout.write(json.dumps(evaluation))

if __name__ == "__main__":
    main()
"#;

#[tokio::test]
async fn the_payload_reaches_the_hook_on_stdin() {
    let payload = json!({"resource": {"metadata": {"name": "web"}}, "runType": "scaler"});
    let out = runner().run(&sh("cat", 5 * SECOND), &payload).await.unwrap();
    let echoed: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(echoed, payload);
    assert_eq!(out.outcome.kind, HookKind::Shell);
    assert_eq!(out.outcome.exit_code, Some(0));
    assert!(out.outcome.is_success());
}

#[tokio::test]
async fn the_cpa_example_scripts_run_unchanged() {
    let dir = TempDir::new("cpa");
    let metric_py = dir.write("metric.py", METRIC_PY);
    let evaluate_py = dir.write("evaluate.py", EVALUATE_PY);
    let runner = runner();

    let metric_spec = HookSpec::Shell(ShellSpec::new("python3", 10 * SECOND).args([metric_py]));
    let metric_payload =
        MetricPayload { context: context(json!({"numPods": "3"}), &[]), kubernetes_metrics: None, metrics: None };
    let metric = runner.run(&metric_spec, &to_json(&metric_payload).unwrap()).await.unwrap();
    assert_eq!(metric.stdout, "3");

    let evaluate_spec = HookSpec::Shell(ShellSpec::new("python3", 10 * SECOND).args([evaluate_py]));
    let evaluate_payload = EvaluatePayload {
        context: context(json!({"numPods": "3"}), &[]),
        metrics: vec![MetricValue { resource: "web".into(), value: metric.stdout }],
        evaluation: None,
    };
    let (evaluation, outcome) = runner.evaluate(&evaluate_spec, &to_json(&evaluate_payload).unwrap()).await.unwrap();
    assert_eq!(evaluation.target_replicas, 6);
    assert_eq!(outcome.exit_code, Some(0));
}

#[tokio::test]
async fn a_failing_cpa_script_reports_its_exit_status_and_stderr() {
    let dir = TempDir::new("cpa-fail");
    let metric_py = dir.write("metric.py", METRIC_PY);
    let spec = HookSpec::Shell(ShellSpec::new("python3", 10 * SECOND).args([metric_py]));
    let payload = MetricPayload { context: context(json!({}), &[]), kubernetes_metrics: None, metrics: None };
    let failure = runner().run(&spec, &to_json(&payload).unwrap()).await.unwrap_err();
    assert!(matches!(failure.error, HookError::Exit { code: 1, .. }), "{:?}", failure.error);
    assert_eq!(failure.to_string(), "hook exited with status 1: No 'numPods' label on resource being managed");
    assert_eq!(failure.outcome.exit_code, Some(1));
    assert_eq!(failure.outcome.stderr.as_deref(), Some("No 'numPods' label on resource being managed"));
    assert_eq!(failure.outcome.error.as_deref(), Some(failure.to_string().as_str()));
}

#[tokio::test]
async fn a_non_zero_exit_is_an_error_with_the_stderr_excerpt() {
    let failure = runner().run(&sh("echo boom >&2; exit 3", 5 * SECOND), &json!({})).await.unwrap_err();
    match &failure.error {
        HookError::Exit { code, stderr } => {
            assert_eq!(*code, 3);
            assert_eq!(stderr, "boom\n");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(failure.error.reason(), "exit");
    assert_eq!(failure.to_string(), "hook exited with status 3: boom");
}

#[tokio::test]
async fn stderr_is_kept_only_up_to_the_excerpt_size() {
    let runner = HookRunner::new(HookRunnerConfig { stderr_excerpt_bytes: 16, ..HookRunnerConfig::default() });
    // 200 KB of stderr would block a hook whose stderr pipe is not drained.
    let failure =
        runner.run(&sh("head -c 200000 /dev/zero | tr '\\0' e >&2; exit 1", 5 * SECOND), &json!({})).await.unwrap_err();
    assert_eq!(failure.outcome.stderr.as_deref(), Some("eeeeeeeeeeeeeeee…"));
}

#[tokio::test]
async fn a_missing_entrypoint_is_a_spawn_error() {
    let spec = HookSpec::Shell(ShellSpec::new("/nonexistent/hook", 5 * SECOND));
    let failure = runner().run(&spec, &json!({})).await.unwrap_err();
    assert!(matches!(failure.error, HookError::Spawn { .. }), "{:?}", failure.error);
    assert!(failure.to_string().starts_with("could not start hook \"/nonexistent/hook\": "), "{failure}");
    let empty = HookSpec::Shell(ShellSpec::new("", 5 * SECOND));
    let failure = runner().run(&empty, &json!({})).await.unwrap_err();
    assert_eq!(failure.to_string(), "shell hook has no entrypoint");
}

#[tokio::test]
async fn a_hanging_hook_is_killed_at_its_timeout_with_its_grandchildren() {
    let dir = TempDir::new("hang");
    let pid_file = dir.path().join("grandchild.pid");
    let script = "sleep 100 & echo $! > \"$1\"; sleep 100";
    let spec = HookSpec::Shell(ShellSpec::new("sh", Duration::from_millis(500)).args([
        "-c",
        script,
        "sh",
        &pid_file.to_string_lossy(),
    ]));
    let started = std::time::Instant::now();
    let failure = runner().run(&spec, &json!({})).await.unwrap_err();
    let elapsed = started.elapsed();

    assert!(matches!(failure.error, HookError::Timeout(_)), "{:?}", failure.error);
    assert_eq!(failure.to_string(), "hook timed out after 500 ms");
    assert!(failure.outcome.timed_out);
    assert_eq!(failure.outcome.signal, Some(9));
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    let grandchild: u32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert!(dies_soon(grandchild).await, "grandchild {grandchild} still runs");
}

#[tokio::test]
async fn background_processes_are_killed_when_the_hook_exits() {
    let dir = TempDir::new("straggler");
    let pid_file = dir.path().join("bg.pid");
    // The background sleep keeps stdout open; without the group kill the run would hang.
    let script = "sleep 100 & echo $! > \"$1\"; echo done";
    let spec =
        HookSpec::Shell(ShellSpec::new("sh", 10 * SECOND).args(["-c", script, "sh", &pid_file.to_string_lossy()]));
    let started = std::time::Instant::now();
    let out = runner().run(&spec, &json!({})).await.unwrap();
    assert_eq!(out.stdout, "done\n");
    assert!(started.elapsed() < Duration::from_secs(5));
    let pid: u32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert!(dies_soon(pid).await, "background process {pid} still runs");
}

#[tokio::test]
async fn dropping_a_running_hook_kills_its_process_group() {
    let dir = TempDir::new("drop");
    let pid_file = dir.path().join("grandchild.pid");
    let script = "sleep 100 & echo $! > \"$1\"; sleep 100";
    let spec =
        HookSpec::Shell(ShellSpec::new("sh", 60 * SECOND).args(["-c", script, "sh", &pid_file.to_string_lossy()]));
    let runner = runner();
    let payload = json!({});
    let run = runner.run(&spec, &payload);
    // The caller gives up (e.g. the hub shuts down) long before the hook's own timeout.
    assert!(tokio::time::timeout(Duration::from_millis(500), run).await.is_err());
    let grandchild: u32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert!(dies_soon(grandchild).await, "grandchild {grandchild} still runs");
    assert_eq!(runner.in_flight(), 0);
}

#[tokio::test]
async fn huge_stdout_is_capped_and_fails_the_run() {
    let runner = HookRunner::new(HookRunnerConfig { max_output_bytes: 64 * 1024, ..HookRunnerConfig::default() });
    let started = std::time::Instant::now();
    // `yes` prints forever: the run must end at the cap, not at the timeout.
    let failure = runner.run(&sh("yes", 30 * SECOND), &json!({})).await.unwrap_err();
    assert!(matches!(failure.error, HookError::OutputTooLarge(65536)), "{:?}", failure.error);
    assert_eq!(failure.to_string(), "hook output exceeds the limit of 65536 bytes");
    assert!(!failure.outcome.timed_out);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn output_exactly_at_the_cap_is_accepted() {
    let runner = HookRunner::new(HookRunnerConfig { max_output_bytes: 1000, ..HookRunnerConfig::default() });
    let out = runner.run(&sh("head -c 1000 /dev/zero", 5 * SECOND), &json!({})).await.unwrap();
    assert_eq!(out.stdout.len(), 1000);
}

#[tokio::test]
async fn a_large_payload_does_not_deadlock_a_hook_that_writes_while_reading() {
    // 4 MB in and out: far beyond the pipe buffers, so stdin must be fed while stdout drains.
    let big = "x".repeat(4 * 1024 * 1024);
    let runner = HookRunner::new(HookRunnerConfig { max_output_bytes: 8 * 1024 * 1024, ..HookRunnerConfig::default() });
    let out = runner.run(&sh("cat", 20 * SECOND), &json!({ "blob": big })).await.unwrap();
    assert_eq!(out.stdout.len(), big.len() + r#"{"blob":""}"#.len());
}

#[tokio::test]
async fn a_hook_that_ignores_stdin_still_succeeds() {
    let big = "y".repeat(1024 * 1024);
    let out = runner().run(&sh("echo ok", 5 * SECOND), &json!({ "blob": big })).await.unwrap();
    assert_eq!(out.stdout, "ok\n");
}

#[tokio::test]
async fn a_hook_killed_by_a_signal_reports_it() {
    let failure = runner().run(&sh("kill -TERM $$", 5 * SECOND), &json!({})).await.unwrap_err();
    assert!(matches!(failure.error, HookError::Signal { signal: 15, .. }), "{:?}", failure.error);
    assert_eq!(failure.outcome.signal, Some(15));
    assert_eq!(failure.outcome.exit_code, None);
}

#[tokio::test]
async fn shell_metacharacters_in_params_are_passed_as_data_and_never_run() {
    let dir = TempDir::new("inject");
    let marker = dir.path().join("pwned");
    let evil =
        format!("$(touch {}); rm -rf {}/nothing `touch {}`", marker.display(), dir.path().display(), marker.display());
    let payload =
        MetricPayload { context: context(json!({}), &[("query", &evil)]), kubernetes_metrics: None, metrics: None };
    let payload = to_json(&payload).unwrap();
    let read_param = "import json,sys; sys.stdout.write(json.load(sys.stdin)['params']['query'])";
    let python = HookSpec::Shell(ShellSpec::new("python3", 10 * SECOND).args(["-c", read_param]));
    let out = runner().run(&python, &payload).await.unwrap();
    assert_eq!(out.stdout, evil);
    // A shell entrypoint gets it on stdin too, where it stays text.
    let out = runner().run(&sh("cat", 5 * SECOND), &payload).await.unwrap();
    assert!(out.stdout.contains(&serde_json::to_string(&evil).unwrap()));
    assert!(!marker.exists(), "the param was executed");
}

#[tokio::test]
async fn scrubbed_environment_variables_do_not_reach_hooks() {
    // SAFETY: this test binary sets the variable before any hook runs and nothing reads it
    // concurrently in a way that matters (tests only read the environment via children).
    unsafe { std::env::set_var("SCALEHUB_TEST_SECRET", "hunter2") };
    let runner = HookRunner::new(HookRunnerConfig {
        scrub_env: vec!["SCALEHUB_TEST_SECRET".into()],
        ..HookRunnerConfig::default()
    });
    let out =
        runner.run(&sh("echo \"[${SCALEHUB_TEST_SECRET:-}] ${HOME:+home}\"", 5 * SECOND), &json!({})).await.unwrap();
    assert_eq!(out.stdout, "[] home\n");
}

#[tokio::test]
async fn an_evaluate_hook_without_target_replicas_is_an_error_not_zero() {
    let failure = runner().evaluate(&sh("echo '{}'", 5 * SECOND), &json!({})).await.unwrap_err();
    assert!(matches!(failure.error, HookError::Evaluation(_)), "{:?}", failure.error);
    assert_eq!(failure.to_string(), "evaluation has no targetReplicas field");
    assert_eq!(failure.outcome.exit_code, Some(0));
    assert_eq!(failure.outcome.error.as_deref(), Some("evaluation has no targetReplicas field"));
}

#[tokio::test]
async fn the_outcome_serialises_for_the_decision_record() {
    let failure = runner().run(&sh("echo nope >&2; exit 2", 5 * SECOND), &json!({})).await.unwrap_err();
    let mut json = serde_json::to_value(&failure.outcome).unwrap();
    json["durationMs"] = json!(0);
    json["queuedMs"] = json!(0);
    assert_eq!(
        json,
        json!({
            "kind": "shell",
            "exitCode": 2,
            "durationMs": 0,
            "queuedMs": 0,
            "timedOut": false,
            "stderr": "nope\n",
            "error": "hook exited with status 2: nope"
        })
    );
    let back: scalehub_hooks::HookOutcome =
        serde_json::from_value(serde_json::to_value(&failure.outcome).unwrap()).unwrap();
    assert_eq!(back, failure.outcome);
}
