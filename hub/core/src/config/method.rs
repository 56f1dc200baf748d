//! The CPA method schema (`type: shell|http`), accepted exactly as a CPA `config.yaml` writes it.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Issues;

/// How a method runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MethodType {
    /// A process fed the payload on stdin.
    Shell,
    /// An HTTP request carrying the payload.
    Http,
}

/// One user method or hook (`metric`, `evaluate`, `preScale`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Method {
    /// `shell` or `http`.
    #[serde(rename = "type")]
    pub method_type: MethodType,
    /// Timeout in milliseconds; required and > 0 (the CPA has no default and 0 always fails).
    pub timeout: Option<i64>,
    /// Settings for `type: shell`.
    pub shell: Option<ShellMethod>,
    /// Settings for `type: http`.
    pub http: Option<HttpMethod>,
}

/// A shell method: `entrypoint` run with `command` as its arguments, never through a shell.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShellMethod {
    /// The program, e.g. `python3` or `/bin/sh`; required (the CPA code has no default either).
    #[serde(default)]
    pub entrypoint: String,
    /// Its arguments.
    #[serde(default)]
    pub command: Vec<String>,
    /// Keep stderr in the record even when the hook succeeds.
    #[serde(default)]
    pub log_stderr: bool,
}

/// How an HTTP method carries the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParameterMode {
    /// The payload is the request body.
    #[default]
    Body,
    /// The payload is the query parameter `value`.
    Query,
}

/// An HTTP method.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpMethod {
    /// HTTP method, e.g. `POST`.
    #[serde(default = "default_http_method")]
    pub method: String,
    /// Absolute `http://` or `https://` URL.
    #[serde(default)]
    pub url: String,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Statuses that count as success; `[200]` when omitted.
    #[serde(default = "default_success_codes")]
    pub success_codes: Vec<u16>,
    /// Body or query parameter.
    #[serde(default)]
    pub parameter_mode: ParameterMode,
    /// PEM file of the CA that signs the server certificate.
    pub ca_cert: Option<String>,
    /// PEM client certificate for mTLS.
    pub client_cert: Option<String>,
    /// PEM client key for mTLS.
    pub client_key: Option<String>,
}

fn default_http_method() -> String {
    "GET".to_owned()
}

fn default_success_codes() -> Vec<u16> {
    vec![200]
}

impl Method {
    /// The timeout as a duration (validation guarantees it is set and positive).
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.timeout.unwrap_or(0).max(0).unsigned_abs())
    }

    /// Reports every problem with this method under `path`.
    pub(crate) fn validate(&self, path: &str, issues: &mut Issues) {
        match self.timeout {
            None => issues.push(format!("{path}.timeout"), "is required (milliseconds, > 0)"),
            Some(t) if t <= 0 => issues.push(format!("{path}.timeout"), "must be > 0"),
            Some(_) => {}
        }
        match (self.method_type, &self.shell, &self.http) {
            (MethodType::Shell, Some(shell), _) => shell.validate(&format!("{path}.shell"), issues),
            (MethodType::Http, _, Some(http)) => http.validate(&format!("{path}.http"), issues),
            (MethodType::Shell, None, _) => {
                issues.push(format!("{path}.shell"), "is required when type is shell");
            }
            (MethodType::Http, _, None) => {
                issues.push(format!("{path}.http"), "is required when type is http");
            }
        }
    }
}

impl ShellMethod {
    fn validate(&self, path: &str, issues: &mut Issues) {
        if self.entrypoint.trim().is_empty() {
            issues.push(format!("{path}.entrypoint"), "is required, e.g. /bin/sh or python3");
        }
    }
}

impl HttpMethod {
    fn validate(&self, path: &str, issues: &mut Issues) {
        if http::Method::from_bytes(self.method.as_bytes()).is_err() || self.method.is_empty() {
            issues.push(format!("{path}.method"), format!("{:?} is not an HTTP method", self.method));
        }
        if let Err(reason) = check_url(&self.url) {
            issues.push(format!("{path}.url"), reason);
        }
        for (name, value) in &self.headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                issues.push(format!("{path}.headers.{name}"), "is not a valid header name");
            } else if http::HeaderValue::from_str(value).is_err() {
                issues.push(format!("{path}.headers.{name}"), "has a value that is not a valid header value");
            }
        }
        if self.success_codes.is_empty() {
            issues.push(format!("{path}.successCodes"), "must list at least one status");
        }
        for (index, code) in self.success_codes.iter().enumerate() {
            if !(100..=599).contains(code) {
                issues.push(format!("{path}.successCodes[{index}]"), format!("{code} is not an HTTP status"));
            }
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            issues.push(format!("{path}.clientCert"), "clientCert and clientKey must be set together");
        }
    }
}

fn check_url(url: &str) -> Result<(), String> {
    if url.trim().is_empty() {
        return Err("is required".to_owned());
    }
    // Errors quote the URL without its credentials: they end up in logs.
    let shown = redact_userinfo(url);
    let uri: http::Uri = url.parse().map_err(|err| format!("{shown:?} is not a URL ({err})"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(host)) if !host.is_empty() => Ok(()),
        (Some("http" | "https"), _) => Err(format!("{shown:?} has no host")),
        _ => Err(format!("{shown:?} must start with http:// or https://")),
    }
}

/// `url` with any `user:password@` part replaced by `***@`, for messages and logs.
pub fn redact_userinfo(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else { return url.to_owned() };
    let authority_end = url[start..].find(['/', '?', '#']).map_or(url.len(), |i| start + i);
    match url[start..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn credentials_in_a_hook_url_never_reach_a_message() {
        assert_eq!(redact_userinfo("https://bob:s3cret@hooks.example/eval"), "https://***@hooks.example/eval");
        assert_eq!(redact_userinfo("http://token@h:8080"), "http://***@h:8080");
        assert_eq!(redact_userinfo("http://h/path@not-userinfo"), "http://h/path@not-userinfo");
        assert_eq!(redact_userinfo("no scheme"), "no scheme");
        let err = check_url("ftp://bob:s3cret@hooks.example/").unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
        assert!(err.contains("***@hooks.example"), "{err}");
    }
}
