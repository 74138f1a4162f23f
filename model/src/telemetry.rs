//! How a crate describes the metrics it records: each crate defines its metric names
//! as constants beside a table of [`Metric`]s (help text, and the label sets created
//! at zero), and the binary registers the tables of the crates a role runs.

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    /// Recorded in seconds, or in milliseconds when the name ends in `_milliseconds`.
    Histogram,
}

/// Label sets, each a list of (label, value).
pub type LabelSets = &'static [&'static [(&'static str, &'static str)]];

/// One exported metric: its name, kind, help text, and the label sets created at zero.
#[derive(Debug)]
pub struct Metric {
    pub name: &'static str,
    pub kind: MetricKind,
    pub help: &'static str,
    /// Created at zero when the role starts, so that `rate()` and alerts see the
    /// series before the first event.
    pub initial: LabelSets,
}

/// One series without labels.
pub const NO_LABELS: LabelSets = &[&[]];

impl Metric {
    pub const fn counter(name: &'static str, help: &'static str, initial: LabelSets) -> Self {
        Self { name, kind: MetricKind::Counter, help, initial }
    }

    /// A gauge, created at zero (with no labels) when `at_zero`.
    pub const fn gauge(name: &'static str, help: &'static str, at_zero: bool) -> Self {
        Self { name, kind: MetricKind::Gauge, help, initial: if at_zero { NO_LABELS } else { &[] } }
    }

    /// A histogram without labels, created empty.
    pub const fn histogram(name: &'static str, help: &'static str) -> Self {
        Self { name, kind: MetricKind::Histogram, help, initial: NO_LABELS }
    }

    /// A histogram whose labels are only known once it is recorded.
    pub const fn labelled_histogram(name: &'static str, help: &'static str) -> Self {
        Self { name, kind: MetricKind::Histogram, help, initial: &[] }
    }
}

/// Spans refused or lost, counted by the receivers and by the indexer alike.
pub const SPANS_REJECTED_TOTAL: &str = "tracekeeper_spans_rejected_total";
pub const SPANS_DROPPED_TOTAL: &str = "tracekeeper_spans_dropped_total";

pub const SPAN_OUTCOMES: &[Metric] = &[
    Metric::counter(
        SPANS_REJECTED_TOTAL,
        "Spans refused with a reason (invalid, future, expired).",
        &[&[("reason", "invalid")], &[("reason", "future")], &[("reason", "expired")]],
    ),
    Metric::counter(
        SPANS_DROPPED_TOTAL,
        "Spans not stored after they were accepted for writing (the sink failed or was unavailable, or a trace passed its span limit).",
        &[&[("reason", "unavailable")], &[("reason", "failed")]],
    ),
];
