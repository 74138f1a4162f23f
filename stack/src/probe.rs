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
