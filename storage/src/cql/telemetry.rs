//! The metrics of the CQL store, described.

use tracekeeper_model::telemetry::Metric;

pub const CQL_WRITE_SECONDS: &str = "tracekeeper_cql_write_seconds";
pub const CQL_ROWS_WRITTEN_TOTAL: &str = "tracekeeper_cql_rows_written_total";
pub const CQL_WRITE_ERRORS_TOTAL: &str = "tracekeeper_cql_write_errors_total";

pub const DESCRIBED: &[Metric] = &[
    Metric::labelled_histogram(CQL_WRITE_SECONDS, "Time to write one batch of rows to one table."),
    Metric::counter(CQL_ROWS_WRITTEN_TOTAL, "CQL rows written, by table.", &[]),
    Metric::counter(
        CQL_WRITE_ERRORS_TOTAL,
        "CQL writes that failed, by table and kind (transient: retried; refused: dead-lettered).",
        &[
            &[("table", "spans"), ("kind", "transient")],
            &[("table", "spans"), ("kind", "refused")],
            &[("table", "postings"), ("kind", "transient")],
            &[("table", "postings"), ("kind", "refused")],
        ],
    ),
];
