//! What each role exports on `/metrics`, described and registered at start-up.
//!
//! A counter that has never moved is still exported, at zero: Prometheus's `rate()` and
//! the alerting rules in `ops/monitoring/` need the series to exist before the first
//! refusal or poison message, and `tests/monitoring.rs` checks that every metric a
//! dashboard or rule names is exported by a live process.

use metrics::Unit;
use tracekeeper_indexer::red;

/// The roles that serve `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    AllInOne,
    Collector,
    Indexer,
    Query,
    Retention,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::AllInOne => "all-in-one",
            Role::Collector => "collector",
            Role::Indexer => "indexer",
            Role::Query => "query",
            Role::Retention => "retention",
        }
    }

    fn receives(self) -> bool {
        matches!(self, Role::AllInOne | Role::Collector)
    }

    fn indexes(self) -> bool {
        matches!(self, Role::AllInOne | Role::Indexer)
    }

    fn consumes_kafka(self) -> bool {
        self == Role::Indexer
    }

    fn expires(self) -> bool {
        matches!(self, Role::AllInOne | Role::Retention)
    }

    fn queries(self) -> bool {
        matches!(self, Role::AllInOne | Role::Query)
    }
}

enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One exported metric: its name, kind, help text, and the label sets created at zero.
struct Described {
    name: &'static str,
    kind: Kind,
    help: &'static str,
    initial: &'static [&'static [(&'static str, &'static str)]],
}

const fn counter(
    name: &'static str,
    help: &'static str,
    initial: &'static [&'static [(&'static str, &'static str)]],
) -> Described {
    Described { name, kind: Kind::Counter, help, initial }
}

/// A gauge created at zero (with no labels) when `at_zero`.
const fn gauge(name: &'static str, help: &'static str, at_zero: bool) -> Described {
    Described { name, kind: Kind::Gauge, help, initial: if at_zero { NO_LABELS } else { &[] } }
}

/// A histogram without labels, created empty.
const fn histogram(name: &'static str, help: &'static str) -> Described {
    Described { name, kind: Kind::Histogram, help, initial: NO_LABELS }
}

/// A histogram whose labels are only known once it is recorded.
const fn labelled_histogram(name: &'static str, help: &'static str) -> Described {
    Described { name, kind: Kind::Histogram, help, initial: &[] }
}

const NO_LABELS: &[&[(&str, &str)]] = &[&[]];
const EXPIRED_HOW: &[&[(&str, &str)]] = &[&[("how", "whole")], &[("how", "purge")]];

const EVERY_ROLE: &[Described] = &[
    counter("tracekeeper_http_requests_total", "HTTP and gRPC requests answered, by listener, route, method and status.", &[]),
    labelled_histogram("tracekeeper_http_request_duration_seconds", "Time to answer a request, by listener and route."),
    counter(
        "tracekeeper_http_requests_refused_total",
        "Requests the serving layer refused before a handler ran (unauthenticated, forbidden, overloaded, timed out, panicked).",
        &[],
    ),
    counter("tracekeeper_tls_handshake_failures_total", "TLS handshakes that failed or timed out.", NO_LABELS),
];

const RECEIVER: &[Described] = &[
    counter(
        "tracekeeper_spans_received_total",
        "Spans decoded from requests, by protocol.",
        &[&[("protocol", "otlp_http")], &[("protocol", "otlp_grpc")], &[("protocol", "zipkin")]],
    ),
    counter("tracekeeper_spans_accepted_total", "Spans acknowledged to clients, by tenant.", &[]),
    counter(
        "tracekeeper_spans_rejected_total",
        "Spans refused with a reason (invalid, future, expired).",
        &[&[("reason", "invalid")], &[("reason", "future")], &[("reason", "expired")]],
    ),
    counter(
        "tracekeeper_spans_dropped_total",
        "Spans not stored after they were accepted for writing (the sink failed or was unavailable, or a trace passed its span limit).",
        &[&[("reason", "unavailable")], &[("reason", "failed")]],
    ),
    counter(
        "tracekeeper_requests_refused_total",
        "Ingest requests refused with 429 or 503: the node was overloaded, or a tenant passed its rate.",
        &[&[("reason", "overloaded")]],
    ),
];

const COLLECTOR: &[Described] = &[
    histogram("tracekeeper_kafka_produce_seconds", "Time for Kafka to acknowledge one request's messages."),
    counter("tracekeeper_kafka_produce_errors_total", "Requests whose messages Kafka did not acknowledge.", NO_LABELS),
];

const INDEXER: &[Described] = &[
    histogram("tracekeeper_storage_write_seconds", "Time to write one batch durably."),
    counter("tracekeeper_spans_stored_total", "Spans written durably, by tenant.", &[]),
    counter(
        "tracekeeper_storage_write_errors_total",
        "Writes that failed and are retried, by table.",
        &[&[("table", "spans")], &[("table", "ledger")]],
    ),
];

const KAFKA_CONSUMER: &[Described] = &[
    gauge(
        "tracekeeper_kafka_consumer_lag",
        "Messages not yet indexed, per owned partition (0 once the partition is given up).",
        false,
    ),
    gauge("tracekeeper_kafka_partition_owned", "1 while this member owns the partition, 0 once it gave it up.", false),
    gauge("tracekeeper_kafka_topic_partitions", "Partitions the topic has, as the broker last said.", false),
    histogram(
        "tracekeeper_freshness_seconds",
        "From a message's Kafka timestamp to its spans being stored and searchable.",
    ),
    counter(
        "tracekeeper_kafka_rebalances_total",
        "Group rebalances seen by this member, by event (assigned, revoked, lost).",
        &[&[("event", "assigned")], &[("event", "revoked")], &[("event", "lost")]],
    ),
    counter(
        "tracekeeper_fenced_writes_total",
        "Writes the ownership ledger refused because a newer owner holds the partition.",
        &[&[("operation", "claim")], &[("operation", "record")]],
    ),
    counter("tracekeeper_kafka_poison_messages_total", "Messages that could not be decoded.", NO_LABELS),
    counter("tracekeeper_kafka_refused_messages_total", "Messages whose rows the store refused.", NO_LABELS),
    counter("tracekeeper_kafka_dead_letters_total", "Messages published to the dead-letter topic.", NO_LABELS),
    counter(
        "tracekeeper_kafka_dead_letter_errors_total",
        "Failures to publish to the dead-letter topic (retried).",
        NO_LABELS,
    ),
    counter("tracekeeper_kafka_commit_failures_total", "Offset commits the group refused.", NO_LABELS),
    counter("tracekeeper_kafka_receive_errors_total", "Errors receiving from Kafka.", NO_LABELS),
    counter(
        "tracekeeper_kafka_abandoned_messages_total",
        "Messages dropped from memory because their partition moved to another owner (its new owner reads them again).",
        NO_LABELS,
    ),
];

const CQL: &[Described] = &[
    labelled_histogram("tracekeeper_cql_write_seconds", "Time to write one batch of rows to one table."),
    counter("tracekeeper_cql_rows_written_total", "CQL rows written, by table.", &[]),
    counter(
        "tracekeeper_cql_write_errors_total",
        "CQL writes that failed, by table and kind (transient: retried; refused: dead-lettered).",
        &[
            &[("table", "spans"), ("kind", "transient")],
            &[("table", "spans"), ("kind", "refused")],
            &[("table", "postings"), ("kind", "transient")],
            &[("table", "postings"), ("kind", "refused")],
        ],
    ),
];

const RETENTION: &[Described] = &[
    gauge("tracekeeper_retention_leader", "1 while this process holds the retention lease.", true),
    gauge(
        "tracekeeper_retention_last_run_timestamp_seconds",
        "When the last retention run finished (Unix seconds); 0 before the first.",
        true,
    ),
    gauge("tracekeeper_retention_last_run_duration_seconds", "How long the last retention run took.", true),
    gauge(
        "tracekeeper_retention_watermark_lag_seconds",
        "How far a tenant's watermark trails its retention horizon.",
        false,
    ),
    histogram("tracekeeper_retention_run_seconds", "Time of each retention run."),
    counter(
        "tracekeeper_retention_rows_expired_total",
        "Rows removed by retention, by how (whole buckets, or an early purge of a tenant whose retention was shortened).",
        EXPIRED_HOW,
    ),
    counter("tracekeeper_retention_buckets_expired_total", "Time buckets removed by retention.", EXPIRED_HOW),
    counter("tracekeeper_retention_fenced_total", "Retention runs that found their lease taken.", NO_LABELS),
];

/// RED metrics and service-graph edges (`tracekeeper_indexer::red`); their labels are
/// the spans', so they appear with the first span stored.
const RED: &[Described] = &[
    counter(red::CALLS, "Spans stored, by tenant, service, operation, span kind and status.", &[]),
    labelled_histogram(red::DURATION, "Span durations in milliseconds, labelled as the calls."),
    counter(red::EDGE_REQUESTS, "Calls from a client service to a server service.", &[]),
    counter(red::EDGE_FAILED, "Calls in which the client or the server span failed.", &[]),
    labelled_histogram(red::EDGE_CLIENT_SECONDS, "The client side's duration of a call."),
    labelled_histogram(red::EDGE_SERVER_SECONDS, "The server side's duration of a call."),
    counter(red::EDGES_UNPAIRED, "Client or server spans whose other half did not arrive in time.", &[]),
    counter(red::EDGES_DROPPED, "Client or server spans not waited for: too many were waiting.", &[]),
    counter(red::FOLDED, "Spans counted under service_name=\"__folded__\": past --red-max-series.", &[]),
];

const QUERY: &[Described] = &[counter(
    "tracekeeper_queries_refused_total",
    "Queries refused because the tenant already had its share of the node's queries running.",
    &[&[("reason", "tenant_busy")]],
)];

const PROCESS: &[Described] = &[
    gauge("tracekeeper_build_info", "1, labelled with the version and the role of this process.", false),
    gauge("tracekeeper_ready", "1 while /ready answers 200; 0 while starting or while a health check fails.", true),
];

/// The metrics `role` exports.
fn catalogue(role: Role) -> Vec<&'static Described> {
    let mut all: Vec<&'static Described> = EVERY_ROLE.iter().chain(PROCESS).collect();
    let mut add = |yes: bool, group: &'static [Described]| {
        if yes {
            all.extend(group);
        }
    };
    add(role.receives(), RECEIVER);
    add(role == Role::Collector, COLLECTOR);
    add(role.indexes(), INDEXER);
    add(role.indexes(), RED);
    add(role.consumes_kafka(), KAFKA_CONSUMER);
    add(role == Role::Indexer, CQL);
    add(role.expires(), RETENTION);
    add(role.queries(), QUERY);
    all
}

/// Describes `role`'s metrics to the installed recorder and creates the labelled series
/// known in advance at zero.
pub fn register(role: Role) {
    for described in catalogue(role) {
        let name = described.name;
        match described.kind {
            Kind::Counter => metrics::describe_counter!(name, Unit::Count, described.help),
            Kind::Gauge => metrics::describe_gauge!(name, described.help),
            Kind::Histogram if name.ends_with("_milliseconds") => {
                metrics::describe_histogram!(name, Unit::Milliseconds, described.help)
            }
            Kind::Histogram => metrics::describe_histogram!(name, Unit::Seconds, described.help),
        }
        for labels in described.initial {
            let labels: Vec<metrics::Label> = labels.iter().map(|&(k, v)| metrics::Label::new(k, v)).collect();
            match described.kind {
                Kind::Counter => metrics::counter!(name, labels).increment(0),
                Kind::Gauge => metrics::gauge!(name, labels).set(0.0),
                // Registered, with no observation: exported with empty buckets.
                Kind::Histogram => drop(metrics::histogram!(name, labels)),
            }
        }
    }
    metrics::gauge!("tracekeeper_build_info", "version" => env!("CARGO_PKG_VERSION"), "role" => role.name()).set(1.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_exports_each_metric_once() {
        for role in [Role::AllInOne, Role::Collector, Role::Indexer, Role::Query, Role::Retention] {
            let names: Vec<&str> = catalogue(role).iter().map(|d| d.name).collect();
            let mut unique = names.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), names.len(), "{role:?} lists a metric twice");
            assert!(names.iter().all(|n| n.starts_with("tracekeeper_") || n.starts_with("traces_")), "{names:?}");
        }
    }
}
