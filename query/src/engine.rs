//! The query engine: exact, newest-first trace search and whole-trace fetch, the
//! same on every backend because it only uses the [`SpanReader`] contract.
//!
//! Search walks the narrowest posting list newest first, verifies each candidate
//! trace against the predicate, and stops only when no unseen trace can still rank
//! among the `limit` newest: never "LIMIT, then intersect".

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use tracekeeper_model::clock::Clock;
use tracekeeper_model::{Span, TraceId};
use tracekeeper_retention::{Policies, Watermarks};
use tracekeeper_storage::schema::POSTING_GROUP_NS;
use tracekeeper_storage::{IndexTerm, Operation, Posting, SpanReader, StorageError};

use crate::budget::{SearchBudget, Searched, Spending};
use crate::predicate::SpanPredicate;
pub use crate::trace_pages::TracePages;

/// A trace search.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceQuery {
    pub span: SpanPredicate,
    /// A matching span must start in `[start_ns, end_ns]`.
    pub start_ns: u64,
    pub end_ns: u64,
    pub min_trace_duration_ns: Option<u64>,
    pub max_trace_duration_ns: Option<u64>,
    pub limit: usize,
}

/// What a search result says about a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSummary {
    pub trace_id: TraceId,
    pub root_service: String,
    pub root_name: String,
    pub start_ns: u64,
    pub duration_ns: u64,
    pub span_count: usize,
    pub error_count: usize,
    /// Distinct services, sorted, with their span and error counts.
    pub services: Vec<(String, usize, usize)>,
}

/// Placeholder names used while a trace's root span has not arrived (Tempo's wording).
pub const ROOT_NOT_RECEIVED: &str = "<root span not yet received>";

impl TraceSummary {
    pub fn of(spans: &[Span]) -> Option<Self> {
        let first = spans.first()?;
        let ids: HashSet<_> = spans.iter().map(|s| s.span_id).collect();
        let root = spans
            .iter()
            .filter(|s| s.parent_span_id.is_none_or(|p| !ids.contains(&p)))
            .min_by_key(|s| (s.parent_span_id.is_some(), s.start_ns));
        let start_ns = spans.iter().map(|s| s.start_ns).min().unwrap_or(first.start_ns);
        let end_ns = spans.iter().map(|s| s.end_ns).max().unwrap_or(first.end_ns);
        let mut services: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
        for span in spans {
            let entry = services.entry(span.service_name()).or_default();
            entry.0 += 1;
            entry.1 += usize::from(span.is_error());
        }
        Some(Self {
            trace_id: first.trace_id,
            root_service: root.map_or(ROOT_NOT_RECEIVED.into(), |r| r.service_name().to_string()),
            root_name: root.map_or(ROOT_NOT_RECEIVED.into(), |r| r.name.clone()),
            start_ns,
            duration_ns: end_ns.saturating_sub(start_ns),
            span_count: spans.len(),
            error_count: spans.iter().filter(|s| s.is_error()).count(),
            services: services.into_iter().map(|(s, (n, e))| (s.to_string(), n, e)).collect(),
        })
    }
}

/// A search hit: the summary and the trace's visible spans.
#[derive(Debug, Clone)]
pub struct Found {
    pub summary: TraceSummary,
    pub spans: Vec<Span>,
    pub truncated: bool,
}

pub struct QueryEngine {
    reader: Arc<dyn SpanReader>,
    retention: Policies,
    clock: Arc<dyn Clock>,
    /// The retention worker's "expired before" marks; hide data even where this node's
    /// own policy would still show it (a policy shortened elsewhere).
    watermarks: Watermarks,
    /// Most spans returned for one trace; the rest are cut with a warning.
    max_trace_spans: usize,
    /// What one search may cost.
    budget: SearchBudget,
}

const POSTING_PAGE: usize = 512;
/// Candidate traces read at once by a search.
const VERIFY_AHEAD: usize = 8;

impl QueryEngine {
    pub fn new(
        reader: Arc<dyn SpanReader>,
        retention: impl Into<Policies>,
        clock: Arc<dyn Clock>,
        max_trace_spans: usize,
    ) -> Self {
        Self {
            reader,
            retention: retention.into(),
            clock,
            watermarks: Watermarks::default(),
            max_trace_spans: max_trace_spans.max(1),
            budget: SearchBudget::default(),
        }
    }

    /// Bounds what one search may read and how long it may run.
    /// The bounds every search (and metrics query) is held to.
    pub fn search_budget(&self) -> SearchBudget {
        self.budget
    }

    pub fn with_search_budget(mut self, budget: SearchBudget) -> Self {
        self.budget = budget;
        self
    }

    /// Filters every query path by `watermarks` as well as by the policy.
    pub fn with_watermarks(mut self, watermarks: Watermarks) -> Self {
        self.watermarks = watermarks;
        self
    }

    pub fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    /// The oldest time `tenant` may see: its retention, or the retention worker's
    /// watermark if later.
    pub fn visible_horizon(&self, tenant: &str) -> u64 {
        self.visible_from(tenant)
    }

    fn visible_from(&self, tenant: &str) -> u64 {
        self.retention.current().horizon_ns(tenant, self.clock.now_ns(), self.watermarks.expired_before(tenant))
    }

    /// The visible spans of a trace (none when it is absent or expired), and whether
    /// it was cut at the span limit.
    pub async fn trace(&self, tenant: &str, trace_id: TraceId) -> Result<(Vec<Span>, bool), StorageError> {
        let visible_from = self.visible_from(tenant);
        let (mut spans, truncated) = self.reader.trace(tenant, trace_id, self.max_trace_spans).await?;
        spans.retain(|s| s.start_ns >= visible_from);
        Ok((spans, truncated))
    }

    /// The visible spans of a trace a page at a time, in (start time, row id) order, cut
    /// at the span limit as [`Self::trace`] is: how a large trace is sent without
    /// holding it whole.
    pub fn trace_pages(&self, tenant: &str, trace_id: TraceId) -> TracePages {
        TracePages::new(Arc::clone(&self.reader), tenant, trace_id, self.visible_from(tenant), self.max_trace_spans)
    }

    pub fn max_trace_spans(&self) -> usize {
        self.max_trace_spans
    }

    /// Services with visible spans. Catalogs are kept per bucket, so the bucket that
    /// holds the retention horizon may list services whose spans there all expired:
    /// those not listed in any later bucket are kept only if their index shows a span
    /// at or after the horizon.
    pub async fn services(&self, tenant: &str) -> Result<Vec<String>, StorageError> {
        let from = self.visible_from(tenant);
        let listed = self.reader.services(tenant, from).await?;
        let Some(boundary_end) = self.boundary_end(from) else { return Ok(listed) };
        let sure: HashSet<String> = self.reader.services(tenant, boundary_end).await?.into_iter().collect();
        let mut out = Vec::with_capacity(listed.len());
        for service in listed {
            if sure.contains(&service)
                || self.visible_in(tenant, IndexTerm::Service(service.clone()), from, boundary_end).await?
            {
                out.push(service);
            }
        }
        Ok(out)
    }

    /// Operations with visible spans, with the same horizon rule as [`Self::services`].
    /// The index knows an operation by service and name, not kind: an operation whose
    /// spans of one kind expired at the horizon while another kind's live on is still
    /// listed under both kinds until the horizon leaves that bucket.
    pub async fn operations(&self, tenant: &str, service: Option<&str>) -> Result<Vec<Operation>, StorageError> {
        let from = self.visible_from(tenant);
        let listed = self.reader.operations(tenant, service, from).await?;
        let Some(boundary_end) = self.boundary_end(from) else { return Ok(listed) };
        let sure: HashSet<Operation> =
            self.reader.operations(tenant, service, boundary_end).await?.into_iter().collect();
        let mut out = Vec::with_capacity(listed.len());
        for op in listed {
            let term = IndexTerm::Operation { service: op.service.clone(), name: op.name.clone() };
            if sure.contains(&op) || self.visible_in(tenant, term, from, boundary_end).await? {
                out.push(op);
            }
        }
        Ok(out)
    }

    /// The end of the catalog bucket holding `from`, unless `from` starts a bucket
    /// (then the catalogs are exact already).
    fn boundary_end(&self, from: u64) -> Option<u64> {
        let width = self.reader.catalog_bucket_ns().max(1);
        (!from.is_multiple_of(width)).then(|| (from / width + 1).saturating_mul(width))
    }

    /// Does `term` have a span starting in `[from, until)`? A posting's time is the
    /// latest start of the spans it groups, so one in that range proves such a span.
    async fn visible_in(&self, tenant: &str, term: IndexTerm, from: u64, until: u64) -> Result<bool, StorageError> {
        Ok(!self.reader.postings(tenant, &term, until - 1, from, None, 1).await?.is_empty())
    }

    pub async fn search(&self, tenant: &str, query: &TraceQuery) -> Result<Searched, StorageError> {
        self.search_where(tenant, query, &|_| true).await
    }

    /// [`Self::search`], keeping only traces that `trace_filter` also accepts (a
    /// TraceQL query, for instance): `query.span` must hold on a span of every trace
    /// the filter accepts, since it picks the candidates.
    pub async fn search_where(
        &self,
        tenant: &str,
        query: &TraceQuery,
        trace_filter: &(dyn Fn(&[Span]) -> bool + Send + Sync),
    ) -> Result<Searched, StorageError> {
        let (start_ns, cut_short) = self.budget.window_from(query.start_ns, query.end_ns, self.now_ns());
        let oldest = start_ns.max(self.visible_from(tenant));
        if query.limit == 0 || oldest > query.end_ns {
            return Ok(Searched::default());
        }
        let mut spending = Spending::new(self.budget);
        // A posting's time is the latest start among the spans it groups, up to one
        // group width after the earliest: scan that much past the end of the range.
        let newest = query.end_ns.saturating_add(POSTING_GROUP_NS - 1);
        let mut postings = MergedPostings::new(&*self.reader, tenant, query.span.candidate_terms(), newest, oldest);
        let mut seen = HashSet::new();
        let mut found: Vec<Found> = Vec::new();
        // Candidates are read VERIFY_AHEAD at a time and judged in posting order, so
        // the answer is the same as reading them one by one; a networked store's round
        // trips overlap instead of adding up.
        // Every unseen trace starts at or before the posting's time, so once the
        // limit's worth of found traces all start later, no later posting can place.
        let outranked = |found: &[Found], time_ns: u64| {
            found.len() >= query.limit && found[query.limit - 1].summary.start_ns > time_ns
        };
        let mut reading = futures::stream::FuturesOrdered::new();
        let mut more = true;
        loop {
            while more && reading.len() < VERIFY_AHEAD {
                let Some(posting) = postings.next().await? else {
                    more = false;
                    break;
                };
                if outranked(&found, posting.time_ns) {
                    more = false;
                    break;
                }
                // Every span this posting stands for is too short to match: another
                // posting of the same trace may still hold one, so the trace is not
                // marked as seen.
                if query.span.min_duration_ns.zip(posting.max_duration_ns).is_some_and(|(min, longest)| longest < min) {
                    continue;
                }
                if seen.insert(posting.trace_id) {
                    let verified = self.verify(tenant, posting.trace_id, query, oldest, trace_filter);
                    reading.push_back(async move { (posting, verified.await) });
                }
            }
            let Some((posting, verified)) = futures::StreamExt::next(&mut reading).await else { break };
            if outranked(&found, posting.time_ns) {
                break;
            }
            if let Some(partial) = spending.exhausted(posting.time_ns) {
                return Ok(Searched { found, partial: Some(partial) });
            }
            spending.inspected += 1;
            if let Some(hit) = verified? {
                let at = found.partition_point(|f| rank(&f.summary) <= rank(&hit.summary));
                found.insert(at, hit);
                found.truncate(query.limit);
            }
        }
        Ok(Searched { found, partial: cut_short })
    }

    async fn verify(
        &self,
        tenant: &str,
        trace_id: TraceId,
        query: &TraceQuery,
        oldest: u64,
        trace_filter: &(dyn Fn(&[Span]) -> bool + Send + Sync),
    ) -> Result<Option<Found>, StorageError> {
        let (spans, truncated) = self.trace(tenant, trace_id).await?;
        let span_hit =
            spans.iter().any(|s| s.start_ns >= oldest && s.start_ns <= query.end_ns && query.span.matches(s));
        if !span_hit {
            return Ok(None);
        }
        let Some(summary) = TraceSummary::of(&spans) else {
            return Ok(None);
        };
        if query.min_trace_duration_ns.is_some_and(|min| summary.duration_ns < min)
            || query.max_trace_duration_ns.is_some_and(|max| summary.duration_ns > max)
        {
            return Ok(None);
        }
        if !trace_filter(&spans) {
            return Ok(None);
        }
        Ok(Some(Found { summary, spans, truncated }))
    }
}

impl QueryEngine {
    /// The visible traces with a posting of `term` in `[start_ns, end_ns]`, newest
    /// first, at most `max_traces` of them: what the listing APIs (dependencies,
    /// remote services, tag names and values) read.
    pub async fn traces_in(
        &self,
        tenant: &str,
        term: IndexTerm,
        start_ns: u64,
        end_ns: u64,
        max_traces: usize,
    ) -> Result<Vec<Vec<Span>>, StorageError> {
        let ids = self.trace_ids_in(tenant, vec![term], start_ns, end_ns, max_traces).await?;
        self.traces_of(tenant, ids).await
    }

    /// The ids [`Self::traces_in`] would read (with a posting of any of `terms`),
    /// without reading them.
    pub async fn trace_ids_in(
        &self,
        tenant: &str,
        terms: Vec<IndexTerm>,
        start_ns: u64,
        end_ns: u64,
        max_traces: usize,
    ) -> Result<Vec<TraceId>, StorageError> {
        let oldest = start_ns.max(self.visible_from(tenant));
        if oldest > end_ns {
            return Ok(Vec::new());
        }
        let mut postings = MergedPostings::new(&*self.reader, tenant, terms, end_ns, oldest);
        let mut seen = HashSet::new();
        let mut ids = Vec::new();
        while ids.len() < max_traces {
            let Some(posting) = postings.next().await? else { break };
            if seen.insert(posting.trace_id) {
                ids.push(posting.trace_id);
            }
        }
        Ok(ids)
    }

    /// The visible spans of each of `ids` (traces left without any left out).
    pub async fn traces_of(&self, tenant: &str, ids: Vec<TraceId>) -> Result<Vec<Vec<Span>>, StorageError> {
        // Read VERIFY_AHEAD traces at a time, as search does: a networked store's round
        // trips overlap, and the embedded store decodes on both cores.
        use futures::StreamExt;
        let traces: Vec<Result<(Vec<Span>, bool), StorageError>> =
            futures::stream::iter(ids).map(|id| self.trace(tenant, id)).buffered(VERIFY_AHEAD).collect().await;
        let mut out = Vec::with_capacity(traces.len());
        for trace in traces {
            let (spans, _) = trace?;
            if !spans.is_empty() {
                out.push(spans);
            }
        }
        Ok(out)
    }
}

/// Newest first, then by trace id for a stable order.
fn rank(s: &TraceSummary) -> (std::cmp::Reverse<u64>, TraceId) {
    (std::cmp::Reverse(s.start_ns), s.trace_id)
}

/// Several posting lists read as one, newest first.
struct MergedPostings<'a> {
    reader: &'a dyn SpanReader,
    tenant: &'a str,
    lists: Vec<PostingList>,
    newest: u64,
    oldest: u64,
}

struct PostingList {
    term: IndexTerm,
    buffer: VecDeque<Posting>,
    after: Option<Posting>,
    exhausted: bool,
}

impl<'a> MergedPostings<'a> {
    fn new(reader: &'a dyn SpanReader, tenant: &'a str, terms: Vec<IndexTerm>, newest: u64, oldest: u64) -> Self {
        let lists = terms
            .into_iter()
            .map(|term| PostingList { term, buffer: VecDeque::new(), after: None, exhausted: false })
            .collect();
        Self { reader, tenant, lists, newest, oldest }
    }

    async fn next(&mut self) -> Result<Option<Posting>, StorageError> {
        // Lists that ran dry are read again together: a store's round trips overlap.
        let (reader, tenant, newest, oldest) = (self.reader, self.tenant, self.newest, self.oldest);
        let refills = self.lists.iter_mut().filter(|l| l.buffer.is_empty() && !l.exhausted).map(|list| async move {
            let page = reader.postings(tenant, &list.term, newest, oldest, list.after, POSTING_PAGE).await?;
            list.exhausted = page.len() < POSTING_PAGE;
            list.after = page.last().copied();
            list.buffer.extend(page);
            Ok::<_, StorageError>(())
        });
        futures::future::try_join_all(refills).await?;
        let best = self
            .lists
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.buffer.front().map(|p| (i, *p)))
            .min_by_key(|(_, p)| (std::cmp::Reverse(p.time_ns), p.trace_id));
        Ok(best.map(|(i, p)| {
            self.lists[i].buffer.pop_front();
            p
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tracekeeper_storage::embedded::{EmbeddedConfig, EmbeddedStore};

    #[tokio::test]
    async fn embedded_store_passes_search_conformance() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap());
        crate::testing::search_conformance(store.clone(), store).await;
    }

    #[tokio::test]
    async fn data_below_the_watermark_is_hidden_on_every_path() {
        use tracekeeper_model::clock::ManualClock;
        use tracekeeper_retention::{RetentionPolicies, Watermarks};
        use tracekeeper_storage::testing::{batch, span};
        use tracekeeper_storage::SpanWriter;

        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap());
        let now = 1_700_000_000_000_000_000u64 + 3_600_000_000_000;
        let (old, fresh) = (span(1, 1, "old-svc", "op", now - 2_000_000_000), span(2, 1, "new-svc", "op", now - 1_000));
        store.write(batch("t", vec![old.clone(), fresh.clone()])).await.unwrap();
        let watermarks = Watermarks::default();
        let engine = super::QueryEngine::new(
            store.clone(),
            Arc::new(RetentionPolicies::default()),
            Arc::new(ManualClock::new(now)),
            1000,
        )
        .with_watermarks(watermarks.clone());
        let query = super::TraceQuery {
            span: Default::default(),
            start_ns: now - 3_600_000_000_000,
            end_ns: now,
            min_trace_duration_ns: None,
            max_trace_duration_ns: None,
            limit: 10,
        };
        assert_eq!(engine.search("t", &query).await.unwrap().len(), 2);
        // Just inside stays visible; the policy alone would show both.
        watermarks.update([("t".to_string(), old.start_ns)].into());
        assert_eq!(engine.trace("t", old.trace_id).await.unwrap().0.len(), 1, "just inside is visible");
        assert_eq!(engine.services("t").await.unwrap(), ["new-svc", "old-svc"], "just inside is listed");
        watermarks.update([("t".to_string(), old.start_ns + 1)].into());
        assert!(engine.trace("t", old.trace_id).await.unwrap().0.is_empty(), "just outside is not");
        assert_eq!(engine.trace("t", fresh.trace_id).await.unwrap().0.len(), 1);
        assert_eq!(engine.search("t", &query).await.unwrap().len(), 1);
        // The catalog keeps both services for the day; only the visible one is listed.
        assert_eq!(engine.services("t").await.unwrap(), ["new-svc"]);
        let ops = engine.operations("t", None).await.unwrap();
        assert_eq!(ops.iter().map(|o| o.service.as_str()).collect::<Vec<_>>(), ["new-svc"]);
        assert!(engine.operations("t", Some("old-svc")).await.unwrap().is_empty());
    }

    /// A search over more candidates than its budget answers with the newest matches
    /// among those it read, and says where it stopped; within budget it says nothing.
    #[tokio::test]
    async fn a_search_past_its_budget_says_how_far_it_got() {
        use std::time::Duration;

        use tracekeeper_model::clock::ManualClock;
        use tracekeeper_retention::RetentionPolicies;
        use tracekeeper_storage::testing::{batch, span};
        use tracekeeper_storage::SpanWriter;

        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap());
        let now = 1_700_000_000_000_000_000u64;
        // Twenty traces a minute apart; only the even ones are named "even".
        let spans: Vec<_> = (1..=20u8)
            .map(|i| span(i, 1, "svc", if i % 2 == 0 { "even" } else { "odd" }, now - u64::from(i) * 60_000_000_000))
            .collect();
        store.write(batch("t", spans)).await.unwrap();
        let engine = |budget| {
            super::QueryEngine::new(
                store.clone(),
                Arc::new(RetentionPolicies::default()),
                Arc::new(ManualClock::new(now)),
                1000,
            )
            .with_search_budget(budget)
        };
        let query = |operation: &str| super::TraceQuery {
            span: crate::predicate::SpanPredicate {
                service: Some("svc".into()),
                operation: Some(operation.to_string()),
                ..Default::default()
            },
            start_ns: now - 3_600_000_000_000,
            end_ns: now,
            min_trace_duration_ns: None,
            max_trace_duration_ns: None,
            limit: 100,
        };
        // The (service, operation) postings narrow the candidates to the "even" traces,
        // newest first; a
        // trace-level filter (as TraceQL uses) then keeps those whose id is a multiple
        // of 4. With a budget of 6, traces 2..=12 are read and 4, 8 and 12 match.
        let tight = crate::budget::SearchBudget { max_traces_inspected: 6, ..Default::default() };
        let by_four = |spans: &[tracekeeper_model::Span]| spans[0].trace_id.0[0].is_multiple_of(4);
        let even = query("even");
        let partial = engine(tight).search_where("t", &even, &by_four).await.unwrap();
        let got: Vec<u8> = partial.iter().map(|f| f.summary.trace_id.0[0]).collect();
        assert_eq!(got, [4, 8, 12], "the newest matches among the six read, newest first");
        let note = partial.partial.as_deref().expect("a partial answer says so");
        assert!(note.contains("--max-traces-inspected") && note.contains("starting after"), "{note}");
        let whole = engine(Default::default()).search_where("t", &even, &by_four).await.unwrap();
        assert_eq!(whole.iter().map(|f| f.summary.trace_id.0[0]).collect::<Vec<_>>(), [4, 8, 12, 16, 20]);
        assert_eq!(whole.partial, None, "within budget, nothing to say");
        let by_service = even;
        let instant = crate::budget::SearchBudget { timeout: Duration::ZERO, ..Default::default() };
        let rushed = engine(instant).search("t", &by_service).await.unwrap();
        assert!(rushed.partial.as_deref().is_some_and(|n| n.contains("--query-timeout")));
        assert!(rushed.len() <= 1, "a zero deadline still reads one trace");
        // An hour asked, ten minutes allowed: the newest ten minutes, exactly, and a note.
        let narrow = crate::budget::SearchBudget { max_window: Duration::from_secs(600), ..Default::default() };
        let cut = engine(narrow).search("t", &by_service).await.unwrap();
        assert_eq!(cut.iter().map(|f| f.summary.trace_id.0[0]).collect::<Vec<_>>(), [2, 4, 6, 8, 10]);
        let note = cut.partial.as_deref().expect("a cut range says so");
        assert!(note.contains("--max-search-window") && note.contains(&(now - 600_000_000_000).to_string()), "{note}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cql_store_passes_search_conformance() {
        let stack = tracekeeper_stack::require().await;
        let store = Arc::new(tracekeeper_storage::cql::test_store(&stack.cql).await);
        crate::testing::search_conformance(store.clone(), store).await;
    }
}
