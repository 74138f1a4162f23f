//! Retention in the distributed shape, on the real stack: a policy shortened by the
//! retention worker hides a tenant's old traces on the query node, the worker deletes
//! them before their TTL, and a replay of the old Kafka messages (the consumer group
//! rewound to the start of the topic) stores nothing.

mod support;

use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use support::cluster::{assert_all_served, post_until_acked, Cluster, Process, PARTITIONS};
use support::{check_store, now_ns, rich_trace};
use tracekeeper_model::Span;
use tracekeeper_stack::wait_until;

const SEC: u64 = 1_000_000_000;
const HOUR: u64 = 3600 * SEC;

async fn served(query: &Process, spans: &[Span]) -> bool {
    let url = format!("/api/traces/{}", spans[0].trace_id.to_hex());
    reqwest::get(query.url(&url)).await.unwrap().status() == 200
}

/// Trace ids a search over the last 4 hours returns.
async fn searched(query: &Process) -> Vec<String> {
    let start_us = (now_ns() - 4 * HOUR) / 1000;
    let body = query.json(&format!("/api/traces?service=frontend&start={start_us}&limit=100")).await;
    body["data"].as_array().unwrap().iter().map(|t| t["traceID"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shortened_policy_hides_deletes_and_survives_a_replay() {
    let stack = tracekeeper_stack::require().await;
    let cluster = Cluster::create(&stack.kafka, &stack.cql, "retention").await;
    let collector = cluster.collector();
    let mut indexer = cluster.indexer("10s").await;
    let query = cluster.query().await;

    let now = now_ns();
    let old: Vec<_> = (0..4).map(|i| rich_trace(700 + i, now - 3 * HOUR + i * SEC)).collect();
    let fresh: Vec<_> = (0..4).map(|i| rich_trace(750 + i, now - 10 * SEC + i * SEC)).collect();
    let retries = AtomicUsize::new(0);
    for spans in old.iter().chain(&fresh) {
        post_until_acked(&collector, spans, Duration::from_secs(30), &retries).await;
    }
    let everything: Vec<_> = old.iter().chain(&fresh).cloned().collect();
    assert_all_served(&query, &everything, Duration::from_secs(90)).await;
    assert_eq!(searched(&query).await.len(), old.len() + fresh.len());
    indexer.kill9();

    // The default tenant now keeps 2 hours: the 3 hour old traces disappear from every
    // query path within one worker run and one watermark refresh.
    let worker = cluster.retention(&["--tenant-retention", "single-tenant=2h", "--interval", "1s"]).await;
    wait_until("old traces hidden", Duration::from_secs(60), async || {
        let mut hidden = true;
        for spans in &old {
            hidden &= !served(&query, spans).await;
        }
        hidden
    })
    .await;
    for spans in &fresh {
        assert!(served(&query, spans).await, "live data stays");
    }
    let found = searched(&query).await;
    assert_eq!(found.len(), fresh.len(), "search shows only live traces: {found:?}");
    let retention = worker.json("/api/retention").await;
    assert!(
        retention["watermarks_expired_before_ns"]["single-tenant"].as_u64().unwrap() >= now - 2 * HOUR,
        "{retention}"
    );

    // ... and are deleted before their TTL (7 days) would have removed them.
    wait_until("old traces purged", Duration::from_secs(60), async || {
        worker.metric("tracekeeper_retention_rows_expired_total").await > 0.0
    })
    .await;
    let fresh_spans: usize = fresh.iter().map(Vec::len).sum();
    let policy = ["--tenant-retention", "single-tenant=2h", "--grace", "10m"];
    let store = ["--cql-nodes", &cluster.cql, "--keyspace", &cluster.keyspace];
    let report = check_store(&[&store[..], &policy[..]].concat());
    assert_eq!(report["tenants"]["single-tenant"]["spans"], fresh_spans, "{report}");

    // The operator rewinds the consumer group to the start of the topic (what
    // `kafka-consumer-groups --reset-offsets --to-earliest` does) and an indexer
    // replays every message: the old spans are refused (below the watermark), the
    // fresh ones rewritten identically.
    rewind_group(&cluster).await;
    let replayer = cluster.indexer("10s").await;
    let old_spans: usize = old.iter().map(Vec::len).sum();
    wait_until("replay refused the old spans", Duration::from_secs(90), async || {
        replayer.metric("tracekeeper_spans_rejected_total").await >= old_spans as f64
    })
    .await;
    wait_until("replay caught up", Duration::from_secs(30), async || {
        let status = replayer.json("/api/status").await;
        // Partitions that never held a message have no ledger row.
        status["partitions"].as_array().is_some_and(|p| !p.is_empty() && p.iter().all(|p| p["lag"] == 0))
    })
    .await;
    assert_eq!(replayer.metric("tracekeeper_spans_rejected_total").await, old_spans as f64);
    for spans in &old {
        assert!(!served(&query, spans).await, "a replay makes nothing visible again");
    }
    assert_eq!(searched(&query).await.len(), fresh.len());
    let report = check_store(&[&store[..], &policy[..]].concat());
    assert_eq!(report["tenants"]["single-tenant"]["spans"], fresh_spans, "a replay stores nothing old: {report}");
}

/// Commits offset 0 on every partition for the cluster's group, once the group has no
/// live member left (the broker refuses commits from outside a live generation).
async fn rewind_group(cluster: &Cluster) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &cluster.kafka)
        .set("group.id", &cluster.group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut offsets = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        offsets.add_partition_offset(&cluster.topic, partition, Offset::Offset(0)).unwrap();
    }
    consumer.assign(&offsets).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = consumer.commit(&offsets, CommitMode::Sync) {
        assert!(Instant::now() < deadline, "rewinding the group: {e}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

const DAY: u64 = 24 * HOUR;

/// Posts `spans` for `tenant` until the collector acknowledges them.
async fn post_as(collector: &support::Server, tenant: &str, spans: &[Span]) {
    let body = prost::Message::encode_to_vec(&tracekeeper_model::otlp::to_request(spans));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, reply) =
            collector.post_otlp(body.clone(), "application/x-protobuf", &[("X-Scope-OrgID", tenant)]).await;
        match status {
            200 => return,
            429 | 503 if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(250)).await,
            other => panic!("unexpected status {other}: {}", String::from_utf8_lossy(&reply)),
        }
    }
}

async fn served_to(query: &Process, tenant: &str, spans: &[Span]) -> bool {
    let url = query.url(&format!("/api/traces/{}", spans[0].trace_id.to_hex()));
    reqwest::Client::new().get(url).header("X-Scope-OrgID", tenant).send().await.unwrap().status() == 200
}

/// TTL in seconds of the first span row of `spans`, read from Cassandra.
async fn row_ttl(cluster: &Cluster, tenant: &str, spans: &[Span]) -> i64 {
    let session =
        scylla::client::session_builder::SessionBuilder::new().known_node(&cluster.cql).build().await.unwrap();
    let cql = format!("SELECT TTL(span) FROM {}.spans WHERE tenant = ? AND trace_id = ? LIMIT 1", cluster.keyspace);
    let rows =
        session.query_unpaged(cql, (tenant, spans[0].trace_id.0.to_vec())).await.unwrap().into_rows_result().unwrap();
    let (ttl,): (Option<i32>,) = rows.single_row().unwrap();
    i64::from(ttl.expect("the row has a TTL"))
}

/// Three tenants whose retention is shorter than, equal to and longer than the default
/// (168h), through collector → Kafka → indexer → Cassandra ← query: each keeps exactly
/// its own window, its rows carry its own TTL, and a policy changed on the retention
/// worker reaches the indexer and the query node without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_keeps_its_own_window_through_the_pipeline() {
    let stack = tracekeeper_stack::require().await;
    let cluster = Cluster::create(&stack.kafka, &stack.cql, "tenants").await;
    let worker = cluster
        .retention(&[
            "--retention",
            "168h",
            "--tenant-retention",
            "short=24h,long=720h",
            "--interval",
            "1s",
            "--lease-ttl",
            "3s",
        ])
        .await;
    wait_until("policies recorded", Duration::from_secs(30), async || {
        let versions = worker.json("/api/retention").await;
        versions.to_string().contains("\"long\"")
    })
    .await;
    // The indexer and the query node are started with the default only: they must read
    // the tenants' own policies from the store.
    let collector = support::Server::start_collector(&cluster.kafka, &cluster.topic, &["--multi-tenancy"]);
    let indexer = cluster.indexer("10s").await;
    let query = cluster.query_with(&["--multi-tenancy"]).await;

    let now = now_ns();
    let ages = [12 * HOUR, 100 * HOUR, 300 * HOUR];
    let mut sent = Vec::new();
    for (t, tenant) in ["short", "equal", "long"].into_iter().enumerate() {
        for (a, age) in ages.iter().enumerate() {
            let spans = rich_trace(900 + (t * 10 + a) as u64, now - age);
            post_as(&collector, tenant, &spans).await;
            sent.push((tenant, *age, spans));
        }
    }
    let window = |tenant: &str| match tenant {
        "short" => DAY,
        "long" => 30 * DAY,
        _ => 7 * DAY,
    };
    for (tenant, age, spans) in &sent {
        if *age < window(tenant) {
            wait_until(&format!("{tenant}'s {}h old trace served", age / HOUR), Duration::from_secs(90), async || {
                served_to(&query, tenant, spans).await
            })
            .await;
        }
    }
    wait_until("indexer caught up", Duration::from_secs(60), async || {
        let status = indexer.json("/api/status").await;
        status["partitions"].as_array().is_some_and(|p| !p.is_empty() && p.iter().all(|p| p["lag"] == 0))
    })
    .await;
    for (tenant, age, spans) in &sent {
        let expected = *age < window(tenant);
        assert_eq!(served_to(&query, tenant, spans).await, expected, "{tenant}'s {}h old trace", age / HOUR);
    }
    let refused: usize = sent.iter().filter(|(t, a, _)| *a >= window(t)).map(|(_, _, s)| s.len()).sum();
    assert_eq!(
        indexer.metric("tracekeeper_spans_rejected_total").await,
        refused as f64,
        "only spans past their own tenant's window are refused"
    );

    // Each row's TTL is its tenant's retention less the span's age (less the seconds
    // the test has taken since).
    for (tenant, age, spans) in sent.iter().filter(|(t, a, _)| *a < window(t)) {
        let expected = ((window(tenant) - age) / SEC) as i64;
        let ttl = row_ttl(&cluster, tenant, spans).await;
        assert!(
            ttl <= expected && ttl > expected - 600,
            "{tenant}'s {}h row: TTL {ttl}s, expected about {expected}s",
            age / HOUR
        );
    }

    // The long tenant's policy is shortened on the worker alone (a new worker, once the
    // old one's short lease has lapsed): within a run and a refresh, the query node hides
    // its 300h trace and the indexer refuses new spans of that age, with no restart.
    drop(worker);
    let _worker = cluster
        .retention(&[
            "--retention",
            "168h",
            "--tenant-retention",
            "short=24h,long=240h",
            "--interval",
            "1s",
            "--lease-ttl",
            "3s",
        ])
        .await;
    let (_, _, long_300h) = sent.iter().find(|(t, a, _)| *t == "long" && *a == 300 * HOUR).unwrap();
    wait_until("long's 300h trace hidden", Duration::from_secs(60), async || {
        !served_to(&query, "long", long_300h).await
    })
    .await;
    let (_, _, long_100h) = sent.iter().find(|(t, a, _)| *t == "long" && *a == 100 * HOUR).unwrap();
    assert!(served_to(&query, "long", long_100h).await, "inside the new window stays visible");
    // The indexer refreshes on its own 5 s clock, so it may still take a span of that
    // age for a moment: send a fresh 250h old trace until one is refused.
    let before = indexer.metric("tracekeeper_spans_rejected_total").await;
    let seed = std::sync::atomic::AtomicU64::new(990);
    wait_until("the indexer refuses a span past the new window", Duration::from_secs(60), async || {
        let late = rich_trace(seed.fetch_add(1, std::sync::atomic::Ordering::SeqCst), now_ns() - 250 * HOUR);
        post_as(&collector, "long", &late).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        indexer.metric("tracekeeper_spans_rejected_total").await > before
    })
    .await;
}
