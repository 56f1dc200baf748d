//! Membership: one coordination.k8s.io/v1 Lease per hub replica, and the live members.
//!
//! Each replica holds `scalehub-member-<identity>` (labelled `scalehub.io/member=true`) and
//! renews it every retry period, the way the leader Lease is renewed; it lists the member
//! Leases as often. Liveness is judged like client-go judges a leader: a member is live while
//! its Lease record keeps changing, by when *this* process last saw it change (a monotonic
//! clock), never by comparing another machine's `renewTime` with our wall clock. A replica
//! counts itself live only while its own last renewal is younger than two thirds of the
//! lease duration, so it drops its targets before any other replica can judge it gone. A
//! replica that stops deletes its Lease, so the others take its share at once; the Lease of
//! a replica that died is deleted by the others once it has been stale for ten lease
//! durations (a precondition on its resourceVersion keeps a renewed one).
//!
//! A member Lease also says where that replica's API answers (`scalehub.io/api-address`,
//! an `IP:port`), so a request that must run on a target's owner can be forwarded to it.
//! The value is parsed as a socket address and nothing else: no host name, path or scheme
//! from a Lease ever reaches a URL.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams, Preconditions};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The label every member Lease carries.
pub const MEMBER_LABEL: &str = "scalehub.io/member";

/// The annotation of a member Lease with the `IP:port` its replica's API answers on.
pub const ADDRESS_ANNOTATION: &str = "scalehub.io/api-address";

/// How long past its lease duration a dead member's Lease is kept, in lease durations.
const STALE_DURATIONS: u32 = 10;

/// Settings of the membership Lease.
#[derive(Clone, Debug)]
pub struct MemberConfig {
    /// This replica's identity (the Lease's `holderIdentity`).
    pub identity: String,
    /// How long a member stays live without renewing.
    pub lease_duration: Duration,
    /// How often a member renews and lists.
    pub retry_period: Duration,
    /// How long one request may take before the attempt counts as failed.
    pub request_timeout: Duration,
    /// Where this replica's API answers the other members (`None`: it cannot be forwarded to).
    pub address: Option<SocketAddr>,
}

/// The live members as this replica sees them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Members {
    /// Live identities, sorted; this replica's own among them only while it is live.
    pub live: Vec<String>,
    /// Whether this replica's own Lease is fresh: without it, it must tick nothing.
    pub me_live: bool,
    /// The API address of each live member other than this one that announces one.
    pub addresses: BTreeMap<String, SocketAddr>,
}

/// The Lease name of a member: `scalehub-member-` and the identity made a DNS subdomain
/// (lowercase letters, digits, `-` and `.`); an identity that had to change, or is too long,
/// gets a hash of itself appended so that two identities never share a Lease.
pub fn lease_name(identity: &str) -> String {
    const PREFIX: &str = "scalehub-member-";
    let cleaned: String = identity
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '.' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    let cleaned = cleaned.trim_matches(|c| c == '-' || c == '.');
    if cleaned == identity && PREFIX.len() + cleaned.len() <= 253 {
        return format!("{PREFIX}{cleaned}");
    }
    let hash = super::assign::fnv1a(identity.as_bytes());
    let room = 253 - PREFIX.len() - 17;
    let head: String = cleaned.chars().take(room).collect();
    let head = head.trim_end_matches(['-', '.']);
    match head.is_empty() {
        true => format!("{PREFIX}{hash:016x}"),
        false => format!("{PREFIX}{head}-{hash:016x}"),
    }
}

/// What this replica last saw of one member Lease.
struct Seen {
    holder: Option<String>,
    address: Option<SocketAddr>,
    resource_version: Option<String>,
    duration: Duration,
    /// When the record last changed, by this process's clock.
    changed_at: Instant,
}

/// The member Leases as this replica has seen them over time: the liveness judgement,
/// separate from the API calls so that it can be tested with a paused clock.
#[derive(Default)]
pub struct View {
    seen: HashMap<String, Seen>,
}

impl View {
    /// Takes in one listing of the member Leases at `now`.
    pub fn observe(&mut self, leases: &[Lease], default_duration: Duration, now: Instant) {
        let mut next = HashMap::with_capacity(leases.len());
        for lease in leases {
            let Some(name) = lease.metadata.name.clone() else { continue };
            let spec = lease.spec.clone().unwrap_or_default();
            let holder = spec.holder_identity.filter(|h| !h.is_empty());
            let address = lease.metadata.annotations.as_ref().and_then(|a| a.get(ADDRESS_ANNOTATION));
            let address = address.and_then(|a| a.parse::<SocketAddr>().ok());
            let rv = lease.metadata.resource_version.clone();
            let duration =
                spec.lease_duration_seconds.map(|s| Duration::from_secs(s.max(1) as u64)).unwrap_or(default_duration);
            let changed_at = match self.seen.remove(&name) {
                Some(old) if old.holder == holder && old.resource_version == rv => old.changed_at,
                _ => now,
            };
            next.insert(name, Seen { holder, address, resource_version: rv, duration, changed_at });
        }
        self.seen = next;
    }

    /// The identities whose Lease changed within its duration, other than `me`.
    pub fn live_others(&self, me: &str, now: Instant) -> Vec<String> {
        let mut live: Vec<String> = self.live(me, now).filter_map(|s| s.holder.clone()).collect();
        live.sort();
        live.dedup();
        live
    }

    /// The API address of each live member other than `me` whose Lease announces one.
    pub fn live_addresses(&self, me: &str, now: Instant) -> BTreeMap<String, SocketAddr> {
        self.live(me, now).filter_map(|s| Some((s.holder.clone()?, s.address?))).collect()
    }

    fn live<'a>(&'a self, me: &'a str, now: Instant) -> impl Iterator<Item = &'a Seen> + 'a {
        self.seen
            .values()
            .filter(move |s| now.duration_since(s.changed_at) < s.duration)
            .filter(move |s| s.holder.as_deref().is_some_and(|holder| holder != me))
    }

    /// Leases whose record has not changed for [`STALE_DURATIONS`] lease durations, with
    /// the resourceVersion to delete them by.
    fn stale(&self, now: Instant) -> Vec<(String, Option<String>)> {
        self.seen
            .iter()
            .filter(|(_, s)| now.duration_since(s.changed_at) >= s.duration * STALE_DURATIONS)
            .map(|(name, s)| (name.clone(), s.resource_version.clone()))
            .collect()
    }
}

/// Holds this replica's member Lease and publishes the live members until `shutdown` fires;
/// then deletes the Lease.
pub fn spawn(api: Api<Lease>, config: MemberConfig, shutdown: CancellationToken) -> watch::Receiver<Members> {
    let (tx, rx) = watch::channel(Members::default());
    tokio::spawn(async move {
        let name = lease_name(&config.identity);
        let mut view = View::default();
        let mut last_renew: Option<Instant> = None;
        loop {
            let now = Instant::now();
            match tokio::time::timeout(config.request_timeout, renew(&api, &name, &config)).await {
                Ok(Ok(())) => last_renew = Some(now),
                Ok(Err(e)) => tracing::warn!(error = %e, lease = %name, "member lease renewal failed"),
                Err(_) => tracing::warn!(lease = %name, "member lease renewal timed out"),
            }
            let selector = format!("{MEMBER_LABEL}=true");
            let params = ListParams::default().labels(&selector);
            let listed = tokio::time::timeout(config.request_timeout, api.list(&params));
            match listed.await {
                Ok(Ok(list)) => view.observe(&list.items, config.lease_duration, now),
                Ok(Err(e)) => tracing::warn!(error = %e, "listing member leases failed"),
                Err(_) => tracing::warn!("listing member leases timed out"),
            }
            let me_live = last_renew.is_some_and(|at| now.duration_since(at) < config.lease_duration * 2 / 3);
            let mut live = view.live_others(&config.identity, now);
            let addresses = view.live_addresses(&config.identity, now);
            if me_live {
                live.push(config.identity.clone());
                live.sort();
            }
            tx.send_if_modified(|current| {
                let next = Members { live, me_live, addresses };
                if *current == next {
                    return false;
                }
                tracing::info!(members = ?next.live, me_live, "hub members changed");
                *current = next;
                true
            });
            for (stale, rv) in view.stale(now) {
                if stale != name {
                    let params = DeleteParams {
                        preconditions: Some(Preconditions { resource_version: rv, uid: None }),
                        ..DeleteParams::default()
                    };
                    match api.delete(&stale, &params).await {
                        Ok(_) => tracing::info!(lease = %stale, "deleted the lease of a member gone for good"),
                        Err(e) => tracing::debug!(error = %e, lease = %stale, "stale member lease not deleted"),
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(config.retry_period) => {}
            }
        }
        let _ = tx.send(Members::default());
        let deleted = tokio::time::timeout(config.request_timeout, api.delete(&name, &DeleteParams::default())).await;
        if let Ok(Err(e)) = deleted {
            tracing::warn!(error = %e, lease = %name, "could not delete the member lease");
        }
    });
    rx
}

/// Creates or renews this replica's Lease.
async fn renew(api: &Api<Lease>, name: &str, config: &MemberConfig) -> Result<(), kube::Error> {
    let now = MicroTime(jiff::Timestamp::now());
    let seconds = config.lease_duration.as_secs().max(1) as i32;
    match api.get_opt(name).await? {
        Some(mut lease) => {
            let annotations = lease.metadata.annotations.get_or_insert_with(Default::default);
            match config.address {
                Some(address) => annotations.insert(ADDRESS_ANNOTATION.to_owned(), address.to_string()),
                None => annotations.remove(ADDRESS_ANNOTATION),
            };
            let spec = lease.spec.get_or_insert_with(Default::default);
            spec.holder_identity = Some(config.identity.clone());
            spec.lease_duration_seconds = Some(seconds);
            spec.renew_time = Some(now);
            api.replace(name, &PostParams::default(), &lease).await.map(|_| ())
        }
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.to_owned()),
                    labels: Some([(MEMBER_LABEL.to_owned(), "true".to_owned())].into()),
                    annotations: config
                        .address
                        .map(|address| [(ADDRESS_ANNOTATION.to_owned(), address.to_string())].into()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(config.identity.clone()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    ..Default::default()
                }),
            };
            api.create(&PostParams::default(), &lease).await.map(|_| ())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(name: &str, holder: &str, rv: &str) -> Lease {
        Lease {
            metadata: ObjectMeta { name: Some(name.into()), resource_version: Some(rv.into()), ..Default::default() },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                lease_duration_seconds: Some(15),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn lease_names_are_dns_subdomains_and_distinct() {
        assert_eq!(lease_name("scalehub-0"), "scalehub-member-scalehub-0");
        let odd = lease_name("Hub_A:1");
        assert!(odd.starts_with("scalehub-member-hub-a-1-"), "{odd}");
        assert_ne!(lease_name("Hub_A:1"), lease_name("hub-a-1"));
        assert_ne!(lease_name("hub_a"), lease_name("hub:a"));
        let long = lease_name(&"x".repeat(400));
        assert!(long.len() <= 253, "{}", long.len());
        let symbols = lease_name("***");
        assert!(symbols.starts_with("scalehub-member-") && symbols.len() == 16 + 16, "{symbols}");
        for name in [odd, long, symbols] {
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'));
            assert!(!name.ends_with('-'));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_member_is_live_while_its_lease_changes_and_gone_one_duration_after_it_stops() {
        let mut view = View::default();
        let t0 = Instant::now();
        view.observe(&[lease("m-a", "a", "1"), lease("m-b", "b", "1")], Duration::from_secs(15), t0);
        assert_eq!(view.live_others("me", t0), ["a", "b"]);
        assert_eq!(view.live_others("a", t0), ["b"], "a replica lists itself by its own renewals");
        // a renews (its record changes), b does not.
        tokio::time::advance(Duration::from_secs(10)).await;
        let t1 = Instant::now();
        view.observe(&[lease("m-a", "a", "2"), lease("m-b", "b", "1")], Duration::from_secs(15), t1);
        assert_eq!(view.live_others("me", t1), ["a", "b"]);
        tokio::time::advance(Duration::from_secs(6)).await;
        let t2 = Instant::now();
        view.observe(&[lease("m-a", "a", "3"), lease("m-b", "b", "1")], Duration::from_secs(15), t2);
        assert_eq!(view.live_others("me", t2), ["a"], "b's record has not changed for 16 s");
        // A released or deleted Lease is no member.
        view.observe(&[lease("m-a", "", "4")], Duration::from_secs(15), t2);
        assert!(view.live_others("me", t2).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_live_member_s_address_is_read_as_an_ip_and_port_only() {
        let with_address = |name: &str, holder: &str, address: &str| {
            let mut lease = lease(name, holder, "1");
            lease.metadata.annotations = Some([(ADDRESS_ANNOTATION.to_owned(), address.to_owned())].into());
            lease
        };
        let mut view = View::default();
        let t0 = Instant::now();
        let leases = [
            with_address("m-a", "a", "10.0.0.7:8080"),
            with_address("m-b", "b", "[fd00::1]:8080"),
            with_address("m-c", "c", "evil.example.com:80/steal?x="),
            lease("m-d", "d", "1"),
            with_address("m-me", "me", "10.0.0.1:8080"),
        ];
        view.observe(&leases, Duration::from_secs(15), t0);
        let addresses = view.live_addresses("me", t0);
        let expected: BTreeMap<String, SocketAddr> =
            [("a".into(), "10.0.0.7:8080".parse().unwrap()), ("b".into(), "[fd00::1]:8080".parse().unwrap())].into();
        assert_eq!(addresses, expected, "a host name, a path or no annotation gives no address; me is left out");
        assert_eq!(view.live_others("me", t0), ["a", "b", "c", "d"]);
        tokio::time::advance(Duration::from_secs(16)).await;
        assert!(view.live_addresses("me", Instant::now()).is_empty(), "a member gone has no address");
    }

    #[tokio::test(start_paused = true)]
    async fn only_leases_stale_for_ten_durations_are_collected() {
        let mut view = View::default();
        let t0 = Instant::now();
        view.observe(&[lease("m-a", "a", "1"), lease("m-b", "b", "1")], Duration::from_secs(15), t0);
        tokio::time::advance(Duration::from_secs(149)).await;
        let t1 = Instant::now();
        view.observe(&[lease("m-a", "a", "1"), lease("m-b", "b", "2")], Duration::from_secs(15), t1);
        assert!(view.stale(t1).is_empty());
        tokio::time::advance(Duration::from_secs(1)).await;
        let t2 = Instant::now();
        view.observe(&[lease("m-a", "a", "1"), lease("m-b", "b", "2")], Duration::from_secs(15), t2);
        assert_eq!(view.stale(t2), [("m-a".to_owned(), Some("1".to_owned()))]);
    }

    /// Two members against the simulator: each sees both; one that stops is gone from the
    /// other's list at its next listing (its Lease is deleted, not left to expire).
    #[tokio::test]
    async fn members_see_each_other_through_the_api_server_and_a_stopped_one_leaves_at_once() {
        let sim = scalehub_sim::start(scalehub_sim::SimOptions::default()).await.unwrap();
        let client = crate::demo::sim_client(&sim.url()).unwrap();
        let api: Api<Lease> = Api::namespaced(client, "default");
        let config = |identity: &str| MemberConfig {
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            retry_period: Duration::from_millis(100),
            request_timeout: Duration::from_secs(5),
            address: Some(match identity {
                "hub-a" => "127.0.0.1:1001".parse().unwrap(),
                _ => "127.0.0.1:1002".parse().unwrap(),
            }),
        };
        let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
        let mut a = spawn(api.clone(), config("hub-a"), stop_a.clone());
        let b = spawn(api.clone(), config("hub-b"), stop_b.clone());
        let both = ["hub-a".to_owned(), "hub-b".to_owned()];
        let wait = Duration::from_secs(10);
        tokio::time::timeout(wait, a.wait_for(|m| m.live == both && m.me_live)).await.unwrap().unwrap();
        let b_address: SocketAddr = "127.0.0.1:1002".parse().unwrap();
        assert_eq!(a.borrow().addresses, BTreeMap::from([("hub-b".to_owned(), b_address)]));
        stop_b.cancel();
        tokio::time::timeout(wait, a.wait_for(|m| m.live == ["hub-a"])).await.unwrap().unwrap();
        assert!(api.get_opt(&lease_name("hub-b")).await.unwrap().is_none(), "the stopped member's lease stayed");
        assert!(b.borrow().live.is_empty());
        stop_a.cancel();
        sim.shutdown().await;
    }
}
