//! The metrics of the indexer stage, described (RED metrics: [`crate::red::DESCRIBED`]).

use tracekeeper_model::telemetry::Metric;

pub const STORAGE_WRITE_SECONDS: &str = "tracekeeper_storage_write_seconds";
pub const SPANS_STORED_TOTAL: &str = "tracekeeper_spans_stored_total";
pub const STORAGE_WRITE_ERRORS_TOTAL: &str = "tracekeeper_storage_write_errors_total";

pub const DESCRIBED: &[Metric] = &[
    Metric::histogram(STORAGE_WRITE_SECONDS, "Time to write one batch durably."),
    Metric::counter(SPANS_STORED_TOTAL, "Spans written durably, by tenant.", &[]),
    Metric::counter(
        STORAGE_WRITE_ERRORS_TOTAL,
        "Writes that failed and are retried, by table.",
        &[&[("table", "spans")], &[("table", "ledger")]],
    ),
];
