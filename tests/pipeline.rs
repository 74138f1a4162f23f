//! The distributed shape end to end on the real stack: collector → Kafka → indexer →
//! Cassandra ← query. Spans of each trace arrive split across requests, one batch is
//! sent twice, and every acknowledged span must be served exactly once.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prost::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use serde_json::Value;
use support::{now_ns, rich_trace, Server};
use tracekeeper_model::{jaeger, otlp};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_addr() -> String {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string()
}

fn spawn(args: &[&str]) -> Kill {
    Kill(
        Command::new(env!("CARGO_BIN_EXE_tracekeeper"))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

async fn wait_ready(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(reqwest::get(format!("http://{addr}/ready")).await, Ok(r) if r.status() == 200) {
        assert!(Instant::now() < deadline, "{addr} was not ready within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_kafka_indexer_cql_query() {
    let stack = tracekeeper_stack::require().await;
    let run = format!("{}_{}", std::process::id(), now_ns() % 1_000_000_000);
    let (topic, keyspace) = (format!("pipeline_{run}"), format!("tk_pipeline_{run}"));
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &stack.kafka).create().unwrap();
    admin.create_topics(&[NewTopic::new(&topic, 6, TopicReplication::Fixed(1))], &AdminOptions::new()).await.unwrap();
    let bin = env!("CARGO_BIN_EXE_tracekeeper");
    let applied = Command::new(bin)
        .args(["schema", "apply", "--keyspace", &keyspace, "--cql-nodes", &stack.cql])
        .args(["--replication", "{'class': 'SimpleStrategy', 'replication_factor': 1}"])
        .status()
        .unwrap();
    assert!(applied.success());

    let collector = Server::start_collector(&stack.kafka, &topic, &[]);
    let (indexer_admin, query_addr) = (free_addr(), free_addr());
    let _indexer = spawn(&[
        "indexer",
        "--kafka-brokers",
        &stack.kafka,
        "--kafka-topic",
        &topic,
        "--group",
        &format!("{topic}_group"),
        "--cql-nodes",
        &stack.cql,
        "--keyspace",
        &keyspace,
        "--admin-addr",
        &indexer_admin,
    ]);
    let _query = spawn(&["query", "--query-addr", &query_addr, "--cql-nodes", &stack.cql, "--keyspace", &keyspace]);
    wait_ready(&indexer_admin).await;
    wait_ready(&query_addr).await;

    // Poison on every partition, ahead of the real data: counted, logged, skipped.
    let producer: rdkafka::producer::FutureProducer =
        ClientConfig::new().set("bootstrap.servers", &stack.kafka).create().unwrap();
    for partition in 0..6 {
        let record = rdkafka::producer::FutureRecord::to(&topic)
            .key("poison")
            .payload(&b"\xff\xffnot otlp"[..])
            .partition(partition);
        producer.send(record, Duration::from_secs(10)).await.unwrap();
    }

    let start = now_ns() - 5_000_000_000;
    let traces: Vec<_> = (0..30).map(|i| rich_trace(800 + i, start + i * 1_000_000)).collect();
    for spans in &traces {
        // Each trace's spans arrive in two requests; the second one is sent twice.
        for part in [&spans[..1], &spans[1..], &spans[1..]] {
            let (status, _) =
                collector.post_otlp(otlp::to_request(part).encode_to_vec(), "application/x-protobuf", &[]).await;
            assert_eq!(status, 200);
        }
    }

    let deadline = Instant::now() + Duration::from_secs(90);
    for spans in &traces {
        let url = format!("http://{query_addr}/api/traces/{}", spans[0].trace_id.to_hex());
        let expected = serde_json::to_value(jaeger::to_trace(spans, vec![])).unwrap();
        loop {
            let body: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
            if body["data"][0] == expected {
                break;
            }
            let stored = body["data"][0]["spans"].as_array().map_or(0, Vec::len);
            assert!(stored <= spans.len(), "a span appears twice: {stored} stored of {}", spans.len());
            assert!(Instant::now() < deadline, "trace {} incomplete after 90 s: {body}", spans[0].trace_id);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let found: Value = reqwest::get(format!("http://{query_addr}/api/traces?service=db&limit=100"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["data"].as_array().unwrap().len(), traces.len(), "every trace is findable by search");
    let metrics = reqwest::get(format!("http://{indexer_admin}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("tracekeeper_kafka_poison_messages_total 6"), "{metrics}");
}
