//! Retention: how long each tenant's data lives. "Now" comes from a
//! [`tracekeeper_model::clock::Clock`], so tests drive time instead of sleeping.

mod policies;
pub mod telemetry;
mod watermarks;
pub mod worker;

pub use policies::Policies;
pub use watermarks::Watermarks;

use std::collections::BTreeMap;
use std::time::Duration;

/// Seven days, the default retention.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Keeps a process's view of the store's retention state fresh, every `interval`, until
/// the task is dropped: the watermarks (a policy shortened hides data at once) and the
/// policies themselves (each tenant's TTL and window).
pub async fn follow(
    store: std::sync::Arc<dyn tracekeeper_storage::Lifecycle>,
    interval: Duration,
    watermarks: Watermarks,
    policies: Policies,
) {
    loop {
        if let Err(e) = watermarks.load(&*store).await {
            tracing::warn!(error = %e, "refreshing retention watermarks failed");
        }
        if let Err(e) = policies.load(&*store).await {
            tracing::warn!(error = %e, "refreshing retention policies failed");
        }
        tokio::time::sleep(interval).await;
    }
}

/// Retention per tenant: a default and overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicies {
    pub default: Duration,
    pub per_tenant: BTreeMap<String, Duration>,
}

impl Default for RetentionPolicies {
    fn default() -> Self {
        Self { default: DEFAULT_RETENTION, per_tenant: BTreeMap::new() }
    }
}

impl RetentionPolicies {
    pub fn retention_for(&self, tenant: &str) -> Duration {
        self.per_tenant.get(tenant).copied().unwrap_or(self.default)
    }

    pub fn retention_ns(&self, tenant: &str) -> u64 {
        u64::try_from(self.retention_for(tenant).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The oldest span start time still visible for `tenant` at `now_ns`: anything
    /// starting before it is expired, whether or not it is physically deleted yet.
    pub fn visible_from_ns(&self, tenant: &str, now_ns: u64) -> u64 {
        now_ns.saturating_sub(self.retention_ns(tenant))
    }

    /// The retention horizon every reader and writer holds spans to: the policy's
    /// window or the tenant's watermark (`expired_before_ns`, 0 for none), whichever
    /// is later. A watermark ahead of the window is a policy shortened since, whose
    /// rows may not all be purged yet; a window ahead of the watermark is time passing
    /// between two rounds of the retention worker.
    pub fn horizon_ns(&self, tenant: &str, now_ns: u64, expired_before_ns: u64) -> u64 {
        self.visible_from_ns(tenant, now_ns).max(expired_before_ns)
    }
}

#[cfg(test)]
mod tests {
    use tracekeeper_model::clock::{Clock, ManualClock};

    use super::*;

    #[test]
    fn overrides_win_and_visibility_follows_the_clock() {
        let mut policies = RetentionPolicies::default();
        policies.per_tenant.insert("short".into(), Duration::from_secs(60));
        let clock = ManualClock::new(1_000_000_000_000);
        assert_eq!(policies.visible_from_ns("short", clock.now_ns()), 1_000_000_000_000 - 60_000_000_000);
        assert_eq!(policies.retention_for("other"), DEFAULT_RETENTION);
        clock.advance(Duration::from_secs(1));
        assert_eq!(policies.visible_from_ns("short", clock.now_ns()), 1_000_000_000_000 - 59_000_000_000);
    }

    #[test]
    fn the_horizon_is_the_later_of_window_and_watermark() {
        let policies = RetentionPolicies { default: Duration::from_secs(100), per_tenant: Default::default() };
        let now = 1_000 * 1_000_000_000;
        let window = now - 100 * 1_000_000_000;
        assert_eq!(policies.horizon_ns("a", now, 0), window, "no watermark: the window");
        assert_eq!(policies.horizon_ns("a", now, window - 1), window, "an older watermark changes nothing");
        assert_eq!(policies.horizon_ns("a", now, window + 7), window + 7, "a shortened policy's watermark hides more");
    }
}
