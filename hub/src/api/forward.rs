//! Forwarding a call that must run on a target's owner to that replica (sharded hubs).
//!
//! A real evaluation (`POST …/evaluation` without `dry_run`) runs in the target's loop and may
//! scale, so only the replica that owns the target can run it. Any replica answers it: one
//! that does not own the target sends the same request to the owner, at the address the
//! owner's member Lease announces, and passes the owner's answer back. The caller's
//! `Authorization` header goes with it and the owner checks it again; nothing else of the
//! request is copied. A forwarded request carries [`FORWARDED_BY`] and is never forwarded a
//! second time (during a handover it gets the owner's 503 instead of a loop), and the answer
//! says who ran it in [`SERVED_BY`].
//!
//! Dry runs, the metrics call and replays need no owner: the replica asked runs them itself,
//! with the same hooks and the same stored state, so the answer is the same.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::ApiState;
use super::error::ApiError;
use super::targets::TargetPath;
use crate::ctl::client::error_chain;
use crate::workload::TargetKey;

/// Set on a forwarded request: the identity of the replica that forwarded it.
pub const FORWARDED_BY: &str = "x-scalehub-forwarded-by";

/// Set on a forwarded answer: the identity of the replica that ran the call.
pub const SERVED_BY: &str = "x-scalehub-served-by";

/// How long connecting to the owner may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The HTTP client replicas talk to each other with: plain HTTP on the pod network, no
/// proxy from the environment, no redirects followed (a token goes to the owner or nowhere).
#[derive(Clone, Debug)]
pub struct Peers {
    http: Client<HttpConnector, Body>,
}

impl Default for Peers {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        Self { http: Client::builder(TokioExecutor::new()).build(connector) }
    }
}

/// Where a call that needs the owner runs.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// On this replica: it owns the target, the hub is not sharded, or the call was
    /// forwarded here already.
    Here,
    /// On the owner, at its API address.
    Owner {
        /// The owner's identity.
        identity: String,
        /// Where its API answers.
        address: SocketAddr,
    },
}

/// Where a call on `key` that needs the owner must run.
pub fn route(state: &ApiState, headers: &HeaderMap, key: &TargetKey) -> Result<Route, ApiError> {
    let Some(shard) = &state.ctx.shard else { return Ok(Route::Here) };
    if headers.contains_key(FORWARDED_BY) {
        return Ok(Route::Here);
    }
    match shard.owner(key) {
        // No live member (not even this one): the loop answers that it may not scale.
        None => Ok(Route::Here),
        Some((identity, _)) if identity == shard.me => Ok(Route::Here),
        Some((identity, Some(address))) => Ok(Route::Owner { identity, address }),
        Some((identity, None)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "hub replica {identity:?} owns this target but announces no API address (its --advertise-address); \
                 ask it directly, or use a dry run"
            ),
        )),
    }
}

/// Sends `POST …/evaluation` for `path` to the owner and passes its answer back.
pub async fn evaluation(
    state: &ApiState,
    headers: &HeaderMap,
    path: &TargetPath,
    identity: &str,
    address: SocketAddr,
) -> Result<Response, ApiError> {
    let unreachable = |why: String| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("hub replica {identity:?} owns this target and did not answer at {address}: {why}"),
        )
    };
    let uri = evaluation_uri(address, path).map_err(|e| unreachable(e.to_string()))?;
    let mut request = http::Request::post(uri).header(header::CONTENT_LENGTH, 0);
    if let Some(authorization) = headers.get(header::AUTHORIZATION) {
        request = request.header(header::AUTHORIZATION, authorization);
    }
    let me = state.ctx.shard.as_ref().map(|s| s.me.as_str()).unwrap_or_default();
    if let Ok(me) = HeaderValue::from_str(me) {
        request = request.header(FORWARDED_BY, me);
    }
    let request = request.body(Body::empty()).map_err(|e| unreachable(e.to_string()))?;
    let answer = state.peers.http.request(request).await.map_err(|e| unreachable(error_chain(&e)))?;
    let (parts, body) = answer.into_parts();
    let mut response = Response::new(Body::new(body));
    *response.status_mut() = parts.status;
    for name in [header::CONTENT_TYPE, header::RETRY_AFTER] {
        if let Some(value) = parts.headers.get(&name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    if let Ok(identity) = HeaderValue::from_str(identity) {
        response.headers_mut().insert(SERVED_BY, identity);
    }
    Ok(response)
}

/// `http://ADDRESS/api/v1/targets/NS/KIND/NAME/evaluation?dry_run=false`, each segment
/// percent-encoded, so no part of the path can change where the request goes.
fn evaluation_uri(address: SocketAddr, path: &TargetPath) -> Result<http::Uri, http::Error> {
    let mut uri = format!("http://{address}/api/v1/targets");
    for segment in [&path.namespace, &path.kind, &path.name] {
        uri.push('/');
        uri.extend(segment.bytes().map(encode).collect::<Vec<_>>());
    }
    uri.push_str("/evaluation?dry_run=false");
    Ok(http::Uri::try_from(uri)?)
}

/// One byte of a path segment: unreserved characters as they are, the rest as `%XX`.
fn encode(byte: u8) -> String {
    match byte {
        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(byte).to_string(),
        _ => format!("%{byte:02X}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(namespace: &str, kind: &str, name: &str) -> TargetPath {
        TargetPath { namespace: namespace.into(), kind: kind.into(), name: name.into() }
    }

    #[test]
    fn the_owner_s_uri_keeps_every_segment_a_segment() {
        let address: SocketAddr = "10.0.0.7:8080".parse().unwrap();
        let uri = evaluation_uri(address, &path("shop", "deployments", "web")).unwrap();
        assert_eq!(
            uri.to_string(),
            "http://10.0.0.7:8080/api/v1/targets/shop/deployments/web/evaluation?dry_run=false"
        );
        let uri = evaluation_uri(address, &path("a/../b", "deploy", "x?y#z@evil:1")).unwrap();
        assert_eq!(uri.authority().unwrap().as_str(), "10.0.0.7:8080");
        assert_eq!(uri.path(), "/api/v1/targets/a%2F..%2Fb/deploy/x%3Fy%23z%40evil%3A1/evaluation");
        let v6: SocketAddr = "[fd00::1]:8080".parse().unwrap();
        assert_eq!(evaluation_uri(v6, &path("n", "k", "w")).unwrap().authority().unwrap().as_str(), "[fd00::1]:8080");
    }
}
