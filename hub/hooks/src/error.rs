//! Why a hook failed.

use std::time::Duration;

use crate::evaluation::EvaluationError;
use crate::outcome::HookOutcome;
use crate::tls::TlsError;

/// Longest stderr or body excerpt quoted inside an error message; the outcome keeps more.
const MESSAGE_EXCERPT: usize = 512;

/// A hook failure. Every variant is an error of one tick only: the caller records it and the
/// target holds its replicas; all are worth retrying on the next tick.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The shell hook has an empty entrypoint (the CPA has no default either).
    #[error("shell hook has no entrypoint")]
    NoEntrypoint,
    /// The process could not be started, e.g. the entrypoint does not exist.
    #[error("could not start hook {entrypoint:?}: {source}")]
    Spawn {
        /// The program that failed to start.
        entrypoint: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// Waiting for the process or reading its pipes failed.
    #[error("hook i/o failed: {0}")]
    Io(#[source] std::io::Error),
    /// The process exited with a non-zero code.
    #[error("hook exited with status {code}{}", excerpt_suffix(.stderr))]
    Exit {
        /// The exit code.
        code: i32,
        /// The start of stderr.
        stderr: String,
    },
    /// The process was killed by a signal it did not get from us.
    #[error("hook was killed by signal {signal}{}", excerpt_suffix(.stderr))]
    Signal {
        /// The signal number.
        signal: i32,
        /// The start of stderr.
        stderr: String,
    },
    /// The hook ran past its timeout; a process hook's whole process group was killed.
    #[error("hook timed out after {} ms", .0.as_millis())]
    Timeout(Duration),
    /// Stdout or the response body exceeded the cap; the process group was killed early.
    #[error("hook output exceeds the limit of {0} bytes")]
    OutputTooLarge(usize),
    /// The payload could not be serialised.
    #[error("could not serialise the hook payload: {0}")]
    Payload(#[source] serde_json::Error),
    /// The HTTP hook's URL does not parse.
    #[error("invalid hook url: {0}")]
    InvalidUrl(String),
    /// The HTTP method is not a valid token.
    #[error("invalid hook http method {0:?}")]
    InvalidMethod(String),
    /// A configured header name or value is not valid HTTP.
    #[error("invalid hook http header {0:?}")]
    InvalidHeader(String),
    /// The TLS files of an HTTP hook could not be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The endpoint answered with a status outside `successCodes`.
    #[error("hook returned http status {status}{}", excerpt_suffix(.body))]
    HttpStatus {
        /// The response status.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// Connecting, sending or reading failed; the message is the whole cause chain, with the
    /// URL left out because it may hold credentials.
    #[error("http hook request failed: {0}")]
    HttpTransport(String),
    /// The evaluate hook's output is not a valid evaluation.
    #[error(transparent)]
    Evaluation(#[from] EvaluationError),
}

impl HookError {
    /// A short stable label for metrics and logs (e.g. a Prometheus `reason` label).
    pub fn reason(&self) -> &'static str {
        match self {
            HookError::NoEntrypoint => "no_entrypoint",
            HookError::Spawn { .. } => "spawn",
            HookError::Io(_) => "io",
            HookError::Exit { .. } => "exit",
            HookError::Signal { .. } => "signal",
            HookError::Timeout(_) => "timeout",
            HookError::OutputTooLarge(_) => "output_too_large",
            HookError::Payload(_) => "payload",
            HookError::InvalidUrl(_) | HookError::InvalidMethod(_) | HookError::InvalidHeader(_) => "invalid_spec",
            HookError::Tls(_) => "tls",
            HookError::HttpStatus { .. } => "http_status",
            HookError::HttpTransport(_) => "http_transport",
            HookError::Evaluation(_) => "evaluation",
        }
    }
}

/// A failed run: the error plus the outcome record the decision history keeps.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct HookFailure {
    /// What went wrong.
    #[source]
    pub error: HookError,
    /// Exit status / HTTP status, duration and stderr excerpt of the failed run.
    pub outcome: HookOutcome,
}

/// `": <excerpt>"` for a non-empty excerpt, cut to [`MESSAGE_EXCERPT`] bytes on a char boundary.
fn excerpt_suffix(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let cut = crate::capture::floor_char_boundary(text, MESSAGE_EXCERPT);
    if cut < text.len() { format!(": {}…", &text[..cut]) } else { format!(": {text}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_stderr_is_cut_in_the_message_on_a_char_boundary() {
        let stderr = format!("{}é tail", "x".repeat(MESSAGE_EXCERPT - 1));
        let message = HookError::Exit { code: 1, stderr }.to_string();
        assert!(message.starts_with("hook exited with status 1: xxx"));
        assert!(message.ends_with("x…"), "{message}");
    }

    #[test]
    fn empty_stderr_adds_nothing_to_the_message() {
        let message = HookError::Signal { signal: 9, stderr: " \n".into() }.to_string();
        assert_eq!(message, "hook was killed by signal 9");
    }
}
