//! Writes replica counts through the `/scale` subresource.
//!
//! Only called when the count changes. A merge patch of `spec.replicas` carries no
//! resourceVersion, so a real API server never answers it with a conflict; conflicts,
//! throttling and server errors (a flaky API server, or the simulator's faults) are
//! retried a few times with a short backoff before the tick gives up and records it.

use std::time::Duration;

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::json;

use crate::workload::TargetKey;

/// Why a scale call failed after its retries.
#[derive(Debug, thiserror::Error)]
pub enum ScaleError {
    /// The API server refused the write with this status.
    #[error("scale of {key} rejected: {code} {reason}: {message}")]
    Rejected {
        /// The target.
        key: String,
        /// HTTP status code.
        code: u16,
        /// Kubernetes reason (Conflict, NotFound, ...).
        reason: String,
        /// The server's message.
        message: String,
    },
    /// The API server did not answer in time (`kubernetesTimeout`), every attempt.
    #[error("scale of {key} failed: the API server did not answer within {timeout:?}")]
    Timeout {
        /// The target.
        key: String,
        /// The timeout of each attempt.
        timeout: Duration,
    },
    /// The request never got an answer.
    #[error("scale of {key} failed: {source}")]
    Transport {
        /// The target.
        key: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
}

/// Patches `/scale` of workloads.
#[derive(Clone)]
pub struct Scaler {
    client: Client,
    field_manager: String,
    attempts: u32,
    backoff: Duration,
    timeout: Duration,
}

impl Scaler {
    /// A scaler that writes as field manager `scalehub`, each attempt bounded by `timeout`.
    pub fn new(client: Client, timeout: Duration) -> Self {
        Self { client, field_manager: "scalehub".into(), attempts: 4, backoff: Duration::from_millis(200), timeout }
    }

    /// Sets `spec.replicas` of the target to `replicas`; returns the replicas the server confirmed.
    pub async fn scale(&self, key: &TargetKey, replicas: i32) -> Result<i32, ScaleError> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &key.namespace, &crate::workload::api_resource(key.kind));
        let params = PatchParams { field_manager: Some(self.field_manager.clone()), ..Default::default() };
        let patch = Patch::Merge(json!({ "spec": { "replicas": replicas } }));
        let mut delay = self.backoff;
        let mut attempt = 1;
        loop {
            let err = match tokio::time::timeout(self.timeout, api.patch_scale(&key.name, &params, &patch)).await {
                Ok(Ok(scale)) => return Ok(scale.spec.and_then(|s| s.replicas).unwrap_or(replicas)),
                Ok(Err(e)) => e,
                Err(_) if attempt >= self.attempts => {
                    return Err(ScaleError::Timeout { key: key.to_string(), timeout: self.timeout });
                }
                Err(_) => {
                    tracing::debug!(target_key = %key, attempt, "scale timed out; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                    continue;
                }
            };
            let retryable = match &err {
                kube::Error::Api(s) => matches!(s.code, 409 | 429 | 500 | 502 | 503 | 504),
                _ => true,
            };
            if !retryable || attempt >= self.attempts {
                return Err(match err {
                    kube::Error::Api(s) => ScaleError::Rejected {
                        key: key.to_string(),
                        code: s.code,
                        reason: s.reason.clone(),
                        message: s.message.clone(),
                    },
                    other => ScaleError::Transport { key: key.to_string(), source: other },
                });
            }
            tracing::debug!(target_key = %key, attempt, error = %err, "scale retry");
            tokio::time::sleep(delay).await;
            delay *= 2;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCENARIO: &str =
        "namespaces: [shop]\nworkloads:\n  - {kind: Deployment, name: web, namespace: shop, replicas: 2}\n";

    #[tokio::test]
    async fn a_hung_api_server_fails_the_scale_after_the_timeout_instead_of_stalling_the_tick() {
        let scenario = scalehub_sim::Scenario::from_yaml(SCENARIO, std::path::Path::new(".")).unwrap();
        let sim = scalehub_sim::start(scalehub_sim::SimOptions { scenario: Some(scenario), ..Default::default() })
            .await
            .unwrap();
        let client = crate::demo::sim_client(&sim.url()).unwrap();
        let key = TargetKey::new("shop", crate::workload::Kind::Deployment, "web");
        let mut scaler = Scaler::new(client, Duration::from_millis(200));
        scaler.backoff = Duration::from_millis(10);
        assert_eq!(scaler.scale(&key, 3).await.unwrap(), 3);

        sim.faults().update(|f| f.latency_ms = 60_000);
        let started = std::time::Instant::now();
        let err = scaler.scale(&key, 4).await.unwrap_err();
        assert!(matches!(err, ScaleError::Timeout { .. }), "{err}");
        assert!(err.to_string().contains("did not answer within 200ms"), "{err}");
        // Four attempts of 200 ms and short pauses, not a minute.
        assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
        sim.shutdown().await;
    }
}
