//! `tracekeeper collector`: receivers → Kafka. Stateless; run as many as you like.

use std::future::Future;
use std::sync::Arc;

use tracekeeper_ingest::IngestState;
use tracekeeper_kafka::producer::{KafkaSink, KafkaSinkConfig};
use tracekeeper_model::Tenancy;

use super::{ReceiverConfig, ReceiverListeners};
use crate::ops::{self, Readiness};
use crate::serve::Servers;
use crate::telemetry::Role;

/// Everything `collector` runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub receivers: ReceiverConfig,
    /// The brokers, topic and client settings spans are published with.
    pub kafka: KafkaSinkConfig,
}

pub type Listeners = ReceiverListeners;

pub async fn run(config: Config, listeners: Listeners, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let metrics = ops::metrics_for(Role::Collector)?;
    let r = &config.receivers;
    let sink = KafkaSink::new(&config.kafka).map_err(anyhow::Error::msg)?;
    let ingest = IngestState::new(Arc::new(sink), Tenancy { multi_tenant: r.multi_tenancy }, r.limits.clone());
    let ready = Readiness::default();
    let mut servers = Servers::new(ops::router(ready.clone(), metrics), r.serving.clone());
    let receivers = listeners.describe();
    servers.receivers(listeners, &ingest)?;
    ready.set_ready();
    tracing::info!(%receivers, brokers = %config.kafka.brokers, topic = %config.kafka.topic, "tracekeeper collector is ready");
    shutdown.await;
    servers.shutdown().await
}
