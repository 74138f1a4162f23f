//! The distributed indexer's consumer: Kafka partitions in, span rows and postings out.
//!
//! - Consumer group with cooperative-sticky assignment; a partition's assignment is its
//!   ownership.
//! - Offsets are committed manually, and only after every row derived from the
//!   messages up to that offset has been written. A failed write is retried, never
//!   skipped; a failed commit (the partition moved) is harmless because every write is
//!   a deterministic function of the message, so the new owner rewrites the same rows.
//! - A message that cannot be decoded is counted, logged with its partition and
//!   offset, and skipped: it never blocks its partition.

use std::collections::BTreeMap;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tracekeeper_model::{otlp, Span, DEFAULT_TENANT};

use crate::Indexer;

use tracekeeper_model::KAFKA_TENANT_HEADER as TENANT_HEADER;

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub brokers: String,
    pub topic: String,
    pub group: String,
    /// Most messages indexed (and committed) together.
    pub batch_messages: usize,
    /// How long to wait for more messages before indexing a partial batch.
    pub batch_wait: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("Kafka consumer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

struct Decoded {
    tenant: String,
    spans: Vec<Span>,
}

fn decode(message: &BorrowedMessage<'_>) -> Result<Decoded, String> {
    let payload = message.payload().ok_or("empty message")?;
    let request = ExportTraceServiceRequest::decode(payload).map_err(|e| format!("not OTLP protobuf: {e}"))?;
    let tenant = message
        .headers()
        .and_then(|h| h.iter().find(|h| h.key.eq_ignore_ascii_case(TENANT_HEADER)))
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_else(|| DEFAULT_TENANT.to_string());
    tracekeeper_model::validate_tenant(&tenant).map_err(|e| format!("bad tenant header: {e}"))?;
    let decoded = otlp::from_request(request);
    if !decoded.rejected.is_empty() {
        metrics::counter!("tracekeeper_spans_rejected_total", "reason" => "invalid")
            .increment(decoded.rejected.len() as u64);
    }
    Ok(Decoded { tenant, spans: decoded.spans })
}

/// Consumes until `shutdown` resolves.
pub async fn run(
    config: &ConsumerConfig,
    indexer: &Indexer,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ConsumerError> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.group)
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .create()?;
    consumer.subscribe(&[&config.topic])?;
    tokio::pin!(shutdown);
    loop {
        let mut by_tenant: BTreeMap<String, Vec<Span>> = BTreeMap::new();
        let mut next_offsets: BTreeMap<i32, i64> = BTreeMap::new();
        let deadline = tokio::time::Instant::now() + config.batch_wait;
        let mut count = 0;
        while count < config.batch_messages {
            let message = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                _ = tokio::time::sleep_until(deadline), if count > 0 => break,
                m = consumer.recv() => m,
            };
            let message = match message {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "Kafka receive failed");
                    continue;
                }
            };
            count += 1;
            next_offsets.insert(message.partition(), message.offset() + 1);
            match decode(&message) {
                Ok(d) => by_tenant.entry(d.tenant).or_default().extend(d.spans),
                Err(why) => {
                    metrics::counter!("tracekeeper_kafka_poison_messages_total").increment(1);
                    tracing::error!(partition = message.partition(), offset = message.offset(), reason = %why, "skipping a message that cannot be decoded");
                }
            }
        }
        for (tenant, spans) in by_tenant {
            write_until_stored(indexer, &tenant, spans).await;
        }
        let mut offsets = TopicPartitionList::new();
        for (partition, offset) in next_offsets {
            offsets.add_partition_offset(&config.topic, partition, Offset::Offset(offset))?;
        }
        if let Err(e) = consumer.commit(&offsets, CommitMode::Sync) {
            // The partitions moved to another member: it resumes from the last
            // committed offset and rewrites the same rows.
            metrics::counter!("tracekeeper_kafka_commit_failures_total").increment(1);
            tracing::warn!(error = %e, "offset commit refused");
        }
    }
}

async fn write_until_stored(indexer: &Indexer, tenant: &str, spans: Vec<Span>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match indexer.index(tenant, spans.clone()).await {
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "storage write failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}
