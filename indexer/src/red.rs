//! Rate, errors and duration (RED) from the spans as they are stored, and the edges of
//! the service graph, exported on `/metrics` under the names Grafana and Jaeger already
//! read:
//! - per tenant, service, operation, span kind and status, as the OpenTelemetry
//!   Collector's spanmetrics connector names them: `traces_span_metrics_calls_total`
//!   and the histogram `traces_span_metrics_duration_milliseconds`, with the labels
//!   `service_name`, `span_name`, `span_kind` (`SPAN_KIND_SERVER`, ...) and `status_code`
//!   (`STATUS_CODE_ERROR`, ...), plus `tenant`;
//! - a client (or producer) span and the server (or consumer) span that is its child
//!   make one edge, as Tempo's metrics-generator names them:
//!   `traces_service_graph_request_total`, `..._failed_total`, and the histograms
//!   `traces_service_graph_request_client_seconds` and `..._server_seconds`, labelled
//!   `client`, `server`, `connection_type` and `tenant`.
//!
//! Each span is counted once: the indexer records only what it newly stored (a Kafka
//! replay below the committed offset is not counted again), so the series of several
//! indexers add up. Label sets are bounded: past `max_series`, a new series is folded
//! into `service_name="__folded__"`, `span_name="__folded__"`, and counted.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracekeeper_model::clock::Clock;
use tracekeeper_model::{Span, SpanId, SpanKind, StatusCode, TraceId};
use tracekeeper_retention::Policies;
use tracekeeper_storage::red::{RedCell, RedStore, MINUTE_NS};
use tracekeeper_storage::StorageError;

pub const CALLS: &str = "traces_span_metrics_calls_total";
pub const DURATION: &str = "traces_span_metrics_duration_milliseconds";
pub const EDGE_REQUESTS: &str = "traces_service_graph_request_total";
pub const EDGE_FAILED: &str = "traces_service_graph_request_failed_total";
pub const EDGE_CLIENT_SECONDS: &str = "traces_service_graph_request_client_seconds";
pub const EDGE_SERVER_SECONDS: &str = "traces_service_graph_request_server_seconds";
pub const EDGES_UNPAIRED: &str = "traces_service_graph_unpaired_spans_total";
pub const EDGES_DROPPED: &str = "traces_service_graph_dropped_spans_total";
pub const FOLDED: &str = "tracekeeper_red_folded_spans_total";

/// The RED and service-graph metrics, described; their labels are the spans', so they
/// appear with the first span stored.
pub const DESCRIBED: &[tracekeeper_model::telemetry::Metric] = &[
    tracekeeper_model::telemetry::Metric::counter(
        CALLS,
        "Spans stored, by tenant, service, operation, span kind and status.",
        &[],
    ),
    tracekeeper_model::telemetry::Metric::labelled_histogram(
        DURATION,
        "Span durations in milliseconds, labelled as the calls.",
    ),
    tracekeeper_model::telemetry::Metric::counter(
        EDGE_REQUESTS,
        "Calls from a client service to a server service.",
        &[],
    ),
    tracekeeper_model::telemetry::Metric::counter(
        EDGE_FAILED,
        "Calls in which the client or the server span failed.",
        &[],
    ),
    tracekeeper_model::telemetry::Metric::labelled_histogram(
        EDGE_CLIENT_SECONDS,
        "The client side's duration of a call.",
    ),
    tracekeeper_model::telemetry::Metric::labelled_histogram(
        EDGE_SERVER_SECONDS,
        "The server side's duration of a call.",
    ),
    tracekeeper_model::telemetry::Metric::counter(
        EDGES_UNPAIRED,
        "Client or server spans whose other half did not arrive in time.",
        &[],
    ),
    tracekeeper_model::telemetry::Metric::counter(
        EDGES_DROPPED,
        "Client or server spans not waited for: too many were waiting.",
        &[],
    ),
    tracekeeper_model::telemetry::Metric::counter(
        FOLDED,
        "Spans counted under service_name=\"__folded__\": past --red-max-series.",
        &[],
    ),
];

/// The duration buckets of the spanmetrics connector, in milliseconds.
pub const DURATION_BUCKETS_MS: &[f64] = tracekeeper_storage::red::DURATION_BOUNDS_MS;

const FOLDED_LABEL: &str = "__folded__";

#[derive(Debug, Clone)]
pub struct RedConfig {
    /// Most span-metric label sets; later ones are folded.
    pub max_series: usize,
    /// How long half an edge waits for the other half.
    pub edge_wait: Duration,
    /// Most half edges waiting at once; beyond it a half is dropped, and counted.
    pub max_pending_edges: usize,
}

impl Default for RedConfig {
    fn default() -> Self {
        Self { max_series: 10_000, edge_wait: Duration::from_secs(10), max_pending_edges: 100_000 }
    }
}

/// One side of a call, waiting for the other.
#[derive(Debug, Clone)]
struct Half {
    service: String,
    seconds: f64,
    failed: bool,
    messaging: bool,
    since: Instant,
}

/// The client half is keyed by its own span id, the server half by its parent's: both
/// name the client span.
type EdgeKey = (String, TraceId, SpanId);

#[derive(Default)]
struct PendingEdges {
    clients: HashMap<EdgeKey, Half>,
    servers: HashMap<EdgeKey, Half>,
    /// Insertion order, for expiry: (when, key, is_client).
    order: VecDeque<(Instant, EdgeKey, bool)>,
}

type SeriesKey = (String, String, String, &'static str, &'static str);

/// (tenant, minute, service, operation, kind, error, root).
type CellKey = (String, u64, String, String, SpanKind, bool, bool);

pub struct Red {
    config: RedConfig,
    series: Mutex<HashSet<SeriesKey>>,
    edges: Mutex<PendingEdges>,
    /// Per-minute cells not yet flushed to the store.
    cells: Mutex<HashMap<CellKey, RedCell>>,
}

fn kind_label(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Unspecified => "SPAN_KIND_UNSPECIFIED",
        SpanKind::Internal => "SPAN_KIND_INTERNAL",
        SpanKind::Server => "SPAN_KIND_SERVER",
        SpanKind::Client => "SPAN_KIND_CLIENT",
        SpanKind::Producer => "SPAN_KIND_PRODUCER",
        SpanKind::Consumer => "SPAN_KIND_CONSUMER",
    }
}

fn status_label(code: StatusCode) -> &'static str {
    match code {
        StatusCode::Unset => "STATUS_CODE_UNSET",
        StatusCode::Ok => "STATUS_CODE_OK",
        StatusCode::Error => "STATUS_CODE_ERROR",
    }
}

/// What a batch of stored spans contributes, grouped by label set and minute before the
/// spans move into the write: the strings are copied once per group, not per span.
#[derive(Debug, Default)]
pub struct Observed {
    groups: Vec<Group>,
    halves: Vec<HalfObservation>,
}

#[derive(Debug)]
struct Group {
    service: String,
    name: String,
    kind: SpanKind,
    status: StatusCode,
    minute: u64,
    /// Whether the group's spans have no parent.
    root: bool,
    durations_ns: Vec<u64>,
}

/// A client or server span, as half of a service-graph edge.
#[derive(Debug)]
struct HalfObservation {
    trace_id: TraceId,
    /// The client span's id: its own on the client side, its parent on the server side.
    client_span: SpanId,
    is_client: bool,
    /// Index of its group, for the service name.
    group: usize,
    seconds: f64,
}

impl Observed {
    pub fn of<'a>(spans: impl IntoIterator<Item = &'a Span>) -> Self {
        let mut out = Observed::default();
        let mut index: HashMap<(&str, &str, SpanKind, &'static str, u64, bool), usize> = HashMap::new();
        for span in spans {
            let minute = span.start_ns - span.start_ns % MINUTE_NS;
            let root = span.parent_span_id.is_none();
            let key =
                (span.service_name(), span.name.as_str(), span.kind, status_label(span.status.code), minute, root);
            let group = *index.entry(key).or_insert_with(|| {
                out.groups.push(Group {
                    service: key.0.to_string(),
                    name: key.1.to_string(),
                    kind: key.2,
                    status: span.status.code,
                    minute,
                    root,
                    durations_ns: Vec::new(),
                });
                out.groups.len() - 1
            });
            out.groups[group].durations_ns.push(span.duration_ns());
            let half = match (span.kind, span.parent_span_id) {
                (SpanKind::Client | SpanKind::Producer, _) => Some((true, span.span_id)),
                (SpanKind::Server | SpanKind::Consumer, Some(parent)) => Some((false, parent)),
                _ => None,
            };
            if let Some((is_client, client_span)) = half {
                let seconds = span.duration_ns() as f64 / 1e9;
                out.halves.push(HalfObservation { trace_id: span.trace_id, client_span, is_client, group, seconds });
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

impl Red {
    pub fn new(config: RedConfig) -> Self {
        Self { config, series: Mutex::default(), edges: Mutex::default(), cells: Mutex::default() }
    }

    /// Counts spans `tenant` newly stored.
    pub fn record(&self, tenant: &str, observed: &Observed, now: Instant) {
        let tenant_label = tracekeeper_model::tenant_label(tenant).to_string();
        for group in &observed.groups {
            self.span_metrics(tenant, &tenant_label, group);
        }
        self.edges(&tenant_label, observed, now);
    }

    /// `tenant` is the stored tenant; `label` its bounded metric label.
    fn span_metrics(&self, tenant: &str, label: &str, group: &Group) {
        let kind = kind_label(group.kind);
        let status = status_label(group.status);
        let calls = group.durations_ns.len() as u64;
        let (service, name) = {
            let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
            let key = (label.to_string(), group.service.clone(), group.name.clone(), kind, status);
            if series.contains(&key) || series.len() < self.config.max_series {
                series.insert(key);
                (group.service.clone(), group.name.clone())
            } else {
                metrics::counter!(FOLDED, "tenant" => label.to_string()).increment(calls);
                (FOLDED_LABEL.to_string(), FOLDED_LABEL.to_string())
            }
        };
        let labels = [
            ("tenant", label.to_string()),
            ("service_name", service),
            ("span_name", name),
            ("span_kind", kind.to_string()),
            ("status_code", status.to_string()),
        ];
        metrics::counter!(CALLS, &labels).increment(calls);
        let histogram = metrics::histogram!(DURATION, &labels);
        group.durations_ns.iter().for_each(|ns| histogram.record(*ns as f64 / 1e6));
        let error = group.status == StatusCode::Error;
        let [_, (_, service), (_, name), ..] = labels;
        let key = (tenant.to_string(), group.minute, service, name, group.kind, error, group.root);
        let mut cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        let cell = cells
            .entry(key)
            .or_insert_with_key(|k| RedCell::new(group.minute, &k.2, &k.3, group.kind, error).of_roots(group.root));
        group.durations_ns.iter().for_each(|ns| cell.observe(*ns));
    }

    /// Writes the cells counted since the last flush to `store`, with each tenant's
    /// retention; returns how many. On a failure the cells not written are kept for
    /// the next flush.
    pub async fn flush(
        &self,
        store: &dyn RedStore,
        retention_ns: impl Fn(&str) -> u64,
        now_ns: u64,
    ) -> Result<usize, StorageError> {
        let taken: HashMap<CellKey, RedCell> =
            std::mem::take(&mut *self.cells.lock().unwrap_or_else(PoisonError::into_inner));
        let mut by_tenant: BTreeMap<String, Vec<(CellKey, RedCell)>> = BTreeMap::new();
        for (key, cell) in taken {
            by_tenant.entry(key.0.clone()).or_default().push((key, cell));
        }
        let mut written = 0;
        let mut tenants = by_tenant.into_iter();
        while let Some((tenant, cells)) = tenants.next() {
            let values: Vec<RedCell> = cells.iter().map(|(_, c)| c.clone()).collect();
            if let Err(e) = store.add_red(&tenant, values, retention_ns(&tenant), now_ns).await {
                let mut kept = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
                for (key, cell) in cells.into_iter().chain(tenants.flat_map(|(_, c)| c)) {
                    kept.entry(key).and_modify(|c| c.add(&cell)).or_insert(cell);
                }
                return Err(e);
            }
            written += cells.len();
        }
        Ok(written)
    }

    fn edges(&self, tenant: &str, observed: &Observed, now: Instant) {
        if observed.halves.is_empty() {
            return;
        }
        let mut pending = self.edges.lock().unwrap_or_else(PoisonError::into_inner);
        self.expire(&mut pending, now);
        for o in &observed.halves {
            let group = &observed.groups[o.group];
            let half = Half {
                service: group.service.clone(),
                seconds: o.seconds,
                failed: group.status == StatusCode::Error,
                messaging: matches!(group.kind, SpanKind::Producer | SpanKind::Consumer),
                since: now,
            };
            let is_client = o.is_client;
            let key = (tenant.to_string(), o.trace_id, o.client_span);
            let other = if is_client { pending.servers.remove(&key) } else { pending.clients.remove(&key) };
            match other {
                Some(other) => {
                    let (client, server) = if is_client { (&half, &other) } else { (&other, &half) };
                    emit_edge(tenant, client, server);
                }
                None if pending.clients.len() + pending.servers.len() >= self.config.max_pending_edges => {
                    metrics::counter!(EDGES_DROPPED, "tenant" => tenant.to_string()).increment(1);
                }
                None => {
                    pending.order.push_back((now, key.clone(), is_client));
                    let side = if is_client { &mut pending.clients } else { &mut pending.servers };
                    side.insert(key, half);
                }
            }
        }
    }

    /// Halves that waited past `edge_wait` are given up, and counted by side.
    fn expire(&self, pending: &mut PendingEdges, now: Instant) {
        while let Some((since, _, _)) = pending.order.front() {
            if now.saturating_duration_since(*since) < self.config.edge_wait {
                break;
            }
            let (since, key, is_client) = pending.order.pop_front().expect("front exists");
            let side = if is_client { &mut pending.clients } else { &mut pending.servers };
            // The same key may have been paired, or inserted again since.
            if side.get(&key).is_some_and(|half| half.since == since) {
                side.remove(&key);
                let which = if is_client { "client" } else { "server" };
                metrics::counter!(EDGES_UNPAIRED, "tenant" => key.0, "side" => which).increment(1);
            }
        }
    }
}

fn emit_edge(tenant: &str, client: &Half, server: &Half) {
    let connection = if client.messaging || server.messaging { "messaging_system" } else { "" };
    let labels = [
        ("tenant", tenant.to_string()),
        ("client", client.service.clone()),
        ("server", server.service.clone()),
        ("connection_type", connection.to_string()),
    ];
    metrics::counter!(EDGE_REQUESTS, &labels).increment(1);
    if client.failed || server.failed {
        metrics::counter!(EDGE_FAILED, &labels).increment(1);
    }
    metrics::histogram!(EDGE_CLIENT_SECONDS, &labels).record(client.seconds);
    metrics::histogram!(EDGE_SERVER_SECONDS, &labels).record(server.seconds);
}

/// Writes a [`Red`]'s counts to a store with each tenant's retention: every interval,
/// and once more at shutdown.
pub struct RedFlusher {
    pub red: Arc<Red>,
    pub store: Arc<dyn RedStore>,
    pub retention: Policies,
    pub clock: Arc<dyn Clock>,
}

impl RedFlusher {
    pub async fn flush(&self) -> Result<usize, StorageError> {
        self.red.flush(&*self.store, |t| self.retention.current().retention_ns(t), self.clock.now_ns()).await
    }

    /// Flushes every `interval`, logging failures (the cells are kept and go with the
    /// next flush), until the task is aborted.
    pub fn spawn(self: Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                match self.flush().await {
                    Ok(cells) => tracing::debug!(cells, "RED counts written"),
                    Err(e) => tracing::warn!(error = %e, "writing RED counts failed; they go with the next flush"),
                }
            }
        })
    }
}

#[cfg(test)]
#[path = "red_tests.rs"]
mod tests;
