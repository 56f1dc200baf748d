//! A token bucket for the API's hook runs: `rate` a second, bursts of twice that, so API
//! callers cannot take the hook concurrency that scheduled ticks need.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A token bucket; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct RateLimit {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimit {
    /// `rate` a second, bursts of `2 × rate`; starts full.
    pub fn new(rate: u32) -> Self {
        let rate = f64::from(rate.max(1));
        Self { rate, burst: 2.0 * rate, state: Mutex::new((2.0 * rate, Instant::now())) }
    }

    /// Takes one token; when none is left, how long until one is.
    pub fn take(&self) -> Result<(), Duration> {
        let Ok(mut state) = self.state.lock() else { return Ok(()) };
        let now = Instant::now();
        let (tokens, at) = *state;
        let tokens = (tokens + now.saturating_duration_since(at).as_secs_f64() * self.rate).min(self.burst);
        if tokens >= 1.0 {
            *state = (tokens - 1.0, now);
            Ok(())
        } else {
            *state = (tokens, now);
            Err(Duration::from_secs_f64((1.0 - tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_allowed_then_the_rate() {
        let limit = RateLimit::new(5);
        for _ in 0..10 {
            assert!(limit.take().is_ok());
        }
        let wait = limit.take().unwrap_err();
        assert!(wait <= Duration::from_millis(200) && wait > Duration::ZERO, "{wait:?}");
        tokio::time::advance(Duration::from_millis(200)).await;
        assert!(limit.take().is_ok());
        assert!(limit.take().is_err());
        tokio::time::advance(Duration::from_secs(10)).await;
        for _ in 0..10 {
            assert!(limit.take().is_ok(), "refilled to the burst");
        }
        assert!(limit.take().is_err(), "never above the burst");
    }
}
