//! Smoke tests against the real services the harness provides: they fail, never
//! skip, when the stack cannot be had.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, TopicPartitionList};
use scylla::client::session_builder::SessionBuilder;
use scylla::value::{CqlValue, Row};

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}{}_{nanos}", std::process::id())
}

fn consumer(bootstrap: &str, group: &str, topic: &str) -> StreamConsumer {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    consumer
}

fn partitions(c: &StreamConsumer) -> BTreeSet<i32> {
    let tpl: TopicPartitionList = c.assignment().unwrap();
    tpl.elements().iter().map(|e| e.partition()).collect()
}

/// Polls both consumers (driving their rebalances) for a while, collecting payloads.
async fn pump(consumers: &[&StreamConsumer], seen: &mut HashSet<String>, until: impl Fn(&HashSet<String>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !until(seen) {
        assert!(
            Instant::now() < deadline,
            "timed out; assignments: {:?}",
            consumers.iter().map(|c| partitions(c)).collect::<Vec<_>>()
        );
        for c in consumers {
            if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(100), c.recv()).await {
                seen.insert(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_produce_consume_and_cooperative_rebalance() {
    let stack = tracekeeper_stack::require().await;
    let topic = unique("smoke_");
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &stack.kafka).create().unwrap();
    let created = admin
        .create_topics(&[NewTopic::new(&topic, 6, TopicReplication::Fixed(1))], &AdminOptions::new())
        .await
        .unwrap();
    assert!(created[0].is_ok(), "{created:?}");

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .unwrap();
    for i in 0..60 {
        let (key, payload) = (format!("k{i}"), format!("v{i}"));
        let record = FutureRecord::to(&topic).key(&key).payload(&payload).partition(i % 6);
        producer.send(record, Duration::from_secs(10)).await.unwrap();
    }
    let all: HashSet<String> = (0..60).map(|i| format!("v{i}")).collect();

    let group = unique("smoke_group_");
    let a = consumer(&stack.kafka, &group, &topic);
    let mut seen = HashSet::new();
    pump(&[&a], &mut seen, |_| partitions(&a).len() == 6).await;

    let b = consumer(&stack.kafka, &group, &topic);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        pump(&[&a, &b], &mut seen, |_| true).await;
        for c in [&a, &b] {
            if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(200), c.recv()).await {
                seen.insert(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
            }
        }
        let (pa, pb) = (partitions(&a), partitions(&b));
        if !pa.is_empty() && !pb.is_empty() && pa.len() + pb.len() == 6 {
            assert!(pa.is_disjoint(&pb), "a partition has two owners: {pa:?} {pb:?}");
            break;
        }
        assert!(Instant::now() < deadline, "no rebalance: a={pa:?} b={pb:?}");
    }
    pump(&[&a, &b], &mut seen, |seen| seen.len() == all.len()).await;
    assert_eq!(seen, all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_keyspace_ttl_and_lightweight_transactions() {
    let stack = tracekeeper_stack::require().await;
    let session = SessionBuilder::new().known_node(&stack.cql).build().await.unwrap();
    let ks = unique("smoke_");
    session
        .query_unpaged(
            format!("CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"),
            (),
        )
        .await
        .unwrap();
    session.query_unpaged(format!("CREATE TABLE {ks}.kv (k text PRIMARY KEY, v text)"), ()).await.unwrap();
    session
        .query_unpaged(format!("CREATE TABLE {ks}.lease (name text PRIMARY KEY, holder text, epoch bigint)"), ())
        .await
        .unwrap();

    session
        .query_unpaged(format!("INSERT INTO {ks}.kv (k, v) VALUES (?, ?) USING TTL 3600"), ("a", "1"))
        .await
        .unwrap();
    let rows = session
        .query_unpaged(format!("SELECT v, TTL(v) FROM {ks}.kv WHERE k = ?"), ("a",))
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let (v, ttl): (String, Option<i32>) = rows.single_row().unwrap();
    assert_eq!(v, "1");
    let ttl = ttl.expect("a TTL was set");
    assert!(ttl > 3500 && ttl <= 3600, "ttl {ttl}");

    let lwt = |cql: String| {
        let session = &session;
        async move {
            let rows = session.query_unpaged(cql, ()).await.unwrap().into_rows_result().unwrap();
            let row: Row = rows.first_row().unwrap();
            row.columns
        }
    };
    let first = lwt(format!("INSERT INTO {ks}.lease (name, holder, epoch) VALUES ('l', 'a', 1) IF NOT EXISTS")).await;
    assert_eq!(first[0], Some(CqlValue::Boolean(true)));
    let second = lwt(format!("INSERT INTO {ks}.lease (name, holder, epoch) VALUES ('l', 'b', 1) IF NOT EXISTS")).await;
    assert_eq!(second[0], Some(CqlValue::Boolean(false)), "the lease is already held");
    assert!(second.contains(&Some(CqlValue::Text("a".into()))), "the refusal names the holder: {second:?}");
    let stale = lwt(format!("UPDATE {ks}.lease SET holder = 'b', epoch = 2 WHERE name = 'l' IF epoch = 0")).await;
    assert_eq!(stale[0], Some(CqlValue::Boolean(false)), "a stale epoch is fenced");
    let current = lwt(format!("UPDATE {ks}.lease SET holder = 'b', epoch = 2 WHERE name = 'l' IF epoch = 1")).await;
    assert_eq!(current[0], Some(CqlValue::Boolean(true)));
    session.query_unpaged(format!("DROP KEYSPACE {ks}"), ()).await.unwrap();
}
