//! What a hook run leaves behind: its output and the summary stored in the decision record.

use serde::{Deserialize, Serialize};

use crate::spec::HookKind;

/// A successful run's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookOutput {
    /// Stdout of a shell hook or the body of an HTTP response (lossily decoded as UTF-8, as
    /// the CPA passes bytes through a Go string).
    pub stdout: String,
    /// The summary for the decision record.
    pub outcome: HookOutcome,
}

/// The serialisable summary of one hook run, success or failure (it goes into SQLite).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookOutcome {
    /// Shell or HTTP.
    pub kind: HookKind,
    /// Exit code of a shell hook that exited by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Signal that ended a shell hook (9 after a timeout kill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Response status of an HTTP hook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Time from start (after the concurrency permit) to the end of the run.
    pub duration_ms: u64,
    /// Time spent waiting for a concurrency permit, which shows an undersized bound.
    pub queued_ms: u64,
    /// True when the run was stopped by its timeout.
    pub timed_out: bool,
    /// The start of stderr (shell) or of the response body on failure (HTTP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// The error message when the run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl HookOutcome {
    /// An empty outcome of the given kind, to be filled in as the run progresses.
    pub fn new(kind: HookKind) -> Self {
        HookOutcome {
            kind,
            exit_code: None,
            signal: None,
            http_status: None,
            duration_ms: 0,
            queued_ms: 0,
            timed_out: false,
            stderr: None,
            error: None,
        }
    }

    /// True when the run succeeded.
    pub fn is_success(&self) -> bool {
        self.error.is_none()
    }
}
