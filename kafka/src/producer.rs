//! The collector's sink: spans to Kafka in the format a stock OpenTelemetry Collector
//! writes with `encoding: otlp_proto` and `partition_traces_by_id: true`.
//!
//! - value: an OTLP `ExportTraceServiceRequest` (protobuf) holding the spans of one trace;
//! - key: the trace id as 32 lower-case hex characters;
//! - partition: Sarama-compatible FNV-1a of the key ([`partition_for`]), which is what
//!   librdkafka's `fnv1a_random` partitioner computes for non-empty keys;
//! - header [`TENANT_HEADER`]: the tenant.
//!
//! A request is acknowledged only after Kafka acknowledged every one of its messages
//! (idempotent producer, acks=all).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use prost::Message;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tracekeeper_model::{otlp, Span, TraceId};

use tracekeeper_ingest::{SinkError, SinkOutcome, SpanSink};

pub use tracekeeper_model::KAFKA_TENANT_HEADER as TENANT_HEADER;

pub use tracekeeper_model::hash::fnv1a32;

/// Sarama's hash partitioner: `int32(fnv1a(key)) % n`, made non-negative.
pub fn partition_for(key: &[u8], partitions: i32) -> i32 {
    ((fnv1a32(key) as i32) % partitions).abs()
}

pub fn message_key(trace_id: TraceId) -> String {
    trace_id.to_hex()
}

#[derive(Debug, Clone)]
pub struct KafkaSinkConfig {
    pub brokers: String,
    /// librdkafka properties for security (TLS, SASL) and anything else, applied after
    /// the producer's own settings.
    pub options: Vec<(String, String)>,
    pub topic: String,
    /// How long to wait for Kafka's acknowledgement before telling the client to retry.
    pub ack_timeout: Duration,
}

pub struct KafkaSink {
    producer: FutureProducer,
    topic: String,
    ack_timeout: Duration,
}

impl KafkaSink {
    pub fn new(config: &KafkaSinkConfig) -> Result<Self, String> {
        let timeout_ms = config.ack_timeout.as_millis().to_string();
        let mut client = crate::client_config(&config.brokers, &[]);
        client
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "fnv1a_random")
            .set("message.timeout.ms", &timeout_ms)
            .set("linger.ms", "5")
            .set("compression.type", "lz4");
        for (key, value) in &config.options {
            client.set(key, value);
        }
        let producer = client.create().map_err(|e| format!("creating the Kafka producer: {e}"))?;
        Ok(Self { producer, topic: config.topic.clone(), ack_timeout: config.ack_timeout })
    }
}

#[async_trait]
impl SpanSink for KafkaSink {
    async fn accept(&self, tenant: &str, spans: Vec<Span>) -> Result<SinkOutcome, SinkError> {
        let mut traces: BTreeMap<TraceId, Vec<Span>> = BTreeMap::new();
        for span in spans {
            traces.entry(span.trace_id).or_default().push(span);
        }
        let started = std::time::Instant::now();
        let sends = traces.iter().map(|(trace_id, spans)| {
            let key = message_key(*trace_id);
            let payload = otlp::to_request(spans).encode_to_vec();
            let headers = OwnedHeaders::new().insert(Header { key: TENANT_HEADER, value: Some(tenant) });
            async move {
                let record = FutureRecord::to(&self.topic).key(&key).payload(&payload).headers(headers);
                self.producer.send(record, self.ack_timeout).await.map(drop).map_err(|(e, _)| e)
            }
        });
        let results = futures::future::join_all(sends).await;
        metrics::histogram!(crate::telemetry::KAFKA_PRODUCE_SECONDS).record(started.elapsed().as_secs_f64());
        if let Some(e) = results.into_iter().find_map(Result::err) {
            metrics::counter!(crate::telemetry::KAFKA_PRODUCE_ERRORS_TOTAL).increment(1);
            // Some traces may have been written: harmless, storage is idempotent and the
            // client retries the whole request.
            return Err(SinkError::Unavailable(format!("Kafka did not acknowledge: {e}")));
        }
        Ok(SinkOutcome::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sarama's formula, written out as Go evaluates it (truncating `%`, then negate).
    fn sarama(key: &[u8], n: i32) -> i32 {
        let h = fnv1a32(key) as i32;
        let p = h.wrapping_rem(n);
        if p < 0 {
            -p
        } else {
            p
        }
    }

    #[test]
    fn placement_matches_sarama_for_many_keys_and_partition_counts() {
        let mut negative_hashes = 0;
        for i in 0u64..20_000 {
            let key = message_key(TraceId(
                u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835).to_be_bytes(),
            ));
            negative_hashes += usize::from((fnv1a32(key.as_bytes()) as i32) < 0);
            for n in [1, 2, 3, 6, 7, 12, 64, 100, 1000] {
                let p = partition_for(key.as_bytes(), n);
                assert_eq!(p, sarama(key.as_bytes(), n), "key {key} n {n}");
                assert!((0..n).contains(&p));
            }
        }
        assert!(negative_hashes > 5_000, "the sign handling must be exercised: {negative_hashes}");
        // Known FNV-1a vectors.
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }
}
