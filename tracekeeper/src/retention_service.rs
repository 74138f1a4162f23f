//! `tracekeeper retention`: the retention worker of the distributed shape, over CQL.
//! Run one or more; the lease makes exactly one act, the others stand by.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tracekeeper_model::clock::SystemClock;
use tracekeeper_retention::worker::{Worker, WorkerConfig};
use tracekeeper_retention::Watermarks;
use tracekeeper_storage::cql::lifecycle::CqlLifecycle;
use tracekeeper_storage::Lifecycle;

use crate::cli::RetentionArgs;
use crate::config;
use crate::ops::{self, Readiness};
use crate::retention_api;
use crate::serve::Servers;

pub async fn run(
    args: RetentionArgs,
    metrics: PrometheusHandle,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let policies = config::retention_with_overrides(&args.retention, &args.tenant_retention)?;
    let admin = TcpListener::bind(args.admin_addr).await.with_context(|| format!("binding {}", args.admin_addr))?;
    let store = config::connect_cql(&args.cql_security, &args.cql_nodes, &args.keyspace).await?;
    let lifecycle: Arc<dyn Lifecycle> = Arc::new(
        CqlLifecycle::new(store.shared_session(), &args.keyspace).await.context("preparing the retention tables")?,
    );
    let ready = Readiness::default();
    let serving = config::serving_config(&args.serving, false)?;
    let mut servers = Servers::new(ops::router(ready.clone(), metrics), serving);
    servers.http(admin, retention_api::router(lifecycle.clone()), "admin")?;
    let holder = format!("{}-{}", hostname(), std::process::id());
    let worker = Worker::new(
        lifecycle,
        Arc::new(policies),
        Arc::new(SystemClock),
        Watermarks::default(),
        WorkerConfig { holder: holder.clone(), interval: args.interval, lease_ttl: args.lease_ttl },
    );
    ready.set_ready();
    tracing::info!(%holder, interval = ?args.interval, keyspace = %args.keyspace, "tracekeeper retention worker started");
    worker.run(shutdown).await;
    servers.shutdown().await
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "tracekeeper".into())
}
