//! Real readiness: a Kafka metadata request succeeds and CQL answers
//! `SELECT release_version FROM system.local`.

use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::ClientConfig;
use scylla::client::session_builder::SessionBuilder;

use crate::{Endpoints, StackError};

pub async fn kafka_ready(bootstrap: &str) -> Result<usize, String> {
    let bootstrap = bootstrap.to_string();
    tokio::task::spawn_blocking(move || {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("log_level", "0")
            .create()
            .map_err(|e| e.to_string())?;
        let metadata = producer.client().fetch_metadata(None, Duration::from_secs(3)).map_err(|e| e.to_string())?;
        Ok(metadata.brokers().len())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Whether all `brokers` brokers are up and in the ISR: the metadata lists them, and
/// every partition of a topic replicated to min(3, brokers) has its whole replica set
/// in sync (the topic is created on first call).
pub async fn kafka_cluster_ready(bootstrap: &str, brokers: usize) -> Result<(), String> {
    const TOPIC: &str = "tracekeeper-stack-ready";
    let listed = kafka_ready(bootstrap).await?;
    if listed < brokers {
        return Err(format!("{listed} of {brokers} brokers are up"));
    }
    if brokers == 1 {
        return Ok(());
    }
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "0")
        .create()
        .map_err(|e| e.to_string())?;
    let replicas = brokers.min(3) as i32;
    let topic = NewTopic::new(TOPIC, brokers as i32, TopicReplication::Fixed(replicas));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let _ = admin.create_topics(&[topic], &options).await.map_err(|e| e.to_string())?;
    let bootstrap = bootstrap.to_string();
    tokio::task::spawn_blocking(move || {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("log_level", "0")
            .create()
            .map_err(|e| e.to_string())?;
        let metadata =
            producer.client().fetch_metadata(Some(TOPIC), Duration::from_secs(3)).map_err(|e| e.to_string())?;
        let partitions = metadata.topics().first().map(|t| t.partitions()).unwrap_or_default();
        let in_sync = partitions.iter().filter(|p| p.isr().len() == replicas as usize).count();
        if partitions.is_empty() || in_sync < partitions.len() {
            return Err(format!("{in_sync} of {} partitions have every replica in sync", partitions.len()));
        }
        Ok(())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Whether every node of `nodes` (`host:port` each) answers CQL and lists all the
/// others as peers: each has joined the ring (a node serves CQL only once it has).
pub async fn cql_cluster_ready(nodes: &[String]) -> Result<(), String> {
    for node in nodes {
        // System tables are each node's own: ask this node and no other.
        let only =
            scylla::policies::host_filter::AllowListHostFilter::new([node.as_str()]).map_err(|e| e.to_string())?;
        let session = SessionBuilder::new()
            .known_node(node)
            .host_filter(std::sync::Arc::new(only))
            .connection_timeout(Duration::from_secs(3))
            .build()
            .await
            .map_err(|e| format!("{node}: {e}"))?;
        let rows = session
            .query_unpaged("SELECT peer FROM system.peers_v2", ())
            .await
            .map_err(|e| format!("{node}: {e}"))?
            .into_rows_result()
            .map_err(|e| e.to_string())?;
        if rows.rows_num() + 1 < nodes.len() {
            return Err(format!("{node} knows {} of its {} peers", rows.rows_num(), nodes.len() - 1));
        }
    }
    Ok(())
}

pub async fn cql_release_version(contact: &str) -> Result<String, String> {
    release_version(SessionBuilder::new().known_node(contact)).await
}

/// `release_version` through a session `builder` makes (with a short connect timeout):
/// whatever login and TLS it carries are part of the probe.
pub(crate) async fn release_version(builder: SessionBuilder) -> Result<String, String> {
    let session = builder.connection_timeout(Duration::from_secs(3)).build().await.map_err(|e| e.to_string())?;
    let rows = session
        .query_unpaged("SELECT release_version FROM system.local", ())
        .await
        .map_err(|e| e.to_string())?
        .into_rows_result()
        .map_err(|e| e.to_string())?;
    let (version,): (String,) = rows.single_row().map_err(|e| e.to_string())?;
    Ok(version)
}

/// Waits until both services answer real protocol requests.
pub async fn wait_ready(endpoints: &Endpoints, timeout: Duration) -> Result<(), StackError> {
    let deadline = Instant::now() + timeout;
    loop {
        match kafka_ready(&endpoints.kafka).await {
            Ok(brokers) if brokers > 0 => break,
            result => {
                if Instant::now() > deadline {
                    return Err(StackError::NotReady { service: "Kafka", timeout, detail: format!("{result:?}") });
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    loop {
        match cql_release_version(&endpoints.cql).await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(StackError::NotReady { service: "CQL", timeout, detail: e });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
