//! `tracekeeper collector` against a real Kafka broker: one OTLP message per trace,
//! keyed by the trace id in hex, placed by Sarama-compatible FNV-1a, tenant in a
//! header; and a retryable error when Kafka does not acknowledge.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::ClientConfig;
use support::{now_ns, rich_trace, Server};
use tracekeeper_kafka::producer::{partition_for, TENANT_HEADER};
use tracekeeper_model::otlp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_writes_one_keyed_otlp_message_per_trace() {
    let stack = tracekeeper_stack::require().await;
    let topic = format!("collector_{}_{}", std::process::id(), now_ns());
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &stack.kafka).create().unwrap();
    let created = admin
        .create_topics(&[NewTopic::new(&topic, 6, TopicReplication::Fixed(1))], &AdminOptions::new())
        .await
        .unwrap();
    assert!(created[0].is_ok(), "{created:?}");

    let server = Server::start_collector(&stack.kafka, &topic, &["--multi-tenancy"]);
    let start = now_ns() - 1_000_000_000;
    let traces: Vec<_> = (0..20).map(|seed| rich_trace(500 + seed, start)).collect();
    // Two traces per request, so one request fans out to several messages.
    for pair in traces.chunks(2) {
        let spans: Vec<_> = pair.iter().flatten().cloned().collect();
        let body = otlp::to_request(&spans).encode_to_vec();
        let (status, _) = server.post_otlp(body, "application/x-protobuf", &[("x-scope-orgid", "acme")]).await;
        assert_eq!(status, 200);
    }

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka)
        .set("group.id", format!("{topic}_check"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let mut seen = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < traces.len() {
        assert!(Instant::now() < deadline, "only {} of {} messages arrived", seen.len(), traces.len());
        let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await else { continue };
        let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
        assert_eq!(m.partition(), partition_for(key.as_bytes(), 6), "key {key} is on the Sarama FNV-1a partition");
        let header = m.headers().unwrap().iter().find(|h| h.key == TENANT_HEADER).unwrap();
        assert_eq!(header.value, Some(&b"acme"[..]));
        let request = ExportTraceServiceRequest::decode(m.payload().unwrap()).unwrap();
        assert!(seen.insert(key, request).is_none(), "one message per trace");
    }
    for spans in &traces {
        let key = spans[0].trace_id.to_hex();
        assert_eq!(key.len(), 32);
        assert_eq!(seen[&key], otlp::to_request(spans), "the message holds exactly the trace's spans");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_kafka_gets_a_retryable_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let server = Server::start_collector(&closed, "spans", &["--kafka-ack-timeout", "1s"]);
    let body = otlp::to_request(&rich_trace(1, now_ns())).encode_to_vec();
    let resp = reqwest::Client::new()
        .post(format!("http://{}/v1/traces", server.otlp_http))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503, "nothing may be reported as accepted");
    assert_eq!(resp.headers()["retry-after"], "1");
}
