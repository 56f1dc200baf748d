//! What to run: the transport-level description of one hook.
//!
//! The hub config (the CPA method schema) lives in `scalehub-core`; the lead maps it to these
//! plain types so this crate stays independent of config parsing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// One hook: a process to spawn or an HTTP endpoint to call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookSpec {
    /// Spawn `entrypoint` with `command` as its arguments, payload on stdin.
    Shell(ShellSpec),
    /// Send the payload to an HTTP endpoint.
    Http(HttpSpec),
}

impl HookSpec {
    /// Which transport this hook uses.
    pub fn kind(&self) -> HookKind {
        match self {
            HookSpec::Shell(_) => HookKind::Shell,
            HookSpec::Http(_) => HookKind::Http,
        }
    }

    /// The time the hook may take once it has started (queueing for a permit is not counted).
    pub fn timeout(&self) -> Duration {
        match self {
            HookSpec::Shell(s) => s.timeout,
            HookSpec::Http(h) => h.timeout,
        }
    }
}

/// The transport of a hook, as recorded in outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookKind {
    /// A spawned process.
    Shell,
    /// An HTTP request.
    Http,
}

/// A process hook (CPA `type: shell`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellSpec {
    /// The program to execute; looked up on `PATH` when it has no slash (CPA has no default).
    pub entrypoint: String,
    /// Arguments passed verbatim; nothing here is interpreted by a shell unless the entrypoint is one.
    pub command: Vec<String>,
    /// Wall-clock budget for the process and its output; the whole process group is killed after it.
    pub timeout: Duration,
    /// Log the stderr excerpt even when the hook succeeds (CPA `logStderr`).
    pub log_stderr: bool,
}

impl ShellSpec {
    /// A shell hook with no arguments and stderr logging off.
    pub fn new(entrypoint: impl Into<String>, timeout: Duration) -> Self {
        ShellSpec { entrypoint: entrypoint.into(), command: Vec::new(), timeout, log_stderr: false }
    }

    /// Sets the arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.command = args.into_iter().map(Into::into).collect();
        self
    }
}

/// How the payload travels in an HTTP hook (CPA `parameterMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParameterMode {
    /// The payload JSON is the request body (`content-type: application/json`).
    #[default]
    Body,
    /// The payload JSON is the URL-encoded query parameter `value`.
    Query,
}

/// PEM files for a custom CA and/or a client certificate (CPA `caCert`, `clientCert`, `clientKey`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TlsFiles {
    /// CA bundle that replaces the system roots when set (as the CPA does).
    pub ca_cert: Option<PathBuf>,
    /// Client certificate chain for mutual TLS; needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// Private key of `client_cert`.
    pub client_key: Option<PathBuf>,
}

impl TlsFiles {
    /// True when no TLS option is set, so the shared default client serves the hook.
    pub fn is_empty(&self) -> bool {
        self.ca_cert.is_none() && self.client_cert.is_none() && self.client_key.is_none()
    }
}

/// An HTTP hook (CPA `type: http`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSpec {
    /// HTTP method, e.g. `GET` or `POST`.
    pub method: String,
    /// Endpoint URL; any query it has is kept and `value` is appended in query mode.
    pub url: String,
    /// Extra request headers.
    pub headers: BTreeMap<String, String>,
    /// Statuses counted as success; empty means `[200]`.
    pub success_codes: Vec<u16>,
    /// Where the payload goes.
    pub parameter_mode: ParameterMode,
    /// Budget for the whole exchange, body included.
    pub timeout: Duration,
    /// Optional TLS material.
    pub tls: TlsFiles,
}

impl HttpSpec {
    /// A body-mode hook with no headers, success code 200 and no TLS options.
    pub fn new(method: impl Into<String>, url: impl Into<String>, timeout: Duration) -> Self {
        HttpSpec {
            method: method.into(),
            url: url.into(),
            headers: BTreeMap::new(),
            success_codes: Vec::new(),
            parameter_mode: ParameterMode::Body,
            timeout,
            tls: TlsFiles::default(),
        }
    }

    /// The success codes in force, applying the CPA's default of `[200]`.
    pub fn effective_success_codes(&self) -> &[u16] {
        if self.success_codes.is_empty() { &[200] } else { &self.success_codes }
    }
}
