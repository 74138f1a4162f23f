//! `tracekeeper collector`: receivers → Kafka. Stateless; run as many as you like.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tracekeeper_ingest::kafka::KafkaSink;
use tracekeeper_ingest::IngestState;
use tracekeeper_model::Tenancy;

use crate::config::CollectorConfig;
use crate::ops::{self, Readiness};
use crate::serve::Servers;

pub async fn run(
    config: CollectorConfig,
    metrics: PrometheusHandle,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let r = &config.receivers;
    let bind = |addr| async move { TcpListener::bind(addr).await.with_context(|| format!("binding {addr}")) };
    let (otlp_grpc, otlp_http, zipkin) =
        (bind(r.otlp_grpc_addr).await?, bind(r.otlp_http_addr).await?, bind(r.zipkin_addr).await?);
    let sink = KafkaSink::new(&config.kafka).map_err(anyhow::Error::msg)?;
    let ingest = IngestState::new(Arc::new(sink), Tenancy { multi_tenant: r.multi_tenancy }, r.limits.clone());
    let ready = Readiness::default();
    let mut servers = Servers::new(ops::router(ready.clone(), metrics), r.serving.clone());
    servers.receivers(otlp_http, zipkin, otlp_grpc, &ingest)?;
    ready.set_ready();
    tracing::info!(
        otlp_grpc = %r.otlp_grpc_addr, otlp_http = %r.otlp_http_addr, zipkin = %r.zipkin_addr,
        brokers = %config.kafka.brokers, topic = %config.kafka.topic, "tracekeeper collector is ready"
    );
    shutdown.await;
    servers.shutdown().await
}
