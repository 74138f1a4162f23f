//! Everything tracekeeper does with Kafka, in the distributed shape only: all-in-one
//! links none of it.
//!
//! - [`producer`]: the collector's sink, one OTLP message per trace, keyed and placed
//!   the way the OpenTelemetry Collector's Kafka exporter does.
//! - [`consumer`]: the indexer's group member (ownership from the group generation,
//!   offsets committed after the rows are written), reading each topic's
//!   [`decode::Encoding`].
//! - [`dead_letter`]: messages that can never be stored, and `replay`.
//! - [`group`], [`partitions`], [`status`]: who owns which partition, how far behind it
//!   is, and the topic's partition count, for `/api/status` and the metrics.
//! - [`client_config`]: the one place a librdkafka client is configured.

pub mod consumer;
pub mod dead_letter;
pub mod decode;
pub mod durability;
pub mod group;
pub mod partitions;
pub mod producer;
pub mod status;
pub mod telemetry;

pub use consumer::{ConsumerConfig, Member};
pub use decode::Encoding;
pub use rdkafka::ClientConfig;

/// How often every client asks the brokers for the topics' metadata: partitions added
/// at run time are used by the collectors, and consumed by the group, within this long
/// (librdkafka's default is 5 minutes). An option may set it otherwise.
pub const METADATA_REFRESH_MS: &str = "30000";

/// A client of `brokers` with `options` (librdkafka properties: security, and any
/// given by the operator) set.
pub fn client_config(brokers: &str, options: &[(String, String)]) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", brokers);
    client.set("topic.metadata.refresh.interval.ms", METADATA_REFRESH_MS);
    for (key, value) in options {
        client.set(key, value);
    }
    client
}
