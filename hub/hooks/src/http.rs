//! HTTP hooks: one pooled client per distinct TLS configuration, shared by all targets.
//!
//! Fixes two CPA bugs: it built a new client (and so new connections) per call whenever TLS
//! options were set, and it never closed response bodies. Here clients are cached and every
//! body is read (up to a cap) and dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method, Response, Url};

use crate::capture::{Captured, excerpt_text};
use crate::error::HookError;
use crate::outcome::HookOutcome;
use crate::spec::{HttpSpec, ParameterMode, TlsFiles};
use crate::tls::{TlsError, client_config};

/// Idle keep-alive connections are closed after this long; hooks run every few seconds, so
/// a warm connection usually gets reused.
const POOL_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(90);

/// Modification times of a TLS config's files; a change (certificate rotation) rebuilds it.
type Stamp = [Option<SystemTime>; 3];

/// The clients of one TLS config.
#[derive(Debug, Clone)]
struct ClientPair {
    /// Honours `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` from the environment, as the CPA did.
    proxied: Client,
    /// For loopback URLs, which Go's `ProxyFromEnvironment` never proxies (hyper's does).
    direct: Client,
}

impl ClientPair {
    /// The client to use for `url`.
    fn for_url(&self, url: &Url) -> &Client {
        if is_loopback(url) { &self.direct } else { &self.proxied }
    }
}

/// The cached clients, keyed by TLS files.
#[derive(Debug, Default)]
pub(crate) struct HttpClients {
    /// One client pair per distinct TLS config, so connections are pooled per trust setting.
    clients: Mutex<HashMap<TlsFiles, (Stamp, ClientPair)>>,
}

impl HttpClients {
    /// Number of TLS configs with a built client so far.
    pub fn len(&self) -> usize {
        self.clients.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// The clients for a TLS config, built on first use or when its files changed.
    async fn clients(&self, tls: &TlsFiles) -> Result<ClientPair, HookError> {
        let stamp = stamp(tls).await;
        if let Some(pair) = self.cached(tls, &stamp) {
            return Ok(pair);
        }
        let config = client_config(tls).await?;
        let build = |builder: reqwest::ClientBuilder| {
            builder
                .tls_backend_preconfigured(config.clone())
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                .redirect(same_origin_redirects())
                .build()
                .map_err(|e| HookError::Tls(TlsError::Client(e)))
        };
        let pair = ClientPair { proxied: build(Client::builder())?, direct: build(Client::builder().no_proxy())? };
        if let Ok(mut clients) = self.clients.lock() {
            // Two ticks may race to build the same client; either one is fine to keep.
            clients.insert(tls.clone(), (stamp, pair.clone()));
        }
        Ok(pair)
    }

    /// A cached client pair whose files have not changed since it was built.
    fn cached(&self, tls: &TlsFiles, stamp: &Stamp) -> Option<ClientPair> {
        let clients = self.clients.lock().ok()?;
        let (built, pair) = clients.get(tls)?;
        (built == stamp).then(|| pair.clone())
    }
}

/// True for `localhost` and loopback addresses.
/// Redirects are followed only within the hook's own origin (scheme, host and port), at most
/// five times: a hook endpoint must not send the payload, with the target's workload in it,
/// to another host. A refused redirect is the hook's answer, and fails it with its 3xx status.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first();
        let same = first.is_some_and(|f| f.origin() == attempt.url().origin());
        if same && attempt.previous().len() <= 5 { attempt.follow() } else { attempt.stop() }
    })
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    // IPv6 hosts come bracketed.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The modification times of the configured files (missing ones read as `None`).
async fn stamp(tls: &TlsFiles) -> Stamp {
    let mut out = [None; 3];
    for (slot, path) in out.iter_mut().zip([&tls.ca_cert, &tls.client_cert, &tls.client_key]) {
        if let Some(path) = path {
            *slot = tokio::fs::metadata(path).await.and_then(|m| m.modified()).ok();
        }
    }
    out
}

/// Calls an HTTP hook; fills `outcome` with the status and, on failure, a body excerpt.
pub(crate) async fn run_http(
    clients: &Arc<HttpClients>,
    spec: &HttpSpec,
    payload: &str,
    body_cap: usize,
    outcome: &mut HookOutcome,
) -> Result<String, HookError> {
    let method = Method::from_bytes(spec.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| HookError::InvalidMethod(spec.method.clone()))?;
    // The parser's message never repeats the URL, which may carry credentials.
    let mut url = Url::parse(&spec.url).map_err(|e| HookError::InvalidUrl(e.to_string()))?;
    let headers = header_map(spec)?;
    let pair = clients.clients(&spec.tls).await?;
    let client = pair.for_url(&url);

    let request = match spec.parameter_mode {
        ParameterMode::Body => client
            .request(method, url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(payload.to_owned()),
        ParameterMode::Query => {
            // Appended to the URL's own query, which stays as configured.
            url.query_pairs_mut().append_pair("value", payload);
            client.request(method, url)
        }
    }
    // Configured headers win, including a custom content-type.
    .headers(headers);

    let exchange = async {
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        outcome.http_status = Some(status);
        let body = read_body(response, body_cap).await?;
        Ok::<_, HookError>((status, body))
    };
    let (status, body) = tokio::time::timeout(spec.timeout, exchange).await.map_err(|_| {
        outcome.timed_out = true;
        HookError::Timeout(spec.timeout)
    })??;

    if !spec.effective_success_codes().contains(&status) {
        let excerpt = excerpt_text(&body);
        if !excerpt.is_empty() {
            outcome.stderr = Some(excerpt.clone());
        }
        return Err(HookError::HttpStatus { status, body: excerpt });
    }
    if body.overflowed {
        return Err(HookError::OutputTooLarge(body_cap));
    }
    Ok(body.text())
}

/// Reads the body up to `cap` bytes; more is flagged, and dropping the response closes the
/// connection instead of returning a half-read one to the pool.
async fn read_body(mut response: Response, cap: usize) -> Result<Captured, HookError> {
    let mut body = Captured::default();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        let room = cap - body.bytes.len();
        if chunk.len() > room {
            body.bytes.extend_from_slice(&chunk[..room]);
            body.overflowed = true;
            break;
        }
        body.bytes.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The configured headers as a typed map.
fn header_map(spec: &HttpSpec) -> Result<HeaderMap, HookError> {
    let mut map = HeaderMap::new();
    for (name, value) in &spec.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| HookError::InvalidHeader(name.clone()))?;
        // The value is not echoed in the error: headers often carry tokens.
        let value = HeaderValue::from_str(value).map_err(|_| HookError::InvalidHeader(name.to_string()))?;
        map.insert(name, value);
    }
    Ok(map)
}

/// A transport error with its whole cause chain (reqwest's own message is just "error sending
/// request") and without the URL.
fn transport(e: reqwest::Error) -> HookError {
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    HookError::HttpTransport(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_bypass_proxies_like_go_does() {
        for url in [
            "http://localhost:8080/x",
            "http://LOCALHOST/",
            "http://127.0.0.1/",
            "http://127.8.0.1/",
            "http://[::1]:80/",
        ] {
            assert!(is_loopback(&Url::parse(url).unwrap()), "{url}");
        }
        for url in ["http://svc.ns.svc:8080/", "http://10.0.0.1/", "http://[2001:db8::1]/", "http://localhost.example/"]
        {
            assert!(!is_loopback(&Url::parse(url).unwrap()), "{url}");
        }
    }
}
