//! Server-side dry-run of everything against a real kube-apiserver (v1.20.2).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::*;

/// `kubectl --kubeconfig K apply --server-side [ARGS] -f -` with `objects` as a List on stdin.
fn apply(kubectl: &Path, kubeconfig: &str, objects: &[Value], args: &[&str]) -> (bool, String) {
    let mut child = Command::new(kubectl)
        .args([
            "--kubeconfig",
            kubeconfig,
            "apply",
            "--server-side",
            "--field-manager=scalehub-deploy-test",
            "-o",
            "name",
        ])
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
    for file in [
        "python-custom-metric/workload.yaml",
        "http-evaluate/workload.yaml",
        "kubernetes-cpu/workload.yaml",
        "sim/web.yaml",
    ] {
        objects.extend(yaml_file(&format!("examples/{file}")));
    }
    dry_run_in_a_fresh_namespace(&kubectl, &kubeconfig, objects);
}

#[test]
fn the_postgres_overlay_is_accepted_by_a_real_apiserver() {
    let Ok(kubeconfig) = std::env::var("SCALEHUB_REAL_KUBECONFIG") else {
        eprintln!("skipped: SCALEHUB_REAL_KUBECONFIG is not set (scripts/test.sh starts a real kube-apiserver)");
        return;
    };
    let Some(kubectl) = kubectl() else { return };
    dry_run_in_a_fresh_namespace(&kubectl, &kubeconfig, render(&kubectl, "deploy/postgres"));
}

/// Applies `objects` with server-side dry-run in a namespace of their own, and checks that the
/// server validates.
fn dry_run_in_a_fresh_namespace(kubectl: &Path, kubeconfig: &str, mut objects: Vec<Value>) {
    let (kubectl, kubeconfig) = (kubectl.to_path_buf(), kubeconfig.to_owned());
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
