//! The kustomize base in `deploy/` and the CPA-equivalent profiles in `examples/`.
//!
//! - The base is rendered with `kubectl kustomize` and its objects are checked: kinds,
//!   RBAC verbs (exactly what the hub calls), the hub Deployment, the config it mounts.
//! - With `SCALEHUB_REAL_KUBECONFIG` (a real kube-apiserver v1.20.2, started by
//!   `scripts/test.sh`), the rendered objects are applied with server-side dry-run.
//! - Every example's python hooks are run with `python3` on sample payloads.
//!
//! Tests that need `kubectl` or `python3` print why and pass when the tool is absent.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

mod base;
mod examples;
mod http_hook;
mod python_hooks;
mod real_apiserver;
mod sim;

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
    let found: Vec<&Value> = objects.iter().filter(|o| kind_of(o) == kind && name_of(o).starts_with(prefix)).collect();
    assert_eq!(found.len(), 1, "expected one {kind} named {prefix}*, found {}", found.len());
    found[0]
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
}

/// A minimal Deployment as hooks receive it in `resource`.
fn deployment(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": name, "namespace": "default", "labels": labels},
           "spec": {"replicas": 1}})
}
