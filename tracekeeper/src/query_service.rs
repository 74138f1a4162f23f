//! `tracekeeper query`: the same query APIs as all-in-one, served from the CQL store.
//! Stateless; run as many as you like.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tracekeeper_model::Tenancy;
use tracekeeper_query::{QueryEngine, QueryState};
use tracekeeper_retention::SystemClock;
use tracekeeper_storage::cql::ledger::CqlLedger;

use crate::cli::QueryArgs;
use crate::config;
use crate::ops::{self, Readiness};
use crate::serve::Servers;
use crate::status;

pub async fn run(args: QueryArgs, metrics: PrometheusHandle, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let policies = config::single_retention(&args.retention)?;
    let listener = TcpListener::bind(args.query_addr).await.with_context(|| format!("binding {}", args.query_addr))?;
    let store = config::connect_cql(&args.cql_nodes, &args.keyspace).await?;
    let ledger = Arc::new(
        CqlLedger::new(store.shared_session(), &args.keyspace).await.context("preparing the ownership ledger")?,
    );
    let clock = Arc::new(SystemClock);
    let state = Arc::new(QueryState {
        engine: QueryEngine::new(Arc::new(store), Arc::new(policies), clock.clone(), args.max_trace_spans),
        tenancy: Tenancy { multi_tenant: args.multi_tenancy },
    });
    let ready = Readiness::default();
    let mut servers = Servers::new(ops::router(ready.clone(), metrics));
    servers.http(listener, tracekeeper_query::router(state).merge(status::router(ledger, None, clock)), "query");
    ready.set_ready();
    tracing::info!(query = %args.query_addr, keyspace = %args.keyspace, "tracekeeper query is ready");
    shutdown.await;
    servers.shutdown().await
}
