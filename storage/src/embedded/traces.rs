//! Reading a trace's span rows, whole or a page at a time.
//!
//! A span sits in the bucket of its start time, under a key ordered by (start time,
//! row id) within its trace ([`keys::span_key`]). So reading the buckets oldest first
//! gives the spans in the order they are served, and a page resumes from a cursor
//! with one range scan, without reading or sorting the spans before it. Buckets of the
//! oldest layout ([`Layout::NoStartTime`]) have no start time in the key: while any
//! exists, a trace is read whole and sorted.

use std::ops::Bound;

use tracekeeper_model::{Span, TraceId};

use super::keys::{self, Layout};
use super::parts::Bucket;
use super::Inner;
use crate::api::{SpanCursor, StorageError};
use crate::schema::SpanDecoder;

impl Inner {
    /// Every bucket, oldest first.
    pub(super) fn buckets_oldest_first(&self) -> Vec<(u64, Bucket)> {
        let buckets = self.buckets.read().expect("bucket map lock");
        buckets.iter().map(|(index, bucket)| (*index, bucket.clone())).collect()
    }

    /// Whether a bucket without start times in its span keys still exists.
    #[cfg(test)]
    fn has_legacy_buckets(&self) -> bool {
        self.buckets_oldest_first().iter().any(|(_, bucket)| bucket.layout == Layout::NoStartTime)
    }

    pub(super) fn trace_page_sync(
        &self,
        tenant: &str,
        trace_id: TraceId,
        after: Option<&SpanCursor>,
        max: usize,
    ) -> Result<Vec<Span>, StorageError> {
        let buckets = self.buckets_oldest_first();
        if !buckets.iter().any(|(_, bucket)| bucket.layout == Layout::NoStartTime) {
            return self.ordered_page(&buckets, tenant, trace_id, after, max);
        }
        let spans = sorted_trace(&buckets, tenant, trace_id)?;
        let past = |s: &Span| {
            after.is_none_or(|c| (s.start_ns, crate::schema::row_id(s).as_slice()) > (c.start_ns, c.row_id.as_slice()))
        };
        Ok(spans.into_iter().filter(past).take(max).collect())
    }

    /// Up to `max` spans after `after`, read in key order from the buckets oldest first.
    fn ordered_page(
        &self,
        buckets: &[(u64, Bucket)],
        tenant: &str,
        trace_id: TraceId,
        after: Option<&SpanCursor>,
        max: usize,
    ) -> Result<Vec<Span>, StorageError> {
        let first_bucket = after.map_or(0, |c| c.start_ns / self.bucket_width_ns);
        let mut spans = Vec::new();
        let mut decoder = SpanDecoder::default();
        let mark = keys::trace_mark(tenant, trace_id);
        for &(index, ref bucket) in buckets {
            let layout = bucket.layout;
            let end = Bound::Excluded(keys::trace_end(layout, tenant, trace_id));
            // Spans before the cursor's bucket started before it.
            if index < first_bucket {
                continue;
            }
            let start = match after {
                Some(c) if index == first_bucket => {
                    Bound::Excluded(keys::span_key(layout, tenant, trace_id, c.start_ns, &c.row_id))
                }
                _ => Bound::Included(keys::trace_prefix(layout, tenant, trace_id)),
            };
            for item in bucket.trace_range::<Vec<u8>, _>(&mark, (start, end))? {
                if spans.len() >= max {
                    return Ok(spans);
                }
                let (_, value) = item?;
                spans.push(decoder.decode(&value)?);
            }
        }
        Ok(spans)
    }

    pub(super) fn span_rows_sync(
        &self,
        tenant: &str,
        trace_id: TraceId,
        max: usize,
    ) -> Result<Vec<Vec<u8>>, StorageError> {
        let mut rows = Vec::new();
        let mark = keys::trace_mark(tenant, trace_id);
        for (_, bucket) in self.buckets_oldest_first() {
            let prefix = keys::trace_prefix(bucket.layout, tenant, trace_id);
            for item in bucket.trace_prefix(&mark, &prefix)?.take(max.saturating_sub(rows.len())) {
                let (key, _) = item?;
                let row_id = keys::row_id_of(&key[prefix.len()..], bucket.layout)
                    .ok_or_else(|| StorageError::Corrupt("span key".into()))?;
                rows.push(row_id.to_vec());
            }
        }
        Ok(rows)
    }
}

/// The whole trace from every bucket, legacy ones included, sorted.
fn sorted_trace(buckets: &[(u64, Bucket)], tenant: &str, trace_id: TraceId) -> Result<Vec<Span>, StorageError> {
    let mut spans = Vec::new();
    let mut decoder = SpanDecoder::default();
    let mark = keys::trace_mark(tenant, trace_id);
    for (_, bucket) in buckets {
        for item in bucket.trace_prefix(&mark, &keys::trace_prefix(bucket.layout, tenant, trace_id))? {
            let (_, value) = item?;
            spans.push(decoder.decode(&value)?);
        }
    }
    spans.sort_by_key(|s| (s.start_ns, crate::schema::row_id(s)));
    Ok(spans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::{bucket_options, EmbeddedConfig, EmbeddedStore};
    use crate::schema::{encode_span, row_id};
    use crate::testing::{batch, span};
    use crate::{Checkable, Horizons, Lifecycle, SpanReader, SpanWriter};

    /// A data directory from before span keys held the start time keeps working: its
    /// bucket is read in order (sorted), written in its own layout, paged, and checked.
    #[tokio::test]
    async fn legacy_buckets_are_read_in_order_and_written_in_their_layout() {
        let dir = tempfile::tempdir().unwrap();
        let day = 86_400_000_000_000u64;
        let t0 = 1_700_000_000_000_000_000u64;
        {
            let store = EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap();
            let holds = crate::embedded::parts::Holds::Rows(Layout::NoStartTime);
            let name = crate::embedded::parts::part_name(t0 / day, holds, 0);
            let legacy = store.inner.db.keyspace(&name, bucket_options).unwrap();
            // Span ids out of start order, as the old key (by span id) stores them.
            for s in [span(1, 3, "svc", "late", t0 + 20), span(1, 1, "svc", "early", t0 + 10)] {
                let key = keys::span_key(Layout::NoStartTime, "t", s.trace_id, s.start_ns, &row_id(&s));
                legacy.insert(key, encode_span(&s)).unwrap();
            }
        }
        let store = EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap();
        assert!(store.inner.has_legacy_buckets());
        let written = vec![span(1, 2, "svc", "mid", t0 + 15), span(1, 4, "svc", "next day", t0 + day)];
        store.write(batch("t", written)).await.unwrap();
        let id = TraceId([1; 16]);
        let (whole, _) = store.trace("t", id, usize::MAX).await.unwrap();
        let names: Vec<&str> = whole.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["early", "mid", "late", "next day"]);
        assert_eq!(crate::testing::read_in_pages(&store, "t", id, 1).await, whole);
        let mut rows = store.span_rows("t", id, 10).await.unwrap();
        rows.sort();
        assert_eq!(rows, whole.iter().map(row_id).collect::<Vec<_>>(), "row ids, not keys");
        let legacy_prefix = keys::trace_prefix(Layout::NoStartTime, "t", id);
        let legacy_keys = store.inner.bucket(t0 / day).unwrap().prefix(legacy_prefix).count();
        assert_eq!(legacy_keys, 3, "the new span went into the legacy bucket in its layout");
        let keep = |_: &str| 0;
        let report = store.check(&Horizons { visible_from: &keep, gone_before: &keep }, &|_| {}).await.unwrap();
        assert_eq!(report.duplicate_spans, 0);

        // Once retention drops the legacy bucket, traces are read in pages again.
        store.expire_before(t0 - t0 % day + day).await.unwrap();
        assert!(!store.inner.has_legacy_buckets());
        let left = store.trace_page("t", id, None, 10).await.unwrap();
        assert_eq!(left.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["next day"]);
    }
}
