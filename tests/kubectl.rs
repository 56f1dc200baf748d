//! kubectl against the in-process simulator (and the real kube-apiserver when
//! `SCALEHUB_REAL_KUBECONFIG` is set), the way a user would try it:
//! `apply -f`, `get -o json`, `annotate`, `scale`, `get pods -l`, `get --raw`
//! for PodMetrics, `delete`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use scalehub_sim::SimOptions;
use serde_json::Value;

const DEPLOYMENT_YAML: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: main
        image: registry.example/web:1
";

/// A directory removed when dropped; std only, to keep the lockfile untouched.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> anyhow::Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("scalehub-kubectl-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `/usr/bin/kubectl`, else `kubectl` on PATH.
fn find_kubectl() -> Option<PathBuf> {
    let usr = PathBuf::from("/usr/bin/kubectl");
    if usr.is_file() {
        return Some(usr);
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| Path::new(dir).join("kubectl")).find(|p| p.is_file())
}

/// Runs kubectl against one server.
struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    cache_dir: PathBuf,
    ns: String,
    server: &'static str,
}

/// What one kubectl run printed.
struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Kubectl {
    async fn run(&self, args: &[&str]) -> anyhow::Result<Output> {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache_dir)
            .arg("--request-timeout=20s")
            .arg("-n")
            .arg(&self.ns)
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(40), cmd.output())
            .await
            .map_err(|_| anyhow::anyhow!("kubectl {args:?} did not finish within 40 s"))?
            .with_context(|| format!("run kubectl {args:?}"))?;
        Ok(Output {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Runs kubectl and fails unless it succeeded; returns stdout.
    async fn ok(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.run(args).await?;
        ensure!(out.ok, "kubectl {args:?} failed on {}:\nstdout: {}\nstderr: {}", self.server, out.stdout, out.stderr);
        Ok(out.stdout)
    }

    async fn json(&self, args: &[&str]) -> anyhow::Result<Value> {
        let stdout = self.ok(args).await?;
        serde_json::from_str(&stdout).with_context(|| format!("kubectl {args:?} printed non-JSON: {stdout}"))
    }

    /// Polls a JSON-printing command until `check` accepts its output.
    async fn until(&self, args: &[&str], what: &str, check: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.json(args).await?;
            if check(&v) {
                return Ok(v);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("timed out waiting for {what}; last output: {v}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn items(v: &Value) -> usize {
    v["items"].as_array().map_or(0, Vec::len)
}

/// The user's walk through, against one server.
async fn walkthrough(k: &Kubectl, dir: &Path, is_real: bool) -> anyhow::Result<()> {
    let version = k.json(&["version", "-o", "json"]).await?;
    ensure!(version["serverVersion"]["major"] == "1", "kubectl version shows {}", version["serverVersion"]);

    // `kubectl create namespace` would send protobuf; a manifest goes as JSON.
    let ns_manifest = dir.join(format!("{}.yaml", k.ns));
    std::fs::write(&ns_manifest, format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {}\n", k.ns))
        .context("write namespace manifest")?;
    let out = k.ok(&["apply", "-f", &ns_manifest.to_string_lossy()]).await?;
    ensure!(out.trim() == format!("namespace/{} created", k.ns), "namespace apply printed {out:?}");

    let manifest = dir.join("web.yaml");
    std::fs::write(&manifest, DEPLOYMENT_YAML).context("write manifest")?;
    let manifest = manifest.to_string_lossy().into_owned();
    let out = k.ok(&["apply", "-f", &manifest]).await?;
    ensure!(out.trim() == "deployment.apps/web created", "first apply printed {out:?}");
    let out = k.ok(&["apply", "-f", &manifest]).await?;
    ensure!(out.trim() == "deployment.apps/web unchanged", "second apply printed {out:?}");

    let d = k.json(&["get", "deploy", "web", "-o", "json"]).await?;
    ensure!(
        d["kind"] == "Deployment" && d["apiVersion"] == "apps/v1",
        "get -o json typed {}/{}",
        d["apiVersion"],
        d["kind"]
    );
    ensure!(d["spec"]["replicas"] == 2, "spec.replicas is {}", d["spec"]["replicas"]);
    ensure!(d["metadata"]["uid"].is_string(), "no uid");
    ensure!(
        d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"].is_string(),
        "apply did not record last-applied-configuration"
    );
    let table = k.ok(&["get", "deploy"]).await?;
    ensure!(table.starts_with("NAME") && table.lines().any(|l| l.starts_with("web ")), "get deploy printed {table:?}");

    let out = k.ok(&["annotate", "deploy", "web", "scalehub.io/enabled=true"]).await?;
    ensure!(out.trim() == "deployment.apps/web annotated", "annotate printed {out:?}");
    let d = k.json(&["get", "deploy", "web", "-o", "json"]).await?;
    ensure!(d["metadata"]["annotations"]["scalehub.io/enabled"] == "true", "annotation missing: {}", d["metadata"]);

    let out = k.ok(&["scale", "deploy", "web", "--replicas=3"]).await?;
    ensure!(out.trim() == "deployment.apps/web scaled", "scale printed {out:?}");
    let d = k.json(&["get", "deploy", "web", "-o", "json"]).await?;
    ensure!(d["spec"]["replicas"] == 3, "after scale spec.replicas is {}", d["spec"]["replicas"]);

    // Pods come from the controllers: the sim's own, or kube-controller-manager.
    let pods_args = ["get", "pods", "-l", "app in (web)", "-o", "json"];
    if is_real && !controller_manager_running(k).await? {
        println!(
            "SKIPPED kubectl get pods -l on {}: no kube-controller-manager makes pods (start --controller-manager)",
            k.server
        );
    } else {
        let pods = k.until(&pods_args, "3 pods labelled app=web", |v| items(v) == 3).await?;
        for p in pods["items"].as_array().into_iter().flatten() {
            ensure!(p["metadata"]["labels"]["app"] == "web", "selected pod labels {}", p["metadata"]["labels"]);
        }
        let none = k.json(&["get", "pods", "-l", "app notin (web)", "-o", "json"]).await?;
        ensure!(items(&none) == 0, "app notin (web) selected {} pods", items(&none));
        let names = k.ok(&["get", "pods", "-l", "app in (web)", "-o", "name"]).await?;
        ensure!(names.lines().filter(|l| l.starts_with("pod/web-")).count() == 3, "-o name printed {names:?}");
    }

    let raw = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{}/pods", k.ns);
    if is_real {
        println!("SKIPPED kubectl get --raw {raw} on {}: metrics.k8s.io needs a metrics-server", k.server);
    } else {
        let metrics = k.until(&["get", "--raw", &raw], "PodMetrics for 3 ready pods", |v| items(v) == 3).await?;
        ensure!(metrics["kind"] == "PodMetricsList", "get --raw returned kind {}", metrics["kind"]);
        for m in metrics["items"].as_array().into_iter().flatten() {
            ensure!(m["containers"][0]["usage"]["cpu"].is_string(), "PodMetrics without cpu usage: {m}");
        }
    }

    let out = k.ok(&["delete", "deploy", "web"]).await?;
    ensure!(out.trim() == "deployment.apps \"web\" deleted", "delete printed {out:?}");
    let gone = k.run(&["get", "deploy", "web"]).await?;
    ensure!(!gone.ok, "get after delete succeeded: {}", gone.stdout);
    ensure!(
        gone.stderr.contains("Error from server (NotFound): deployments.apps \"web\" not found"),
        "get after delete printed {:?}",
        gone.stderr
    );
    let left = k.ok(&["get", "deploy", "-o", "name"]).await?;
    ensure!(left.trim().is_empty(), "deployments left after delete: {left:?}");
    let _ = k.run(&["delete", "namespace", &k.ns, "--wait=false"]).await;
    Ok(())
}

/// True once the deployment controller has observed the deployment.
async fn controller_manager_running(k: &Kubectl) -> anyhow::Result<bool> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let d = k.json(&["get", "deploy", "web", "-o", "json"]).await?;
        if d["status"]["observedGeneration"].is_number() {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn unique_ns() -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("kubectl-{:x}{nanos:x}", std::process::id())
}

#[tokio::test]
async fn kubectl_applies_annotates_scales_selects_and_deletes() {
    let Some(bin) = find_kubectl() else {
        println!("SKIPPED kubectl tests: no kubectl at /usr/bin/kubectl or on PATH");
        return;
    };
    let dir = TempDir::new().unwrap();
    let sim = scalehub_sim::start(SimOptions { pod_ready_delay: Duration::from_millis(200), ..SimOptions::default() })
        .await
        .unwrap();
    let kubeconfig = dir.0.join("sim.kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();

    let mut failures = Vec::new();
    let k =
        Kubectl { bin: bin.clone(), kubeconfig, cache_dir: dir.0.join("cache-sim"), ns: unique_ns(), server: "sim" };
    if let Err(e) = walkthrough(&k, &dir.0, false).await {
        failures.push(format!("[sim] {e:#}"));
    }
    sim.shutdown().await;

    if let Ok(path) = std::env::var("SCALEHUB_REAL_KUBECONFIG") {
        let k = Kubectl {
            bin,
            kubeconfig: PathBuf::from(path),
            cache_dir: dir.0.join("cache-real"),
            ns: unique_ns(),
            server: "kube-apiserver-1.20",
        };
        if let Err(e) = walkthrough(&k, &dir.0, true).await {
            failures.push(format!("[kube-apiserver-1.20] {e:#}"));
        }
    }
    assert!(failures.is_empty(), "kubectl failures:\n{}", failures.join("\n"));
}
