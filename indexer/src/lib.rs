//! The indexer stage: accepted spans in, stored span rows and index postings out.
//!
//! It is the same code in both shapes: all-in-one calls it straight from the
//! receivers; the distributed indexer calls it from its Kafka consumer. It applies the
//! rules every stored span obeys (retention at ingest), then hands the batch to a
//! [`SpanWriter`], whose contract makes the write idempotent and durable.

pub mod red;
pub mod telemetry;
pub mod trace_limit;

use std::sync::Arc;
use std::time::Duration;

use tracekeeper_model::clock::Clock;
use tracekeeper_model::Span;
use tracekeeper_retention::{Policies, Watermarks};
use tracekeeper_storage::{SpanReader, SpanWriter, StorageError, WriteBatch};

use crate::trace_limit::TraceLimit;

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

impl IndexError {
    /// Whether the same spans would be refused again however often they are retried.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Storage(e) => e.is_permanent(),
        }
    }
}

pub struct Indexer {
    writer: Arc<dyn SpanWriter>,
    retention: Policies,
    clock: Arc<dyn Clock>,
    /// The retention worker's "expired before" marks: a policy shortened elsewhere.
    watermarks: Watermarks,
    trace_limit: Option<TraceLimit>,
    max_future_skew: Duration,
    tenant_future_skews: std::collections::BTreeMap<String, Duration>,
    red: Option<Arc<red::Red>>,
}

/// How far ahead of now a span may start by default (`--max-future-skew`). Beyond it a
/// span would open a time bucket that outlives everything else and top every
/// newest-first search, so it is refused like a span past retention.
pub const DEFAULT_MAX_FUTURE_SKEW: Duration = Duration::from_secs(3600);

impl Indexer {
    pub fn new(writer: Arc<dyn SpanWriter>, retention: impl Into<Policies>, clock: Arc<dyn Clock>) -> Self {
        Self {
            writer,
            retention: retention.into(),
            clock,
            watermarks: Watermarks::default(),
            trace_limit: None,
            max_future_skew: DEFAULT_MAX_FUTURE_SKEW,
            tenant_future_skews: Default::default(),
            red: None,
        }
    }

    /// Refuses spans that start more than `skew` after now.
    pub fn with_max_future_skew(mut self, skew: Duration) -> Self {
        self.max_future_skew = skew;
        self
    }

    /// Tenants whose spans may start further ahead (or less far) than `max_future_skew`.
    pub fn with_tenant_future_skews(mut self, skews: std::collections::BTreeMap<String, Duration>) -> Self {
        self.tenant_future_skews = skews;
        self
    }

    /// Refuses spans beyond `max_spans` per trace, counting stored spans in `reader`.
    pub fn with_trace_limit(mut self, reader: Arc<dyn SpanReader>, max_spans: usize) -> Self {
        self.trace_limit = Some(TraceLimit::new(reader, max_spans));
        self
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
    /// RED metrics and service-graph edges from every span this indexer stores.
    pub fn with_red(mut self, red: Arc<red::Red>) -> Self {
        self.red = Some(red);
        self
    }

    /// Stores `spans` (those within retention and the trace limit) and counts them in
    /// the RED metrics.
    pub async fn index(&self, tenant: &str, spans: Vec<Span>) -> Result<Indexed, IndexError> {
        self.index_counting(tenant, spans, true).await
    }

    /// Stores `spans` again: a replay of what was stored and counted before (a Kafka
    /// partition read again below its committed offset), so RED does not count them.
    pub async fn index_again(&self, tenant: &str, spans: Vec<Span>) -> Result<Indexed, IndexError> {
        self.index_counting(tenant, spans, false).await
    }

    async fn index_counting(&self, tenant: &str, spans: Vec<Span>, count: bool) -> Result<Indexed, IndexError> {
        let now_ns = self.clock.now_ns();
        let retention = self.retention.current();
        let visible_from = retention.horizon_ns(tenant, now_ns, self.watermarks.expired_before(tenant));
        let skew = self.tenant_future_skews.get(tenant).copied().unwrap_or(self.max_future_skew);
        let latest = now_ns.saturating_add(u64::try_from(skew.as_nanos()).unwrap_or(u64::MAX));
        // One pass: the spans kept, and the refused ones' reasons (too far ahead first,
        // then past retention, as clients have always read them).
        let mut keep = Vec::with_capacity(spans.len());
        let (mut rejected, mut expired) = (Vec::new(), Vec::new());
        for s in spans {
            if s.start_ns > latest {
                rejected.push(format!(
                    "span {}/{}: starts at {} ns, more than {:?} after now ({} ns); check the sender's clock (--max-future-skew)",
                    s.trace_id, s.span_id, s.start_ns, skew, now_ns
                ));
            } else if s.start_ns < visible_from {
                expired.push(format!(
                    "span {}/{}: starts at {} ns, before the retention horizon {} ns of tenant {tenant:?}",
                    s.trace_id, s.span_id, s.start_ns, visible_from
                ));
            } else {
                keep.push(s);
            }
        }
        if !rejected.is_empty() {
            metrics::counter!(tracekeeper_model::telemetry::SPANS_REJECTED_TOTAL, "reason" => "future")
                .increment(rejected.len() as u64);
        }
        if !expired.is_empty() {
            metrics::counter!(tracekeeper_model::telemetry::SPANS_REJECTED_TOTAL, "reason" => "expired")
                .increment(expired.len() as u64);
        }
        rejected.append(&mut expired);
        let (keep, stored_before) = match &self.trace_limit {
            Some(limit) => {
                let admitted = limit.admit(tenant, keep).await?;
                let (keep, too_many) = (admitted.kept, admitted.beyond_limit);
                if !too_many.is_empty() {
                    metrics::counter!(tracekeeper_model::telemetry::SPANS_DROPPED_TOTAL, "reason" => "trace_too_large", "tenant" => tracekeeper_model::tenant_label(tenant))
                        .increment(too_many.len() as u64);
                    rejected.extend(too_many.iter().map(|s| {
                        format!(
                            "span {}/{}: the trace already has the most spans a trace may store ({}; --max-trace-spans)",
                            s.trace_id,
                            s.span_id,
                            limit.max_spans()
                        )
                    }));
                }
                (keep, admitted.stored_before)
            }
            None => {
                let fresh = vec![false; keep.len()];
                (keep, fresh)
            }
        };
        let stored = keep.len();
        // A span the trace already held (a client's retry, a duplicate batch) is not
        // counted again.
        let observed = match &self.red {
            Some(_) if count => {
                red::Observed::of(keep.iter().zip(&stored_before).filter(|(_, before)| !**before).map(|(span, _)| span))
            }
            _ => red::Observed::default(),
        };
        if stored > 0 {
            let started = std::time::Instant::now();
            let traces: Vec<tracekeeper_model::TraceId> = match &self.trace_limit {
                Some(_) => keep.iter().map(|s| s.trace_id).collect(),
                None => Vec::new(),
            };
            let written = self
                .writer
                .write(WriteBatch {
                    tenant: tenant.to_string(),
                    spans: keep,
                    retention_ns: retention.retention_ns(tenant),
                    now_ns,
                })
                .await;
            if let Err(e) = written {
                if let Some(limit) = &self.trace_limit {
                    limit.forget(tenant, traces);
                }
                return Err(e.into());
            }
            metrics::histogram!(crate::telemetry::STORAGE_WRITE_SECONDS).record(started.elapsed().as_secs_f64());
            metrics::counter!(crate::telemetry::SPANS_STORED_TOTAL, "tenant" => tracekeeper_model::tenant_label(tenant))
                .increment(stored as u64);
            if let (Some(red), false) = (&self.red, observed.is_empty()) {
                red.record(tenant, &observed, std::time::Instant::now());
            }
        }
        Ok(Indexed { stored, rejected })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tracekeeper_model::clock::ManualClock;
    use tracekeeper_retention::RetentionPolicies;
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

    #[tokio::test]
    async fn spans_beyond_the_trace_limit_are_refused_and_replays_still_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap());
        let now = 10 * 86_400_000_000_000u64;
        let limited = || {
            Indexer::new(store.clone(), Arc::new(RetentionPolicies::default()), Arc::new(ManualClock::new(now)))
                .with_trace_limit(store.clone(), 3)
        };
        let indexer = limited();
        let nth = |n: u8| tracekeeper_storage::testing::span(7, n, "svc", "op", now - u64::from(n));
        let first = indexer.index("t", vec![nth(1), nth(2)]).await.unwrap();
        assert_eq!((first.stored, first.rejected.len()), (2, 0));
        let second = indexer.index("t", vec![nth(3), nth(4), nth(5)]).await.unwrap();
        assert_eq!((second.stored, second.rejected.len()), (1, 2));
        assert!(second.rejected[0].contains("most spans a trace may store (3"), "{}", second.rejected[0]);
        let replay = indexer.index("t", vec![nth(1), nth(2), nth(3)]).await.unwrap();
        assert_eq!((replay.stored, replay.rejected.len()), (3, 0), "spans already stored are accepted again");
        // A new indexer (after a restart) counts what the store holds.
        let restarted = limited().index("t", vec![nth(6), nth(2)]).await.unwrap();
        assert_eq!((restarted.stored, restarted.rejected.len()), (1, 1));
        assert_eq!(store.trace("t", nth(1).trace_id, 100).await.unwrap().0.len(), 3);
        let other = limited().index("u", vec![nth(4)]).await.unwrap();
        assert_eq!(other.stored, 1, "the limit is per tenant and trace");
    }

    #[tokio::test]
    async fn spans_too_far_in_the_future_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap());
        let now = 10 * 86_400_000_000_000u64;
        let indexer =
            Indexer::new(store.clone(), Arc::new(RetentionPolicies::default()), Arc::new(ManualClock::new(now)))
                .with_max_future_skew(Duration::from_secs(3600));
        let edge = span(1, now + 3_600_000_000_000);
        let beyond = span(2, now + 3_600_000_000_001);
        let fifty_years = span(3, now + 50 * 365 * 86_400_000_000_000);
        let outcome = indexer.index("t", vec![edge.clone(), beyond.clone(), fifty_years]).await.unwrap();
        assert_eq!((outcome.stored, outcome.rejected.len()), (1, 2));
        assert!(outcome.rejected[0].contains("more than 3600s after now"), "{}", outcome.rejected[0]);
        assert!(outcome.rejected[0].contains("--max-future-skew"));
        assert_eq!(store.trace("t", edge.trace_id, 10).await.unwrap().0.len(), 1);
        assert!(store.trace("t", beyond.trace_id, 10).await.unwrap().0.is_empty());
    }

    #[tokio::test]
    async fn a_tenant_may_have_its_own_future_skew() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap());
        let now = 10 * 86_400_000_000_000u64;
        let indexer =
            Indexer::new(store.clone(), Arc::new(RetentionPolicies::default()), Arc::new(ManualClock::new(now)))
                .with_tenant_future_skews([("satellite".to_string(), Duration::from_secs(2 * 86_400))].into());
        let tomorrow = || span(1, now + 86_400_000_000_000);
        let satellite = indexer.index("satellite", vec![tomorrow()]).await.unwrap();
        assert_eq!((satellite.stored, satellite.rejected.len()), (1, 0), "within its own two days");
        let others = indexer.index("ground", vec![tomorrow()]).await.unwrap();
        assert_eq!((others.stored, others.rejected.len()), (0, 1), "everyone else keeps the default hour");
        assert!(others.rejected[0].contains("more than 3600s after now"), "{}", others.rejected[0]);
    }

    /// Many batches at once over more traces than the limiter remembers: traces are
    /// forgotten between the two looks of a concurrent batch. Nothing may panic (which
    /// would poison the lock and fail every later ingest), and a sequential batch after
    /// the storm still sees the limit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_batches_over_a_tiny_memory_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap());
        let now = 10 * 86_400_000_000_000u64;
        let mut indexer =
            Indexer::new(store.clone(), Arc::new(RetentionPolicies::default()), Arc::new(ManualClock::new(now)));
        indexer.trace_limit = Some(TraceLimit::with_memory(store.clone(), 3, 1));
        let indexer = Arc::new(indexer);
        let tasks: Vec<_> = (0..400u32)
            .map(|i| {
                let indexer = indexer.clone();
                tokio::spawn(async move {
                    let trace = (i % 20) as u8;
                    let spans = (0..2u8)
                        .map(|k| {
                            tracekeeper_storage::testing::span(trace, (i % 100) as u8 * 2 + k, "svc", "op", now - 10)
                        })
                        .collect();
                    indexer.index("t", spans).await
                })
            })
            .collect();
        for task in tasks {
            let outcome = task.await.expect("no panic while admitting").expect("indexed");
            assert!(outcome.stored <= 2);
        }
        let after = indexer
            .index("t", (0..5u8).map(|k| tracekeeper_storage::testing::span(99, k, "svc", "op", now - 10)).collect())
            .await
            .unwrap();
        assert_eq!((after.stored, after.rejected.len()), (3, 2), "the limiter still works after the storm");
    }
}
