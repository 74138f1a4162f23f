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

use std::collections::BTreeMap;

use async_trait::async_trait;
use tracekeeper_model::SpanKind;

use crate::api::StorageError;

/// Upper bounds (ms) of the duration buckets, the OpenTelemetry spanmetrics connector's;
/// a cell has one more bucket, for everything above the last.
pub const DURATION_BOUNDS_MS: &[f64] =
    &[2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1000.0, 1400.0, 2000.0, 5000.0, 10_000.0, 15_000.0];

pub const MINUTE_NS: u64 = 60_000_000_000;

/// [`RedCell::fine`] buckets per power of two: a bucket spans a factor of 2^(1/4).
pub const FINE_PER_OCTAVE: u32 = 4;

/// The fine bucket of a duration: the least `i` with `ns <= 2^(i/4)` (0 for 1 ns and
/// less), capped at 255 (2^63.75 ns). Bucket `4k` ends exactly at 2^k ns, so the fine
/// buckets add up into power-of-two buckets with nothing split.
pub fn fine_bucket(ns: u64) -> u8 {
    if ns <= 1 {
        return 0;
    }
    if ns.is_power_of_two() {
        return (ns.trailing_zeros() * FINE_PER_OCTAVE).min(255) as u8;
    }
    // Other bounds are irrational, so no integer lies on one.
    ((ns as f64).log2() * f64::from(FINE_PER_OCTAVE)).ceil().min(255.0) as u8
}

/// The upper bound (ns) of fine bucket `bucket`.
pub fn fine_upper_ns(bucket: u8) -> f64 {
    2f64.powf(f64::from(bucket) / f64::from(FINE_PER_OCTAVE))
}

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
    /// Calls per fine bucket ([`fine_bucket`]), buckets without calls left out. Cells
    /// written before schema v010 (and embedded values of that time) have none.
    pub fine: BTreeMap<u8, u64>,
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
            fine: BTreeMap::new(),
        }
    }

    /// The cell of root spans (see [`RedCell::root`]).
    pub fn of_roots(mut self, root: bool) -> Self {
        self.root = root;
        self
    }

    pub fn observe(&mut self, duration_ns: u64) {
        let duration_ms = duration_ns as f64 / 1e6;
        self.calls += 1;
        self.sum_ms += duration_ms;
        let at = DURATION_BOUNDS_MS.iter().position(|bound| duration_ms <= *bound).unwrap_or(DURATION_BOUNDS_MS.len());
        self.buckets[at] += 1;
        *self.fine.entry(fine_bucket(duration_ns)).or_default() += 1;
    }

    pub fn add(&mut self, other: &RedCell) {
        self.calls += other.calls;
        self.sum_ms += other.sum_ms;
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
        for (bucket, count) in &other.fine {
            *self.fine.entry(*bucket).or_default() += count;
        }
    }

    /// The value encoded for storage (little-endian words): calls, sum, each bucket,
    /// then one word per fine bucket, its index in the top byte and its count below.
    pub fn encode_counts(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 * (2 + self.buckets.len() + self.fine.len()));
        out.extend_from_slice(&self.calls.to_le_bytes());
        out.extend_from_slice(&self.sum_ms.to_le_bytes());
        for bucket in &self.buckets {
            out.extend_from_slice(&bucket.to_le_bytes());
        }
        for (bucket, count) in &self.fine {
            let word = (u64::from(*bucket) << FINE_COUNT_BITS) | (*count).min(FINE_COUNT_MAX);
            out.extend_from_slice(&word.to_le_bytes());
        }
        out
    }

    pub fn decode_counts(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        let words: Vec<u64> = bytes.chunks_exact(8).filter_map(|c| c.try_into().ok()).map(u64::from_le_bytes).collect();
        let fixed = DURATION_BOUNDS_MS.len() + 3;
        if !bytes.len().is_multiple_of(8) || words.len() < fixed {
            return Err(StorageError::Corrupt(format!("a RED cell of {} bytes", bytes.len())));
        }
        self.calls = words[0];
        self.sum_ms = f64::from_bits(words[1]);
        self.buckets = words[2..fixed].to_vec();
        self.fine = words[fixed..].iter().map(|w| ((w >> FINE_COUNT_BITS) as u8, w & FINE_COUNT_MAX)).collect();
        Ok(())
    }
}

const FINE_COUNT_BITS: u32 = 56;
const FINE_COUNT_MAX: u64 = (1 << FINE_COUNT_BITS) - 1;

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
            cell.observe((ms * 1e6) as u64);
        }
        assert_eq!(cell.buckets[0], 2, "1 ms and 2 ms");
        assert_eq!(cell.buckets[1], 1, "2.5 ms");
        assert_eq!(cell.buckets[DURATION_BOUNDS_MS.len()], 1, "past the last bound");
        let mut back = RedCell::new(0, "s", "o", SpanKind::Server, false);
        back.decode_counts(&cell.encode_counts()).unwrap();
        assert_eq!(back, cell);
        assert!(back.decode_counts(&[1, 2, 3]).is_err());
        // A value written before the fine buckets reads back without them.
        let old = &cell.encode_counts()[..8 * (DURATION_BOUNDS_MS.len() + 3)];
        back.decode_counts(old).unwrap();
        assert!(back.fine.is_empty());
        assert_eq!(back.buckets, cell.buckets);
    }

    #[test]
    fn fine_buckets_nest_in_powers_of_two() {
        assert_eq!(fine_bucket(0), 0);
        assert_eq!(fine_bucket(1), 0);
        assert_eq!(fine_bucket(2), 4);
        assert_eq!(fine_bucket(3), 7, "2^(6/4) = 2.83 < 3 <= 2^(7/4) = 3.36");
        assert_eq!(fine_bucket(1024), 40);
        assert_eq!(fine_bucket(1025), 41);
        assert_eq!(fine_bucket(u64::MAX), 255);
        for ns in (2..5_000u64).chain([999_999, 1_000_000, 1 << 33, (1 << 33) + 1]) {
            let bucket = fine_bucket(ns);
            assert!(ns as f64 <= fine_upper_ns(bucket) * (1.0 + 1e-12), "{ns} fits under bucket {bucket}");
            assert!(ns as f64 > fine_upper_ns(bucket - 1) * (1.0 - 1e-12), "{ns} is above bucket {}", bucket - 1);
            // Tempo's power-of-two bucket of ns is the one holding its fine bucket.
            let power = (ns as f64).log2().ceil() as u32;
            let power = if (1u64 << power.min(63)) < ns { power + 1 } else { power };
            assert_eq!(u32::from(bucket).div_ceil(FINE_PER_OCTAVE), power, "{ns}");
        }
    }
}
