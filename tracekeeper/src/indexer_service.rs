//! `tracekeeper indexer`: one member of the consumer group that moves spans from Kafka
//! into the CQL store.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tracekeeper_indexer::kafka::group::GroupView;
use tracekeeper_indexer::kafka::{ConsumerConfig, Member};
use tracekeeper_indexer::red::{Red, RedConfig, RedFlusher};
use tracekeeper_indexer::Indexer;
use tracekeeper_model::clock::SystemClock;
use tracekeeper_retention::{Policies, Watermarks};
use tracekeeper_storage::cql::ledger::CqlLedger;
use tracekeeper_storage::cql::lifecycle::CqlLifecycle;
use tracekeeper_storage::{Lifecycle, OwnershipLedger};

use crate::cli::IndexerArgs;
use crate::config;
use crate::ops::{self, Readiness};
use crate::serve::Servers;
use crate::status;

pub async fn run(
    args: IndexerArgs,
    metrics: PrometheusHandle,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    // The flag stands until the retention worker has recorded policies in the store;
    // from then on each tenant's own policy applies (and follows changes).
    let policies = Policies::from(config::single_retention(&args.retention)?);
    let admin = TcpListener::bind(args.admin_addr).await.with_context(|| format!("binding {}", args.admin_addr))?;
    let store = config::connect_cql(&args.cql_security, &args.cql_nodes, &args.keyspace).await?;
    let ledger: Arc<dyn OwnershipLedger> = Arc::new(
        CqlLedger::new(store.shared_session(), &args.keyspace).await.context("preparing the ownership ledger")?,
    );
    let lifecycle: Arc<dyn Lifecycle> = Arc::new(
        CqlLifecycle::new(store.shared_session(), &args.keyspace).await.context("preparing the retention tables")?,
    );
    // Spans below a tenant's watermark are refused like spans past the policy, so a
    // replay of old messages after a policy was shortened stores nothing.
    let watermarks = Watermarks::default();
    watermarks.load(&*lifecycle).await.context("reading the retention watermarks")?;
    policies.load(&*lifecycle).await.context("reading the retention policies")?;
    let refresh = tokio::spawn(tracekeeper_retention::follow(
        lifecycle,
        crate::query_service::WATERMARK_REFRESH,
        watermarks.clone(),
        policies.clone(),
    ));
    let clock = Arc::new(SystemClock);
    let store = Arc::new(store);
    let red = Arc::new(Red::new(RedConfig { max_series: args.red_max_series, ..RedConfig::default() }));
    let red_flusher = Arc::new(RedFlusher {
        red: red.clone(),
        store: store.clone(),
        retention: policies.clone(),
        clock: clock.clone(),
    });
    let flushing = red_flusher.clone().spawn(args.red_flush_interval);
    let indexer = Indexer::new(store.clone(), policies, clock.clone())
        .with_watermarks(watermarks)
        .with_trace_limit(store, args.max_trace_spans)
        .with_max_future_skew(args.max_future_skew)
        .with_red(red.clone())
        .with_tenant_future_skews(config::tenant_future_skews(&config::FileTables::load(
            args.config.config.as_deref(),
        )?)?);
    let topics = config::topic_encodings(&args.kafka_topic, &args.kafka_encoding)?;
    let views: Vec<GroupView> = topics.iter().map(|_| GroupView::default()).collect();
    let ready = Readiness::default();
    let serving = config::serving_config(&args.serving, false)?;
    let mut servers = Servers::new(ops::router(ready.clone(), metrics), serving);
    servers.http(admin, status::router(ledger.clone(), views.clone(), clock), "admin")?;
    let options = args.kafka_security.options()?;
    let configs: Vec<ConsumerConfig> = topics
        .into_iter()
        .map(|(topic, encoding)| ConsumerConfig {
            brokers: args.kafka_brokers.clone(),
            options: options.clone(),
            topic,
            encoding,
            group: args.group.clone(),
            batch_messages: 500,
            batch_wait: Duration::from_millis(150),
            session_timeout: args.session_timeout,
            dead_letter_topic: args.kafka_dlq_topic.clone(),
        })
        .collect();
    let counting: Vec<_> = configs
        .iter()
        .map(|c| {
            let every = Duration::from_secs(30);
            tokio::spawn(tracekeeper_indexer::kafka::partitions::report_partition_count(
                c.client(),
                c.topic.clone(),
                every,
            ))
        })
        .collect();
    // One group member per topic, all in the one group: each topic's partitions are
    // spread over the members that consume it, and one shutdown stops them all.
    let mut members = Vec::with_capacity(configs.len());
    for (config, view) in configs.iter().zip(views) {
        let member = Member::join(config, &indexer, &*ledger, view)
            .with_context(|| format!("joining the consumer group for topic {}", config.topic))?;
        tracing::info!(brokers = %config.brokers, topic = %config.topic, encoding = %config.encoding, group = %config.group, dead_letters = %config.dead_letter_topic, keyspace = %args.keyspace, "tracekeeper indexer is consuming");
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
