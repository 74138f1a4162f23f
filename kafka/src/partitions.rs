//! How many partitions a topic has, kept in `tracekeeper_kafka_topic_partitions`, so
//! that a partition no member owns shows against the members' `partition_owned`.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

/// Asks the brokers for `topic`'s partition count every `every`, until dropped. A
/// failed request is logged and asked again next time; the gauge keeps its last value.
pub async fn report_partition_count(client: ClientConfig, topic: String, every: Duration) {
    let consumer: BaseConsumer = match client.create() {
        Ok(consumer) => consumer,
        Err(e) => {
            tracing::warn!(error = %e, "cannot create the client that counts partitions");
            return;
        }
    };
    let consumer = std::sync::Arc::new(consumer);
    loop {
        let asking = std::sync::Arc::clone(&consumer);
        let name = topic.clone();
        let counted = tokio::task::spawn_blocking(move || {
            let metadata = asking.fetch_metadata(Some(&name), Duration::from_secs(10))?;
            Ok::<_, rdkafka::error::KafkaError>(metadata.topics().first().map_or(0, |t| t.partitions().len()))
        })
        .await;
        match counted {
            Ok(Ok(count)) if count > 0 => {
                metrics::gauge!(crate::telemetry::KAFKA_TOPIC_PARTITIONS, "topic" => topic.clone()).set(count as f64)
            }
            Ok(Ok(_)) => tracing::debug!(%topic, "the topic has no partitions yet"),
            Ok(Err(e)) => tracing::warn!(error = %e, %topic, "could not count the topic's partitions"),
            Err(e) => tracing::warn!(error = %e, "the partition count task failed"),
        }
        tokio::time::sleep(every).await;
    }
}
