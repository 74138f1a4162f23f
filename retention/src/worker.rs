//! The retention worker: a singleton by lease. Each run it records the policy versions,
//! advances every tenant's watermark to "now − retention" (which hides expired data on
//! every query path at once), drops whole buckets that no tenant can see, and purges
//! early the data of tenants whose policy was shortened (their rows still carry the
//! longer policy's expiry).
//!
//! Each step is idempotent, so a worker killed mid-run resumes without harm; a worker
//! that lost its lease (paused past expiry) is refused by the epoch check on its next
//! action and stands by.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracekeeper_storage::lifecycle::{Expired, PolicyVersion, DEFAULT_POLICY};
use tracekeeper_storage::{Lifecycle, LifecycleError, StorageError};

use tracekeeper_model::clock::Clock;

use crate::{RetentionPolicies, Watermarks};

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
        /// Buckets dropped whole, plus tenants' shares of buckets purged early.
        buckets_expired: u64,
        rows_expired: u64,
    },
}

pub struct Worker {
    pub store: Arc<dyn Lifecycle>,
    pub policies: Arc<RetentionPolicies>,
    pub clock: Arc<dyn Clock>,
    pub watermarks: Watermarks,
    pub config: WorkerConfig,
    /// Per tenant, where the next early purge starts: everything before it is purged.
    /// Lost on restart, which only costs re-reading already empty buckets once.
    pub purged_before: Mutex<BTreeMap<String, u64>>,
}

impl Worker {
    pub fn new(
        store: Arc<dyn Lifecycle>,
        policies: Arc<RetentionPolicies>,
        clock: Arc<dyn Clock>,
        watermarks: Watermarks,
        config: WorkerConfig,
    ) -> Self {
        Self { store, policies, clock, watermarks, config, purged_before: Mutex::default() }
    }
}

/// Adds `more` to `total` and to the expiry counters, labelled by how it was removed.
fn count(total: &mut Expired, more: Expired, how: &'static str) {
    total.buckets += more.buckets;
    total.rows += more.rows;
    metrics::counter!(crate::telemetry::RETENTION_BUCKETS_EXPIRED_TOTAL, "how" => how).increment(more.buckets);
    metrics::counter!(crate::telemetry::RETENTION_ROWS_EXPIRED_TOTAL, "how" => how).increment(more.rows);
}

impl Worker {
    pub async fn run_once(&self) -> Result<RunOutcome, StorageError> {
        let started = Instant::now();
        let now = self.clock.now_ns();
        let ttl = self.config.lease_ttl.as_nanos() as u64;
        let Some(epoch) = self.store.acquire(&self.config.holder, now, ttl).await? else {
            metrics::gauge!(crate::telemetry::RETENTION_LEADER).set(0.0);
            return Ok(RunOutcome::Standby);
        };
        metrics::gauge!(crate::telemetry::RETENTION_LEADER).set(1.0);
        self.store.record_policy(DEFAULT_POLICY, self.policies.default.as_secs(), now).await?;
        for (tenant, retention) in &self.policies.per_tenant {
            self.store.record_policy(tenant, retention.as_secs(), now).await?;
        }
        // A tenant whose override was removed from the config now has the default:
        // record that, or every node would keep the old override it reads from here.
        let recorded: std::collections::BTreeSet<String> =
            self.store.policies().await?.into_iter().map(|v| v.tenant).collect();
        for tenant in recorded.iter().filter(|t| *t != DEFAULT_POLICY && !self.policies.per_tenant.contains_key(*t)) {
            self.store.record_policy(tenant, self.policies.default.as_secs(), now).await?;
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
            metrics::gauge!(crate::telemetry::RETENTION_WATERMARK_LAG_SECONDS, "tenant" => tracekeeper_model::tenant_label(tenant))
                .set(lag as f64 / 1e9);
            match self.store.advance_watermark(&self.config.holder, epoch, now, tenant, horizon).await {
                Ok(()) => {}
                Err(LifecycleError::Fenced { holder, epoch: theirs }) => return Ok(self.fenced(&holder, theirs)),
                Err(LifecycleError::Storage(e)) => return Err(e),
            }
            visible_everywhere_from = visible_everywhere_from.min(horizon);
        }
        self.watermarks.update(self.store.watermarks().await?);
        let mut expired = Expired::default();
        if visible_everywhere_from != u64::MAX {
            // Deleting is the one step that cannot be undone: renew (and so re-check)
            // the lease right before it.
            if self.store.acquire(&self.config.holder, self.clock.now_ns(), ttl).await? != Some(epoch) {
                return Ok(self.fenced("another worker", epoch + 1));
            }
            let whole = self.store.expire_before(visible_everywhere_from).await?;
            count(&mut expired, whole, "whole");
            let versions = self.store.policies().await?;
            for tenant in &tenants {
                let purged = self.purge_shortened(tenant, &versions, now).await?;
                count(&mut expired, purged, "purge");
            }
        }
        metrics::gauge!(crate::telemetry::RETENTION_LAST_RUN_TIMESTAMP_SECONDS).set(now as f64 / 1e9);
        metrics::gauge!(crate::telemetry::RETENTION_LAST_RUN_DURATION_SECONDS).set(started.elapsed().as_secs_f64());
        metrics::histogram!(crate::telemetry::RETENTION_RUN_SECONDS).record(started.elapsed().as_secs_f64());
        Ok(RunOutcome::Ran {
            epoch,
            tenants: tenants.len(),
            buckets_expired: expired.buckets,
            rows_expired: expired.rows,
        })
    }

    /// Deletes early what `tenant` stored under a longer policy than today's, from
    /// where that longer policy would still keep data up to today's horizon.
    async fn purge_shortened(
        &self,
        tenant: &str,
        versions: &[PolicyVersion],
        now: u64,
    ) -> Result<Expired, StorageError> {
        let current = self.policies.retention_for(tenant).as_secs();
        let longest = versions
            .iter()
            .filter(|v| v.tenant == tenant || v.tenant == DEFAULT_POLICY)
            .map(|v| v.retention_secs)
            .max()
            .unwrap_or(current);
        if longest <= current {
            return Ok(Expired::default());
        }
        let horizon = self.policies.visible_from_ns(tenant, now);
        let oldest_stored = now.saturating_sub(longest.saturating_mul(1_000_000_000));
        let resume = self.purged_before.lock().expect("purge progress lock").get(tenant).copied().unwrap_or(0);
        let from = oldest_stored.max(resume);
        if from >= horizon {
            return Ok(Expired::default());
        }
        let (purged, covered_until) = self.store.purge_tenant(tenant, from, horizon).await?;
        self.purged_before.lock().expect("purge progress lock").insert(tenant.to_string(), covered_until);
        Ok(purged)
    }

    fn fenced(&self, holder: &str, epoch: u64) -> RunOutcome {
        metrics::counter!(crate::telemetry::RETENTION_FENCED_TOTAL).increment(1);
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
