//! kubectl against the simulator: apply, get, annotate, scale, label-selected pods, raw
//! PodMetrics and delete. Skipped (with a printed reason) when kubectl is not installed.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use scalehub_sim::SimOptions;
use serde_json::Value;

const KUBECTL: &str = "/usr/bin/kubectl";

const MANIFEST: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations:
    sim.scalehub.io/load: constant:900m
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: nginx:1.27
"#;

async fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let out = tokio::process::Command::new(KUBECTL).env("KUBECONFIG", kubeconfig).args(args).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "kubectl {args:?} failed: {}{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scalehub-sim-kubectl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_manages_a_deployment_end_to_end() {
    if !Path::new(KUBECTL).exists() {
        eprintln!("skipping: {KUBECTL} not found");
        return;
    }
    let (sim, _client) =
        common::sim_with(SimOptions { pod_ready_delay: Duration::from_millis(100), ..Default::default() }).await;
    let dir = scratch_dir();
    let kc = dir.join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let manifest = dir.join("web.yaml");
    std::fs::write(&manifest, MANIFEST).unwrap();
    let file = manifest.to_str().unwrap();

    assert!(kubectl(&kc, &["apply", "-f", file]).await.contains("created"));
    assert!(kubectl(&kc, &["apply", "-f", file]).await.contains("unchanged"));
    assert!(kubectl(&kc, &["annotate", "deploy", "web", "team=shop"]).await.contains("annotated"));
    assert!(kubectl(&kc, &["scale", "deploy", "web", "--replicas=3"]).await.contains("scaled"));
    let d: Value = serde_json::from_str(&kubectl(&kc, &["get", "deploy", "web", "-o", "json"]).await).unwrap();
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(d["metadata"]["annotations"]["team"], "shop");

    let store = sim.store().clone();
    common::eventually(10, || {
        let store = store.clone();
        async move {
            let d = store.get(scalehub_sim::resources::DEPLOYMENTS, "default", "web")?;
            (d["status"]["readyReplicas"] == 3).then_some(())
        }
    })
    .await;
    let pods = kubectl(&kc, &["get", "pods", "-l", "app in (web,other)", "-o", "name"]).await;
    assert_eq!(pods.lines().count(), 3, "{pods}");
    // Server-side Table columns, as with a real server.
    let table = kubectl(&kc, &["get", "deploy", "web"]).await;
    assert!(table.contains("READY") && table.contains("3/3"), "{table}");
    let table = kubectl(&kc, &["get", "pods"]).await;
    assert!(table.contains("Running") && table.contains("1/1"), "{table}");

    let raw =
        kubectl(&kc, &["get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dweb"])
            .await;
    let metrics: Value = serde_json::from_str(&raw).unwrap();
    let items = metrics["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    // 900m spread over 3 ready pods.
    assert_eq!(items[0]["containers"][0]["usage"]["cpu"], "300000000n");

    // A changed manifest goes through kubectl's three-way strategic merge patch.
    std::fs::write(&manifest, MANIFEST.replace("nginx:1.27", "nginx:1.28")).unwrap();
    assert!(kubectl(&kc, &["apply", "-f", file]).await.contains("configured"));
    let d: Value = serde_json::from_str(&kubectl(&kc, &["get", "deploy", "web", "-o", "json"]).await).unwrap();
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.28");
    assert_eq!(d["spec"]["template"]["spec"]["containers"].as_array().unwrap().len(), 1);
    assert!(kubectl(&kc, &["apply", "--server-side", "-f", file]).await.contains("serverside-applied"));
    assert!(kubectl(&kc, &["delete", "deploy", "web"]).await.contains("deleted"));
    common::eventually(5, || {
        let store = store.clone();
        async move { (store.count(scalehub_sim::resources::PODS) == 0).then_some(()) }
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}
