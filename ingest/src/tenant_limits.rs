//! Per-tenant ingest rates, like Tempo's overrides: spans per second and bytes per
//! second, each with a burst, for every tenant by default and per tenant by name. One
//! noisy tenant is slowed down (429 with the seconds to wait, or gRPC
//! RESOURCE_EXHAUSTED) and the others carry on.
//!
//! Each tenant has a token bucket per measure. A request is let in when the bucket
//! holds its cost, or is full (so a request larger than the burst still gets through
//! when the tenant has been quiet); the cost is then taken in full, going into debt if
//! need be, so the average never exceeds the rate.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use tokio::time::Instant;

/// One tenant's allowance. `None` in a field: no limit on that measure. Errors name
/// each field by its config-file key: `rate-spans`, `burst-spans`, `rate-bytes` and
/// `burst-bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rate {
    pub spans_per_second: Option<f64>,
    pub burst_spans: Option<f64>,
    pub bytes_per_second: Option<f64>,
    pub burst_bytes: Option<f64>,
}

impl Rate {
    pub fn is_unlimited(&self) -> bool {
        self.spans_per_second.is_none() && self.bytes_per_second.is_none()
    }

    /// Every value given must be a positive number; the error names the first that is
    /// not by its config-file key.
    pub fn validate(&self) -> Result<(), String> {
        for (key, value) in [
            ("rate-spans", self.spans_per_second),
            ("burst-spans", self.burst_spans),
            ("rate-bytes", self.bytes_per_second),
            ("burst-bytes", self.burst_bytes),
        ] {
            if value.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
                return Err(format!("{key} must be a positive number"));
            }
        }
        Ok(())
    }
}

/// The allowance of every tenant, and of some by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantRates {
    pub default: Rate,
    pub per_tenant: BTreeMap<String, Rate>,
}

impl TenantRates {
    pub fn rate_for(&self, tenant: &str) -> Rate {
        self.per_tenant.get(tenant).copied().unwrap_or(self.default)
    }
}

/// A refused request: which measure, its rate, and how long to wait.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimited {
    pub measure: &'static str,
    pub per_second: f64,
    pub retry_after_secs: u64,
}

#[derive(Debug)]
struct Bucket {
    level: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, rate: f64, burst: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.level = (self.level + rate * elapsed).min(burst);
        self.at = now;
    }

    /// Seconds until `cost` (capped at the burst) fits, or `None` when it fits now.
    fn wait_for(&self, cost: f64, rate: f64, burst: f64) -> Option<f64> {
        let need = cost.min(burst);
        (self.level < need).then(|| (need - self.level) / rate)
    }
}

/// Buckets are dropped once full and idle, beyond this many tenants.
const MAX_IDLE_BUCKETS: usize = 10_000;

#[derive(Debug, Default)]
pub struct RateLimiter {
    rates: TenantRates,
    buckets: Mutex<HashMap<(String, &'static str), Bucket>>,
}

impl RateLimiter {
    pub fn new(rates: TenantRates) -> Self {
        Self { rates, buckets: Mutex::default() }
    }

    /// Lets `spans` and `bytes` in for `tenant`, or says which allowance they exceed.
    pub fn admit(&self, tenant: &str, spans: usize, bytes: usize) -> Result<(), RateLimited> {
        let rate = self.rates.rate_for(tenant);
        if rate.is_unlimited() {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let measures = [
            ("spans", rate.spans_per_second, rate.burst_spans, spans as f64),
            ("bytes", rate.bytes_per_second, rate.burst_bytes, bytes as f64),
        ];
        let mut slowest: Option<RateLimited> = None;
        for (measure, per_second, burst, cost) in measures {
            let Some(per_second) = per_second.filter(|r| *r > 0.0) else { continue };
            let burst = burst.unwrap_or(per_second).max(1.0);
            let bucket = buckets.entry((tenant.to_string(), measure)).or_insert(Bucket { level: burst, at: now });
            bucket.refill(per_second, burst, now);
            if let Some(wait) = bucket.wait_for(cost, per_second, burst) {
                let retry_after_secs = wait.ceil().max(1.0) as u64;
                if slowest.as_ref().is_none_or(|s| s.retry_after_secs < retry_after_secs) {
                    slowest = Some(RateLimited { measure, per_second, retry_after_secs });
                }
            }
        }
        if let Some(refused) = slowest {
            return Err(refused);
        }
        for (measure, per_second, _, cost) in measures {
            if per_second.is_some_and(|r| r > 0.0) {
                if let Some(bucket) = buckets.get_mut(&(tenant.to_string(), measure)) {
                    bucket.level -= cost;
                }
            }
        }
        if buckets.len() > MAX_IDLE_BUCKETS {
            let rates = &self.rates;
            buckets.retain(|(tenant, measure), bucket| {
                let rate = rates.rate_for(tenant);
                let (per_second, burst) = match *measure {
                    "spans" => (rate.spans_per_second, rate.burst_spans),
                    _ => (rate.bytes_per_second, rate.burst_bytes),
                };
                let (Some(per_second), burst) = (per_second, burst) else { return false };
                bucket.refill(per_second, burst.unwrap_or(per_second).max(1.0), now);
                bucket.level < burst.unwrap_or(per_second).max(1.0)
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn spans(per_second: f64, burst: f64) -> Rate {
        Rate { spans_per_second: Some(per_second), burst_spans: Some(burst), ..Default::default() }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_the_rate_then_a_wait_that_says_how_long() {
        let limiter = RateLimiter::new(TenantRates { default: spans(100.0, 200.0), per_tenant: BTreeMap::new() });
        limiter.admit("t", 150, 0).unwrap();
        limiter.admit("t", 50, 0).unwrap();
        let refused = limiter.admit("t", 100, 0).unwrap_err();
        assert_eq!(refused, RateLimited { measure: "spans", per_second: 100.0, retry_after_secs: 1 });
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(limiter.admit("t", 100, 0).is_err(), "half a second refills 50");
        tokio::time::advance(Duration::from_millis(500)).await;
        limiter.admit("t", 100, 0).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_larger_than_the_burst_passes_when_quiet_and_is_paid_for() {
        let limiter = RateLimiter::new(TenantRates { default: spans(100.0, 100.0), per_tenant: BTreeMap::new() });
        limiter.admit("t", 1_000, 0).unwrap();
        let refused = limiter.admit("t", 1, 0).unwrap_err();
        assert_eq!(refused.retry_after_secs, 10, "900 spans of debt and one more, at 100 a second");
        tokio::time::advance(Duration::from_secs(10)).await;
        limiter.admit("t", 1, 0).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn tenants_are_apart_and_overrides_win() {
        let mut per_tenant = BTreeMap::new();
        per_tenant.insert("noisy".to_string(), spans(10.0, 10.0));
        per_tenant.insert("free".to_string(), Rate::default());
        let limiter = RateLimiter::new(TenantRates { default: spans(1_000.0, 1_000.0), per_tenant });
        limiter.admit("noisy", 10, 0).unwrap();
        assert!(limiter.admit("noisy", 10, 0).is_err());
        limiter.admit("quiet", 1_000, 0).unwrap();
        for _ in 0..100 {
            limiter.admit("free", 1_000_000, 1 << 30).unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_are_limited_too_and_a_refusal_takes_nothing() {
        let rate = Rate {
            spans_per_second: Some(1_000.0),
            burst_spans: Some(1_000.0),
            bytes_per_second: Some(1_000.0),
            burst_bytes: Some(1_000.0),
        };
        let limiter = RateLimiter::new(TenantRates { default: rate, per_tenant: BTreeMap::new() });
        limiter.admit("t", 1, 1_000).unwrap();
        let refused = limiter.admit("t", 1, 500).unwrap_err();
        assert_eq!(refused.measure, "bytes");
        tokio::time::advance(Duration::from_millis(500)).await;
        limiter.admit("t", 999, 500).unwrap();
    }
}
