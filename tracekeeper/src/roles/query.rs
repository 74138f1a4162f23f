//! `tracekeeper query`: the same query APIs as all-in-one, served from the CQL store.
//! Stateless; run as many as you like.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tracekeeper_model::clock::SystemClock;
use tracekeeper_model::Tenancy;
use tracekeeper_query::budget::SearchBudget;
use tracekeeper_query::{QueryEngine, QueryState};
use tracekeeper_retention::{Policies, RetentionPolicies, Watermarks};
use tracekeeper_serve::ServingConfig;
use tracekeeper_storage::cql::ledger::CqlLedger;
use tracekeeper_storage::cql::lifecycle::CqlLifecycle;
use tracekeeper_storage::cql::CqlConfig;
use tracekeeper_storage::Lifecycle;

use super::{bind, WATERMARK_REFRESH};
use crate::ops::{self, Readiness};
use crate::serve::Servers;
use crate::telemetry::Role;
use crate::{purge_api, retention_api, status};

/// Everything `query` runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub query_addr: SocketAddr,
    pub jaeger_grpc: super::JaegerGrpcConfig,
    /// Whether `POST /api/purge` truncates the data tables (test suites only).
    pub test_purge_endpoint: bool,
    pub cql: CqlConfig,
    /// Whether `X-Scope-OrgID` keeps tenants apart.
    pub multi_tenancy: bool,
    /// The retention until the retention worker has recorded policies in the store.
    pub retention: RetentionPolicies,
    /// Most spans returned per trace.
    pub max_trace_spans: usize,
    /// What one search may cost.
    pub search: SearchBudget,
    /// Each tenant's share of the queries at once.
    pub max_queries_per_tenant: usize,
    pub ui: tracekeeper_ui::UiConfig,
    pub serving: ServingConfig,
}

pub struct Listeners {
    pub query: TcpListener,
    pub jaeger_grpc: super::JaegerGrpcListeners,
}

impl Listeners {
    pub async fn bind(config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            query: bind(config.query_addr).await?,
            jaeger_grpc: super::JaegerGrpcListeners::bind(&config.jaeger_grpc).await?,
        })
    }
}

pub async fn run(config: Config, listeners: Listeners, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let metrics = ops::metrics_for(Role::Query)?;
    // As on the indexers: the flag until the store holds policies, then each tenant's own.
    let policies = Policies::from(config.retention.clone());
    let keyspace = &config.cql.keyspace;
    let store = super::connect_cql(&config.cql).await?;
    let session = store.shared_session();
    let ledger =
        Arc::new(CqlLedger::new(store.shared_session(), keyspace).await.context("preparing the ownership ledger")?);
    let lifecycle: Arc<dyn Lifecycle> =
        Arc::new(CqlLifecycle::new(store.shared_session(), keyspace).await.context("preparing the retention tables")?);
    let watermarks = Watermarks::default();
    policies.load(&*lifecycle).await.context("reading the retention policies")?;
    let refresh = tokio::spawn(tracekeeper_retention::follow(
        lifecycle.clone(),
        WATERMARK_REFRESH,
        watermarks.clone(),
        policies.clone(),
    ));
    let clock = Arc::new(SystemClock);
    let store = Arc::new(store);
    let engine = QueryEngine::new(store.clone(), policies, clock.clone(), config.max_trace_spans)
        .with_watermarks(watermarks)
        .with_search_budget(config.search);
    let state = Arc::new(
        QueryState::new(engine, Tenancy { multi_tenant: config.multi_tenancy })
            .with_max_queries_per_tenant(config.max_queries_per_tenant)
            .with_red(store),
    );
    let ready = Readiness::default();
    let mut servers = Servers::new(ops::router(ready.clone(), metrics), config.serving.clone());
    let purge = purge_api::router(lifecycle.clone(), config.test_purge_endpoint);
    let durability = super::durability::report(&session, keyspace, &[]).await;
    let admin =
        status::router(ledger, Vec::new(), clock, durability).merge(retention_api::router(lifecycle)).merge(purge);
    let query_addr = super::local(&listeners.query);
    listeners.jaeger_grpc.serve(&mut servers, &state)?;
    servers.http(listeners.query, crate::listeners::query(state, admin, &config.ui), "query")?;
    ready.set_ready();
    tracing::info!(query = %query_addr, keyspace = %keyspace, "tracekeeper query is ready");
    shutdown.await;
    refresh.abort();
    servers.shutdown().await
}
