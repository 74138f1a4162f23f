//! The distributed shape end to end on the real stack: collector → Kafka → indexer →
//! Cassandra ← query. Spans of each trace arrive split across requests, one batch is
//! sent twice, poison sits on every partition, and every acknowledged span must be
//! served exactly once.

mod support;

use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, TracesData};
use prost::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::FutureRecord;
use rdkafka::ClientConfig;
use serde_json::Value;
use support::cluster::{assert_all_served, post_until_acked, Cluster, PARTITIONS};
use support::{now_ns, rich_trace};
use tracekeeper_model::{jaeger, otlp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_kafka_indexer_cql_query() {
    let stack = tracekeeper_stack::require().await;
    let cluster = Cluster::create(&stack.kafka, &stack.cql, "pipeline").await;
    let collector = cluster.collector();
    let indexer = cluster.indexer("10s").await;
    let query = cluster.query().await;

    // Poison on every partition, ahead of the real data: counted, logged, set aside in
    // the dead-letter topic, and the partitions move on.
    let producer: rdkafka::producer::FutureProducer =
        ClientConfig::new().set("bootstrap.servers", &stack.kafka).create().unwrap();
    for partition in 0..PARTITIONS {
        let record =
            FutureRecord::to(&cluster.topic).key("poison").payload(&b"\xff\xffnot otlp"[..]).partition(partition);
        producer.send(record, Duration::from_secs(10)).await.unwrap();
    }

    let start = now_ns() - 5_000_000_000;
    let traces: Vec<_> = (0..30).map(|i| rich_trace(800 + i, start + i * 1_000_000)).collect();
    let mut sent = 0;
    let retries = AtomicUsize::new(0);
    for spans in &traces {
        // Each trace's spans arrive in two requests; the second one is sent twice.
        for part in [&spans[..1], &spans[1..], &spans[1..]] {
            post_until_acked(&collector, part, Duration::from_secs(30), &retries).await;
            sent += part.len();
        }
    }
    assert_eq!(retries.into_inner(), 0, "nothing was refused");
    assert_all_served(&query, &traces, Duration::from_secs(90)).await;
    for spans in &traces {
        let body = query.json(&format!("/api/traces/{}", spans[0].trace_id.to_hex())).await;
        assert_eq!(body["data"][0], serde_json::to_value(jaeger::to_trace(spans, vec![])).unwrap(), "field by field");
    }

    assert_eq!(indexer.metric("tracekeeper_kafka_poison_messages_total").await, PARTITIONS as f64);
    // Status, on the indexer and on the query node alike: six partitions, all with
    // this member, nothing left to index, and the duplicate batch counted as produced.
    let member = indexer.json("/api/status").await["member"]["member_id"].as_str().unwrap().to_string();
    for node in [&indexer, &query] {
        // The last batch is stored before it is recorded and committed: wait for that.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut status: Value = node.json("/api/status").await;
        while status["partitions"].as_array().is_some_and(|ps| ps.iter().any(|p| p["lag"] != 0))
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
            status = node.json("/api/status").await;
        }
        let partitions = status["partitions"].as_array().unwrap();
        assert_eq!(partitions.len(), PARTITIONS as usize, "{status}");
        for p in partitions {
            assert_eq!(p["owner"], member.as_str(), "{status}");
            assert_eq!(p["lag"], 0, "{status}");
            assert!(p["generation"].as_i64().unwrap() > 0, "{status}");
        }
        assert_eq!(status["tenants"]["single-tenant"]["spans_indexed"], sent, "{status}");
    }
    let distinct: usize = traces.iter().map(Vec::len).sum();
    assert_eq!(cluster.checked_spans(), distinct as u64, "the duplicate batch is stored once");

    assert_eq!(indexer.metric("tracekeeper_kafka_dead_letters_total").await, PARTITIONS as f64);
    let letters = read_topic(&stack.kafka, &cluster.dead_letters, PARTITIONS as usize).await;
    for (payload, headers) in &letters {
        assert_eq!(payload, b"\xff\xffnot otlp");
        let reason = headers.iter().find(|(k, _)| k == "tracekeeper-dlq-reason").map(|(_, v)| v.as_str());
        assert!(reason.is_some_and(|r| r.starts_with("undecodable: not OTLP protobuf")), "{headers:?}");
    }
    // `tracekeeper dlq replay` sends them on, without the headers it added, exactly once.
    let replayed_to = format!("{}_replayed", cluster.topic);
    let replay = |_: ()| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tracekeeper"))
            .args(["dlq", "replay", "--kafka-brokers", &stack.kafka, "--kafka-dlq-topic", &cluster.dead_letters])
            .args(["--to-topic", &replayed_to, "--group", &format!("{}_replay", cluster.topic)])
            .output()
            .unwrap()
    };
    let first = replay(());
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let said = String::from_utf8_lossy(&first.stdout);
    assert_eq!(said.trim(), format!("{PARTITIONS} message(s) sent to {replayed_to}"));
    assert!(String::from_utf8_lossy(&first.stderr).contains(&format!("replayed {PARTITIONS} of {PARTITIONS}")));
    for (payload, headers) in read_topic(&stack.kafka, &replayed_to, PARTITIONS as usize).await {
        assert_eq!(payload, b"\xff\xffnot otlp");
        assert!(headers.iter().all(|(k, _)| !k.starts_with("tracekeeper-dlq-")), "{headers:?}");
    }
    let second = replay(());
    assert!(second.status.success());
    assert!(String::from_utf8_lossy(&second.stdout).starts_with("no messages waiting"), "{second:?}");
}

/// The first `count` messages of `topic`, as (payload, headers), from every partition.
async fn read_topic(kafka: &str, topic: &str, count: usize) -> Vec<(Vec<u8>, Vec<(String, String)>)> {
    use rdkafka::message::Headers as _;
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka)
        .set("group.id", format!("{topic}_reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    while out.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv()).await.unwrap().unwrap();
        let headers = message.headers().map_or_else(Vec::new, |h| {
            h.iter()
                .map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
                .collect()
        });
        out.push((message.payload().unwrap_or_default().to_vec(), headers));
    }
    out
}

/// What the OpenTelemetry Collector's `kafka` exporter writes with `encoding: otlp_proto`
/// and `partition_traces_by_id: true`: one `TracesData` per (resource, scope, trace),
/// keyed by the trace id as 32 lower-case hex characters, with no tenant header.
/// Built here from the protobuf types alone, independently of tracekeeper's model.
fn otel_exporter_messages(request: &ExportTraceServiceRequest) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for resource_spans in &request.resource_spans {
        for scope_spans in &resource_spans.scope_spans {
            let mut by_trace: Vec<(Vec<u8>, Vec<_>)> = Vec::new();
            for span in &scope_spans.spans {
                match by_trace.iter_mut().find(|(id, _)| *id == span.trace_id) {
                    Some((_, spans)) => spans.push(span.clone()),
                    None => by_trace.push((span.trace_id.clone(), vec![span.clone()])),
                }
            }
            for (trace_id, spans) in by_trace {
                let piece = TracesData {
                    resource_spans: vec![ResourceSpans {
                        scope_spans: vec![ScopeSpans { spans, ..scope_spans.clone() }],
                        ..resource_spans.clone()
                    }],
                };
                let key: String = trace_id.iter().map(|b| format!("{b:02x}")).collect();
                out.push((key, piece.encode_to_vec()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_otel_collector_messages_are_indexed_like_ours() {
    let stack = tracekeeper_stack::require().await;
    let cluster = Cluster::create(&stack.kafka, &stack.cql, "otelcol").await;
    let collector = cluster.collector();
    let _indexer = cluster.indexer("10s").await;
    let query = cluster.query().await;

    // A trace of one resource and one scope: our collector's message must be
    // byte-identical to the exporter's, key and partition included.
    let single = vec![rich_trace(900, now_ns() - 2_000_000_000).remove(2)];
    let request = otlp::to_request(&single);
    let expected = otel_exporter_messages(&request);
    assert_eq!(expected.len(), 1);
    post_until_acked(&collector, &single, Duration::from_secs(30), &AtomicUsize::new(0)).await;
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka)
        .set("group.id", format!("{}_reader", cluster.topic))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&cluster.topic]).unwrap();
    let ours = tokio::time::timeout(Duration::from_secs(60), consumer.recv()).await.unwrap().unwrap();
    assert_eq!(ours.key().unwrap(), expected[0].0.as_bytes(), "same key");
    assert_eq!(ours.payload().unwrap(), &expected[0].1[..], "same value, byte for byte");
    assert_eq!(ours.partition(), sarama_partition(expected[0].0.as_bytes(), PARTITIONS), "same partition");

    // A trace over two resources, as the exporter writes it: two messages under one
    // key, produced straight to the topic.
    let traces: Vec<_> = (0..5).map(|i| rich_trace(910 + i, now_ns() - 2_000_000_000)).collect();
    let producer: rdkafka::producer::FutureProducer =
        ClientConfig::new().set("bootstrap.servers", &stack.kafka).create().unwrap();
    for spans in &traces {
        let messages = otel_exporter_messages(&otlp::to_request(spans));
        assert_eq!(messages.len(), 2, "one message per resource");
        for (key, value) in messages {
            let partition = sarama_partition(key.as_bytes(), PARTITIONS);
            let record = FutureRecord::to(&cluster.topic).key(&key).payload(&value).partition(partition);
            producer.send(record, Duration::from_secs(10)).await.unwrap();
        }
    }
    let every: Vec<_> = traces.iter().cloned().chain([single]).collect();
    assert_all_served(&query, &every, Duration::from_secs(90)).await;
    for spans in &every {
        let body = query.json(&format!("/api/traces/{}", spans[0].trace_id.to_hex())).await;
        assert_eq!(body["data"][0], serde_json::to_value(jaeger::to_trace(spans, vec![])).unwrap());
    }
}

/// Sarama's hash partitioner with FNV-1a, as the exporter's default `sticky_key` uses
/// it: FNV-1a 32 of the key, as a signed int, modulo, absolute value.
fn sarama_partition(key: &[u8], partitions: i32) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in key {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    ((hash as i32) % partitions).abs()
}
