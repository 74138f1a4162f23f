//! Reading a trace's span rows: its partition, in clustering order (start time, row
//! id), whole or from a cursor on.

use futures::TryStreamExt;
use tracekeeper_model::{Span, TraceId};

use super::errors::{corrupt, unavailable};
use super::CqlStore;
use crate::api::{SpanCursor, StorageError};
use crate::schema::SpanDecoder;

/// Rows asked of the server per round trip.
const PAGE_ROWS: i32 = 1000;

impl CqlStore {
    /// Up to `max` spans of the trace after `after`, in clustering order.
    pub(super) async fn spans_after(
        &self,
        tenant: &str,
        trace_id: TraceId,
        after: Option<&SpanCursor>,
        max: usize,
    ) -> Result<Vec<Span>, StorageError> {
        let limit = i32::try_from(max).unwrap_or(i32::MAX);
        let id = trace_id.0.to_vec();
        let pager = match after {
            None => {
                let mut ps = self.statements.select_trace.clone();
                ps.set_page_size(PAGE_ROWS);
                self.session.execute_iter(ps, (tenant, id, limit)).await
            }
            Some(cursor) => {
                let mut ps = self.statements.select_trace_after.clone();
                ps.set_page_size(PAGE_ROWS);
                // Times are CQL bigints: no span starts past i64::MAX ns (year 2262).
                let start = i64::try_from(cursor.start_ns).unwrap_or(i64::MAX);
                self.session.execute_iter(ps, (tenant, id, start, cursor.row_id.clone(), limit)).await
            }
        };
        let mut rows = pager.map_err(unavailable)?.rows_stream::<(Vec<u8>,)>().map_err(corrupt)?;
        let mut spans = Vec::new();
        let mut decoder = SpanDecoder::default();
        while let Some((bytes,)) = rows.try_next().await.map_err(unavailable)? {
            spans.push(decoder.decode(&bytes)?);
        }
        Ok(spans)
    }

    pub(super) async fn span_rows_of(
        &self,
        tenant: &str,
        trace_id: TraceId,
        max: usize,
    ) -> Result<Vec<Vec<u8>>, StorageError> {
        let limit = i32::try_from(max).unwrap_or(i32::MAX);
        let mut ps = self.statements.select_span_rows.clone();
        ps.set_page_size(5000);
        self.session
            .execute_iter(ps, (tenant, trace_id.0.to_vec(), limit))
            .await
            .map_err(unavailable)?
            .rows_stream::<(Vec<u8>,)>()
            .map_err(corrupt)?
            .map_ok(|(id,)| id)
            .try_collect()
            .await
            .map_err(unavailable)
    }
}
