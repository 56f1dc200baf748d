//! Kubernetes authentication and authorisation of API calls, as kube-rbac-proxy does it.
//!
//! A bearer token that is not in the token file is sent to the API server in a
//! `TokenReview`; the user it names is then checked with a `SubjectAccessReview` on the
//! virtual resource `targets.scalehub.io`: verb `get` to read, `update` to write, in the
//! target's namespace (lists, the hub status and the stream are cluster-wide). So a Role
//! like this lets a team override its own targets:
//!
//! ```yaml
//! rules:
//! - apiGroups: ["scalehub.io"]
//!   resources: ["targets"]
//!   verbs: ["get", "update"]
//! ```
//!
//! The user name becomes the override's author. Answers are cached for 30 s per token,
//! access and namespace, so a dashboard does not send two reviews per request; a failed
//! review call is a 503 and is not cached. The hub's ServiceAccount needs `create` on
//! `tokenreviews` and `subjectaccessreviews` (the `system:auth-delegator` ClusterRole).

use hashlink::LruCache;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use kube::api::{Api, PostParams};

use sha2::Digest as _;

use super::auth::{Caller, Role};
use super::error::ApiError;

/// API group of the virtual resource that RBAC rules name.
pub const GROUP: &str = "scalehub.io";
/// The virtual resource that RBAC rules name.
pub const RESOURCE: &str = "targets";
/// How long a review's answer is reused.
const TTL: Duration = Duration::from_secs(30);
/// Cached answers kept at most; beyond it the least recently used goes.
const MAX_CACHED: usize = 10_000;

/// The longest bearer token sent to a review (Kubernetes tokens are a few kilobytes).
const MAX_TOKEN_LEN: usize = 8 << 10;

/// A cached answer's key: the token as its SHA-256 digest, so the cache neither holds
/// tokens nor grows with their size.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CacheKey {
    token: [u8; 32],
    role: Role,
    namespace: Option<String>,
}

type Answer = Result<Caller, (StatusCode, String)>;

/// Reviews tokens and permissions with the API server.
pub struct KubeReview {
    client: kube::Client,
    timeout: std::time::Duration,
    cache: Mutex<LruCache<CacheKey, (Instant, Answer)>>,
}

impl std::fmt::Debug for KubeReview {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeReview").finish_non_exhaustive()
    }
}

impl KubeReview {
    /// Reviews through `client` (the hub's own credentials).
    pub fn new(client: kube::Client) -> Self {
        Self { client, timeout: std::time::Duration::from_secs(10), cache: Mutex::new(LruCache::new(MAX_CACHED)) }
    }

    /// Bounds each review request by `timeout` (`kubernetesTimeout`).
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The caller behind `token` if it may `role` targets in `namespace` (None: cluster-wide).
    pub async fn review(&self, token: &str, role: Role, namespace: Option<&str>) -> Result<Caller, ApiError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "the bearer token is too long"));
        }
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let key = CacheKey { token: digest, role, namespace: namespace.map(str::to_owned) };
        let cached = self
            .cache
            .lock()
            .ok()
            .and_then(|mut c| c.get(&key).filter(|(at, _)| at.elapsed() < TTL).map(|(_, a)| a.clone()));
        let answer = match cached {
            Some(answer) => answer,
            None => {
                let answer = self.ask(token, role, namespace).await;
                // An API server that did not answer says nothing about the token: ask again next time.
                if answer.as_ref().err().is_none_or(|(status, _)| *status != StatusCode::SERVICE_UNAVAILABLE)
                    && let Ok(mut cache) = self.cache.lock()
                {
                    cache.insert(key, (Instant::now(), answer.clone()));
                }
                answer
            }
        };
        answer.map_err(|(status, message)| ApiError::new(status, message))
    }

    async fn ask(&self, token: &str, role: Role, namespace: Option<&str>) -> Answer {
        let unavailable = |e: kube::Error| {
            tracing::warn!(error = %e, "token or access review failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot verify the token: the Kubernetes API server did not answer".to_owned(),
            )
        };
        let timed_out = || {
            tracing::warn!(timeout = ?self.timeout, "token or access review timed out");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot verify the token: the Kubernetes API server did not answer in time".to_owned(),
            )
        };
        let review = TokenReview {
            spec: TokenReviewSpec { token: Some(token.to_owned()), audiences: None },
            ..Default::default()
        };
        let api = Api::<TokenReview>::all(self.client.clone());
        let review = tokio::time::timeout(self.timeout, api.create(&PostParams::default(), &review))
            .await
            .map_err(|_| timed_out())?
            .map_err(unavailable)?;
        let status = review.status.unwrap_or_default();
        let user = match (status.authenticated, status.user) {
            (Some(true), Some(user)) if user.username.as_deref().is_some_and(|u| !u.is_empty()) => user,
            _ => return Err((StatusCode::UNAUTHORIZED, "invalid bearer token".to_owned())),
        };
        let name = user.username.clone().unwrap_or_default();
        let verb = match role {
            Role::Read => "get",
            Role::Write => "update",
        };
        let access = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username,
                groups: user.groups,
                uid: user.uid,
                extra: user.extra,
                resource_attributes: Some(ResourceAttributes {
                    group: Some(GROUP.to_owned()),
                    resource: Some(RESOURCE.to_owned()),
                    verb: Some(verb.to_owned()),
                    namespace: namespace.map(str::to_owned),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api = Api::<SubjectAccessReview>::all(self.client.clone());
        let access = tokio::time::timeout(self.timeout, api.create(&PostParams::default(), &access))
            .await
            .map_err(|_| timed_out())?
            .map_err(unavailable)?;
        if access.status.is_some_and(|s| s.allowed) {
            Ok(Caller { name, role })
        } else {
            let scope = namespace.map_or_else(|| "cluster-wide".to_owned(), |ns| format!("in namespace {ns}"));
            Err((StatusCode::FORBIDDEN, format!("{name} may not {verb} {RESOURCE}.{GROUP} {scope}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn fake(calls: Arc<AtomicUsize>) -> kube::Client {
        crate::api::testing::review_server("good", "alice", "shop", calls)
    }

    #[tokio::test]
    async fn a_kubernetes_user_is_checked_against_rbac_in_the_targets_namespace() {
        let review = KubeReview::new(fake(Arc::default()));
        let caller = review.review("good", Role::Write, Some("shop")).await.unwrap();
        assert_eq!(caller, Caller { name: "alice".into(), role: Role::Write });
        let denied = review.review("good", Role::Write, Some("batch")).await.unwrap_err();
        assert_eq!(denied.status, StatusCode::FORBIDDEN);
        assert!(
            denied.message.contains("alice may not update targets.scalehub.io in namespace batch"),
            "{}",
            denied.message
        );
        assert_eq!(review.review("bad", Role::Read, Some("shop")).await.unwrap_err().status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn answers_are_cached_per_token_and_namespace() {
        let calls = Arc::new(AtomicUsize::new(0));
        let review = KubeReview::new(fake(calls.clone()));
        for _ in 0..3 {
            review.review("good", Role::Write, Some("shop")).await.unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one token review and one access review");
        review.review("good", Role::Write, Some("batch")).await.unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn the_cache_keeps_digests_not_tokens_and_refuses_huge_tokens_unasked() {
        let calls = Arc::new(AtomicUsize::new(0));
        let review = KubeReview::new(fake(calls.clone()));
        review.review("good", Role::Write, Some("shop")).await.unwrap();
        let cached = format!("{:?}", review.cache.lock().unwrap().iter().map(|(k, _)| k).collect::<Vec<_>>());
        assert!(!cached.contains("good"), "the token itself is cached: {cached}");
        let huge = "x".repeat(MAX_TOKEN_LEN + 1);
        let err = review.review(&huge, Role::Read, None).await.unwrap_err();
        assert_eq!(err.status, StatusCode::UNAUTHORIZED);
        assert_eq!(calls.load(Ordering::SeqCst), 2, "a huge token was sent for review");
    }

    #[tokio::test]
    async fn a_flood_of_unknown_tokens_evicts_the_least_recently_used_answers() {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut review = KubeReview::new(fake(calls.clone()));
        review.cache = Mutex::new(LruCache::new(8));
        review.review("good", Role::Write, Some("shop")).await.unwrap();
        for i in 0..50 {
            let _ = review.review(&format!("flood-{i}"), Role::Read, None).await;
            // The caller who keeps using the hub keeps its answer.
            review.review("good", Role::Write, Some("shop")).await.unwrap();
        }
        assert_eq!(review.cache.lock().unwrap().len(), 8);
        let before = calls.load(Ordering::SeqCst);
        review.review("good", Role::Write, Some("shop")).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), before, "the answer in use was evicted");
    }

    #[tokio::test]
    async fn an_unreachable_api_server_is_a_503_that_is_not_cached() {
        let client = kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
        let review = KubeReview::new(client);
        let err = review.review("good", Role::Read, None).await.unwrap_err();
        assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(review.cache.lock().unwrap().is_empty());
    }
}
