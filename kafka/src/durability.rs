//! A topic's durability as the brokers report it: how many replicas its partitions
//! have and its `min.insync.replicas`. With fewer than three replicas, or fewer than
//! two in sync required, an `acks=all` acknowledgement can rest on one broker's disk.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
#[error("Kafka: {0}")]
pub struct DurabilityError(String);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicDurability {
    pub topic: String,
    /// The fewest replicas any partition has.
    pub replicas: usize,
    /// The topic's `min.insync.replicas` (its own, or the broker's default).
    pub min_insync_replicas: Option<u32>,
}

impl TopicDurability {
    pub async fn read(client: &ClientConfig, topic: &str) -> Result<Self, DurabilityError> {
        let fail = |e: &dyn std::fmt::Display| DurabilityError(format!("describing topic {topic}: {e}"));
        let consumer: BaseConsumer = client.create().map_err(|e| fail(&e))?;
        let name = topic.to_string();
        let replicas = tokio::task::spawn_blocking(move || {
            let metadata = consumer.fetch_metadata(Some(&name), Duration::from_secs(10)).map_err(|e| e.to_string())?;
            let partitions = metadata.topics().first().map(|t| t.partitions()).unwrap_or_default();
            partitions.iter().map(|p| p.replicas().len()).min().ok_or_else(|| format!("no partitions of {name}"))
        })
        .await
        .map_err(|e| fail(&e))?
        .map_err(|e| fail(&e))?;
        let admin: AdminClient<DefaultClientContext> = client.create().map_err(|e| fail(&e))?;
        let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
        let described = admin.describe_configs(&[ResourceSpecifier::Topic(topic)], &options).await;
        let min_insync_replicas = described
            .map_err(|e| fail(&e))?
            .into_iter()
            .flatten()
            .flat_map(|resource| resource.entries)
            .find(|entry| entry.name == "min.insync.replicas")
            .and_then(|entry| entry.value?.parse().ok());
        Ok(Self { topic: topic.to_string(), replicas, min_insync_replicas })
    }

    /// What an operator should fix, in words; empty when nothing.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.replicas < 3 {
            out.push(format!(
                "topic {} has {} replica(s) per partition: with fewer than 3, one broker lost can lose or stop \
                 acknowledged spans (kafka-reassign-partitions raises it)",
                self.topic, self.replicas
            ));
        }
        if self.min_insync_replicas.is_some_and(|n| n < 2) {
            out.push(format!(
                "topic {} has min.insync.replicas={}: an acks=all acknowledgement may rest on one broker; set it to 2 \
                 (kafka-configs --alter --entity-type topics --add-config min.insync.replicas=2)",
                self.topic,
                self.min_insync_replicas.unwrap_or(0)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::TopicDurability;

    #[test]
    fn one_replica_or_one_in_sync_is_warned_of() {
        let topic =
            |replicas, min_insync_replicas| TopicDurability { topic: "spans".into(), replicas, min_insync_replicas };
        assert!(topic(3, Some(2)).warnings().is_empty());
        assert_eq!(topic(1, Some(1)).warnings().len(), 2);
        assert!(topic(3, Some(1)).warnings()[0].contains("min.insync.replicas=1"));
        assert!(topic(2, None).warnings()[0].contains("2 replica(s)"));
    }
}
