//! Fault injection: latency, error rates per verb, dropped watches, forced 410s and write conflicts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Fault settings; all off by default. Serialised as the `/sim/admin/faults` JSON body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FaultConfig {
    /// Added latency per request, in milliseconds.
    pub latency_ms: u64,
    /// Probability (0..=1) of failing a request, by verb (`get`, `list`, `watch`, `create`,
    /// `update`, `patch`, `delete`) or `*` for all verbs.
    pub error_rate: BTreeMap<String, f64>,
    /// Status code of injected errors: 500, 503 or 429.
    pub error_status: Option<u16>,
    /// `Retry-After` seconds sent with injected 429/503.
    pub retry_after_secs: Option<u64>,
    /// Ends every watch stream after this many seconds.
    pub drop_watch_every_secs: Option<u64>,
    /// The next watch that resumes from a resourceVersion gets an ERROR 410 Expired.
    pub expire_next_watch: bool,
    /// Probability (0..=1) of answering a write with 409 Conflict.
    pub conflict_rate: f64,
    /// Seed for a deterministic fault sequence; None draws from the OS.
    pub seed: Option<u64>,
}

/// Runtime fault control shared by the server and tests (cheap to clone).
#[derive(Clone)]
pub struct Faults {
    inner: Arc<Mutex<(FaultConfig, StdRng)>>,
}

impl Faults {
    /// Faults with the given settings.
    pub fn new(config: FaultConfig) -> Self {
        let rng = rng_for(&config);
        Self { inner: Arc::new(Mutex::new((config, rng))) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (FaultConfig, StdRng)> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current settings.
    pub fn get(&self) -> FaultConfig {
        self.lock().0.clone()
    }

    /// Replaces the settings (reseeding when a seed is given).
    pub fn set(&self, config: FaultConfig) {
        let rng = rng_for(&config);
        *self.lock() = (config, rng);
    }

    /// Changes the settings in place.
    pub fn update(&self, f: impl FnOnce(&mut FaultConfig)) {
        let mut guard = self.lock();
        f(&mut guard.0);
    }

    /// Latency to add to a request.
    pub fn latency(&self) -> Option<Duration> {
        let ms = self.lock().0.latency_ms;
        (ms > 0).then(|| Duration::from_millis(ms))
    }

    /// An injected error for this verb, if the dice say so.
    pub fn request_error(&self, verb: &str) -> Option<ApiError> {
        let mut guard = self.lock();
        let (config, rng) = &mut *guard;
        let rate = config.error_rate.get(verb).or_else(|| config.error_rate.get("*")).copied().unwrap_or(0.0);
        if rate <= 0.0 || !rng.random_bool(rate.min(1.0)) {
            return None;
        }
        let code = config.error_status.unwrap_or(500);
        let mut err = ApiError::server(code, format!("injected fault: {verb} failed"));
        if matches!(code, 429 | 503) {
            err = err.with_retry_after(config.retry_after_secs.unwrap_or(1));
        }
        Some(err)
    }

    /// Whether this write should fail with 409 Conflict.
    pub fn write_conflict(&self) -> bool {
        let mut guard = self.lock();
        let (config, rng) = &mut *guard;
        config.conflict_rate > 0.0 && rng.random_bool(config.conflict_rate.min(1.0))
    }

    /// Consumes the one-shot "expire the next re-watch" flag.
    pub fn take_expire_next_watch(&self) -> bool {
        std::mem::take(&mut self.lock().0.expire_next_watch)
    }

    /// How long a watch may stay open before the fault drops it.
    pub fn watch_drop_after(&self) -> Option<Duration> {
        self.lock().0.drop_watch_every_secs.filter(|s| *s > 0).map(Duration::from_secs)
    }
}

fn rng_for(config: &FaultConfig) -> StdRng {
    match config.seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_os_rng(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded(rate: f64, seed: u64) -> Faults {
        Faults::new(FaultConfig {
            error_rate: [("get".to_string(), rate)].into(),
            seed: Some(seed),
            ..Default::default()
        })
    }

    #[test]
    fn seeded_faults_are_deterministic() {
        let (a, b) = (seeded(0.5, 7), seeded(0.5, 7));
        let run = |f: &Faults| (0..50).map(|_| f.request_error("get").is_some()).collect::<Vec<_>>();
        let first = run(&a);
        assert_eq!(first, run(&b));
        assert!(first.iter().any(|x| *x) && first.iter().any(|x| !*x));
    }

    #[test]
    fn injected_429_carries_retry_after() {
        let f = Faults::new(FaultConfig {
            error_rate: [("*".to_string(), 1.0)].into(),
            error_status: Some(429),
            retry_after_secs: Some(3),
            ..Default::default()
        });
        let err = f.request_error("patch").unwrap();
        assert_eq!((err.code, err.reason, err.retry_after), (429, "TooManyRequests", Some(3)));
        assert!(f.request_error("list").is_some());
    }

    #[test]
    fn expire_next_watch_fires_once() {
        let f = Faults::new(FaultConfig { expire_next_watch: true, ..Default::default() });
        assert!(f.take_expire_next_watch());
        assert!(!f.take_expire_next_watch());
    }
}
