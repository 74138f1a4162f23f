//! The dead-letter topic: where a message goes that can never be stored, so that its
//! partition moves on instead of retrying it forever.
//!
//! - A letter is the original message, byte for byte: the same key, value and headers
//!   (the tenant among them), plus headers under [`HEADER_PREFIX`] saying why it was set
//!   aside and where it came from.
//! - A letter is published, and acknowledged by the broker, before the offset behind it is
//!   committed: a message leaves its partition only once it is safe in the dead-letter
//!   topic. A rebalance in between can publish the same letter twice; replaying both is
//!   harmless, because every stored row is a deterministic function of the message.
//! - [`replay`] re-publishes the letters, without the added headers, once the cause is
//!   fixed.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// The topic letters go to unless configured otherwise (`--kafka-dlq-topic`).
pub const DEFAULT_TOPIC: &str = "tracekeeper-spans-dlq";
/// Every header the indexer adds starts with this; [`replay`] strips them.
pub const HEADER_PREFIX: &str = "tracekeeper-dlq-";
/// Why the message was set aside, for a person to read.
pub const REASON_HEADER: &str = "tracekeeper-dlq-reason";
/// The topic, partition and offset the message was read from.
pub const TOPIC_HEADER: &str = "tracekeeper-dlq-topic";
pub const PARTITION_HEADER: &str = "tracekeeper-dlq-partition";
pub const OFFSET_HEADER: &str = "tracekeeper-dlq-offset";

/// How long one publish may wait for the broker before it is tried again.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("the dead-letter topic {0:?} does not exist")]
    NoSuchTopic(String),
    #[error(
        "the letter at partition {partition}, offset {offset} does not say which topic it came from; pass --to-topic"
    )]
    NoOrigin { partition: i32, offset: i64 },
}

/// Publishes letters to the dead-letter topic.
pub struct DeadLetters {
    producer: FutureProducer,
    topic: String,
}

impl DeadLetters {
    pub fn new(client: &ClientConfig, topic: &str) -> Result<Self, DeadLetterError> {
        let producer = client.clone().set("enable.idempotence", "true").set("acks", "all").create()?;
        Ok(Self { producer, topic: topic.to_string() })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Publishes `original` with `reason`; returns once the broker has acknowledged it.
    /// A broker that refuses is retried with backoff: the partition waits rather than
    /// losing the message.
    pub async fn send(&self, original: &OwnedMessage, reason: &str) {
        let (partition, offset) = (original.partition().to_string(), original.offset().to_string());
        let mut headers = OwnedHeaders::new();
        if let Some(kept) = original.headers() {
            for header in kept.iter() {
                headers = headers.insert(header);
            }
        }
        let headers = headers
            .insert(Header { key: REASON_HEADER, value: Some(reason) })
            .insert(Header { key: TOPIC_HEADER, value: Some(original.topic()) })
            .insert(Header { key: PARTITION_HEADER, value: Some(&partition) })
            .insert(Header { key: OFFSET_HEADER, value: Some(&offset) });
        let mut backoff = Duration::from_millis(100);
        loop {
            let record = record_of(&self.topic, original, headers.clone());
            match self.producer.send(record, Timeout::After(SEND_TIMEOUT)).await {
                Ok(_) => {
                    metrics::counter!(crate::telemetry::KAFKA_DEAD_LETTERS_TOTAL).increment(1);
                    tracing::warn!(
                        topic = original.topic(),
                        partition = original.partition(),
                        offset = original.offset(),
                        dead_letter_topic = %self.topic,
                        reason,
                        "message set aside in the dead-letter topic"
                    );
                    return;
                }
                Err((e, _)) => {
                    metrics::counter!(crate::telemetry::KAFKA_DEAD_LETTER_ERRORS_TOTAL).increment(1);
                    tracing::warn!(error = %e, retry_in = ?backoff, "could not publish to the dead-letter topic; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// Connection settings shared with the indexer (brokers, security).
    pub client: ClientConfig,
    pub dead_letter_topic: String,
    /// Where letters go; by default back to the topic each came from.
    pub to_topic: Option<String>,
    /// The consumer group whose committed offsets remember what was replayed.
    pub group: String,
}

/// What a replay did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// Letters re-published, per destination topic.
    pub republished: BTreeMap<String, u64>,
    /// Letters that were waiting when the replay started.
    pub waiting: u64,
}

/// Re-publishes every letter waiting in the dead-letter topic when it starts, in order
/// per partition, and commits its progress under `group` so a second run starts where
/// this one ended. Letters that arrive while it runs are left for the next run.
/// `progress(done, waiting)` is called after each letter.
pub async fn replay(
    config: &ReplayConfig,
    mut progress: impl FnMut(u64, u64),
) -> Result<ReplayReport, DeadLetterError> {
    let consumer: StreamConsumer = config
        .client
        .clone()
        .set("group.id", &config.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    let producer: FutureProducer =
        config.client.clone().set("enable.idempotence", "true").set("acks", "all").create()?;
    let remaining = waiting_letters(&consumer, &config.dead_letter_topic)?;
    let waiting: u64 = remaining.values().map(|(from, to)| (to - from) as u64).sum();
    let mut report = ReplayReport { waiting, ..ReplayReport::default() };
    if waiting == 0 {
        return Ok(report);
    }
    let mut assignment = TopicPartitionList::new();
    for (partition, (from, _)) in &remaining {
        assignment.add_partition_offset(&config.dead_letter_topic, *partition, Offset::Offset(*from))?;
    }
    consumer.assign(&assignment)?;
    let mut open: BTreeMap<i32, i64> = remaining.iter().map(|(p, (_, end))| (*p, *end)).collect();
    let mut done = 0u64;
    while !open.is_empty() {
        let letter = consumer.recv().await?;
        let (partition, offset) = (letter.partition(), letter.offset());
        let Some(&end) = open.get(&partition) else { continue };
        if offset >= end {
            continue;
        }
        let destination = match &config.to_topic {
            Some(topic) => topic.clone(),
            None => header(&letter, TOPIC_HEADER).ok_or(DeadLetterError::NoOrigin { partition, offset })?,
        };
        republish(&producer, &letter, &destination).await?;
        *report.republished.entry(destination).or_default() += 1;
        done += 1;
        progress(done, waiting);
        let mut committed = TopicPartitionList::new();
        committed.add_partition_offset(&config.dead_letter_topic, partition, Offset::Offset(offset + 1))?;
        consumer.commit(&committed, CommitMode::Sync)?;
        if offset + 1 >= end {
            open.remove(&partition);
        }
    }
    Ok(report)
}

/// Per partition of `topic` with letters waiting: `(from, end)` offsets, from the group's
/// committed offset (or the oldest kept) to the end as of now.
fn waiting_letters<C: rdkafka::consumer::ConsumerContext>(
    consumer: &StreamConsumer<C>,
    topic: &str,
) -> Result<BTreeMap<i32, (i64, i64)>, DeadLetterError> {
    let metadata = consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(DeadLetterError::NoSuchTopic(topic.to_string()));
    }
    let mut asked = TopicPartitionList::new();
    for partition in &partitions {
        asked.add_partition(topic, *partition);
    }
    let committed = consumer.committed_offsets(asked, METADATA_TIMEOUT)?;
    let mut waiting = BTreeMap::new();
    for partition in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, partition, METADATA_TIMEOUT)?;
        let from = match committed.find_partition(topic, partition).map(|e| e.offset()) {
            Some(Offset::Offset(at)) => at.max(low),
            _ => low,
        };
        if from < high {
            waiting.insert(partition, (from, high));
        }
    }
    Ok(waiting)
}

fn header(message: &impl Message, key: &str) -> Option<String> {
    let headers = message.headers()?;
    let found = headers.iter().find(|h| h.key == key)?;
    found.value.map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Publishes `letter` to `topic` as it was before it was set aside: the added headers go.
async fn republish(producer: &FutureProducer, letter: &impl Message, topic: &str) -> Result<(), DeadLetterError> {
    let mut headers = OwnedHeaders::new();
    if let Some(kept) = letter.headers() {
        for h in kept.iter().filter(|h| !h.key.starts_with(HEADER_PREFIX)) {
            headers = headers.insert(h);
        }
    }
    let record = record_of(topic, letter, headers);
    producer.send(record, Timeout::After(SEND_TIMEOUT)).await.map_err(|(e, _)| DeadLetterError::Kafka(e))?;
    Ok(())
}

/// `message`'s key and value, as a record for `topic` with `headers`.
fn record_of<'a>(topic: &'a str, message: &'a impl Message, headers: OwnedHeaders) -> FutureRecord<'a, [u8], [u8]> {
    let mut record = FutureRecord::to(topic).headers(headers);
    if let Some(key) = message.key() {
        record = record.key(key);
    }
    if let Some(payload) = message.payload() {
        record = record.payload(payload);
    }
    record
}
