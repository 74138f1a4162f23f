//! A trace read a page at a time, in (start time, row id) order, with the same span
//! limit and visibility as a whole read: what `GET /api/traces/{id}` streams.

use std::sync::Arc;

use tracekeeper_model::{Span, TraceId};
use tracekeeper_storage::api::SpanCursor;
use tracekeeper_storage::{SpanReader, StorageError};

/// Spans read per page of [`TracePages`].
const TRACE_PAGE: usize = 1000;

/// A trace read a page at a time; see [`QueryEngine::trace_pages`].
pub struct TracePages {
    reader: Arc<dyn SpanReader>,
    tenant: String,
    trace_id: TraceId,
    visible_from: u64,
    after: Option<SpanCursor>,
    /// Spans that may still be read before the span limit.
    left: usize,
    done: bool,
    truncated: bool,
}

impl TracePages {
    pub(crate) fn new(
        reader: Arc<dyn SpanReader>,
        tenant: &str,
        trace_id: TraceId,
        visible_from: u64,
        max_spans: usize,
    ) -> Self {
        Self {
            reader,
            tenant: tenant.to_string(),
            trace_id,
            visible_from,
            after: None,
            left: max_spans,
            done: false,
            truncated: false,
        }
    }

    /// The next page of visible spans (never empty), or `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Vec<Span>>, StorageError> {
        while !self.done {
            if self.left == 0 {
                // At the limit: the trace is cut if any span is left.
                let more = self.reader.trace_page(&self.tenant, self.trace_id, self.after.as_ref(), 1).await?;
                (self.truncated, self.done) = (!more.is_empty(), true);
                break;
            }
            let want = self.left.min(TRACE_PAGE);
            let mut page = self.reader.trace_page(&self.tenant, self.trace_id, self.after.as_ref(), want).await?;
            let Some(last) = page.last() else {
                self.done = true;
                break;
            };
            self.after = Some(SpanCursor::after(last));
            self.left -= page.len();
            // A short page is the last one.
            self.done = page.len() < want;
            // The limit counts spans read, as whole reads do; only then are the
            // expired ones (the earliest) left out.
            page.retain(|s| s.start_ns >= self.visible_from);
            if !page.is_empty() {
                return Ok(Some(page));
            }
        }
        Ok(None)
    }

    /// Whether spans past the span limit were left out; known once `next` has
    /// returned `None`.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tracekeeper_model::clock::ManualClock;
    use tracekeeper_model::{Span, TraceId};
    use tracekeeper_retention::RetentionPolicies;
    use tracekeeper_storage::embedded::{EmbeddedConfig, EmbeddedStore};
    use tracekeeper_storage::testing::{batch, span};
    use tracekeeper_storage::SpanWriter;

    use crate::engine::QueryEngine;

    const DAY: u64 = 86_400_000_000_000;

    async fn read_all(engine: &QueryEngine, id: TraceId) -> (Vec<Vec<Span>>, bool) {
        let mut pages = engine.trace_pages("t", id);
        let mut out = Vec::new();
        while let Some(page) = pages.next().await.unwrap() {
            assert!(!page.is_empty());
            out.push(page);
        }
        (out, pages.truncated())
    }

    /// Pages hold what a whole read holds, cut at the same limit, with expired spans
    /// (the earliest) left out: over several pages, at the limit exactly, and past it.
    #[tokio::test]
    async fn pages_match_a_whole_read_at_and_past_the_limit_and_past_retention() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap());
        let now = 1_700_000_000_000_000_000u64 + 8 * DAY;
        // 2,500 spans a µs apart; the first byte of the span id tells each 250 apart.
        let trace = TraceId([7; 16]);
        let spans: Vec<Span> = (0..2500u32)
            .map(|i| {
                let mut s = span(7, (i % 250 + 1) as u8, "svc", "op", now - DAY + u64::from(i) * 1000);
                s.span_id.0[0] = (i / 250) as u8;
                s
            })
            .collect();
        store.write(batch("t", spans.clone())).await.unwrap();
        let clock = Arc::new(ManualClock::new(now));
        let engine =
            |limit| QueryEngine::new(store.clone(), Arc::new(RetentionPolicies::default()), clock.clone(), limit);
        for limit in [1, 999, 1000, 1001, 2500, 2501, 10_000] {
            let engine = engine(limit);
            let (pages, truncated) = read_all(&engine, trace).await;
            let (whole, whole_truncated) = engine.trace("t", trace).await.unwrap();
            assert_eq!(pages.concat(), whole, "limit {limit}");
            assert_eq!(truncated, whole_truncated, "limit {limit}");
            assert_eq!(truncated, limit < 2500, "limit {limit}");
            assert!(pages.iter().all(|p| p.len() <= super::TRACE_PAGE));
        }
        // A week later plus 1,500 µs: the first 1,500 spans expired; a 1,000-span
        // first page is all expired and is passed over, not answered empty.
        clock.set(now + 6 * DAY + 1_500_000);
        let (pages, truncated) = read_all(&engine(10_000), trace).await;
        let visible = pages.concat();
        assert_eq!(visible.len(), 1000);
        assert_eq!(visible[0], spans[1500]);
        assert!(!truncated);
        assert!(read_all(&engine(10_000), TraceId([8; 16])).await.0.is_empty(), "absent trace");
    }
}
