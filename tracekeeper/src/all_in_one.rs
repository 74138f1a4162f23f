//! `tracekeeper all-in-one`: receivers → indexer → embedded store ← query API, in one
//! process.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tracekeeper_indexer::red::{Red, RedConfig, RedFlusher};
use tracekeeper_indexer::{IndexError, Indexer};
use tracekeeper_ingest::{IngestState, SinkError, SinkOutcome, SpanSink};
use tracekeeper_model::clock::{Clock, SystemClock};
use tracekeeper_model::{Span, Tenancy};
use tracekeeper_query::{QueryEngine, QueryState};
use tracekeeper_retention::worker::{Worker, WorkerConfig};
use tracekeeper_retention::Watermarks;
use tracekeeper_storage::embedded::{EmbeddedConfig, EmbeddedStore};

use crate::config::AllInOneConfig;
use crate::ops::{self, Readiness};
use crate::retention_api;
use crate::serve::Servers;

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
    pub otlp_grpc: TcpListener,
    pub otlp_http: TcpListener,
    pub zipkin: TcpListener,
    pub query: TcpListener,
}

impl Listeners {
    pub async fn bind(config: &AllInOneConfig) -> anyhow::Result<Self> {
        let bind = |addr| async move { TcpListener::bind(addr).await.with_context(|| format!("binding {addr}")) };
        Ok(Self {
            otlp_grpc: bind(config.receivers.otlp_grpc_addr).await?,
            otlp_http: bind(config.receivers.otlp_http_addr).await?,
            zipkin: bind(config.receivers.zipkin_addr).await?,
            query: bind(config.query_addr).await?,
        })
    }
}

/// Runs until `shutdown` resolves, then lets requests in flight finish and flushes
/// the store.
pub async fn run(
    config: AllInOneConfig,
    listeners: Listeners,
    metrics: PrometheusHandle,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
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
    servers.receivers(listeners.otlp_http, listeners.zipkin, listeners.otlp_grpc, &ingest)?;
    let routes = crate::listeners::query(query, retention_api::router(store.clone()), &config.ui);
    servers.http(listeners.query, routes, "query")?;
    ready.set_ready();
    tracing::info!(
        otlp_grpc = %config.receivers.otlp_grpc_addr, otlp_http = %config.receivers.otlp_http_addr, zipkin = %config.receivers.zipkin_addr,
        query = %config.query_addr, data_dir = %config.data_dir.display(), "tracekeeper all-in-one is ready"
    );
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

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

pub fn system_clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}
