//! The metrics every listener records ([`crate::layer`], [`crate::tls`]), described.

use tracekeeper_model::telemetry::{Metric, NO_LABELS};

pub const REQUESTS: &str = "tracekeeper_http_requests_total";
pub const REQUEST_DURATION: &str = "tracekeeper_http_request_duration_seconds";
pub const REFUSED: &str = "tracekeeper_http_requests_refused_total";
pub const HANDSHAKE_FAILURES: &str = "tracekeeper_tls_handshake_failures_total";

pub const DESCRIBED: &[Metric] = &[
    Metric::counter(REQUESTS, "HTTP and gRPC requests answered, by listener, route, method and status.", &[]),
    Metric::labelled_histogram(REQUEST_DURATION, "Time to answer a request, by listener and route."),
    Metric::counter(
        REFUSED,
        "Requests the serving layer refused before a handler ran (unauthenticated, forbidden, overloaded, timed out, panicked).",
        &[],
    ),
    Metric::counter(HANDSHAKE_FAILURES, "TLS handshakes that failed or timed out.", NO_LABELS),
];
