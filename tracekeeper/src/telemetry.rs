//! What each role exports on `/metrics`, described and registered at start-up.
//!
//! A counter that has never moved is still exported, at zero: Prometheus's `rate()` and
//! the alerting rules in `ops/monitoring/` need the series to exist before the first
//! refusal or poison message, and `tests/monitoring.rs` checks that every metric a
//! dashboard or rule names is exported by a live process.

use metrics::Unit;
use tracekeeper_indexer::red;
use tracekeeper_model::telemetry::{Metric, MetricKind};

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

    #[cfg(feature = "distributed")]
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

/// What the binary itself records.
pub const BUILD_INFO: &str = "tracekeeper_build_info";
pub const READY: &str = "tracekeeper_ready";

const PROCESS: &[Metric] = &[
    Metric::gauge(BUILD_INFO, "1, labelled with the version and the role of this process.", false),
    Metric::gauge(READY, "1 while /ready answers 200; 0 while starting or while a health check fails.", true),
];

/// The metrics `role` exports: the tables of the crates it runs, each described where
/// its names are defined.
fn catalogue(role: Role) -> Vec<&'static Metric> {
    let mut all: Vec<&'static Metric> = tracekeeper_serve::telemetry::DESCRIBED.iter().chain(PROCESS).collect();
    let mut add = |yes: bool, group: &'static [Metric]| {
        if yes {
            all.extend(group);
        }
    };
    add(role.receives(), tracekeeper_ingest::telemetry::DESCRIBED);
    add(role.receives(), tracekeeper_model::telemetry::SPAN_OUTCOMES);
    add(role.indexes(), tracekeeper_indexer::telemetry::DESCRIBED);
    add(role.indexes(), red::DESCRIBED);
    #[cfg(feature = "distributed")]
    {
        add(role == Role::Collector, tracekeeper_kafka::telemetry::PRODUCER);
        add(role.consumes_kafka(), tracekeeper_kafka::telemetry::CONSUMER);
        add(role == Role::Indexer, tracekeeper_storage::cql::telemetry::DESCRIBED);
    }
    add(role.expires(), tracekeeper_retention::telemetry::DESCRIBED);
    add(role.queries(), tracekeeper_query::telemetry::DESCRIBED);
    all
}

/// Describes `role`'s metrics to the installed recorder and creates the labelled series
/// known in advance at zero.
pub fn register(role: Role) {
    for described in catalogue(role) {
        let name = described.name;
        match described.kind {
            MetricKind::Counter => metrics::describe_counter!(name, Unit::Count, described.help),
            MetricKind::Gauge => metrics::describe_gauge!(name, described.help),
            MetricKind::Histogram if name.ends_with("_milliseconds") => {
                metrics::describe_histogram!(name, Unit::Milliseconds, described.help)
            }
            MetricKind::Histogram => metrics::describe_histogram!(name, Unit::Seconds, described.help),
        }
        for labels in described.initial {
            let labels: Vec<metrics::Label> = labels.iter().map(|&(k, v)| metrics::Label::new(k, v)).collect();
            match described.kind {
                MetricKind::Counter => metrics::counter!(name, labels).increment(0),
                MetricKind::Gauge => metrics::gauge!(name, labels).set(0.0),
                // Registered, with no observation: exported with empty buckets.
                MetricKind::Histogram => drop(metrics::histogram!(name, labels)),
            }
        }
    }
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "role" => role.name()).set(1.0);
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
