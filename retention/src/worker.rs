//! The retention worker: a singleton by lease. Each run it records the policy versions,
//! advances every tenant's watermark to "now − retention" (which hides expired data on
//! every query path at once), then drops whole buckets that no tenant can see.
//!
//! Each step is idempotent, so a worker killed mid-run resumes without harm; a worker
//! that lost its lease (paused past expiry) is refused by the epoch check on its next
//! action and stands by.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracekeeper_storage::lifecycle::DEFAULT_POLICY;
use tracekeeper_storage::{Lifecycle, LifecycleError, StorageError};

use crate::{Clock, RetentionPolicies, Watermarks};

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// This worker's name in the lease; unique per process.
    pub holder: String,
    /// Time between runs.
    pub interval: Duration,
    /// How long a lease lasts without renewal; longer than `interval`.
    pub lease_ttl: Duration,
}

/// What one run did.
#[derive(Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// Another worker holds the lease.
    Standby,
    /// Lost the lease during the run: stopped acting.
    Fenced,
    Ran {
        epoch: u64,
        tenants: usize,
        buckets_expired: u64,
    },
}

pub struct Worker {
    pub store: Arc<dyn Lifecycle>,
    pub policies: Arc<RetentionPolicies>,
    pub clock: Arc<dyn Clock>,
    pub watermarks: Watermarks,
    pub config: WorkerConfig,
}

impl Worker {
    pub async fn run_once(&self) -> Result<RunOutcome, StorageError> {
        let started = Instant::now();
        let now = self.clock.now_ns();
        let ttl = self.config.lease_ttl.as_nanos() as u64;
        let Some(epoch) = self.store.acquire(&self.config.holder, now, ttl).await? else {
            metrics::gauge!("tracekeeper_retention_leader").set(0.0);
            return Ok(RunOutcome::Standby);
        };
        metrics::gauge!("tracekeeper_retention_leader").set(1.0);
        self.store.record_policy(DEFAULT_POLICY, self.policies.default.as_secs(), now).await?;
        for (tenant, retention) in &self.policies.per_tenant {
            self.store.record_policy(tenant, retention.as_secs(), now).await?;
        }
        let mut tenants = self.store.tenants().await?;
        tenants.extend(self.policies.per_tenant.keys().cloned());
        tenants.sort();
        tenants.dedup();
        let current = self.store.watermarks().await?;
        let mut visible_everywhere_from = u64::MAX;
        for tenant in &tenants {
            let horizon = self.policies.visible_from_ns(tenant, now);
            let lag = horizon.saturating_sub(current.get(tenant).copied().unwrap_or(0));
            metrics::gauge!("tracekeeper_retention_watermark_lag_seconds", "tenant" => tenant.clone())
                .set(lag as f64 / 1e9);
            match self.store.advance_watermark(&self.config.holder, epoch, now, tenant, horizon).await {
                Ok(()) => {}
                Err(LifecycleError::Fenced { holder, epoch: theirs }) => return Ok(self.fenced(&holder, theirs)),
                Err(LifecycleError::Storage(e)) => return Err(e),
            }
            visible_everywhere_from = visible_everywhere_from.min(horizon);
        }
        self.watermarks.update(self.store.watermarks().await?);
        let mut buckets_expired = 0;
        if visible_everywhere_from != u64::MAX {
            // Deleting is the one step that cannot be undone: renew (and so re-check)
            // the lease right before it.
            if self.store.acquire(&self.config.holder, self.clock.now_ns(), ttl).await? != Some(epoch) {
                return Ok(self.fenced("another worker", epoch + 1));
            }
            buckets_expired = self.store.expire_before(visible_everywhere_from).await?;
        }
        metrics::counter!("tracekeeper_retention_buckets_expired_total").increment(buckets_expired);
        metrics::gauge!("tracekeeper_retention_last_run_timestamp_seconds").set(now as f64 / 1e9);
        metrics::histogram!("tracekeeper_retention_run_seconds").record(started.elapsed().as_secs_f64());
        Ok(RunOutcome::Ran { epoch, tenants: tenants.len(), buckets_expired })
    }

    fn fenced(&self, holder: &str, epoch: u64) -> RunOutcome {
        metrics::counter!("tracekeeper_retention_fenced_total").increment(1);
        tracing::warn!(holder, epoch, "retention lease lost; standing by");
        RunOutcome::Fenced
    }

    /// Runs every `interval` until `shutdown` resolves. A failed run is logged and
    /// retried at the next interval.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            match self.run_once().await {
                Ok(outcome) => tracing::debug!(?outcome, "retention run"),
                Err(e) => tracing::warn!(error = %e, "retention run failed; retrying next interval"),
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(self.config.interval) => {}
            }
        }
    }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
