//! The long-running roles. Each module has a typed `Config`, its `Listeners` and
//! `run(config, listeners, shutdown)`, which serves until `shutdown` resolves, lets
//! requests in flight finish and returns the first error.

pub mod all_in_one;
#[cfg(feature = "distributed")]
pub mod collector;
#[cfg(feature = "distributed")]
mod durability;
#[cfg(feature = "distributed")]
pub mod indexer;
#[cfg(feature = "distributed")]
pub mod query;
#[cfg(feature = "distributed")]
pub mod retention;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tracekeeper_ingest::IngestLimits;
use tracekeeper_model::clock::{Clock, SystemClock};
use tracekeeper_serve::ServingConfig;
#[cfg(feature = "distributed")]
use tracekeeper_storage::cql::{CqlConfig, CqlStore};

/// How often an indexer or a query node re-reads the retention policies and watermarks.
#[cfg(feature = "distributed")]
pub const WATERMARK_REFRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// Where Jaeger's gRPC APIs are served, by all-in-one and the query role.
#[derive(Debug, Clone)]
pub struct JaegerGrpcConfig {
    /// `jaeger.api_v2` and `jaeger.api_v3` QueryService.
    pub query_addr: SocketAddr,
    /// `jaeger.storage.v2` TraceReader and DependencyReader; none, not served.
    pub storage_addr: Option<SocketAddr>,
}

/// The sockets of Jaeger's gRPC APIs.
pub struct JaegerGrpcListeners {
    pub query: TcpListener,
    pub storage: Option<TcpListener>,
}

impl JaegerGrpcListeners {
    pub async fn bind(config: &JaegerGrpcConfig) -> anyhow::Result<Self> {
        let storage = match config.storage_addr {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        Ok(Self { query: bind(config.query_addr).await?, storage })
    }

    /// Serves both over `state`, behind the serving layer with `read` needed.
    pub(crate) fn serve(
        self,
        servers: &mut crate::serve::Servers,
        state: &std::sync::Arc<tracekeeper_query::QueryState>,
    ) -> anyhow::Result<()> {
        use tracekeeper_query::grpc;
        servers.grpc(self.query, grpc::query_services(state.clone()), grpc::ACCESS, "query-grpc")?;
        if let Some(storage) = self.storage {
            servers.grpc(storage, grpc::storage_services(state.clone()), grpc::ACCESS, "jaeger-storage")?;
        }
        Ok(())
    }
}

/// The span receivers' settings, shared by all-in-one and the collector.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    pub otlp_grpc_addr: SocketAddr,
    pub otlp_http_addr: SocketAddr,
    pub zipkin_addr: SocketAddr,
    /// Request sizes, the in-flight budget and each tenant's rate.
    pub limits: IngestLimits,
    /// Whether `X-Scope-OrgID` keeps tenants apart; otherwise everything is one tenant's.
    pub multi_tenancy: bool,
    /// TLS, credentials and the serving layer's limits of every listener.
    pub serving: ServingConfig,
}

/// The span receivers' sockets.
pub struct ReceiverListeners {
    pub otlp_grpc: TcpListener,
    pub otlp_http: TcpListener,
    pub zipkin: TcpListener,
}

impl ReceiverListeners {
    /// Where they are bound (the ports the system chose for port 0), for the log.
    pub fn describe(&self) -> String {
        let [grpc, http, zipkin] = [&self.otlp_grpc, &self.otlp_http, &self.zipkin].map(local);
        format!("otlp-grpc {grpc}, otlp-http {http}, zipkin {zipkin}")
    }

    pub async fn bind(config: &ReceiverConfig) -> anyhow::Result<Self> {
        Ok(Self {
            otlp_grpc: bind(config.otlp_grpc_addr).await?,
            otlp_http: bind(config.otlp_http_addr).await?,
            zipkin: bind(config.zipkin_addr).await?,
        })
    }
}

/// The one socket of the roles that serve only `/ready`, `/metrics` and an admin API
/// (the indexer, the retention worker).
#[cfg(feature = "distributed")]
pub struct AdminListeners(pub TcpListener);

#[cfg(feature = "distributed")]
impl AdminListeners {
    pub async fn bind(addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(Self(bind(addr).await?))
    }
}

/// The address `listener` is bound to, for the log.
pub fn local(listener: &TcpListener) -> String {
    listener.local_addr().map_or_else(|e| format!("unknown ({e})"), |addr| addr.to_string())
}

/// A listening socket on `addr`, its error naming the address.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))
}

/// The CQL store a distributed role or tool reads and writes.
#[cfg(feature = "distributed")]
pub async fn connect_cql(config: &CqlConfig) -> anyhow::Result<CqlStore> {
    let nodes = config.connection.nodes.join(",");
    CqlStore::connect(config).await.with_context(|| format!("connecting to CQL at {nodes}"))
}

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
