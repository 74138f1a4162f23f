//! The catalog rows a batch writes (tables `operations` and `catalog_days`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::{ttl_secs, DAY_NS};
use crate::api::WriteBatch;

/// A catalog row is written again once its latest span is this much newer than the
/// one it was last written for (µs): its TTL then ends at most this much before the
/// newest span's. Rewriting on every batch was a quarter of all rows at low load.
const REFRESH_US: i64 = 60_000_000;
/// Rows remembered before the memory is dropped wholesale (writing again is harmless).
const WRITTEN_MAX: usize = 100_000;

/// (tenant, day, service, kind, name); a day's own row has an empty service.
type WrittenKey = (String, i64, String, i32, String);

/// The catalog rows this process wrote, with the write timestamp of each, and the
/// time of the last whole purge (`schemas/v008.cql`) it knows of.
#[derive(Default)]
pub(super) struct Written(Mutex<(HashMap<WrittenKey, i64>, i64)>);

impl Written {
    /// Forgets every row written when `purged_ns` is a purge newer than the last one
    /// seen: the rows are gone from the store. Returns whether it forgot them.
    pub fn purged_at(&self, purged_ns: i64) -> bool {
        let mut written = self.0.lock().expect("catalog memory lock");
        if purged_ns <= written.1 {
            return false;
        }
        *written = (HashMap::new(), purged_ns);
        true
    }

    /// Leaves out of `operations` the rows written within [`REFRESH_US`]. A batch's
    /// days are always written (one small row each): searches read only the days
    /// listed, so a day row deleted meanwhile (a purge) must come back with the next
    /// batch, or that day's new postings would not be found.
    pub fn unwritten(&self, tenant: &str, operations: &mut Operations<'_>) {
        let written = &self.0.lock().expect("catalog memory lock").0;
        let fresh = |key: WrittenKey, ts: i64| written.get(&key).is_none_or(|&at| ts >= at + REFRESH_US);
        operations.retain(|&(day, svc, kind, name), &mut (ts, _)| {
            fresh((tenant.to_string(), day, svc.to_string(), kind, name.to_string()), ts)
        });
    }

    /// Remembers rows as written.
    pub fn record(&self, tenant: &str, operations: &Operations<'_>) {
        let written = &mut self.0.lock().expect("catalog memory lock").0;
        if written.len() > WRITTEN_MAX {
            written.clear();
        }
        for (&(day, svc, kind, name), &(ts, _)) in operations {
            written.insert((tenant.to_string(), day, svc.to_string(), kind, name.to_string()), ts);
        }
    }
}

/// Catalog rows to write: key → (write timestamp µs, TTL s).
pub(super) type Operations<'a> = BTreeMap<OperationKey<'a>, (i64, i32)>;
pub(super) type Days = BTreeMap<i64, (i64, i32)>;

/// (day, service, span kind, operation name).
pub(super) type OperationKey<'a> = (i64, &'a str, i32, &'a str);

/// One row per catalog entry (and per day) of the batch, each with the (write
/// timestamp µs, TTL s) of its latest span: that span's start gives the longest life.
/// Entries whose spans are all past retention are left out.
pub(super) fn rows_of(batch: &WriteBatch) -> (Operations<'_>, Days) {
    let mut days = Days::new();
    let mut operations = Operations::new();
    for span in &batch.spans {
        let Some(ttl) = ttl_secs(span.start_ns, batch) else { continue };
        let day = (span.start_ns / DAY_NS) as i64;
        let latest = ((span.start_ns / 1000) as i64, ttl);
        let op =
            operations.entry((day, span.service_name(), span.kind.to_otlp(), span.name.as_str())).or_insert(latest);
        *op = (*op).max(latest);
        let d = days.entry(day).or_insert(latest);
        *d = (*d).max(latest);
    }
    (operations, days)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{batch, span};

    #[test]
    fn one_row_per_entry_with_its_latest_span() {
        let t0 = 1_700_000_000_000_000_000u64;
        let spans = (0..100u8)
            .map(|i| span(i, 1, "api", if i % 2 == 0 { "GET" } else { "PUT" }, t0 + u64::from(i) * 1_000_000_000));
        let batch = batch("acme", spans.collect());
        let (operations, days) = rows_of(&batch);
        assert_eq!(operations.len(), 2, "{operations:?}");
        assert_eq!(days.len(), 1);
        let latest = t0 + 99 * 1_000_000_000;
        let put = operations.iter().find(|(k, _)| k.3 == "PUT").map(|(_, v)| *v).unwrap();
        assert_eq!(put, ((latest / 1000) as i64, ttl_secs(latest, &batch).unwrap()));
        assert_eq!(days.values().next(), Some(&put));
        let expired = WriteBatch { now_ns: t0 + 8 * DAY_NS + 100 * 1_000_000_000, ..batch };
        let (operations, days) = rows_of(&expired);
        assert!(operations.is_empty() && days.is_empty(), "nothing past retention");
    }

    #[test]
    fn rows_written_within_a_minute_are_not_written_again() {
        let t0 = 1_700_000_000_000_000_000u64;
        let written = Written::default();
        let at = |offset_s: u64| batch("acme", vec![span(1, 1, "api", "GET", t0 + offset_s * 1_000_000_000)]);
        let first = at(0);
        let (ops, _) = rows_of(&first);
        written.record("acme", &ops);
        for (offset_s, rewritten) in [(0, false), (59, false), (60, true)] {
            let later = at(offset_s);
            let (mut ops, _) = rows_of(&later);
            written.unwritten("acme", &mut ops);
            assert_eq!(ops.len(), usize::from(rewritten), "{offset_s} s later");
        }
        let (mut ops, _) = rows_of(&first);
        written.unwritten("other", &mut ops);
        assert_eq!(ops.len(), 1, "per tenant");
    }
}
