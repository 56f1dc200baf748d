//! Leader election on a coordination.k8s.io/v1 Lease, the way client-go does it.
//!
//! Only the leader scales; a standby keeps watching and deciding nothing. The lock is
//! a plain GET + `replace` with the Lease's resourceVersion, so a lost race is a 409
//! Conflict and never two leaders. Expiry is judged like client-go: by when *this*
//! process last saw the Lease record change (a monotonic clock), never by comparing
//! another machine's `renewTime` with our wall clock, so clock skew cannot split the brain.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Settings of the lease lock.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    /// Namespace of the Lease object.
    pub namespace: String,
    /// Name of the Lease object; every hub replica of one installation uses the same.
    pub name: String,
    /// This process's identity, written into `holderIdentity`.
    pub identity: String,
    /// How long a lease stays valid without renewal (client-go default 15 s).
    pub lease_duration: Duration,
    /// How often the holder renews and a standby retries (client-go default 2 s).
    pub retry_period: Duration,
    /// How long one Lease request may take before the attempt counts as failed (a hung API
    /// server must not keep a leader believing it still leads).
    pub request_timeout: Duration,
}

impl LeaderConfig {
    /// Defaults matching client-go's leader election.
    pub fn new(namespace: &str, name: &str, identity: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            identity: identity.to_owned(),
            lease_duration: Duration::from_secs(15),
            retry_period: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// What the last attempt saw of the lease record, to judge its expiry locally.
struct Observed {
    holder: Option<String>,
    resource_version: Option<String>,
    at: Instant,
}

/// Runs the election until `shutdown` fires, publishing leadership on the returned
/// channel. On shutdown a leader releases the lease so a standby takes over at once.
pub fn spawn(api: Api<Lease>, config: LeaderConfig, shutdown: CancellationToken) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut observed: Option<Observed> = None;
        let mut last_renew = Instant::now();
        loop {
            let now = Instant::now();
            let attempt =
                tokio::time::timeout(config.request_timeout, try_acquire_or_renew(&api, &config, &mut observed, now));
            let attempt = attempt.await.unwrap_or_else(|_| {
                Err(kube::Error::Service(
                    format!("the API server did not answer within {:?}", config.request_timeout).into(),
                ))
            });
            let leading = match attempt {
                Ok(leading) => {
                    if leading {
                        last_renew = now;
                    }
                    leading
                }
                Err(e) => {
                    tracing::warn!(error = %e, lease = %config.name, "lease update failed");
                    // A leader that cannot renew keeps leading only while its lease is surely still valid.
                    *tx.borrow() && now.duration_since(last_renew) < config.lease_duration * 2 / 3
                }
            };
            tx.send_if_modified(|cur| {
                if *cur != leading {
                    tracing::info!(identity = %config.identity, leading, "leadership changed");
                    *cur = leading;
                    true
                } else {
                    false
                }
            });
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(config.retry_period) => {}
            }
        }
        if *tx.borrow() {
            let released = tokio::time::timeout(config.request_timeout, release(&api, &config)).await;
            if let Ok(Err(e)) = released {
                tracing::warn!(error = %e, "could not release the lease");
            }
            let _ = tx.send(false);
        }
    });
    rx
}

/// One round of the election: returns whether this process holds the lease now.
async fn try_acquire_or_renew(
    api: &Api<Lease>,
    config: &LeaderConfig,
    observed: &mut Option<Observed>,
    now: Instant,
) -> Result<bool, kube::Error> {
    let micro_now = MicroTime(jiff::Timestamp::now());
    let lease = match api.get_opt(&config.name).await? {
        Some(lease) => lease,
        None => {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(config.name.clone()), ..Default::default() },
                spec: Some(LeaseSpec {
                    holder_identity: Some(config.identity.clone()),
                    lease_duration_seconds: Some(config.lease_duration.as_secs() as i32),
                    acquire_time: Some(micro_now.clone()),
                    renew_time: Some(micro_now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        }
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let rv = lease.metadata.resource_version.clone();
    // Remember when the record last changed, by our own clock.
    let changed = observed.as_ref().is_none_or(|o| o.holder != holder || o.resource_version != rv);
    if changed {
        *observed = Some(Observed { holder: holder.clone(), resource_version: rv, at: now });
    }
    let held_by_me = holder.as_deref() == Some(config.identity.as_str());
    let duration =
        spec.lease_duration_seconds.map(|s| Duration::from_secs(s.max(1) as u64)).unwrap_or(config.lease_duration);
    let expired = observed.as_ref().is_some_and(|o| now.duration_since(o.at) >= duration);
    if !(held_by_me || holder.is_none() || expired) {
        return Ok(false);
    }
    let mut new_spec = spec.clone();
    new_spec.holder_identity = Some(config.identity.clone());
    new_spec.lease_duration_seconds = Some(config.lease_duration.as_secs() as i32);
    new_spec.renew_time = Some(micro_now.clone());
    if !held_by_me {
        new_spec.acquire_time = Some(micro_now);
        new_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    let mut updated = lease;
    updated.spec = Some(new_spec);
    match api.replace(&config.name, &PostParams::default(), &updated).await {
        Ok(l) => {
            *observed = Some(Observed {
                holder: Some(config.identity.clone()),
                resource_version: l.metadata.resource_version,
                at: now,
            });
            Ok(true)
        }
        // Somebody else wrote the lease between our GET and PUT: they won this round.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Gives the lease up by clearing the holder, so a standby need not wait for expiry.
async fn release(api: &Api<Lease>, config: &LeaderConfig) -> Result<(), kube::Error> {
    let Some(mut lease) = api.get_opt(&config.name).await? else { return Ok(()) };
    let spec = lease.spec.get_or_insert_with(Default::default);
    if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
    api.replace(&config.name, &PostParams::default(), &lease).await.map(|_| ())
}
