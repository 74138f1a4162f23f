//! `tracekeeper all-in-one`: receivers → indexer → embedded store ← query API, in one
//! process.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use tokio::net::TcpListener;
use tracekeeper_indexer::red::{Red, RedConfig, RedFlusher};
use tracekeeper_indexer::{IndexError, Indexer};
use tracekeeper_ingest::{IngestState, SinkError, SinkOutcome, SpanSink};
use tracekeeper_model::clock::Clock;
use tracekeeper_model::{Span, Tenancy};
use tracekeeper_query::budget::SearchBudget;
use tracekeeper_query::{QueryEngine, QueryState};
use tracekeeper_retention::worker::{Worker, WorkerConfig};
use tracekeeper_retention::{RetentionPolicies, Watermarks};
use tracekeeper_storage::embedded::{Durability, EmbeddedConfig, EmbeddedStore};

use super::{bind, JaegerGrpcConfig, JaegerGrpcListeners, ReceiverConfig, ReceiverListeners};
use crate::ops::{self, Readiness};
use crate::serve::Servers;
use crate::telemetry::Role;
use crate::{purge_api, retention_api};

/// Everything `all-in-one` runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub receivers: ReceiverConfig,
    pub query_addr: SocketAddr,
    pub jaeger_grpc: JaegerGrpcConfig,
    /// Whether `POST /api/purge` deletes everything (test suites only).
    pub test_purge_endpoint: bool,
    /// Where the embedded store keeps its files; one process at a time.
    pub data_dir: PathBuf,
    /// When a write is acknowledged: after fsync of the batch, or of the process.
    pub durability: Durability,
    pub retention: RetentionPolicies,
    /// The width of the store's time buckets, which retention drops whole.
    pub bucket_width: Duration,
    /// Most spans kept per trace; more are refused at ingest and cut at fetch.
    pub max_trace_spans: usize,
    /// How far ahead of now a span may start.
    pub max_future_skew: Duration,
    /// Most RED label sets before folding.
    pub red_max_series: usize,
    /// How often RED cells are written to the store.
    pub red_flush_interval: Duration,
    /// Tenants with their own `max-future-skew`.
    pub tenant_future_skews: BTreeMap<String, Duration>,
    /// What one search may cost.
    pub search: SearchBudget,
    /// Each tenant's share of the queries at once.
    pub max_queries_per_tenant: usize,
    pub ui: tracekeeper_ui::UiConfig,
}

/// Receivers hand spans straight to the indexer.
pub(crate) struct DirectSink(pub(crate) Indexer);

#[async_trait]
impl SpanSink for DirectSink {
    async fn accept(&self, tenant: &str, spans: Vec<Span>) -> Result<SinkOutcome, SinkError> {
        match self.0.index(tenant, spans).await {
            Ok(indexed) => Ok(SinkOutcome { rejected: indexed.rejected }),
            // Nothing was acknowledged: the client keeps its spans and retries.
            Err(IndexError::Storage(e)) => Err(SinkError::Unavailable(e.to_string())),
        }
    }
}

/// The bound sockets, so tests and the binary choose addresses the same way.
pub struct Listeners {
    pub receivers: ReceiverListeners,
    pub query: TcpListener,
    pub jaeger_grpc: JaegerGrpcListeners,
}

impl Listeners {
    pub async fn bind(config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            receivers: ReceiverListeners::bind(&config.receivers).await?,
            query: bind(config.query_addr).await?,
            jaeger_grpc: JaegerGrpcListeners::bind(&config.jaeger_grpc).await?,
        })
    }
}

/// Runs until `shutdown` resolves, then lets requests in flight finish and flushes
/// the store.
pub async fn run(config: Config, listeners: Listeners, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    run_with_clock(config, listeners, super::system_clock(), shutdown).await
}

/// [`run`] with the time taken from `clock` (retention, RED minutes, ingest checks).
pub async fn run_with_clock(
    config: Config,
    listeners: Listeners,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let metrics = ops::metrics_for(Role::AllInOne)?;
    let store = Arc::new(
        EmbeddedStore::open(EmbeddedConfig {
            path: config.data_dir.clone(),
            durability: config.durability,
            bucket_width: config.bucket_width,
            ..EmbeddedConfig::new(&config.data_dir)
        })
        .with_context(|| format!("opening the store in {}", config.data_dir.display()))?,
    );
    let retention = Arc::new(config.retention.clone());
    let tenancy = Tenancy { multi_tenant: config.receivers.multi_tenancy };
    let watermarks = Watermarks::default();
    let red = Arc::new(Red::new(RedConfig { max_series: config.red_max_series, ..RedConfig::default() }));
    let indexer = Indexer::new(store.clone(), Arc::clone(&retention), Arc::clone(&clock))
        .with_watermarks(watermarks.clone())
        .with_trace_limit(store.clone(), config.max_trace_spans)
        .with_max_future_skew(config.max_future_skew)
        .with_tenant_future_skews(config.tenant_future_skews.clone())
        .with_red(red.clone());
    let ingest = IngestState::new(Arc::new(DirectSink(indexer)), tenancy, config.receivers.limits.clone());
    let engine = QueryEngine::new(store.clone(), retention.clone(), clock.clone(), config.max_trace_spans)
        .with_watermarks(watermarks.clone())
        .with_search_budget(config.search);
    let query = Arc::new(
        QueryState::new(engine, tenancy)
            .with_max_queries_per_tenant(config.max_queries_per_tenant)
            .with_red(store.clone()),
    );
    let red_flusher =
        Arc::new(RedFlusher { red, store: store.clone(), retention: retention.clone().into(), clock: clock.clone() });
    let flushing = red_flusher.clone().spawn(config.red_flush_interval);
    // The same worker as `tracekeeper retention`, on the embedded store: it drops whole
    // buckets once every tenant's retention has passed them.
    let worker = Worker::new(
        store.clone(),
        retention,
        clock,
        watermarks,
        WorkerConfig {
            // One process at a time opens a data directory (fjall locks it), so the
            // holder's name can be fixed: a restart takes its own lease back at once.
            holder: "all-in-one".to_string(),
            interval: RETENTION_INTERVAL,
            lease_ttl: RETENTION_INTERVAL * 3,
        },
    );
    let (stop_worker, worker_stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(worker.run(async move {
        let _ = worker_stopped.await;
    }));

    let health = store.clone();
    let ready = Readiness::default().with_health(move || health.health().map_err(|e| e.to_string()));
    let mut servers = Servers::new(ops::router(ready.clone(), metrics), config.receivers.serving.clone());
    let (receivers, query_addr) = (listeners.receivers.describe(), super::local(&listeners.query));
    servers.receivers(listeners.receivers, &ingest)?;
    listeners.jaeger_grpc.serve(&mut servers, &query)?;
    let admin =
        retention_api::router(store.clone()).merge(purge_api::router(store.clone(), config.test_purge_endpoint));
    let routes = crate::listeners::query(query, admin, &config.ui);
    servers.http(listeners.query, routes, "query")?;
    ready.set_ready();
    tracing::info!(%receivers, query = %query_addr, data_dir = %config.data_dir.display(), "tracekeeper all-in-one is ready");
    shutdown.await;
    let _ = stop_worker.send(());
    let _ = worker.await;
    let result = servers.shutdown().await;
    flushing.abort();
    if let Err(e) = red_flusher.flush().await {
        tracing::warn!(error = %e, "writing the last RED counts failed");
    }
    store.flush().context("flushing the store")?;
    tracing::info!("store flushed; bye");
    result
}

/// How often the embedded retention worker runs.
const RETENTION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
