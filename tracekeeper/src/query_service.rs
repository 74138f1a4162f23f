//! `tracekeeper query`: the same query APIs as all-in-one, served from the CQL store.
//! Stateless; run as many as you like.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tracekeeper_model::clock::SystemClock;
use tracekeeper_model::Tenancy;
use tracekeeper_query::{QueryEngine, QueryState};
use tracekeeper_retention::{Policies, Watermarks};
use tracekeeper_storage::cql::ledger::CqlLedger;
use tracekeeper_storage::cql::lifecycle::CqlLifecycle;
use tracekeeper_storage::Lifecycle;

use crate::cli::QueryArgs;
use crate::config;
use crate::ops::{self, Readiness};
use crate::retention_api;
use crate::serve::Servers;
use crate::status;

pub async fn run(args: QueryArgs, metrics: PrometheusHandle, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    // As on the indexers: the flag until the store holds policies, then each tenant's own.
    let policies = Policies::from(config::single_retention(&args.retention)?);
    let ui = config::ui_config(&args.ui, args.multi_tenancy, args.serving.auth_tokens_file.is_some())?;
    let listener = TcpListener::bind(args.query_addr).await.with_context(|| format!("binding {}", args.query_addr))?;
    let store = config::connect_cql(&args.cql_security, &args.cql_nodes, &args.keyspace).await?;
    let ledger = Arc::new(
        CqlLedger::new(store.shared_session(), &args.keyspace).await.context("preparing the ownership ledger")?,
    );
    let lifecycle: Arc<dyn Lifecycle> = Arc::new(
        CqlLifecycle::new(store.shared_session(), &args.keyspace).await.context("preparing the retention tables")?,
    );
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
    let engine = QueryEngine::new(store.clone(), policies, clock.clone(), args.max_trace_spans)
        .with_watermarks(watermarks)
        .with_search_budget(config::search_budget(&args.search));
    let state = Arc::new(
        QueryState::new(engine, Tenancy { multi_tenant: args.multi_tenancy })
            .with_max_queries_per_tenant(config::max_queries_per_tenant(&args.search))
            .with_red(store),
    );
    let ready = Readiness::default();
    let serving = config::serving_config(&args.serving, args.multi_tenancy)?;
    let mut servers = Servers::new(ops::router(ready.clone(), metrics), serving);
    let admin = status::router(ledger, Vec::new(), clock).merge(retention_api::router(lifecycle));
    let routes = crate::listeners::query(state, admin, &ui);
    servers.http(listener, routes, "query")?;
    ready.set_ready();
    tracing::info!(query = %args.query_addr, keyspace = %args.keyspace, "tracekeeper query is ready");
    shutdown.await;
    refresh.abort();
    servers.shutdown().await
}

/// How often a query node (or an indexer) re-reads the retention watermarks.
pub const WATERMARK_REFRESH: std::time::Duration = std::time::Duration::from_secs(5);
