//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use scalehub_hooks::{HookRunner, HookRunnerConfig, HookSpec, RunType, ShellSpec, StageContext, TargetRef};
use serde_json::{Value, json};

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, unique directory under the system temp dir.
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("scalehub-hooks-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes a file and returns its path as a string.
    pub fn write(&self, name: &str, contents: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path.to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A runner with default limits.
pub fn runner() -> HookRunner {
    HookRunner::new(HookRunnerConfig::default())
}

/// `sh -c <script>` with a timeout.
pub fn sh(script: &str, timeout: Duration) -> HookSpec {
    HookSpec::Shell(ShellSpec::new("sh", timeout).args(["-c", script]))
}

/// A stage context for a Deployment `shop/web` with the given labels and params.
pub fn context(labels: Value, params: &[(&str, &str)]) -> StageContext {
    StageContext {
        resource: json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": labels},
            "spec": {"replicas": 2}
        }),
        run_type: RunType::Scaler,
        target: TargetRef { namespace: "shop".into(), kind: "Deployment".into(), name: "web".into() },
        params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        current_replicas: 2,
    }
}

/// Waits up to 3 s for `pid` to die; SIGKILL is delivered asynchronously, so a killed
/// process may still be on its way out right after `kill` returns.
pub async fn dies_soon(pid: u32) -> bool {
    for _ in 0..300 {
        if process_is_dead(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// True when `pid` no longer runs: gone, or a zombie waiting for its (new) parent to reap it.
pub fn process_is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the parenthesised command name.
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}
