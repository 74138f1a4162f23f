//! The invariant checker behind `tracekeeper check`: scans a whole store and reports
//! what must never happen. Both backends implement [`Checkable`].

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::api::StorageError;

/// Per tenant: what is stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TenantCounts {
    pub spans: u64,
    pub traces: u64,
    pub postings: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CheckReport {
    pub tenants: BTreeMap<String, TenantCounts>,
    /// Visible index entries whose trace has no stored span. Must be 0.
    pub dangling_postings: u64,
    /// Spans stored more than once (same tenant, trace and span id). Must be 0.
    pub duplicate_spans: u64,
    /// Spans that should have been deleted by now (older than policy plus grace).
    pub expired_present: u64,
}

impl CheckReport {
    pub fn violations(&self) -> u64 {
        self.dangling_postings + self.duplicate_spans + self.expired_present
    }
}

/// What the checker holds the data to, per tenant.
pub struct Horizons<'a> {
    /// Start times below this are hidden from queries: index entries below it may
    /// point at spans already expired.
    pub visible_from: &'a (dyn Fn(&str) -> u64 + Send + Sync),
    /// Start times below this must be physically gone (policy plus grace).
    pub gone_before: &'a (dyn Fn(&str) -> u64 + Send + Sync),
}

#[async_trait]
pub trait Checkable: Send + Sync {
    /// Scans every span and index entry, calling `progress` with the number of rows
    /// read so far every few thousand rows.
    async fn check(
        &self,
        horizons: &Horizons<'_>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<CheckReport, StorageError>;
}

/// The bookkeeping both backends share: fed every span, then every posting.
pub(crate) struct Scan<'a> {
    horizons: &'a Horizons<'a>,
    progress: &'a (dyn Fn(u64) + Send + Sync),
    traces: std::collections::HashSet<(String, tracekeeper_model::TraceId)>,
    rows: u64,
    pub report: CheckReport,
}

impl<'a> Scan<'a> {
    pub fn new(horizons: &'a Horizons<'a>, progress: &'a (dyn Fn(u64) + Send + Sync)) -> Self {
        Self { horizons, progress, traces: Default::default(), rows: 0, report: CheckReport::default() }
    }

    fn tick(&mut self) {
        self.rows += 1;
        if self.rows.is_multiple_of(4096) {
            (self.progress)(self.rows);
        }
    }

    /// A stored span row; `duplicate` when the backend saw the same span id before.
    pub fn span(&mut self, tenant: &str, trace: tracekeeper_model::TraceId, start_ns: u64, duplicate: bool) {
        let counts = self.report.tenants.entry(tenant.to_string()).or_default();
        counts.spans += 1;
        if duplicate {
            self.report.duplicate_spans += 1;
        }
        if start_ns < (self.horizons.gone_before)(tenant) {
            self.report.expired_present += 1;
        }
        if self.traces.insert((tenant.to_string(), trace)) {
            counts.traces += 1;
        }
        self.tick();
    }

    /// An index entry; call only after every span has been fed.
    pub fn posting(&mut self, tenant: &str, time_ns: u64, trace: tracekeeper_model::TraceId) {
        self.report.tenants.entry(tenant.to_string()).or_default().postings += 1;
        if time_ns >= (self.horizons.visible_from)(tenant) && !self.traces.contains(&(tenant.to_string(), trace)) {
            self.report.dangling_postings += 1;
        }
        self.tick();
    }

    pub fn finish(self) -> CheckReport {
        (self.progress)(self.rows);
        self.report
    }
}
