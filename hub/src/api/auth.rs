//! Bearer-token authentication of API calls.
//!
//! Tokens come from the file named by the config's `api.tokenFile`, one per line:
//!
//! ```text
//! # name:token[:role]   role is `write` (the default) or `read`
//! alice:4f9c2e7a1b8d6c3e5f0a9b2c
//! grafana:c0ffee00c0ffee00c0ffee00:read
//! ```
//!
//! The name is the author recorded with an override. Tokens are at least 16 characters,
//! contain no `:` or whitespace, are compared in constant time and never logged.
//!
//! Rules: every write needs a `write` token (401 without a valid token, 403 for a `read`
//! token). Reads are open unless `api.protectReads` is set; then any valid token reads.
//! With no token file, writes are refused with 403 (there is nobody they could be
//! attributed to), and protected reads are refused too.
//!
//! Optionally ([`Auth::with_kubernetes_review`]), tokens that are not in the file are
//! checked with the API server (TokenReview, then SubjectAccessReview on
//! `targets.scalehub.io`), as kube-rbac-proxy does; see [`super::kube_auth`].
//!
//! The file is read again when its modification time changes (checked at most every few
//! seconds), so a rotated Secret takes effect without a restart; a file that no longer
//! parses keeps the previous tokens and logs why.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use subtle::ConstantTimeEq;

use super::ApiState;
use super::error::ApiError;

/// Shortest token accepted, so a guessable token cannot slip in by accident.
pub const MIN_TOKEN_LEN: usize = 16;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Reads only.
    Read,
    /// Reads and writes.
    Write,
}

/// Who made a request, as named in the token file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The token's name: the author of what the caller writes.
    pub name: String,
    /// What the token may do.
    pub role: Role,
}

/// Why the token file cannot be used. Messages name lines, never their content.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The file could not be read.
    #[error("cannot read token file {path}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `name:token[:role]`.
    #[error("token file line {line}: {why}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        why: &'static str,
    },
}

struct Entry {
    name: String,
    token: Vec<u8>,
    role: Role,
}

/// How often the token file's modification time is checked, at most.
const RECHECK: Duration = Duration::from_secs(2);

/// The tokens, and the file they came from (if any) to notice rotations.
struct Tokens {
    path: Option<PathBuf>,
    recheck: Duration,
    loaded: RwLock<Loaded>,
}

struct Loaded {
    entries: Arc<Vec<Entry>>,
    modified: Option<SystemTime>,
    checked: Instant,
}

impl Tokens {
    fn new(entries: Vec<Entry>, path: Option<PathBuf>, modified: Option<SystemTime>) -> Self {
        let loaded = Loaded { entries: Arc::new(entries), modified, checked: Instant::now() };
        Self { path, recheck: RECHECK, loaded: RwLock::new(loaded) }
    }

    /// The current tokens, re-reading the file first if it changed.
    fn entries(&self) -> Arc<Vec<Entry>> {
        let Ok(loaded) = self.loaded.read() else { return Arc::default() };
        let (Some(path), true) = (&self.path, loaded.checked.elapsed() >= self.recheck) else {
            return loaded.entries.clone();
        };
        drop(loaded);
        let Ok(mut loaded) = self.loaded.write() else { return Arc::default() };
        loaded.checked = Instant::now();
        let modified = modified(path);
        if modified.is_none() && matches!(std::fs::metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound) {
            // A deleted token file revokes its tokens: that is what deleting it is for.
            if !loaded.entries.is_empty() {
                tracing::warn!(path = %path.display(), "token file deleted; its tokens are revoked");
                loaded.entries = Arc::default();
            }
            loaded.modified = None;
        } else if modified != loaded.modified {
            match read_file(path) {
                Ok(entries) => {
                    tracing::info!(path = %path.display(), tokens = entries.len(), "token file reloaded");
                    loaded.entries = Arc::new(entries);
                    loaded.modified = modified;
                }
                // Keep serving the old tokens: locking everyone out over a typo helps nobody.
                Err(e) => {
                    tracing::warn!(error = %e, "token file changed but cannot be used; keeping the previous tokens")
                }
            }
        }
        loaded.entries.clone()
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The API's access rules: the tokens (if any), Kubernetes reviews (if enabled) and
/// whether reads need a credential.
pub struct Auth {
    tokens: Option<Tokens>,
    protect_reads: bool,
    kube: Option<super::kube_auth::KubeReview>,
    /// Whether a reader may run hooks (`api.openHookRuns`).
    open_hook_runs: bool,
    /// API-triggered hook runs per second (`api.hookRunsPerSecond`).
    hook_runs_per_second: u32,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: tokens must never reach a log.
        let names: Option<Vec<String>> =
            self.tokens.as_ref().map(|t| t.entries().iter().map(|e| e.name.clone()).collect());
        f.debug_struct("Auth")
            .field("tokens", &names)
            .field("protect_reads", &self.protect_reads)
            .field("kubernetes_review", &self.kube.is_some())
            .finish()
    }
}

impl Auth {
    /// No tokens: reads open, writes refused.
    pub fn without_tokens() -> Self {
        Self { tokens: None, protect_reads: false, kube: None, open_hook_runs: false, hook_runs_per_second: 5 }
    }

    /// The rules of the config's `api` section; reads the token file if one is named.
    pub fn from_config(config: &scalehub_core::config::ApiConfig) -> Result<Self, AuthError> {
        let tokens = match &config.token_file {
            Some(path) => Some(Tokens::new(read_file(path)?, Some(path.clone()), modified(path))),
            None => None,
        };
        Ok(Self {
            tokens,
            protect_reads: config.protect_reads,
            kube: None,
            open_hook_runs: config.open_hook_runs,
            hook_runs_per_second: config.hook_runs_per_second(),
        })
    }

    /// Rules from the text of a token file (tests, or a file read elsewhere).
    pub fn from_text(text: &str, protect_reads: bool) -> Result<Self, AuthError> {
        Ok(Self {
            tokens: Some(Tokens::new(parse(text)?, None, None)),
            protect_reads,
            kube: None,
            open_hook_runs: false,
            hook_runs_per_second: 5,
        })
    }

    /// Lets readers run hooks (`api.openHookRuns`), as the CPA's open API did.
    pub fn with_open_hook_runs(mut self, open: bool) -> Self {
        self.open_hook_runs = open;
        self
    }

    /// API-triggered hook runs allowed per second.
    pub fn hook_runs_per_second(&self) -> u32 {
        self.hook_runs_per_second
    }

    /// Also accepts Kubernetes bearer tokens, checked with TokenReview and
    /// SubjectAccessReview through `client` (see [`super::kube_auth`]).
    pub fn with_kubernetes_review(mut self, client: kube::Client, timeout: Duration) -> Self {
        self.kube = Some(super::kube_auth::KubeReview::new(client).with_timeout(timeout));
        self
    }

    /// Checks the token file for changes every `every` instead of every 2 s (tests).
    pub fn recheck_every(mut self, every: Duration) -> Self {
        if let Some(tokens) = &mut self.tokens {
            tokens.recheck = every;
        }
        self
    }

    /// Whether reads need a token.
    pub fn reads_protected(&self) -> bool {
        self.protect_reads
    }

    /// Whether writes are possible at all (a token file or Kubernetes reviews).
    pub fn writes_enabled(&self) -> bool {
        self.tokens.is_some() || self.kube.is_some()
    }

    /// Checks that the request may read targets in `namespace` (None: cluster-wide), asking
    /// the API server about tokens that are not in the token file when reviews are enabled.
    pub async fn read_access(&self, headers: &HeaderMap, namespace: Option<&str>) -> Result<Option<Caller>, ApiError> {
        match &self.kube {
            Some(kube) if self.protect_reads && self.file_caller(headers).is_none() => {
                kube.review(bearer_token(headers)?, Role::Read, namespace).await.map(Some)
            }
            _ => self.check_read(headers),
        }
    }

    /// Checks that the request may run the hooks of a target in `namespace` without scaling
    /// it (the CPA's metrics call and a dry-run evaluation): a write token, or a read when
    /// `api.openHookRuns` is set. Running hooks is work done in the cluster on the caller's
    /// behalf, not a read of what the hub knows.
    pub async fn hook_run_access(&self, headers: &HeaderMap, namespace: Option<&str>) -> Result<(), ApiError> {
        if self.open_hook_runs {
            return self.read_access(headers, namespace).await.map(|_| ());
        }
        self.write_access(headers, namespace).await.map(|_| ()).map_err(|e| {
            if e.status == StatusCode::FORBIDDEN && !self.writes_enabled() {
                forbidden("running a target's hooks through the API needs a write token, and this hub has none (or set api.openHookRuns)")
            } else {
                e
            }
        })
    }

    /// Checks that the request may write targets in `namespace`; returns the caller.
    pub async fn write_access(&self, headers: &HeaderMap, namespace: Option<&str>) -> Result<Caller, ApiError> {
        match &self.kube {
            Some(kube) if self.file_caller(headers).is_none() => {
                kube.review(bearer_token(headers)?, Role::Write, namespace).await
            }
            _ => self.check_write(headers),
        }
    }

    fn file_caller(&self, headers: &HeaderMap) -> Option<Caller> {
        self.tokens.as_ref()?;
        self.authenticate(headers).ok()
    }

    /// Checks that the request may read.
    pub fn check_read(&self, headers: &HeaderMap) -> Result<Option<Caller>, ApiError> {
        if !self.protect_reads {
            return Ok(None);
        }
        if self.tokens.is_none() {
            return Err(forbidden("reads are protected (api.protectReads) but the hub has no api.tokenFile"));
        }
        self.authenticate(headers).map(Some)
    }

    /// Checks that the request may write; returns the caller, whose name is the author.
    pub fn check_write(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        if self.tokens.is_none() {
            return Err(forbidden("writes are disabled: the hub config names no api.tokenFile"));
        }
        let caller = self.authenticate(headers)?;
        match caller.role {
            Role::Write => Ok(caller),
            Role::Read => Err(forbidden(format!("token {:?} may only read", caller.name))),
        }
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let presented = bearer_token(headers)?;
        let entries = self.tokens.as_ref().map(Tokens::entries).unwrap_or_default();
        // Compare with every entry, without stopping at a match, so timing says nothing
        // about which entry (or how much of a token) matched.
        let mut found = None;
        for (i, entry) in entries.iter().enumerate() {
            if bool::from(entry.token.as_slice().ct_eq(presented.as_bytes())) {
                found = Some(i);
            }
        }
        let entry = found
            .and_then(|i| entries.get(i))
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "invalid bearer token"))?;
        Ok(Caller { name: entry.name.clone(), role: entry.role })
    }
}

/// The token of an `Authorization: Bearer <token>` header, or a 401.
fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, m);
    let value =
        headers.get(header::AUTHORIZATION).ok_or_else(|| unauthorized("missing Authorization: Bearer <token>"))?;
    let value = value.to_str().map_err(|_| unauthorized("malformed Authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(unauthorized("the Authorization header must be Bearer <token>")),
    }
}

/// The namespace a request's path names (`/api/v1/targets/{namespace}/...`), for RBAC.
/// Inside the nested API router the `/api/v1` prefix is already stripped.
fn path_namespace(parts: &Parts) -> Option<String> {
    let path = parts.uri.path();
    let rest = path.strip_prefix("/api/v1").unwrap_or(path);
    let mut segments = rest.split('/').filter(|s| !s.is_empty());
    match (segments.next(), segments.next()) {
        (Some("targets"), Some(ns)) => Some(ns.to_owned()),
        _ => None,
    }
}

fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, message)
}

fn read_file(path: &Path) -> Result<Vec<Entry>, AuthError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| AuthError::Read { path: path.display().to_string(), source })?;
    parse(&text)
}

fn parse(text: &str) -> Result<Vec<Entry>, AuthError> {
    let mut entries: Vec<Entry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let bad = |why| AuthError::Line { line, why };
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut parts = trimmed.split(':');
        let name = parts.next().unwrap_or_default().trim();
        let token = parts.next().ok_or(bad("expected name:token[:role]"))?.trim();
        let role = match parts.next().map(str::trim) {
            None | Some("write") => Role::Write,
            Some("read") => Role::Read,
            Some(_) => return Err(bad("the role must be read or write")),
        };
        if parts.next().is_some() {
            return Err(bad("too many ':' (tokens may not contain ':')"));
        }
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c)) {
            return Err(bad("the name must be letters, digits, '.', '_', '@' or '-'"));
        }
        if token.len() < MIN_TOKEN_LEN || token.chars().any(char::is_whitespace) {
            return Err(bad("the token must be at least 16 characters without whitespace"));
        }
        if entries.iter().any(|e| e.token == token.as_bytes()) {
            return Err(bad("the same token appears twice"));
        }
        entries.push(Entry { name: name.to_owned(), token: token.as_bytes().to_vec(), role });
    }
    Ok(entries)
}

/// Extractor: the request may read (checked before the handler runs).
#[derive(Debug)]
pub struct CanRead;

impl FromRequestParts<ApiState> for CanRead {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        let namespace = path_namespace(parts);
        state.auth.read_access(&parts.headers, namespace.as_deref()).await.map(|_| CanRead)
    }
}

/// Extractor: the request may write; holds the caller.
#[derive(Debug)]
pub struct CanWrite(pub Caller);

impl FromRequestParts<ApiState> for CanWrite {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        let namespace = path_namespace(parts);
        state.auth.write_access(&parts.headers, namespace.as_deref()).await.map(CanWrite)
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
