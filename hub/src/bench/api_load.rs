//! An open-loop load on the hub's REST API while it ticks: requests start at a fixed rate
//! whether or not earlier ones have answered, and each latency is measured from the moment
//! the request was due, so a slow server cannot hide behind a slowed-down client. At most
//! [`CONNECTIONS`] requests are in flight, as with a load generator's fixed connections: a
//! request that waits for one is late, and its wait counts in its latency.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

/// Requests in flight at most.
pub const CONNECTIONS: usize = 64;

/// Latency quantiles of one request kind, seconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    /// Requests sent.
    pub requests: usize,
    /// Requests that failed (non-2xx or no answer).
    pub errors: usize,
    /// Median.
    pub p50_s: f64,
    /// 99th percentile.
    pub p99_s: f64,
}

/// What the load measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ApiLoad {
    /// Requests per second offered (both kinds together).
    pub rate: f64,
    /// `GET /api/v1/targets/{one}`.
    pub one_target: Latency,
    /// `GET /api/v1/targets?limit=100` (with a namespace filter every other time).
    pub page_of_100: Latency,
}

/// Offers `rate` requests per second for `length` against the hub at `base` (http://host:port),
/// alternating one target of `namespaces`/`targets` and a page of 100 targets.
pub async fn run(base: &str, rate: f64, length: Duration, namespaces: u32, targets: u32) -> ApiLoad {
    let one: Arc<Mutex<Vec<Option<f64>>>> = Arc::default();
    let page: Arc<Mutex<Vec<Option<f64>>>> = Arc::default();
    let period = Duration::from_secs_f64(1.0 / rate.max(0.1));
    let started = Instant::now();
    let mut due = started;
    let mut n: u64 = 0;
    let mut tasks = Vec::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS));
    while due < started + length {
        tokio::time::sleep_until(due).await;
        let (url, sink) = if n.is_multiple_of(2) {
            let i = (n / 2) % u64::from(targets.max(1));
            let ns = i % u64::from(namespaces.max(1));
            (
                format!("{base}/api/v1/targets/bench-{ns}/Deployment/svc-{}", i / u64::from(namespaces.max(1))),
                one.clone(),
            )
        } else if n % 4 == 1 {
            (format!("{base}/api/v1/targets?limit=100"), page.clone())
        } else {
            (format!("{base}/api/v1/targets?limit=100&namespace=bench-0&sort=name"), page.clone())
        };
        let at = due;
        let slots = slots.clone();
        tasks.push(tokio::spawn(async move {
            let _slot = slots.acquire_owned().await;
            let ok = tokio::time::timeout(Duration::from_secs(30), super::fleet::get_text(&url)).await;
            let latency = matches!(ok, Ok(Ok(_))).then(|| at.elapsed().as_secs_f64());
            if let Ok(mut v) = sink.lock() {
                v.push(latency);
            }
        }));
        n += 1;
        due += period;
    }
    for t in tasks {
        let _ = t.await;
    }
    let summarise = |samples: &Mutex<Vec<Option<f64>>>| -> Latency {
        let Ok(samples) = samples.lock() else { return Latency::default() };
        let mut ok: Vec<f64> = samples.iter().flatten().copied().collect();
        ok.sort_by(f64::total_cmp);
        let q = |p: f64| ok.get(((ok.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0.0);
        Latency { requests: samples.len(), errors: samples.len() - ok.len(), p50_s: q(0.5), p99_s: q(0.99) }
    };
    ApiLoad { rate, one_target: summarise(&one), page_of_100: summarise(&page) }
}
