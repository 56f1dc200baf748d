//! `examples/sim/web.yaml` against the built-in simulator, with kubectl, as the README shows.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::*;

/// Runs kubectl against `kubeconfig` off the async runtime; returns stdout or panics with stderr.
async fn kubectl_ok(kubectl: &Path, kubeconfig: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(kubectl);
    cmd.arg("--kubeconfig").arg(kubeconfig).args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output()).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kubectl {args:?} failed: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let dir = std::env::temp_dir().join(format!("scalehub-deploy-sim-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_web_applies_to_the_simulator_and_gets_its_two_pods() {
    let Some(kubectl) = kubectl() else { return };
    let options = scalehub_sim::SimOptions { pod_ready_delay: Duration::from_millis(100), ..Default::default() };
    let sim = scalehub_sim::start(options).await.unwrap();
    let dir = TempDir::new();
    let kubeconfig = dir.0.join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let web = root().join("examples/sim/web.yaml");
    kubectl_ok(&kubectl, &kubeconfig, &["apply", "-f", web.to_str().unwrap()]).await;

    let deploy: Value =
        serde_json::from_str(&kubectl_ok(&kubectl, &kubeconfig, &["get", "deploy", "web", "-o", "json"]).await)
            .unwrap();
    assert_eq!(deploy["metadata"]["annotations"]["scalehub.io/enabled"], "true");
    assert_eq!(deploy["spec"]["replicas"], 2);
    let mut pods = 0;
    for _ in 0..100 {
        let list: Value = serde_json::from_str(
            &kubectl_ok(&kubectl, &kubeconfig, &["get", "pods", "-l", "app=web", "-o", "json"]).await,
        )
        .unwrap();
        pods = list["items"].as_array().map_or(0, Vec::len);
        if pods == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pods, 2, "the simulator should run the Deployment's two pods");
    sim.shutdown().await;
}
