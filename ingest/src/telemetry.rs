//! The metrics the receivers record, described. Rejected and dropped spans are counted
//! by the indexer too, so those two are `tracekeeper_model::telemetry::SPAN_OUTCOMES`.

use tracekeeper_model::telemetry::Metric;

pub const SPANS_RECEIVED_TOTAL: &str = "tracekeeper_spans_received_total";
pub const SPANS_ACCEPTED_TOTAL: &str = "tracekeeper_spans_accepted_total";
pub const REQUESTS_REFUSED_TOTAL: &str = "tracekeeper_requests_refused_total";

pub const DESCRIBED: &[Metric] = &[
    Metric::counter(
        SPANS_RECEIVED_TOTAL,
        "Spans decoded from requests, by protocol.",
        &[&[("protocol", "otlp_http")], &[("protocol", "otlp_grpc")], &[("protocol", "zipkin")]],
    ),
    Metric::counter(SPANS_ACCEPTED_TOTAL, "Spans acknowledged to clients, by tenant.", &[]),
    Metric::counter(
        REQUESTS_REFUSED_TOTAL,
        "Ingest requests refused with 429 or 503: the node was overloaded, or a tenant passed its rate.",
        &[&[("reason", "overloaded")]],
    ),
];
