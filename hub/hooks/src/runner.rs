//! The hook runner: one cheap-to-clone handle that runs every target's hooks under a global
//! concurrency bound.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::error::{HookError, HookFailure};
use crate::evaluation::{Evaluation, parse_evaluation};
use crate::http::{HttpClients, run_http};
use crate::outcome::{HookOutcome, HookOutput};
use crate::shell::{ShellLimits, run_shell};
use crate::spec::HookSpec;

/// Settings of a [`HookRunner`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRunnerConfig {
    /// Most hooks running at once across all targets; protects the hub's host from a
    /// thundering herd of processes when thousands of ticks line up. At least 1.
    pub max_concurrent: usize,
    /// Stdout (or response body) beyond this many bytes fails the run.
    pub max_output_bytes: usize,
    /// Bytes of stderr kept for the decision record.
    pub stderr_excerpt_bytes: usize,
    /// Environment variables removed from process hooks' environment, e.g. the variable
    /// holding the API token; the rest of the hub's environment is inherited as the CPA did.
    pub scrub_env: Vec<String>,
}

impl Default for HookRunnerConfig {
    fn default() -> Self {
        HookRunnerConfig {
            max_concurrent: 64,
            max_output_bytes: 1024 * 1024,
            stderr_excerpt_bytes: 8 * 1024,
            scrub_env: Vec::new(),
        }
    }
}

/// Runs hooks; clones share the concurrency bound and the HTTP client cache.
#[derive(Debug, Clone)]
pub struct HookRunner {
    /// Shared state, so a clone per target task costs one reference count.
    inner: Arc<Inner>,
}

/// The state all clones of a runner share.
#[derive(Debug)]
struct Inner {
    /// The global bound; a permit is held for the whole run of one hook.
    permits: Semaphore,
    /// Size of `permits`, to report how many are in use.
    max_concurrent: usize,
    /// Output bounds and environment rules for process hooks.
    shell: ShellLimits,
    /// Response body cap for HTTP hooks.
    max_body_bytes: usize,
    /// Pooled clients, one per TLS config.
    http: Arc<HttpClients>,
}

impl HookRunner {
    /// A runner with the given bounds.
    pub fn new(config: HookRunnerConfig) -> Self {
        let max_concurrent = config.max_concurrent.max(1);
        HookRunner {
            inner: Arc::new(Inner {
                permits: Semaphore::new(max_concurrent),
                max_concurrent,
                shell: ShellLimits {
                    stdout_cap: config.max_output_bytes,
                    stderr_keep: config.stderr_excerpt_bytes,
                    scrub_env: config.scrub_env,
                },
                max_body_bytes: config.max_output_bytes,
                http: Arc::new(HttpClients::default()),
            }),
        }
    }

    /// Runs one hook with `payload` on stdin (shell) or in the body/query (http).
    ///
    /// Waits for a concurrency permit first; the hook's timeout starts once it has one. On
    /// failure the returned [`HookFailure`] still carries the outcome for the record.
    pub async fn run(&self, spec: &HookSpec, payload: &Value) -> Result<HookOutput, HookFailure> {
        let mut outcome = HookOutcome::new(spec.kind());
        let queued = Instant::now();
        let result = match self.inner.permits.acquire().await {
            Ok(_permit) => {
                outcome.queued_ms = millis(queued.elapsed());
                let started = Instant::now();
                let result = self.execute(spec, payload, &mut outcome).await;
                outcome.duration_ms = millis(started.elapsed());
                result
            }
            // The semaphore is never closed; this arm only keeps the code panic-free.
            Err(_) => Err(HookError::Io(std::io::Error::other("hook runner is closed"))),
        };
        match result {
            Ok(stdout) => {
                tracing::debug!(kind = ?outcome.kind, duration_ms = outcome.duration_ms, "hook succeeded");
                Ok(HookOutput { stdout, outcome })
            }
            Err(error) => Err(fail(error, outcome)),
        }
    }

    /// Runs an evaluate hook and parses its output as `{"targetReplicas": N}`; output that
    /// is not a valid evaluation is a failure like any other.
    pub async fn evaluate(&self, spec: &HookSpec, payload: &Value) -> Result<(Evaluation, HookOutcome), HookFailure> {
        let output = self.run(spec, payload).await?;
        match parse_evaluation(&output.stdout) {
            Ok(evaluation) => Ok((evaluation, output.outcome)),
            Err(e) => Err(fail(HookError::Evaluation(e), output.outcome)),
        }
    }

    /// Hooks running right now.
    pub fn in_flight(&self) -> usize {
        self.inner.max_concurrent - self.inner.permits.available_permits()
    }

    /// The concurrency bound in force.
    pub fn max_concurrent(&self) -> usize {
        self.inner.max_concurrent
    }

    /// Number of distinct HTTP clients built (one per TLS configuration).
    pub fn http_clients(&self) -> usize {
        self.inner.http.len()
    }

    /// Dispatches to the transport.
    async fn execute(&self, spec: &HookSpec, payload: &Value, outcome: &mut HookOutcome) -> Result<String, HookError> {
        let json = serde_json::to_string(payload).map_err(HookError::Payload)?;
        match spec {
            HookSpec::Shell(shell) => run_shell(shell, json.as_bytes(), &self.inner.shell, outcome).await,
            HookSpec::Http(http) => run_http(&self.inner.http, http, &json, self.inner.max_body_bytes, outcome).await,
        }
    }
}

/// Records the error in the outcome and pairs them.
fn fail(error: HookError, mut outcome: HookOutcome) -> HookFailure {
    outcome.error = Some(error.to_string());
    tracing::debug!(kind = ?outcome.kind, reason = error.reason(), %error, "hook failed");
    HookFailure { error, outcome }
}

/// Whole milliseconds, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
