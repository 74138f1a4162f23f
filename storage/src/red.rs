//! RED aggregates (rate, errors, duration) per minute: what the indexers counted, kept
//! in the store so that every query node answers Jaeger's Monitor tab alike.
//!
//! # Contract ([`RedStore`])
//! - **Additive.** Every [`RedStore::add_red`] adds its cells to what is stored; the
//!   same (minute, labels) written twice counts twice. Writers flush deltas of spans
//!   they counted once (`tracekeeper_indexer::red`).
//! - **Time-bounded reads.** [`RedStore::red`] returns the cells whose minute lies in
//!   `[from_ns, to_ns)`, several cells of one label set and minute summed or not: the
//!   caller sums.
//! - **Expiry.** Cells live as long as spans of their minute under the tenant's
//!   retention; callers still filter by the visible horizon.

use async_trait::async_trait;
use tracekeeper_model::SpanKind;

use crate::api::StorageError;

/// Upper bounds (ms) of the duration buckets, the OpenTelemetry spanmetrics connector's;
/// a cell has one more bucket, for everything above the last.
pub const DURATION_BOUNDS_MS: &[f64] =
    &[2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1000.0, 1400.0, 2000.0, 5000.0, 10_000.0, 15_000.0];

pub const MINUTE_NS: u64 = 60_000_000_000;

/// The calls of one label set in one minute.
#[derive(Debug, Clone, PartialEq)]
pub struct RedCell {
    /// Start of the minute (of the spans' start times), in ns since the epoch.
    pub minute_ns: u64,
    pub service: String,
    pub operation: String,
    pub kind: SpanKind,
    /// Whether these calls ended in an error status.
    pub error: bool,
    /// Whether these are root spans (no parent): what TraceQL's `nestedSetParent < 0`
    /// selects, and Grafana's Traces Drilldown asks for by default. Cells written
    /// before schema v009 (and the embedded keys of that time) read as not root.
    pub root: bool,
    pub calls: u64,
    /// Calls per duration bucket: `DURATION_BOUNDS_MS.len() + 1` counts, not cumulative.
    pub buckets: Vec<u64>,
    pub sum_ms: f64,
}

impl RedCell {
    pub fn new(minute_ns: u64, service: &str, operation: &str, kind: SpanKind, error: bool) -> Self {
        Self {
            minute_ns,
            service: service.to_string(),
            operation: operation.to_string(),
            kind,
            error,
            root: false,
            calls: 0,
            buckets: vec![0; DURATION_BOUNDS_MS.len() + 1],
            sum_ms: 0.0,
        }
    }

    /// The cell of root spans (see [`RedCell::root`]).
    pub fn of_roots(mut self, root: bool) -> Self {
        self.root = root;
        self
    }

    pub fn observe(&mut self, duration_ms: f64) {
        self.calls += 1;
        self.sum_ms += duration_ms;
        let at = DURATION_BOUNDS_MS.iter().position(|bound| duration_ms <= *bound).unwrap_or(DURATION_BOUNDS_MS.len());
        self.buckets[at] += 1;
    }

    pub fn add(&mut self, other: &RedCell) {
        self.calls += other.calls;
        self.sum_ms += other.sum_ms;
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
    }

    /// The value encoded for storage: calls, sum, then each bucket (little endian).
    pub fn encode_counts(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + 8 * self.buckets.len());
        out.extend_from_slice(&self.calls.to_le_bytes());
        out.extend_from_slice(&self.sum_ms.to_le_bytes());
        for bucket in &self.buckets {
            out.extend_from_slice(&bucket.to_le_bytes());
        }
        out
    }

    pub fn decode_counts(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        let words: Vec<[u8; 8]> = bytes.chunks_exact(8).filter_map(|c| c.try_into().ok()).collect();
        if !bytes.len().is_multiple_of(8) || words.len() != DURATION_BOUNDS_MS.len() + 3 {
            return Err(StorageError::Corrupt(format!("a RED cell of {} bytes", bytes.len())));
        }
        self.calls = u64::from_le_bytes(words[0]);
        self.sum_ms = f64::from_le_bytes(words[1]);
        self.buckets = words[2..].iter().map(|w| u64::from_le_bytes(*w)).collect();
        Ok(())
    }
}

/// A number no other flush of this process used, starting from the clock at first use
/// so that a restarted process does not reuse the last one's: backends end their keys
/// with it, so that flushes never overwrite one another.
pub(crate) fn next_unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    if NEXT.load(Ordering::Relaxed) == 0 {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        let _ = NEXT.compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst);
    }
    NEXT.fetch_add(1, Ordering::SeqCst)
}

#[async_trait]
pub trait RedStore: Send + Sync {
    /// Adds `cells` of `tenant`, kept for `retention_ns` after their minute (`now_ns` is
    /// the writer's clock, for a TTL).
    async fn add_red(
        &self,
        tenant: &str,
        cells: Vec<RedCell>,
        retention_ns: u64,
        now_ns: u64,
    ) -> Result<(), StorageError>;

    /// The cells of `tenant` whose minute is in `[from_ns, to_ns)`.
    async fn red(&self, tenant: &str, from_ns: u64, to_ns: u64) -> Result<Vec<RedCell>, StorageError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_lands_in_the_first_bucket_that_holds_it() {
        let mut cell = RedCell::new(0, "s", "o", SpanKind::Server, false);
        for ms in [1.0, 2.0, 2.5, 20_000.0] {
            cell.observe(ms);
        }
        assert_eq!(cell.buckets[0], 2, "1 ms and 2 ms");
        assert_eq!(cell.buckets[1], 1, "2.5 ms");
        assert_eq!(cell.buckets[DURATION_BOUNDS_MS.len()], 1, "past the last bound");
        let mut back = RedCell::new(0, "s", "o", SpanKind::Server, false);
        back.decode_counts(&cell.encode_counts()).unwrap();
        assert_eq!(back, cell);
        assert!(back.decode_counts(&[1, 2, 3]).is_err());
    }
}
