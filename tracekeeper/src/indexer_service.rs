//! `tracekeeper indexer`: one member of the consumer group that moves spans from Kafka
//! into the CQL store.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tracekeeper_indexer::kafka::ConsumerConfig;
use tracekeeper_indexer::Indexer;
use tracekeeper_retention::SystemClock;

use crate::cli::IndexerArgs;
use crate::config;
use crate::ops::{self, Readiness};
use crate::serve::Servers;

pub async fn run(
    args: IndexerArgs,
    metrics: PrometheusHandle,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let policies = config::single_retention(&args.retention)?;
    let admin = TcpListener::bind(args.admin_addr).await.with_context(|| format!("binding {}", args.admin_addr))?;
    let store = config::connect_cql(&args.cql_nodes, &args.keyspace).await?;
    let indexer = Indexer::new(Arc::new(store), Arc::new(policies), Arc::new(SystemClock));
    let ready = Readiness::default();
    let mut servers = Servers::new(ops::router(ready.clone(), metrics));
    servers.http(admin, axum::Router::new(), "admin");
    let config = ConsumerConfig {
        brokers: args.kafka_brokers.clone(),
        topic: args.kafka_topic.clone(),
        group: args.group.clone(),
        batch_messages: 500,
        batch_wait: Duration::from_millis(50),
    };
    ready.set_ready();
    tracing::info!(brokers = %config.brokers, topic = %config.topic, group = %config.group, keyspace = %args.keyspace, "tracekeeper indexer is consuming");
    let consumed = tracekeeper_indexer::kafka::run(&config, &indexer, shutdown).await;
    servers.shutdown().await?;
    consumed.context("consuming from Kafka")
}
