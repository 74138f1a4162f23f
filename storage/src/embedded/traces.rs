//! Reading a trace's span rows, whole or a page at a time.
//!
//! A span sits in the bucket of its start time, under a key ordered by (start time,
//! row id) within its trace ([`keys::span_key`]). So reading the buckets oldest first
//! gives the spans in the order they are served, and a page resumes from a cursor
//! with one range scan, without reading or sorting the spans before it.

use std::ops::Bound;

use tracekeeper_model::{Span, TraceId};

use super::keys;
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

    pub(super) fn trace_page_sync(
        &self,
        tenant: &str,
        trace_id: TraceId,
        after: Option<&SpanCursor>,
        max: usize,
    ) -> Result<Vec<Span>, StorageError> {
        let buckets = self.buckets_oldest_first();
        let first_bucket = after.map_or(0, |c| c.start_ns / self.bucket_width_ns);
        let mut spans = Vec::new();
        let mut decoder = SpanDecoder::default();
        let mark = keys::trace_mark(tenant, trace_id);
        for (index, bucket) in buckets {
            let end = Bound::Excluded(keys::trace_end(tenant, trace_id));
            // Spans before the cursor's bucket started before it.
            if index < first_bucket {
                continue;
            }
            let start = match after {
                Some(c) if index == first_bucket => {
                    Bound::Excluded(keys::span_key(tenant, trace_id, c.start_ns, &c.row_id))
                }
                _ => Bound::Included(keys::trace_prefix(tenant, trace_id)),
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
            let prefix = keys::trace_prefix(tenant, trace_id);
            for item in bucket.trace_prefix(&mark, &prefix)?.take(max.saturating_sub(rows.len())) {
                let (key, _) = item?;
                let row_id =
                    keys::row_id_of(&key[prefix.len()..]).ok_or_else(|| StorageError::Corrupt("span key".into()))?;
                rows.push(row_id.to_vec());
            }
        }
        Ok(rows)
    }
}
