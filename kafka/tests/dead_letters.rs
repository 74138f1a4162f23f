//! One bad message never stalls a partition. On the real broker and the real CQL
//! store, with faults injected at the storage boundary, one partition carries, in order:
//! a message the store fails transiently, one it refuses permanently, one that does not
//! decode, and a good one.
//!
//! - the transient failure is retried until stored;
//! - the refused and the undecodable message go to the dead-letter topic, byte for byte,
//!   with the original headers plus a reason, and are counted;
//! - the partition moves on: the last message is stored and every offset committed;
//! - after the cause is fixed, `replay` sends the letters back and the refused spans are
//!   stored.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use prost::Message as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tracekeeper_indexer::Indexer;
use tracekeeper_kafka::dead_letter::{self, ReplayConfig};
use tracekeeper_kafka::group::GroupView;
use tracekeeper_kafka::{ConsumerConfig, Encoding, Member};
use tracekeeper_model::clock::{Clock, SystemClock};
use tracekeeper_model::{otlp, Span, TraceId, KAFKA_TENANT_HEADER};
use tracekeeper_retention::RetentionPolicies;
use tracekeeper_stack::wait_until;
use tracekeeper_storage::cql::ledger::CqlLedger;
use tracekeeper_storage::cql::{test_store, CqlStore};
use tracekeeper_storage::{testing::span, SpanReader, SpanWriter, StorageError, WriteBatch};

/// How long a Kafka consumer group may take to settle here.
const WAIT: Duration = Duration::from_secs(90);

/// The real store behind a switchboard of faults, keyed by trace.
struct FaultyWriter {
    inner: Arc<CqlStore>,
    /// Writes touching this trace fail as unavailable this many more times.
    flaky: TraceId,
    flaky_left: AtomicUsize,
    flaky_failures: AtomicUsize,
    /// Writes touching these traces are refused as invalid.
    refused: Mutex<HashSet<TraceId>>,
}

#[async_trait]
impl SpanWriter for FaultyWriter {
    async fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let touches = |id: TraceId| batch.spans.iter().any(|s| s.trace_id == id);
        if touches(self.flaky)
            && self.flaky_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
        {
            self.flaky_failures.fetch_add(1, Ordering::SeqCst);
            return Err(StorageError::Unavailable("injected: write timed out".into()));
        }
        let refused = self.refused.lock().unwrap().clone();
        if refused.iter().any(|id| touches(*id)) {
            return Err(StorageError::Refused("injected: the server said Invalid".into()));
        }
        self.inner.write(batch).await
    }
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

fn trace(id: u8, service: &str, start_ns: u64) -> Vec<Span> {
    vec![span(id, 1, service, "GET /", start_ns), span(id, 2, service, "SELECT", start_ns + 1_000)]
}

async fn publish(producer: &FutureProducer, topic: &str, key: &str, tenant: &str, payload: &[u8]) {
    let headers = OwnedHeaders::new()
        .insert(Header { key: KAFKA_TENANT_HEADER, value: Some(tenant) })
        .insert(Header { key: "x-origin", value: Some("the test") });
    let record = FutureRecord::to(topic).key(key).payload(payload).headers(headers).partition(0);
    producer.send(record, Duration::from_secs(30)).await.map_err(|(e, _)| e).unwrap();
}

async fn stored_spans(store: &CqlStore, tenant: &str, id: TraceId) -> usize {
    store.trace(tenant, id, 1000).await.unwrap().0.len()
}

/// A message as read back: key, payload and headers.
type Read = (Vec<u8>, Vec<u8>, Vec<(String, String)>);

/// Every message in `topic`.
fn read_all(kafka: &str, topic: &str) -> Vec<Read> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka)
        .set("group.id", "dead-letter-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let (low, high) = consumer.fetch_watermarks(topic, 0, Duration::from_secs(10)).unwrap();
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, 0, Offset::Offset(low)).unwrap();
    consumer.assign(&list).unwrap();
    let mut out = Vec::new();
    while (out.len() as i64) < high - low {
        let Some(message) = consumer.poll(Duration::from_secs(10)) else {
            panic!("{topic}: fewer messages than {high}")
        };
        let message = message.unwrap();
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        out.push((message.key().unwrap_or_default().to_vec(), message.payload().unwrap_or_default().to_vec(), headers));
    }
    out
}

fn header<'h>(headers: &'h [(String, String)], key: &str) -> Option<&'h str> {
    headers.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_are_retried_and_permanent_ones_go_to_the_dead_letter_topic() {
    let stack = tracekeeper_stack::require().await;
    let run = now_ns() % 1_000_000_000;
    let (topic, dlq) = (format!("dlq_src_{run}"), format!("dlq_letters_{run}"));
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &stack.kafka).create().unwrap();
    let topics =
        [NewTopic::new(&topic, 1, TopicReplication::Fixed(1)), NewTopic::new(&dlq, 1, TopicReplication::Fixed(1))];
    let created = admin.create_topics(&topics, &AdminOptions::new()).await.unwrap();
    assert!(created.iter().all(Result::is_ok), "{created:?}");

    let store = Arc::new(test_store(&stack.cql).await);
    let ledger = CqlLedger::new(store.shared_session(), store.keyspace()).await.unwrap();
    let start = now_ns() - 60_000_000_000;
    let (flaky, refused, good) = (trace(1, "flaky", start), trace(2, "refused", start), trace(3, "good", start));
    let writer = Arc::new(FaultyWriter {
        inner: store.clone(),
        flaky: flaky[0].trace_id,
        flaky_left: AtomicUsize::new(3),
        flaky_failures: AtomicUsize::new(0),
        refused: Mutex::new(HashSet::from([refused[0].trace_id])),
    });
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let indexer = Indexer::new(writer.clone(), Arc::new(RetentionPolicies::default()), clock);

    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &stack.kafka).create().unwrap();
    let garbage = b"\xff\xff\xff\xff not protobuf".to_vec();
    let encoded = |spans: &[Span]| otlp::to_request(spans).encode_to_vec();
    publish(&producer, &topic, &flaky[0].trace_id.to_hex(), "acme", &encoded(&flaky)).await;
    publish(&producer, &topic, &refused[0].trace_id.to_hex(), "acme", &encoded(&refused)).await;
    publish(&producer, &topic, "garbage", "acme", &garbage).await;
    publish(&producer, &topic, &good[0].trace_id.to_hex(), "acme", &encoded(&good)).await;

    let config = ConsumerConfig {
        brokers: stack.kafka.clone(),
        options: Vec::new(),
        topic: topic.clone(),
        encoding: Encoding::OtlpProto,
        group: format!("dlq_group_{run}"),
        batch_messages: 500,
        batch_wait: Duration::from_millis(50),
        session_timeout: Duration::from_secs(6),
        stall_timeout: Duration::from_secs(30),
        dead_letter_topic: dlq.clone(),
    };
    let view = GroupView::default();
    let member = Member::join(&config, &indexer, &ledger, view.clone()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let consuming = async move {
        member
            .run(async {
                stopped.await.ok();
            })
            .await
            .unwrap();
    };
    let checking = async {
        wait_until("every offset is committed", WAIT, async || {
            view.position(0).is_some_and(|(committed, _)| committed == 4)
        })
        .await;
        assert_eq!(stored_spans(&store, "acme", good[0].trace_id).await, 2, "the message after the bad ones");
        assert_eq!(stored_spans(&store, "acme", flaky[0].trace_id).await, 2, "the transiently failing message");
        assert_eq!(writer.flaky_failures.load(Ordering::SeqCst), 3, "each injected timeout was retried");
        assert_eq!(stored_spans(&store, "acme", refused[0].trace_id).await, 0);

        let letters = read_all(&stack.kafka, &dlq);
        assert_eq!(letters.len(), 2, "the refused and the undecodable message, once each");
        // Within one batch the undecodable message is set aside while the batch is read,
        // the refused one once its write fails: either may come first.
        let letter = |key: &[u8]| letters.iter().find(|(k, _, _)| k == key).unwrap_or_else(|| panic!("{letters:?}"));
        let (_, payload, headers) = letter(refused[0].trace_id.to_hex().as_bytes());
        assert_eq!(payload, &encoded(&refused), "the letter is the original message");
        assert_eq!(header(headers, KAFKA_TENANT_HEADER), Some("acme"));
        assert_eq!(header(headers, "x-origin"), Some("the test"));
        assert!(header(headers, dead_letter::REASON_HEADER).unwrap().contains("refused by storage"), "{headers:?}");
        assert_eq!(header(headers, dead_letter::TOPIC_HEADER), Some(topic.as_str()));
        assert_eq!(header(headers, dead_letter::OFFSET_HEADER), Some("1"));
        let (_, payload, headers) = letter(b"garbage");
        assert_eq!(payload, &garbage);
        assert!(header(headers, dead_letter::REASON_HEADER).unwrap().starts_with("undecodable: not OTLP protobuf"));
        assert_eq!(header(headers, dead_letter::OFFSET_HEADER), Some("2"));

        // The cause is fixed; the letters go back where they came from.
        writer.refused.lock().unwrap().clear();
        let mut client = ClientConfig::new();
        client.set("bootstrap.servers", &stack.kafka);
        let replay =
            ReplayConfig { client, dead_letter_topic: dlq.clone(), to_topic: None, group: format!("dlq_replay_{run}") };
        let mut seen = Vec::new();
        let report = dead_letter::replay(&replay, |done, waiting| seen.push((done, waiting))).await.unwrap();
        assert_eq!(report.waiting, 2);
        assert_eq!(report.republished.get(&topic), Some(&2));
        assert_eq!(seen, vec![(1, 2), (2, 2)], "progress after each letter");
        wait_until("the replayed spans are stored", WAIT, async || {
            stored_spans(&store, "acme", refused[0].trace_id).await == 2
        })
        .await;
        let replayed = read_all(&stack.kafka, &topic);
        assert_eq!(replayed.len(), 6);
        for (_, _, headers) in &replayed[4..] {
            assert!(headers.iter().all(|(k, _)| !k.starts_with(dead_letter::HEADER_PREFIX)), "{headers:?}");
            assert_eq!(header(headers, KAFKA_TENANT_HEADER), Some("acme"));
        }
        // A second replay starts where the first ended: only the garbage, dead-lettered again.
        wait_until("the garbage is dead-lettered again", WAIT, async || read_all(&stack.kafka, &dlq).len() == 3).await;
        let again = dead_letter::replay(&replay, |_, _| {}).await.unwrap();
        assert_eq!(again.waiting, 1);
        stop.send(()).unwrap();
    };
    tokio::join!(consuming, checking);
}
