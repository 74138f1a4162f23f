//! The indexer stage: accepted spans in, stored span rows and index postings out.
//!
//! It is the same code in both shapes: all-in-one calls it straight from the
//! receivers; the distributed indexer calls it from its Kafka consumer. It applies the
//! rules every stored span obeys (retention at ingest), then hands the batch to a
//! [`SpanWriter`], whose contract makes the write idempotent and durable.

pub mod kafka;
pub mod status;

use std::sync::Arc;

use tracekeeper_model::Span;
use tracekeeper_retention::{Clock, RetentionPolicies, Watermarks};
use tracekeeper_storage::{SpanWriter, StorageError, WriteBatch};

/// What happened to a batch that was indexed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Indexed {
    pub stored: usize,
    /// Why each span that was not stored was refused.
    pub rejected: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub struct Indexer {
    writer: Arc<dyn SpanWriter>,
    retention: Arc<RetentionPolicies>,
    clock: Arc<dyn Clock>,
    /// The retention worker's "expired before" marks: a policy shortened elsewhere.
    watermarks: Watermarks,
}

impl Indexer {
    pub fn new(writer: Arc<dyn SpanWriter>, retention: Arc<RetentionPolicies>, clock: Arc<dyn Clock>) -> Self {
        Self { writer, retention, clock, watermarks: Watermarks::default() }
    }

    /// Refuses spans below `watermarks` as well as those past this node's policy.
    pub fn with_watermarks(mut self, watermarks: Watermarks) -> Self {
        self.watermarks = watermarks;
        self
    }

    /// Now, by the indexer's clock.
    pub fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    /// Stores `spans` for `tenant`. Spans already older than the tenant's retention
    /// (or its watermark) are refused rather than stored: they would be invisible at once.
    pub async fn index(&self, tenant: &str, spans: Vec<Span>) -> Result<Indexed, IndexError> {
        let now_ns = self.clock.now_ns();
        let visible_from = self.retention.visible_from_ns(tenant, now_ns).max(self.watermarks.expired_before(tenant));
        let (keep, expired): (Vec<Span>, Vec<Span>) = spans.into_iter().partition(|s| s.start_ns >= visible_from);
        let rejected: Vec<String> = expired
            .iter()
            .map(|s| {
                format!(
                    "span {}/{}: starts at {} ns, before the retention horizon {} ns of tenant {tenant:?}",
                    s.trace_id, s.span_id, s.start_ns, visible_from
                )
            })
            .collect();
        if !expired.is_empty() {
            metrics::counter!("tracekeeper_spans_rejected_total", "reason" => "expired")
                .increment(expired.len() as u64);
        }
        let stored = keep.len();
        if stored > 0 {
            let started = std::time::Instant::now();
            self.writer
                .write(WriteBatch {
                    tenant: tenant.to_string(),
                    spans: keep,
                    retention_ns: self.retention.retention_ns(tenant),
                    now_ns,
                })
                .await?;
            metrics::histogram!("tracekeeper_storage_write_seconds").record(started.elapsed().as_secs_f64());
            metrics::counter!("tracekeeper_spans_stored_total", "tenant" => tenant.to_string())
                .increment(stored as u64);
        }
        Ok(Indexed { stored, rejected })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tracekeeper_retention::ManualClock;
    use tracekeeper_storage::embedded::{EmbeddedConfig, EmbeddedStore};
    use tracekeeper_storage::SpanReader;

    use super::*;

    fn span(trace: u8, start_ns: u64) -> Span {
        tracekeeper_storage::testing::span(trace, 1, "svc", "op", start_ns)
    }

    #[tokio::test]
    async fn spans_older_than_retention_are_refused_and_the_rest_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap());
        let now = 10 * 86_400_000_000_000u64;
        let clock = Arc::new(ManualClock::new(now));
        let indexer = Indexer::new(store.clone(), Arc::new(RetentionPolicies::default()), clock);
        let week = Duration::from_secs(7 * 86_400).as_nanos() as u64;
        let fresh = span(1, now - week);
        let stale = span(2, now - week - 1);
        let outcome = indexer.index("t", vec![fresh.clone(), stale]).await.unwrap();
        assert_eq!(outcome.stored, 1);
        assert_eq!(outcome.rejected.len(), 1);
        assert!(outcome.rejected[0].contains("before the retention horizon"), "{}", outcome.rejected[0]);
        assert_eq!(store.trace("t", fresh.trace_id, 10).await.unwrap().0.len(), 1);
        assert!(store.trace("t", tracekeeper_model::TraceId([2; 16]), 10).await.unwrap().0.is_empty());
    }

    #[tokio::test]
    async fn spans_below_the_watermark_are_refused_whatever_the_local_policy() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap());
        let now = 10 * 86_400_000_000_000u64;
        let watermarks = Watermarks::default();
        watermarks.update([("t".to_string(), now - 3_600_000_000_000)].into());
        let indexer =
            Indexer::new(store.clone(), Arc::new(RetentionPolicies::default()), Arc::new(ManualClock::new(now)))
                .with_watermarks(watermarks);
        let (inside, outside) = (span(1, now - 3_600_000_000_000), span(2, now - 3_600_000_000_001));
        let outcome = indexer.index("t", vec![inside, outside.clone()]).await.unwrap();
        assert_eq!((outcome.stored, outcome.rejected.len()), (1, 1));
        assert!(store.trace("t", outside.trace_id, 10).await.unwrap().0.is_empty());
        let other = indexer.index("u", vec![span(3, now - 86_400_000_000_000)]).await.unwrap();
        assert_eq!(other.stored, 1, "another tenant's watermark is its own");
    }
}
