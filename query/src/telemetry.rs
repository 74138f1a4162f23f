//! The metrics of the query side, described.

use tracekeeper_model::telemetry::Metric;

pub const QUERIES_REFUSED_TOTAL: &str = "tracekeeper_queries_refused_total";

pub const DESCRIBED: &[Metric] = &[Metric::counter(
    QUERIES_REFUSED_TOTAL,
    "Queries refused because the tenant already had its share of the node's queries running.",
    &[&[("reason", "tenant_busy")]],
)];
