//! `tracekeeper retention`: the retention worker of the distributed shape, over CQL.
//! Run one or more; the lease makes exactly one act, the others stand by.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tracekeeper_model::clock::SystemClock;
use tracekeeper_retention::worker::{Worker, WorkerConfig};
use tracekeeper_retention::{RetentionPolicies, Watermarks};
use tracekeeper_serve::ServingConfig;
use tracekeeper_storage::cql::lifecycle::CqlLifecycle;
use tracekeeper_storage::cql::CqlConfig;
use tracekeeper_storage::Lifecycle;

use crate::ops::{self, Readiness};
use crate::retention_api;
use crate::serve::Servers;
use crate::telemetry::Role;

/// Everything `retention` runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where `/ready`, `/metrics` and `/api/retention` are served.
    pub admin_addr: SocketAddr,
    pub cql: CqlConfig,
    /// The policies this worker records and enforces.
    pub policies: RetentionPolicies,
    /// How often the lease holder advances watermarks and removes expired data.
    pub interval: Duration,
    /// How long a lease lasts without renewal before another worker may take it.
    pub lease_ttl: Duration,
    pub serving: ServingConfig,
}

/// Its admin port: `/ready`, `/metrics` and its admin API.
pub type Listeners = super::AdminListeners;

pub async fn run(config: Config, listeners: Listeners, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let metrics = ops::metrics_for(Role::Retention)?;
    let keyspace = &config.cql.keyspace;
    let store = super::connect_cql(&config.cql).await?;
    let lifecycle: Arc<dyn Lifecycle> =
        Arc::new(CqlLifecycle::new(store.shared_session(), keyspace).await.context("preparing the retention tables")?);
    let ready = Readiness::default();
    let mut servers = Servers::new(ops::router(ready.clone(), metrics), config.serving.clone());
    servers.http(listeners.0, retention_api::router(lifecycle.clone()), "admin")?;
    let holder = format!("{}-{}", hostname(), std::process::id());
    let worker = Worker::new(
        lifecycle,
        Arc::new(config.policies.clone()),
        Arc::new(SystemClock),
        Watermarks::default(),
        WorkerConfig { holder: holder.clone(), interval: config.interval, lease_ttl: config.lease_ttl },
    );
    ready.set_ready();
    tracing::info!(%holder, interval = ?config.interval, keyspace = %keyspace, "tracekeeper retention worker started");
    worker.run(shutdown).await;
    servers.shutdown().await
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "tracekeeper".into())
}
