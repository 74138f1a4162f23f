//! The most spans one trace may store. A runaway trace (a loop that opens spans
//! forever) would otherwise grow one partition without bound and make the trace
//! unreadable; spans beyond the limit are refused and counted per tenant.
//!
//! The indexer remembers the span identities of recently written traces; a trace it
//! does not remember is counted in the store (identities only, no span is read). A
//! span already stored is always accepted again, so replays stay idempotent.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use tracekeeper_model::{Span, TraceId};
use tracekeeper_storage::schema::row_id;
use tracekeeper_storage::{SpanReader, StorageError};

/// Traces whose span identities are kept in memory.
const REMEMBERED_TRACES: usize = 10_000;

type TraceKey = (String, TraceId);

pub struct TraceLimit {
    reader: Arc<dyn SpanReader>,
    max_spans: usize,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    traces: HashMap<TraceKey, HashSet<Vec<u8>>>,
    /// Insertion order, to forget the oldest first.
    order: VecDeque<TraceKey>,
}

impl TraceLimit {
    pub fn new(reader: Arc<dyn SpanReader>, max_spans: usize) -> Self {
        Self { reader, max_spans: max_spans.max(1), seen: Mutex::default() }
    }

    pub fn max_spans(&self) -> usize {
        self.max_spans
    }

    /// Splits `spans` into those the trace has room for (or already holds) and
    /// those beyond the limit.
    pub async fn admit(&self, tenant: &str, spans: Vec<Span>) -> Result<(Vec<Span>, Vec<Span>), StorageError> {
        let mut unknown: Vec<TraceId> = {
            let seen = self.seen.lock().expect("trace limit lock");
            spans.iter().map(|s| s.trace_id).filter(|t| !seen.traces.contains_key(&(tenant.to_string(), *t))).collect()
        };
        unknown.sort();
        unknown.dedup();
        let mut stored = Vec::with_capacity(unknown.len());
        for trace_id in unknown {
            stored.push((trace_id, self.reader.span_rows(tenant, trace_id, self.max_spans).await?));
        }
        let mut seen = self.seen.lock().expect("trace limit lock");
        for (trace_id, rows) in stored {
            let key = (tenant.to_string(), trace_id);
            if !seen.traces.contains_key(&key) {
                seen.traces.insert(key.clone(), rows.into_iter().collect());
                seen.order.push_back(key);
            }
        }
        let (mut kept, mut dropped) = (Vec::with_capacity(spans.len()), Vec::new());
        for span in spans {
            let rows = seen.traces.get_mut(&(tenant.to_string(), span.trace_id)).expect("looked up above");
            let row = row_id(&span);
            if rows.contains(&row) || rows.len() < self.max_spans {
                rows.insert(row);
                kept.push(span);
            } else {
                dropped.push(span);
            }
        }
        while seen.order.len() > REMEMBERED_TRACES {
            if let Some(oldest) = seen.order.pop_front() {
                seen.traces.remove(&oldest);
            }
        }
        Ok((kept, dropped))
    }
}
