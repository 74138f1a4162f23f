//! The most spans one trace may store. A runaway trace (a loop that opens spans
//! forever) would otherwise grow one partition without bound and make the trace
//! unreadable; spans beyond the limit are refused and counted per tenant.
//!
//! The indexer remembers the span identities of recently written traces; a trace it
//! does not remember is counted in the store (identities only, no span is read). A
//! span already stored is always accepted again, so replays stay idempotent.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tracekeeper_model::{Span, TraceId};
use tracekeeper_storage::schema::row_id;
use tracekeeper_storage::{SpanReader, StorageError};

/// Traces whose span identities are kept in memory.
const REMEMBERED_TRACES: usize = 10_000;

type TraceKey = (String, TraceId);

pub struct TraceLimit {
    reader: Arc<dyn SpanReader>,
    max_spans: usize,
    remembered: usize,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    traces: HashMap<TraceKey, HashSet<Vec<u8>>>,
    /// Insertion order, to forget the oldest first.
    order: VecDeque<TraceKey>,
}

impl Seen {
    fn missing(&self, keys: &HashSet<TraceKey>) -> Vec<TraceKey> {
        keys.iter().filter(|k| !self.traces.contains_key(*k)).cloned().collect()
    }

    /// Forgets the oldest traces beyond `remembered`, but never one of `keep` (the
    /// batch being admitted): the memory may run over by one batch, never under.
    fn forget_oldest(&mut self, remembered: usize, keep: &HashSet<TraceKey>) {
        let mut kept = VecDeque::new();
        while self.order.len() + kept.len() > remembered {
            let Some(oldest) = self.order.pop_front() else { break };
            if keep.contains(&oldest) {
                kept.push_back(oldest);
            } else {
                self.traces.remove(&oldest);
            }
        }
        for key in kept.into_iter().rev() {
            self.order.push_front(key);
        }
    }
}

/// What [`TraceLimit::admit`] let through.
#[derive(Debug, Default)]
pub struct Admitted {
    pub kept: Vec<Span>,
    /// For each kept span: whether the trace already held it (a retry or a replay).
    pub stored_before: Vec<bool>,
    pub beyond_limit: Vec<Span>,
}

impl TraceLimit {
    /// Forgets what is remembered of `traces`: their write failed, so what `admit`
    /// noted of them may not be in the store. They are counted in the store next time.
    pub fn forget(&self, tenant: &str, traces: impl IntoIterator<Item = TraceId>) {
        let mut seen = self.seen();
        for trace in traces {
            seen.traces.remove(&(tenant.to_string(), trace));
        }
    }

    pub fn new(reader: Arc<dyn SpanReader>, max_spans: usize) -> Self {
        Self::with_memory(reader, max_spans, REMEMBERED_TRACES)
    }

    /// As [`TraceLimit::new`], remembering at most `remembered` traces.
    pub fn with_memory(reader: Arc<dyn SpanReader>, max_spans: usize, remembered: usize) -> Self {
        Self { reader, max_spans: max_spans.max(1), remembered: remembered.max(1), seen: Mutex::default() }
    }

    pub fn max_spans(&self) -> usize {
        self.max_spans
    }

    /// The memory survives a panic elsewhere while it was held: it is a cache of what
    /// the store holds, and every entry in it is whole.
    fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Splits `spans` into those the trace has room for (or already holds) and
    /// those beyond the limit.
    pub async fn admit(&self, tenant: &str, spans: Vec<Span>) -> Result<Admitted, StorageError> {
        let keys: HashSet<TraceKey> = spans.iter().map(|s| (tenant.to_string(), s.trace_id)).collect();
        let mut missing = self.seen().missing(&keys);
        loop {
            // The store is read without the lock held; another batch may forget a trace
            // of this one meanwhile, so look again after taking the lock.
            let mut fetched = Vec::with_capacity(missing.len());
            for key in missing {
                let rows = self.reader.span_rows(tenant, key.1, self.max_spans).await?;
                fetched.push((key, rows));
            }
            let mut seen = self.seen();
            for (key, rows) in fetched {
                if !seen.traces.contains_key(&key) {
                    seen.traces.insert(key.clone(), rows.into_iter().collect());
                    seen.order.push_back(key);
                }
            }
            missing = seen.missing(&keys);
            if !missing.is_empty() {
                continue;
            }
            let mut admitted = Admitted::default();
            for span in spans {
                let row = row_id(&span);
                let Some(rows) = seen.traces.get_mut(&(tenant.to_string(), span.trace_id)) else {
                    // Unreachable: every key of the batch is present under this lock.
                    admitted.beyond_limit.push(span);
                    continue;
                };
                let stored_before = rows.contains(&row);
                if stored_before || rows.len() < self.max_spans {
                    rows.insert(row);
                    admitted.kept.push(span);
                    admitted.stored_before.push(stored_before);
                } else {
                    admitted.beyond_limit.push(span);
                }
            }
            seen.forget_oldest(self.remembered, &keys);
            return Ok(admitted);
        }
    }
}
