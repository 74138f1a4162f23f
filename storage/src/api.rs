//! The storage contracts.

use async_trait::async_trait;
use tracekeeper_model::{Span, SpanKind, TraceId};

use crate::schema::IndexTerm;

/// What a backend can fail with. Callers decide on retries from [`Self::is_retryable`];
/// the message is for logs, never for clients.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The backend is temporarily unable to serve (overloaded, connection lost).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be decoded: a bug or corruption, not a client error.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Any other I/O or engine failure.
    #[error("storage I/O error: {0}")]
    Io(String),
    /// The backend refused this write itself (an invalid request, a value it cannot
    /// store). The same write will be refused again, so retrying it cannot succeed.
    #[error("storage refused the write: {0}")]
    Refused(String),
    /// The stored data was written by an older version in a form this one reads only
    /// after a one-time upgrade step, which the message names.
    #[error("the store needs an upgrade step: {0}")]
    NeedsUpgrade(String),
}

impl StorageError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    /// Whether the same request can never succeed, so a writer should set it aside
    /// rather than retry it. Everything else (timeouts, overload, lost connections,
    /// I/O) may pass on a later attempt.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Refused(_))
    }
}

/// Spans of one tenant to store, with the tenant's retention at the time of writing.
#[derive(Debug, Clone)]
pub struct WriteBatch {
    pub tenant: String,
    pub spans: Vec<Span>,
    /// How long the tenant keeps data. Rows expire at span start + retention, never
    /// at write time + retention, so a replay never extends a row's life.
    pub retention_ns: u64,
    /// The writer's clock at the time of writing: a row's remaining life (its TTL) is
    /// span start + retention − now.
    pub now_ns: u64,
}

/// Writes spans.
///
/// # Contract
/// - **Idempotent.** (tenant, trace id, span id) identifies one stored span: writing
///   the same span again, in the same or another batch, leaves one span.
/// - **Durable before `Ok`.** When `write` returns `Ok`, the spans survive a crash of
///   the process (and, where the backend is configured so, of the machine).
/// - **Spans before index.** No index posting becomes visible before the span rows it
///   points to: either atomically with them or after them.
/// - **Deterministic.** The rows written are a function of the batch alone, so a
///   replay rewrites the same rows.
#[async_trait]
pub trait SpanWriter: Send + Sync {
    async fn write(&self, batch: WriteBatch) -> Result<(), StorageError>;
}

/// One entry of an index posting list: a trace that has at least one span producing
/// the term, and the start time of the latest such span among those grouped into
/// this posting (see [`crate::schema`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Posting {
    pub time_ns: u64,
    pub trace_id: TraceId,
    /// At least the longest duration among the spans this posting stands for, when the
    /// backend records it (`None` otherwise): a search for spans of at least some
    /// duration can pass over a posting whose spans are all shorter without reading
    /// the trace.
    pub max_duration_ns: Option<u64>,
}

/// Where a page of a trace ended: the start time and row id ([`crate::schema::row_id`])
/// of its last span. Spans are paged in (start time, row id) order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanCursor {
    pub start_ns: u64,
    pub row_id: Vec<u8>,
}

impl SpanCursor {
    /// The cursor just past `span`.
    pub fn after(span: &Span) -> Self {
        Self { start_ns: span.start_ns, row_id: crate::schema::row_id(span) }
    }
}

/// An operation in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Operation {
    pub service: String,
    pub name: String,
    pub kind: SpanKind,
}

/// Reads spans, postings and catalogs.
///
/// # Contract
/// - Every method is scoped to one tenant and never returns another tenant's data.
/// - Results are owned by the caller (no borrowed buffers).
/// - Data is returned as stored: filtering expired data is the caller's job (the
///   query engine applies the retention watermark on every path).
#[async_trait]
pub trait SpanReader: Send + Sync {
    /// Every stored span of the trace, ordered by (start time, span id); empty when
    /// the trace is not stored. At most `max_spans` are returned (`usize::MAX` for all);
    /// the second value is true when more exist. The first page of [`Self::trace_page`].
    async fn trace(
        &self,
        tenant: &str,
        trace_id: TraceId,
        max_spans: usize,
    ) -> Result<(Vec<Span>, bool), StorageError> {
        let mut spans = self.trace_page(tenant, trace_id, None, max_spans.saturating_add(1)).await?;
        let truncated = spans.len() > max_spans;
        spans.truncate(max_spans);
        Ok((spans, truncated))
    }

    /// Up to `max` spans of the trace that come after `after` in (start time, row id)
    /// order, in that order: the same spans as [`Self::trace`], a page at a time, so
    /// that a large trace can be sent without holding it whole. An empty page means
    /// there are no more.
    async fn trace_page(
        &self,
        tenant: &str,
        trace_id: TraceId,
        after: Option<&SpanCursor>,
        max: usize,
    ) -> Result<Vec<Span>, StorageError>;

    /// The identities ([`crate::schema::row_id`]) of up to `max` stored spans of the
    /// trace, in no particular order: how ingest counts a trace's spans without
    /// reading them.
    async fn span_rows(&self, tenant: &str, trace_id: TraceId, max: usize) -> Result<Vec<Vec<u8>>, StorageError>;

    /// Postings of `term` whose time lies in `[oldest_ns, newest_ns]`, newest first
    /// (ties by trace id ascending), starting strictly after `after` in that order,
    /// at most `max` of them. The same trace may appear more than once.
    async fn postings(
        &self,
        tenant: &str,
        term: &IndexTerm,
        newest_ns: u64,
        oldest_ns: u64,
        after: Option<Posting>,
        max: usize,
    ) -> Result<Vec<Posting>, StorageError>;

    /// Distinct service names with spans stored at or after `since_ns`, sorted. Catalogs
    /// are kept per storage bucket, so a service last seen up to one bucket before
    /// `since_ns` may still be listed; one with no stored spans is not.
    async fn services(&self, tenant: &str, since_ns: u64) -> Result<Vec<String>, StorageError>;

    /// Width of the buckets catalogs are kept in: [`Self::services`] and
    /// [`Self::operations`] are exact for a `since_ns` that is a multiple of it.
    fn catalog_bucket_ns(&self) -> u64;

    /// Distinct operations (of one service, or of all), with the same time rule as
    /// [`Self::services`], sorted by [`Operation`]'s order (service, name, kind).
    async fn operations(
        &self,
        tenant: &str,
        service: Option<&str>,
        since_ns: u64,
    ) -> Result<Vec<Operation>, StorageError>;
}
