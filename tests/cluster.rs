//! The fault suite on a cluster: three Cassandra nodes (NetworkTopologyStrategy, 3
//! replicas, LOCAL_QUORUM and LOCAL_SERIAL) and three KRaft brokers (replication
//! factor 3, min.insync.replicas 2), from `tracekeeper_stack::require_cluster`
//! (`ops/test.sh` starts it after the one-node suites). Every case runs the
//! distributed shape under a steady load from two collector processes (offered at half of the
//! cluster's measured saturation, [`load_spans_per_second`]), breaks one part of
//! the cluster, mends it, and then requires every acknowledged span stored exactly
//! once (trace by trace), `tracekeeper check` clean and the ownership ledger's counts
//! equal to what was acknowledged. Each prints what clients saw while it lasted.
//!
//! Cases a to h of issue 30's table. Cases share one cluster, so they run one at a time
//! (a lock) and leave every node running. Test names start with `cluster_`: the
//! one-node run skips them by that.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::cluster::{assert_all_served, Cluster, Process};
use support::load::{addresses, assert_checker_clean, assert_counted_once, member_id, owners, Load, Pace};
use support::Server;
use tracekeeper_model::Span;
use tracekeeper_stack::probe::{cql_cluster_ready, kafka_cluster_ready};
use tracekeeper_stack::wait_until;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The three-node cluster's saturation on this machine's two cores, in bytes of OTLP
/// on the wire per second: 7,816 spans/s of `tracekeeper-bench loadgen`'s 206-byte
/// spans with two indexers (`TRACEKEEPER_BENCH_CLUSTER=1 ops/bench/pipeline.sh 2 60 0`,
/// docs/benchmarks.md, "On a cluster").
const SATURATION_BYTES_PER_SECOND: f64 = 7_816.0 * 206.0;

/// The load every case runs under: half of the saturation, in spans as large as the
/// load's (each of [`support::rich_trace`]'s spans carries every field the model has,
/// so it is larger than loadgen's).
fn load_spans_per_second() -> u32 {
    use prost::Message;
    let trace = support::rich_trace(1, support::now_ns());
    let bytes_per_span = tracekeeper_model::otlp::to_request(&trace).encode_to_vec().len() as f64 / trace.len() as f64;
    (SATURATION_BYTES_PER_SECOND / 2.0 / bytes_per_span) as u32
}

/// How the cluster's nodes are reached and controlled, and the distributed shape on it.
struct Shape {
    stack: &'static tracekeeper_stack::Cluster,
    cluster: Cluster,
    query: Process,
    indexers: [Process; 2],
    collectors: [Server; 2],
}

/// The first indexer's own way to Cassandra, when it must differ: its contact points
/// and extra flags.
type Route<'a> = (&'a str, &'a [&'a str]);

impl Shape {
    async fn start(name: &str) -> Self {
        Self::start_with(name, None).await
    }

    async fn start_with(name: &str, first: Option<Route<'_>>) -> Self {
        let stack = tracekeeper_stack::require_cluster().await;
        mended(stack).await;
        let cluster = Cluster::create_replicated(&stack.kafka, &stack.cql.join(","), name).await;
        let first = match first {
            Some((cql, extra)) => cluster.indexer_with(&cluster.group, cql, extra).await,
            None => cluster.indexer("10s").await,
        };
        let indexers = [first, cluster.indexer("10s").await];
        let query = cluster.query().await;
        let collectors = [cluster.collector_process(), cluster.collector_process()];
        Self { stack, cluster, query, indexers, collectors }
    }

    fn load(&self, seed: u64) -> Load {
        Load::start(addresses(&self.collectors), seed, Pace::spans_per_second(load_spans_per_second()))
    }
}

/// Waits until every node answers and every broker is in sync again.
async fn mended(stack: &tracekeeper_stack::Cluster) {
    wait_until("every Cassandra node and broker to be up and in sync", Duration::from_secs(240), async || {
        kafka_cluster_ready(&stack.kafka, 3).await.is_ok() && cql_cluster_ready(&stack.cql).await.is_ok()
    })
    .await;
}

/// What clients of the query node saw while a fault lasted: searches and trace
/// fetches tried every 250 ms, each given up after [`CLIENT_TIMEOUT`] (Grafana's
/// default for a data source) and then counted as failed.
#[derive(Debug, Default)]
struct Seen {
    tried: usize,
    failed: usize,
    /// The longest time no query was answered.
    longest_outage: Duration,
    slowest: Duration,
}

/// Asks the query node a search and a trace fetch every 250 ms until `stop` resolves.
async fn watch_queries(query: &Process, trace: &str, stop: impl std::future::Future<Output = ()>) -> Seen {
    let mut seen = Seen::default();
    let mut failing_since: Option<Instant> = None;
    let client = reqwest::Client::builder().timeout(CLIENT_TIMEOUT).build().unwrap();
    let probe = async {
        loop {
            for path in ["/api/traces?service=db&limit=5&lookback=1h".to_string(), format!("/api/traces/{trace}")] {
                let started = Instant::now();
                let ok = client.get(query.url(&path)).send().await.is_ok_and(|r| r.status().is_success());
                seen.tried += 1;
                seen.slowest = seen.slowest.max(started.elapsed());
                if ok {
                    if let Some(since) = failing_since.take() {
                        seen.longest_outage = seen.longest_outage.max(since.elapsed());
                    }
                } else {
                    seen.failed += 1;
                    failing_since.get_or_insert(started);
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    tokio::select! {
        () = probe => {}
        () = stop => {}
    }
    if let Some(since) = failing_since {
        seen.longest_outage = seen.longest_outage.max(since.elapsed());
    }
    seen
}

/// The checks every case ends with, and its figures printed for the record.
async fn settle(case: &str, shape: &Shape, load: Load, seen: &Seen) {
    settle_with(case, shape, load, seen, (Vec::new(), 0)).await;
}

/// As [`settle`], with `more` traces acknowledged besides the load's, and the requests
/// retried to send them.
async fn settle_with(case: &str, shape: &Shape, load: Load, seen: &Seen, more: (Vec<Vec<Span>>, usize)) {
    let broken = load.broken.load(std::sync::atomic::Ordering::SeqCst);
    let achieved = load.achieved_spans_per_second();
    let (mut acked, mut retried) = load.finish().await;
    acked.extend(more.0);
    retried += more.1;
    assert!(acked.len() > 20, "{case}: only {} traces were acknowledged", acked.len());
    assert_all_served(&shape.query, &acked, Duration::from_secs(180)).await;
    assert_counted_once(&shape.query, &acked, retried).await;
    assert_checker_clean(&shape.cluster, &acked);
    let spans: usize = acked.iter().map(Vec::len).sum();
    eprintln!(
        "CASE {case}: load offered {} spans/s, achieved {achieved:.0}; acknowledged {spans} spans in {} traces, all stored once; collector retries {retried} \
         ({broken} unanswered); queries during the fault: {} tried, {} failed, longest without an answer {:?}, \
         slowest {:?}",
        load_spans_per_second(),
        acked.len(),
        seen.tried,
        seen.failed,
        seen.longest_outage,
        seen.slowest
    );
}

/// A trace stored before the fault, for the fetches.
async fn first_trace(shape: &Shape) -> String {
    let mut found = String::new();
    wait_until("a trace to be searchable", Duration::from_secs(60), async || {
        let body = shape.query.json("/api/traces?service=db&limit=1&lookback=1h").await;
        found = body["data"][0]["traceID"].as_str().unwrap_or_default().to_string();
        !found.is_empty()
    })
    .await;
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_replicated_by_default() {
    let _one = ONE_AT_A_TIME.lock().await;
    let shape = Shape::start("replicated").await;
    let report =
        support::check_store(&["--cql-nodes", &shape.stack.cql.join(","), "--keyspace", &shape.cluster.keyspace]);
    assert_eq!(report["replication"], "NetworkTopologyStrategy dc1=3", "{report}");
    assert_eq!(report["warnings"], serde_json::json!([]), "{report}");
    let status = shape.indexers[0].json("/api/status").await;
    let durability = &status["durability"];
    assert_eq!(durability["keyspace"]["replicas"]["dc1"], 3, "{durability}");
    assert_eq!(durability["topics"][0]["replicas"], 3, "{durability}");
    assert_eq!(durability["topics"][0]["min_insync_replicas"], 2, "{durability}");
    assert_eq!(durability["warnings"], serde_json::json!([]), "{durability}");
}

/// (a) One Cassandra node killed for 60 s under load, then started again: LOCAL_QUORUM
/// still has two replicas of three, so writes, searches and fetches go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_a_cassandra_node_killed_for_a_minute() {
    let _one = ONE_AT_A_TIME.lock().await;
    let shape = Shape::start("case_a").await;
    let load = shape.load(100_000);
    let trace = first_trace(&shape).await;
    shape.stack.control.kill("cassandra-2").await.unwrap();
    let seen = watch_queries(&shape.query, &trace, tokio::time::sleep(Duration::from_secs(60))).await;
    shape.stack.control.start("cassandra-2").await.unwrap();
    mended(shape.stack).await;
    assert_eq!(seen.failed, 0, "(a) queries failed with one node of three down: {seen:?}");
    settle("a", &shape, load, &seen).await;
}

/// (b) One Cassandra node frozen (SIGSTOP) for 30 s, a grey failure: it holds its
/// connections open and answers nothing; then SIGCONT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_b_cassandra_node_frozen() {
    let _one = ONE_AT_A_TIME.lock().await;
    let shape = Shape::start("case_b").await;
    let load = shape.load(200_000);
    let trace = first_trace(&shape).await;
    shape.stack.control.pause("cassandra-3").await.unwrap();
    let seen = watch_queries(&shape.query, &trace, tokio::time::sleep(Duration::from_secs(30))).await;
    shape.stack.control.resume("cassandra-3").await.unwrap();
    mended(shape.stack).await;
    // Its connections are closed once their keepalives go unanswered, and what was in
    // flight on them is retried on another replica.
    assert_eq!(seen.failed, 0, "(b) queries failed while one node of three was frozen: {seen:?}");
    settle("b", &shape, load, &seen).await;
}

/// (c) Two Cassandra nodes of three killed for 30 s: no quorum. The indexers' writes
/// fail and they commit no offset past them; the collectors keep acknowledging into
/// Kafka; once the nodes are back everything is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_c_cassandra_quorum_lost() {
    let _one = ONE_AT_A_TIME.lock().await;
    let shape = Shape::start("case_c").await;
    let load = shape.load(300_000);
    let trace = first_trace(&shape).await;
    let acked_before = load.acked_count();
    for node in ["cassandra-2", "cassandra-3"] {
        shape.stack.control.kill(node).await.unwrap();
    }
    let seen = watch_queries(&shape.query, &trace, tokio::time::sleep(Duration::from_secs(30))).await;
    let acked_during = load.acked_count() - acked_before;
    for node in ["cassandra-2", "cassandra-3"] {
        shape.stack.control.start(node).await.unwrap();
    }
    mended(shape.stack).await;
    assert!(acked_during > 10, "(c) collectors stopped acknowledging without a quorum: {acked_during} traces");
    settle("c", &shape, load, &seen).await;
}

/// (d) The broker leading the most partitions of the span topic killed: the
/// collectors' produces fail over to the new leaders (or are refused as retryable),
/// and nothing acknowledged is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_d_leading_broker_killed() {
    let _one = ONE_AT_A_TIME.lock().await;
    let shape = Shape::start("case_d").await;
    let load = shape.load(400_000);
    let trace = first_trace(&shape).await;
    let leader = busiest_leader(&shape.stack.kafka, &shape.cluster.topic);
    let node = format!("kafka-{leader}");
    shape.stack.control.kill(&node).await.unwrap();
    let seen = watch_queries(&shape.query, &trace, tokio::time::sleep(Duration::from_secs(30))).await;
    shape.stack.control.start(&node).await.unwrap();
    mended(shape.stack).await;
    assert_eq!(seen.failed, 0, "(d) queries failed while a broker was down: {seen:?}");
    settle("d", &shape, load, &seen).await;
}

/// (e) Every broker restarted in turn under load (SIGTERM, start, back in the ISR
/// before the next), as a rolling upgrade does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_e_rolling_broker_restart() {
    let _one = ONE_AT_A_TIME.lock().await;
    let shape = Shape::start("case_e").await;
    let load = shape.load(500_000);
    let trace = first_trace(&shape).await;
    let roll = async {
        for node in ["kafka-1", "kafka-2", "kafka-3"] {
            shape.stack.control.stop(node).await.unwrap();
            shape.stack.control.start(node).await.unwrap();
            mended(shape.stack).await;
        }
    };
    let seen = watch_queries(&shape.query, &trace, roll).await;
    assert_eq!(seen.failed, 0, "(e) queries failed while the brokers restarted: {seen:?}");
    settle("e", &shape, load, &seen).await;
}

/// (f) Every indexer, then every collector, restarted in turn under load, as a rolling
/// upgrade does: SIGTERM, a new process, the group settled before the next. A collector
/// finishes the requests it is handling before it exits: one request is held half sent
/// across each collector's SIGTERM, and must be acknowledged and stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_f_rolling_restart_of_indexers_and_collectors() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut shape = Shape::start("case_f").await;
    let load = shape.load(600_000);
    let trace = first_trace(&shape).await;
    let mut held = Vec::new();
    let Shape { cluster, query, indexers, collectors, .. } = &mut shape;
    let (cluster, query) = (&*cluster, &*query);
    let roll = async {
        for i in [0, 1] {
            let stopped = indexers[i].terminate();
            assert!(stopped.success(), "indexer {i} on SIGTERM: {stopped}");
            indexers[i] = cluster.indexer("10s").await;
            every_partition_owned(query, support::cluster::PARTITIONS as usize, &[&indexers[0], &indexers[1]]).await;
        }
        for (i, collector) in collectors.iter_mut().enumerate() {
            let spans = support::rich_trace(690_000 + i as u64, support::now_ns() - 1_000_000_000);
            held_across_sigterm(collector, &spans).await;
            held.push(spans);
            collector.restart();
            load.replace_collector(i, collector.otlp_http.clone());
        }
    };
    let seen = watch_queries(query, &trace, roll).await;
    assert_eq!(seen.failed, 0, "(f) queries failed while indexers and collectors restarted: {seen:?}");
    settle_with("f", &shape, load, &seen, (held, 0)).await;
}

/// Sends `spans` to `collector` with the second half of the body held back, SIGTERMs
/// the collector, and a second later (the process must still be running) sends the
/// rest: the collector acknowledges the request, then exits cleanly.
async fn held_across_sigterm(collector: &mut Server, spans: &[Span]) {
    use prost::Message;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = tracekeeper_model::otlp::to_request(spans).encode_to_vec();
    let mut stream = tokio::net::TcpStream::connect(&collector.otlp_http).await.unwrap();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
        collector.otlp_http,
        body.len()
    );
    let half = body.len() / 2;
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..half]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    collector.signal("-TERM");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!collector.has_exited(), "the collector exited with a request half received");
    stream.write_all(&body[half..]).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut reply)).await.unwrap().unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "the request in flight at SIGTERM: {reply}");
    let stopped = collector.terminate();
    assert!(stopped.success(), "the collector on SIGTERM: {stopped}");
}

/// Waits until each of `partitions` is owned, in the ledger, by one of `indexers`, and
/// every one of them owns some.
async fn every_partition_owned(query: &Process, partitions: usize, indexers: &[&Process]) {
    use std::collections::BTreeSet;
    wait_until("every partition to be owned by the group's members", Duration::from_secs(120), async || {
        let mut members = BTreeSet::new();
        for indexer in indexers {
            members.insert(member_id(indexer).await);
        }
        let owned = owners(query).await;
        let owning: BTreeSet<&String> = owned.iter().map(|(_, m, _)| m).collect();
        owned.len() == partitions && owning.iter().all(|m| members.contains(*m)) && owning.len() == members.len()
    })
    .await;
}

/// (g) The span topic grows from 6 to 12 partitions under load. A trace's later spans
/// may then hash to a new partition (fnv1a % 12 is p or p + 6), so two owners index one
/// trace: twenty traces are begun before the change and finished after it, all of
/// them such. Nothing per trace needs one owner (ADR 0004, "Partitions added"), so each
/// is whole and searchable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_g_partitions_added_at_run_time() {
    use tracekeeper_kafka::producer::{message_key, partition_for};
    let _one = ONE_AT_A_TIME.lock().await;
    let shape = Shape::start("case_g").await;
    let load = shape.load(700_000);
    let trace = first_trace(&shape).await;
    let moving = |t: &Vec<Span>| {
        let key = message_key(t[0].trace_id);
        partition_for(key.as_bytes(), 6) != partition_for(key.as_bytes(), 12)
    };
    let started = support::now_ns() - 1_000_000_000;
    let straddling: Vec<Vec<Span>> =
        (0..).map(|i| support::rich_trace(790_000 + i, started)).filter(moving).take(20).collect();
    let heads: Vec<Span> = straddling.iter().map(|t| t[0].clone()).collect();
    let retried = std::sync::atomic::AtomicUsize::new(0);
    support::cluster::post_until_acked(&shape.collectors[0], &heads, Duration::from_secs(60), &retried).await;

    add_partitions(&shape.stack.kafka, &shape.cluster.topic, 12).await;
    let changed = Instant::now();
    let seen = watch_queries(&shape.query, &trace, async {
        every_partition_owned(&shape.query, 12, &[&shape.indexers[0], &shape.indexers[1]]).await;
        // The collectors use the new partitions once they refresh the topic's metadata.
        let refresh = Duration::from_millis(tracekeeper_kafka::METADATA_REFRESH_MS.parse().unwrap());
        tokio::time::sleep((refresh + Duration::from_secs(5)).saturating_sub(changed.elapsed())).await;
    })
    .await;
    let rest: Vec<Span> = straddling.iter().flat_map(|t| t[1..].iter().cloned()).collect();
    support::cluster::post_until_acked(&shape.collectors[1], &rest, Duration::from_secs(60), &retried).await;
    let keys: std::collections::BTreeSet<String> = straddling.iter().map(|t| message_key(t[0].trace_id)).collect();
    let in_new = keys_in_partitions(&shape.stack.kafka, &shape.cluster.topic, 6..12).await;
    assert!(keys.is_subset(&in_new), "every straddling trace's later spans went to a new partition");
    assert_eq!(seen.failed, 0, "(g) queries failed while partitions were added: {seen:?}");
    let found = shape.query.json(&jaeger_search_around("frontend", "GET%20/checkout", &straddling)).await;
    let ids: std::collections::BTreeSet<&str> =
        found["data"].as_array().unwrap().iter().filter_map(|t| t["traceID"].as_str()).collect();
    for t in &straddling {
        assert!(
            ids.contains(t[0].trace_id.to_hex().as_str()),
            "straddling trace {} not found by its root",
            t[0].trace_id
        );
    }
    let retried = retried.into_inner();
    settle_with("g", &shape, load, &seen, (straddling, retried)).await;
}

/// A Jaeger search for `service`'s `operation` over the seconds around `traces`.
fn jaeger_search_around(service: &str, operation: &str, traces: &[Vec<Span>]) -> String {
    let start = traces.iter().map(|t| t[0].start_ns).min().unwrap() / 1_000 - 1_000_000;
    let end = traces.iter().map(|t| t[0].start_ns).max().unwrap() / 1_000 + 1_000_000;
    format!("/api/traces?service={service}&operation={operation}&start={start}&end={end}&limit=10000")
}

async fn add_partitions(bootstrap: &str, topic: &str, total: usize) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let added = admin.create_partitions(&[NewPartitions::new(topic, total)], &options).await.unwrap();
    assert!(added.iter().all(Result::is_ok), "adding partitions: {added:?}");
}

/// Every message key in `partitions` of `topic`, read from the start to the end.
async fn keys_in_partitions(
    bootstrap: &str,
    topic: &str,
    partitions: std::ops::Range<i32>,
) -> std::collections::BTreeSet<String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("{topic}_keys"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut list = rdkafka::TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for partition in partitions {
        let (_, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)).unwrap();
        ends.insert(partition, high);
        list.add_partition_offset(topic, partition, rdkafka::Offset::Beginning).unwrap();
    }
    consumer.assign(&list).unwrap();
    let mut keys = std::collections::BTreeSet::new();
    let mut read: BTreeMap<i32, i64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while ends.iter().any(|(p, end)| read.get(p).copied().unwrap_or(0) < *end) {
        assert!(Instant::now() < deadline, "reading the new partitions took over two minutes");
        if let Some(message) = consumer.poll(Duration::from_millis(500)) {
            let message = message.unwrap();
            read.insert(message.partition(), message.offset() + 1);
            keys.extend(message.key().map(|k| String::from_utf8_lossy(k).into_owned()));
        }
    }
    keys
}

/// (h) One indexer cut off from every Cassandra node but not from Kafka, for 30 s:
/// longer than the session timeout (10 s) and than its stall timeout (15 s). Its
/// heartbeats go on, so the group alone would never move its partitions: it leaves the
/// group itself once a batch has gone unstored for 15 s, the other indexer takes every
/// partition at a newer generation, and what the cut indexer sent before the cut,
/// delivered after it, changes no count (the ledger refuses a stale owner's progress).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_h_indexer_cut_off_from_cassandra() {
    let _one = ONE_AT_A_TIME.lock().await;
    let stack = tracekeeper_stack::require_cluster().await;
    let link = support::cut::Link::start(&stack.cql).await;
    let (contact, map) = (link.contact_points(), link.address_map());
    let flags = ["--session-timeout", "10s", "--stall-timeout", "15s", "--cql-address-map", &map];
    let shape = Shape::start_with("case_h", Some((&contact, &flags))).await;
    let load = shape.load(800_000);
    let trace = first_trace(&shape).await;
    every_partition_owned(
        &shape.query,
        support::cluster::PARTITIONS as usize,
        &[&shape.indexers[0], &shape.indexers[1]],
    )
    .await;
    let (cut_id, other_id) = (member_id(&shape.indexers[0]).await, member_id(&shape.indexers[1]).await);
    let before = owners(&shape.query).await;
    assert!(before.iter().any(|(_, m, _)| *m == cut_id), "the indexer to be cut owns nothing: {before:?}");

    link.cut();
    let cut_at = Instant::now();
    let mut taken_over = Duration::ZERO;
    let seen = watch_queries(&shape.query, &trace, async {
        wait_until("the other indexer to own every partition", Duration::from_secs(60), async || {
            owners(&shape.query).await.iter().all(|(_, m, _)| *m == other_id)
        })
        .await;
        taken_over = cut_at.elapsed();
        tokio::time::sleep(Duration::from_secs(30).saturating_sub(cut_at.elapsed())).await;
    })
    .await;
    let moved = owners(&shape.query).await;
    link.mend();
    for (partition, _, generation) in before.iter().filter(|(_, m, _)| *m == cut_id) {
        let (_, _, now) = moved.iter().find(|(p, _, _)| p == partition).unwrap();
        assert!(now > generation, "partition {partition} moved without a newer generation");
    }
    // Its own /api/status reads the ledger, so it answers again once its link is back.
    wait_until("the cut indexer to rejoin and own partitions", Duration::from_secs(120), async || {
        let status: serde_json::Value = match reqwest::get(shape.indexers[0].url("/api/status")).await {
            Ok(reply) => reply.json().await.unwrap_or_default(),
            Err(_) => return false,
        };
        let id = status["member"]["member_id"].as_str().unwrap_or_default().to_string();
        !id.is_empty() && id != cut_id && owners(&shape.query).await.iter().any(|(_, m, _)| *m == id)
    })
    .await;
    let stalls = shape.indexers[0].metric("tracekeeper_kafka_stalls_total").await;
    assert!(stalls >= 1.0, "the cut indexer never gave its partitions up");
    assert_eq!(seen.failed, 0, "(h) queries failed while an indexer was cut off: {seen:?}");
    eprintln!("CASE h: every partition owned by the other indexer {taken_over:?} after the cut");
    settle("h", &shape, load, &seen).await;
}

/// The id of the broker that leads the most partitions of `topic`.
fn busiest_leader(bootstrap: &str, topic: &str) -> i32 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let mut led: BTreeMap<i32, usize> = BTreeMap::new();
    for partition in metadata.topics()[0].partitions() {
        *led.entry(partition.leader()).or_default() += 1;
    }
    led.into_iter().max_by_key(|(_, n)| *n).map(|(id, _)| id).unwrap()
}
