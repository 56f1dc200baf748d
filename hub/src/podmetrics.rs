//! PodMetrics shared by namespace: one metrics.k8s.io list per namespace per resolution
//! window serves every target of that namespace, so the load on metrics-server grows with
//! namespaces, not targets.
//!
//! metrics-server itself refreshes its samples every 15 s (`--metric-resolution`), so a
//! cached list no older than that window holds the same samples a fresh read would, most of
//! the time. Readers of one namespace share a single in-flight read, made in the background
//! while the previous list still serves. A failed read is kept for a few seconds, so a
//! broken metrics API costs one request per namespace, not one per target.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use jiff::Timestamp;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use tokio::time::Instant;

use crate::k8smetrics::{MetricsError, Sample};
use scalehub_core::quantity::parse_milli;

/// How long one metrics request may take before it counts as failed: a namespace of
/// 200,000 pods is a list of some 60 MB, which takes seconds to produce and read.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a failed read is remembered (bounded by the resolution).
const ERROR_TTL: Duration = Duration::from_secs(5);

/// One pod's usage: timestamp, window and the sum over containers per resource.
#[derive(Clone, Debug, PartialEq)]
pub struct PodUsage {
    /// When metrics-server measured it.
    pub timestamp: Timestamp,
    /// Over which window.
    pub window: Duration,
    /// Resource name → usage in milli-units, summed over containers.
    pub usage: Box<[(Box<str>, i64)]>,
}

impl PodUsage {
    /// The sample of one resource (0 when no container reports it, as the HPA sums).
    pub fn sample(&self, resource: &str) -> Sample {
        let milli = self.usage.iter().filter(|(r, _)| &**r == resource).map(|(_, m)| *m).sum();
        Sample { milli, timestamp: self.timestamp, window: self.window }
    }
}

/// The PodMetrics of one namespace (or of one selector, when sharing is off), by pod name.
pub type PodUsages = HashMap<Box<str>, PodUsage>;

/// A PodMetricsList read straight into usages by pod name: items are inserted as they are
/// read and each container's usage is summed as it is read, so a namespace of 100,000 pods
/// never exists as a list of items with a map per container (that was 2.5 times the cache's
/// own size, every resolution, in a one-namespace fleet).
struct Usages(PodUsages);

impl<'de> Deserialize<'de> for Usages {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Top;
        impl<'de> Visitor<'de> for Top {
            type Value = Usages;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a PodMetricsList")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Usages, A::Error> {
                let mut items = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match &*key {
                        "items" => items = Some(map.next_value::<Items>()?.0),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                items.map(Usages).ok_or_else(|| de::Error::missing_field("items"))
            }
        }
        deserializer.deserialize_map(Top)
    }
}

/// The `items` array, inserted into the map one by one.
struct Items(PodUsages);

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Seq;
        impl<'de> Visitor<'de> for Seq {
            type Value = Items;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of PodMetrics")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items, A::Error> {
                let mut out = HashMap::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(item) = seq.next_element::<Item>()? {
                    let name = item.metadata.name.ok_or_else(|| de::Error::custom("item without name"))?;
                    let timestamp: Timestamp = item
                        .timestamp
                        .as_deref()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| de::Error::custom(format!("{name}: bad timestamp")))?;
                    let window = item
                        .window
                        .as_deref()
                        .map(crate::k8smetrics::parse_go_duration)
                        .unwrap_or(Duration::from_secs(30));
                    let usage = item.containers.0.into_boxed_slice();
                    out.insert(name.as_ref().into(), PodUsage { timestamp, window, usage });
                }
                Ok(Items(out))
            }
        }
        deserializer.deserialize_seq(Seq)
    }
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    window: Option<Cow<'a, str>>,
    #[serde(default)]
    containers: Summed,
}

#[derive(Deserialize)]
struct Meta<'a> {
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
}

/// The containers' usage, summed per resource as it is read.
#[derive(Default)]
struct Summed(Vec<(Box<str>, i64)>);

impl<'de> Deserialize<'de> for Summed {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// One container: only its `usage` map is read.
        struct Container<'s>(&'s mut Vec<(Box<str>, i64)>);
        impl<'de> DeserializeSeed<'de> for Container<'_> {
            type Value = ();
            fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
                deserializer.deserialize_map(self)
            }
        }
        impl<'de> Visitor<'de> for Container<'_> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a container's metrics")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match &*key {
                        "usage" => map.next_value_seed(Usage(&mut *self.0))?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(())
            }
        }
        /// A `usage` map, added into the sums.
        struct Usage<'s>(&'s mut Vec<(Box<str>, i64)>);
        impl<'de> DeserializeSeed<'de> for Usage<'_> {
            type Value = ();
            fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
                deserializer.deserialize_map(self)
            }
        }
        impl<'de> Visitor<'de> for Usage<'_> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of resource to quantity")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
                while let Some((resource, q)) = map.next_entry::<Cow<'de, str>, Cow<'de, str>>()? {
                    let milli = parse_milli(&q).map_err(|e| de::Error::custom(format!("{resource}: {e}")))?;
                    match self.0.iter_mut().find(|(r, _)| **r == *resource) {
                        Some((_, sum)) => *sum += milli,
                        None => self.0.push((resource.as_ref().into(), milli)),
                    }
                }
                Ok(())
            }
        }
        struct Seq;
        impl<'de> Visitor<'de> for Seq {
            type Value = Summed;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of containers")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Summed, A::Error> {
                let mut sums = Vec::new();
                while seq.next_element_seed(Container(&mut sums))?.is_some() {}
                Ok(Summed(sums))
            }
        }
        deserializer.deserialize_seq(Seq)
    }
}

/// Reads a PodMetricsList body into usages by pod name.
pub fn parse(body: &str) -> Result<PodUsages, MetricsError> {
    serde_json::from_str::<Usages>(body)
        .map(|u| u.0)
        .map_err(|e| MetricsError::Malformed { what: "PodMetricsList", detail: e.to_string() })
}

/// A read in flight, awaited by every caller that needs its result.
type SharedRead = Shared<BoxFuture<'static, Result<Arc<PodUsages>, String>>>;

/// One namespace's cache entry.
#[derive(Default)]
struct SlotState {
    /// The last good read and when it was made.
    value: Option<(Instant, Arc<PodUsages>)>,
    /// The last failed read and when it failed.
    error: Option<(Instant, String)>,
    /// The read in flight, shared by everyone who waits for it.
    inflight: Option<SharedRead>,
}

type Slot = Arc<Mutex<SlotState>>;

/// The shared cache, one slot per namespace.
pub struct PodMetricsCache {
    resolution: Duration,
    slots: Mutex<HashMap<String, Slot>>,
}

impl PodMetricsCache {
    /// A cache whose reads serve for `resolution`; zero turns sharing off.
    pub fn new(resolution: Duration) -> Self {
        Self { resolution, slots: Mutex::new(HashMap::new()) }
    }

    /// PodMetrics covering the pods `selector` selects in `namespace`: the namespace's shared
    /// list while it is fresh. Once it is older than the resolution one background read
    /// replaces it, and until then (for at most two more resolutions) callers keep the last
    /// list instead of waiting: a namespace of 100,000 pods takes seconds to list, and its
    /// targets' ticks must not all wait for it. Only a namespace with no list yet waits, and
    /// a caller whose `wanted` pods are not all in the stale list (pods that started since):
    /// it would otherwise decide on a list that cannot know them for up to three resolutions,
    /// where a reader of its own waits at most one.
    pub async fn get(
        &self,
        client: &kube::Client,
        namespace: &str,
        selector: &str,
        wanted: &[&str],
    ) -> Result<Arc<PodUsages>, MetricsError> {
        if self.resolution.is_zero() {
            return read(client, namespace, Some(selector)).await.map(Arc::new);
        }
        let slot = {
            let Ok(mut slots) = self.slots.lock() else { return Err(MetricsError::NoMetrics) };
            slots.entry(namespace.to_owned()).or_default().clone()
        };
        let wait = {
            let Ok(mut state) = slot.lock() else { return Err(MetricsError::NoMetrics) };
            if let Some((at, value)) = &state.value
                && at.elapsed() < self.resolution
            {
                return Ok(value.clone());
            }
            if let Some((at, error)) = &state.error
                && at.elapsed() < ERROR_TTL.min(self.resolution)
            {
                return Err(MetricsError::Cached(error.clone()));
            }
            let inflight = match &state.inflight {
                Some(f) => f.clone(),
                None => {
                    let f = refresh(slot.clone(), client.clone(), namespace.to_owned());
                    state.inflight = Some(f.clone());
                    f
                }
            };
            if let Some((at, value)) = &state.value
                && at.elapsed() < self.resolution * 3
                && wanted.iter().all(|pod| value.contains_key(*pod))
            {
                return Ok(value.clone());
            }
            inflight
        };
        wait.await.map_err(MetricsError::Cached)
    }
}

/// Starts one read of a namespace on its own task (it finishes even if every caller has
/// moved on) and returns a future of its result that any number of callers may await.
fn refresh(slot: Slot, client: kube::Client, namespace: String) -> SharedRead {
    let task = tokio::spawn(async move {
        let result = read(&client, &namespace, None).await.map(Arc::new).map_err(|e| e.to_string());
        if let Ok(mut state) = slot.lock() {
            match &result {
                Ok(value) => {
                    state.value = Some((Instant::now(), value.clone()));
                    state.error = None;
                }
                Err(e) => state.error = Some((Instant::now(), e.clone())),
            }
            state.inflight = None;
        }
        result
    });
    async move { task.await.unwrap_or_else(|e| Err(format!("metrics read task failed: {e}"))) }.boxed().shared()
}

async fn read(client: &kube::Client, namespace: &str, selector: Option<&str>) -> Result<PodUsages, MetricsError> {
    let mut path = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{}/pods", crate::k8smetrics::encode(namespace));
    if let Some(sel) = selector {
        path.push_str("?labelSelector=");
        path.push_str(&crate::k8smetrics::encode(sel));
    }
    let req = http::Request::get(&path)
        .body(Vec::new())
        .map_err(|e| MetricsError::Malformed { what: "request", detail: e.to_string() })?;
    let body = tokio::time::timeout(REQUEST_TIMEOUT, client.request_text(req))
        .await
        .map_err(|_| MetricsError::Timeout(REQUEST_TIMEOUT))?
        .map_err(MetricsError::Request)?;
    parse(&body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A kube client whose server answers every PodMetrics list after `delay`, with the
    /// request's number as the pod's CPU usage, and counts the requests.
    fn counting_client(delay: Duration) -> (kube::Client, Arc<AtomicUsize>) {
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        let service = tower::service_fn(move |_req: http::Request<kube::client::Body>| {
            let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                tokio::time::sleep(delay).await;
                let body = format!(
                    r#"{{"items": [{{"metadata": {{"name": "web-1"}}, "timestamp": "2026-01-01T00:00:00Z", "window": "30s",
                        "containers": [{{"name": "a", "usage": {{"cpu": "{n}m"}}}}]}}]}}"#
                );
                Ok::<_, std::convert::Infallible>(http::Response::new(kube::client::Body::from(body.into_bytes())))
            }
        });
        (kube::Client::new(service, "default"), count)
    }

    fn cpu(usages: &PodUsages) -> i64 {
        usages["web-1"].sample("cpu").milli
    }

    #[tokio::test(start_paused = true)]
    async fn the_targets_of_a_namespace_share_one_read_per_resolution() {
        let (client, count) = counting_client(Duration::from_secs(2));
        let cache = Arc::new(PodMetricsCache::new(Duration::from_secs(15)));
        // 50 ticks at once with nothing cached: one request, everyone waits for it.
        let reads = (0..50).map(|_| {
            let (cache, client) = (cache.clone(), client.clone());
            tokio::spawn(async move { cache.get(&client, "shop", "app=web", &["web-1"]).await.map(|u| cpu(&u)) })
        });
        for r in futures::future::join_all(reads).await {
            assert_eq!(r.unwrap().unwrap(), 1);
        }
        assert_eq!(count.load(Ordering::SeqCst), 1);
        // Within the resolution: served from the cache.
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(cpu(&cache.get(&client, "shop", "app=web", &["web-1"]).await.unwrap()), 1);
        assert_eq!(count.load(Ordering::SeqCst), 1);
        // Past it: the stale list answers at once while one background read replaces it.
        tokio::time::advance(Duration::from_secs(6)).await;
        let started = Instant::now();
        assert_eq!(cpu(&cache.get(&client, "shop", "app=web", &["web-1"]).await.unwrap()), 1);
        assert_eq!(cpu(&cache.get(&client, "shop", "app=web", &["web-1"]).await.unwrap()), 1);
        assert_eq!(started.elapsed(), Duration::ZERO, "a tick waited for the refresh");
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(count.load(Ordering::SeqCst), 2);
        assert_eq!(cpu(&cache.get(&client, "shop", "app=web", &["web-1"]).await.unwrap()), 2);
        // Another namespace has its own list.
        assert_eq!(cpu(&cache.get(&client, "db", "app=db", &[]).await.unwrap()), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stale_list_that_misses_a_started_pod_is_waited_out() {
        let (client, count) = counting_client(Duration::from_secs(2));
        let cache = PodMetricsCache::new(Duration::from_secs(15));
        assert_eq!(cpu(&cache.get(&client, "shop", "app=web", &["web-1"]).await.unwrap()), 1);
        // Within the resolution a list is served as it is, missing pods or not (metrics-server
        // has not scraped a new pod yet either).
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(cpu(&cache.get(&client, "shop", "app=web", &["web-1", "web-2"]).await.unwrap()), 1);
        assert_eq!(count.load(Ordering::SeqCst), 1);
        // Stale and without web-2: this caller waits for the fresh read instead.
        tokio::time::advance(Duration::from_secs(6)).await;
        let started = Instant::now();
        assert_eq!(cpu(&cache.get(&client, "shop", "app=web", &["web-1", "web-2"]).await.unwrap()), 2);
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn sharing_off_reads_per_call() {
        let (client, count) = counting_client(Duration::ZERO);
        let cache = PodMetricsCache::new(Duration::ZERO);
        cache.get(&client, "shop", "app=web", &["web-1"]).await.unwrap();
        cache.get(&client, "shop", "app=web", &["web-1"]).await.unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_pod_metrics_list_is_read_into_usage_sums() {
        let body = r#"{"kind": "PodMetricsList", "items": [{
            "metadata": {"name": "web-1"}, "timestamp": "2026-01-01T00:00:00Z", "window": "1m0s",
            "containers": [{"name": "a", "usage": {"cpu": "250000000n", "memory": "64Ki"}},
                           {"name": "b", "usage": {"cpu": "50m", "memory": "1Mi"}}]}]}"#;
        let usages = parse(body).unwrap();
        let web = &usages["web-1"];
        assert_eq!(web.sample("cpu").milli, 300);
        assert_eq!(web.window, Duration::from_secs(60));
        assert_eq!(web.sample("memory").milli, (64 * 1024 + 1024 * 1024) * 1000);
        assert_eq!(web.sample("gpu").milli, 0);
        assert!(parse(r#"{"kind": "Status"}"#).is_err());
        assert!(parse(r#"{"items": [{"metadata": {"name": "x"}, "timestamp": "soon"}]}"#).is_err());
        let bad = r#"{"items": [{"metadata": {"name": "x"}, "timestamp": "2026-01-01T00:00:00Z",
            "containers": [{"name": "a", "usage": {"cpu": "lots"}}]}]}"#;
        assert!(parse(bad).unwrap_err().to_string().contains("cpu: "), "{:?}", parse(bad));
        // Unknown fields anywhere are skipped; a pod without containers has no usage.
        let lean = r#"{"metadata": {"resourceVersion": "7"}, "items": [{"metadata": {"name": "y", "labels": {"a": "b"}},
            "timestamp": "2026-01-01T00:00:00Z", "extra": [1, {"x": 2}]}]}"#;
        let usages = parse(lean).unwrap();
        assert_eq!((usages["y"].sample("cpu").milli, usages["y"].window), (0, Duration::from_secs(30)));
    }
}
