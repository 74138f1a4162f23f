//! The metrics of the retention worker, described.

use tracekeeper_model::telemetry::{LabelSets, Metric, NO_LABELS};

pub const RETENTION_LEADER: &str = "tracekeeper_retention_leader";
pub const RETENTION_LAST_RUN_TIMESTAMP_SECONDS: &str = "tracekeeper_retention_last_run_timestamp_seconds";
pub const RETENTION_LAST_RUN_DURATION_SECONDS: &str = "tracekeeper_retention_last_run_duration_seconds";
pub const RETENTION_WATERMARK_LAG_SECONDS: &str = "tracekeeper_retention_watermark_lag_seconds";
pub const RETENTION_RUN_SECONDS: &str = "tracekeeper_retention_run_seconds";
pub const RETENTION_ROWS_EXPIRED_TOTAL: &str = "tracekeeper_retention_rows_expired_total";
pub const RETENTION_BUCKETS_EXPIRED_TOTAL: &str = "tracekeeper_retention_buckets_expired_total";
pub const RETENTION_FENCED_TOTAL: &str = "tracekeeper_retention_fenced_total";
const EXPIRED_HOW: LabelSets = &[&[("how", "whole")], &[("how", "purge")]];

pub const DESCRIBED: &[Metric] = &[
    Metric::gauge(RETENTION_LEADER, "1 while this process holds the retention lease.", true),
    Metric::gauge(
        RETENTION_LAST_RUN_TIMESTAMP_SECONDS,
        "When the last retention run finished (Unix seconds); 0 before the first.",
        true,
    ),
    Metric::gauge(RETENTION_LAST_RUN_DURATION_SECONDS, "How long the last retention run took.", true),
    Metric::gauge(
        RETENTION_WATERMARK_LAG_SECONDS,
        "How far a tenant's watermark trails its retention horizon.",
        false,
    ),
    Metric::histogram(RETENTION_RUN_SECONDS, "Time of each retention run."),
    Metric::counter(
        RETENTION_ROWS_EXPIRED_TOTAL,
        "Rows removed by retention, by how (whole buckets, or an early purge of a tenant whose retention was shortened).",
        EXPIRED_HOW,
    ),
    Metric::counter(RETENTION_BUCKETS_EXPIRED_TOTAL, "Time buckets removed by retention.", EXPIRED_HOW),
    Metric::counter(RETENTION_FENCED_TOTAL, "Retention runs that found their lease taken.", NO_LABELS),
];
