//! `tracekeeper indexer`: one member of the consumer group that moves spans from Kafka
//! into the CQL store.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tracekeeper_indexer::red::{Red, RedConfig, RedFlusher};
use tracekeeper_indexer::Indexer;
use tracekeeper_kafka::group::GroupView;
use tracekeeper_kafka::{ConsumerConfig, Encoding, Member};
use tracekeeper_model::clock::SystemClock;
use tracekeeper_retention::{Policies, RetentionPolicies, Watermarks};
use tracekeeper_serve::ServingConfig;
use tracekeeper_storage::cql::ledger::CqlLedger;
use tracekeeper_storage::cql::lifecycle::CqlLifecycle;
use tracekeeper_storage::cql::CqlConfig;
use tracekeeper_storage::{Lifecycle, OwnershipLedger};

use super::WATERMARK_REFRESH;
use crate::ops::{self, Readiness};
use crate::serve::Servers;
use crate::status;
use crate::telemetry::Role;

/// Everything `indexer` runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where `/ready`, `/metrics` and `/api/status` are served.
    pub admin_addr: SocketAddr,
    pub cql: CqlConfig,
    pub kafka_brokers: String,
    /// librdkafka properties: security, and any given as options.
    pub kafka_options: Vec<(String, String)>,
    /// Each topic consumed, with the encoding of its messages.
    pub topics: Vec<(String, Encoding)>,
    /// The consumer group; a partition's assignment in it is its ownership.
    pub group: String,
    pub session_timeout: Duration,
    /// How long a batch may take to be stored before this member leaves the group
    /// until the store answers again.
    pub stall_timeout: Duration,
    /// Where messages that can never be stored go.
    pub dead_letter_topic: String,
    /// The retention until the retention worker has recorded policies in the store.
    pub retention: RetentionPolicies,
    pub max_trace_spans: usize,
    pub max_future_skew: Duration,
    /// Tenants with their own `max-future-skew`.
    pub tenant_future_skews: BTreeMap<String, Duration>,
    pub red_max_series: usize,
    pub red_flush_interval: Duration,
    pub serving: ServingConfig,
}

/// Its admin port: `/ready`, `/metrics` and its admin API.
pub type Listeners = super::AdminListeners;

pub async fn run(config: Config, listeners: Listeners, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let metrics = ops::metrics_for(Role::Indexer)?;
    // The flag stands until the retention worker has recorded policies in the store;
    // from then on each tenant's own policy applies (and follows changes).
    let policies = Policies::from(config.retention.clone());
    let keyspace = &config.cql.keyspace;
    let store = super::connect_cql(&config.cql).await?;
    let session = store.shared_session();
    let ledger: Arc<dyn OwnershipLedger> =
        Arc::new(CqlLedger::new(store.shared_session(), keyspace).await.context("preparing the ownership ledger")?);
    let lifecycle: Arc<dyn Lifecycle> =
        Arc::new(CqlLifecycle::new(store.shared_session(), keyspace).await.context("preparing the retention tables")?);
    // Spans below a tenant's watermark are refused like spans past the policy, so a
    // replay of old messages after a policy was shortened stores nothing.
    let watermarks = Watermarks::default();
    watermarks.load(&*lifecycle).await.context("reading the retention watermarks")?;
    policies.load(&*lifecycle).await.context("reading the retention policies")?;
    let refresh =
        tokio::spawn(tracekeeper_retention::follow(lifecycle, WATERMARK_REFRESH, watermarks.clone(), policies.clone()));
    let clock = Arc::new(SystemClock);
    let store = Arc::new(store);
    let red = Arc::new(Red::new(RedConfig { max_series: config.red_max_series, ..RedConfig::default() }));
    let red_flusher = Arc::new(RedFlusher {
        red: red.clone(),
        store: store.clone(),
        retention: policies.clone(),
        clock: clock.clone(),
    });
    let flushing = red_flusher.clone().spawn(config.red_flush_interval);
    let indexer = Indexer::new(store.clone(), policies, clock.clone())
        .with_watermarks(watermarks)
        .with_trace_limit(store, config.max_trace_spans)
        .with_max_future_skew(config.max_future_skew)
        .with_red(red.clone())
        .with_tenant_future_skews(config.tenant_future_skews.clone());
    let views: Vec<GroupView> = config.topics.iter().map(|_| GroupView::default()).collect();
    let ready = Readiness::default();
    let mut servers = Servers::new(ops::router(ready.clone(), metrics), config.serving.clone());
    let configs: Vec<ConsumerConfig> = config
        .topics
        .iter()
        .map(|(topic, encoding)| ConsumerConfig {
            brokers: config.kafka_brokers.clone(),
            options: config.kafka_options.clone(),
            topic: topic.clone(),
            encoding: *encoding,
            group: config.group.clone(),
            batch_messages: 500,
            batch_wait: Duration::from_millis(150),
            session_timeout: config.session_timeout,
            stall_timeout: config.stall_timeout,
            dead_letter_topic: config.dead_letter_topic.clone(),
        })
        .collect();
    let topics: Vec<_> = configs.iter().map(|c| (c.client(), c.topic.clone())).collect();
    let durability = super::durability::report(&session, keyspace, &topics).await;
    servers.http(listeners.0, status::router(ledger.clone(), views.clone(), clock, durability), "admin")?;
    let counting: Vec<_> = configs
        .iter()
        .map(|c| {
            let every = Duration::from_secs(30);
            tokio::spawn(tracekeeper_kafka::partitions::report_partition_count(c.client(), c.topic.clone(), every))
        })
        .collect();
    // One group member per topic, all in the one group: each topic's partitions are
    // spread over the members that consume it, and one shutdown stops them all.
    let mut members = Vec::with_capacity(configs.len());
    for (consumer, view) in configs.iter().zip(views) {
        let member = Member::join(consumer, &indexer, &*ledger, view)
            .with_context(|| format!("joining the consumer group for topic {}", consumer.topic))?;
        tracing::info!(brokers = %consumer.brokers, topic = %consumer.topic, encoding = %consumer.encoding, group = %consumer.group, dead_letters = %consumer.dead_letter_topic, keyspace = %keyspace, "tracekeeper indexer is consuming");
        members.push(member);
    }
    ready.set_ready();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let consumed = futures::future::try_join_all(members.into_iter().map(|member| {
        let mut stopped = stopped.clone();
        member.run(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        })
    }));
    tokio::pin!(consumed, shutdown);
    // On shutdown each member finishes the batch it is writing before it stops.
    let consumed = tokio::select! {
        consumed = &mut consumed => consumed.map(|_| ()),
        () = &mut shutdown => {
            let _ = stop.send(true);
            consumed.await.map(|_| ())
        }
    };
    refresh.abort();
    counting.iter().for_each(tokio::task::JoinHandle::abort);
    flushing.abort();
    if let Err(e) = red_flusher.flush().await {
        tracing::warn!(error = %e, "writing the last RED counts failed");
    }
    servers.shutdown().await?;
    consumed.context("consuming from Kafka")
}
