//! RED metrics and service-graph edges from known spans, on both shapes: each rich
//! trace is a frontend server span (25 ms), its client call (10 ms), and the db
//! server span that call reached (8 ms, an error). Known spans in, the known series out;
//! a batch sent twice counts once, and two indexers' series add up to the whole.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use prost::Message as _;
use support::cluster::{post_until_acked, Cluster, Process};
use support::{now_ns, rich_trace, Server};

const CHECKOUT: &str = "service_name=\"frontend\",span_name=\"GET /checkout\",span_kind=\"SPAN_KIND_SERVER\",status_code=\"STATUS_CODE_UNSET\"";
const SELECT: &str = "service_name=\"frontend\",span_name=\"SELECT cart\",span_kind=\"SPAN_KIND_CLIENT\",status_code=\"STATUS_CODE_UNSET\"";
const QUERY: &str =
    "service_name=\"db\",span_name=\"query\",span_kind=\"SPAN_KIND_SERVER\",status_code=\"STATUS_CODE_ERROR\"";
const EDGE: &str = "client=\"frontend\",server=\"db\",connection_type=\"\"";

/// Series (name and labels, as exported) → value, for every `traces_*` series.
fn series(scrape: &str) -> BTreeMap<String, f64> {
    scrape
        .lines()
        .filter(|l| l.starts_with("traces_"))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn sum(all: &[BTreeMap<String, f64>], key: &str) -> f64 {
    all.iter().filter_map(|s| s.get(key)).sum()
}

fn assert_counts(all: &[BTreeMap<String, f64>], tenant: &str, traces: f64) {
    let t = format!("tenant=\"{tenant}\"");
    for labels in [CHECKOUT, SELECT, QUERY] {
        let key = format!("traces_span_metrics_calls_total{{{t},{labels}}}");
        assert_eq!(sum(all, &key), traces, "{key} in {all:#?}");
    }
    // 25 ms is in the 50 ms bucket and not the 10 ms one; 8 ms in the 8 ms one.
    let checkout = |le: &str| format!("traces_span_metrics_duration_milliseconds_bucket{{{t},{CHECKOUT},le=\"{le}\"}}");
    assert_eq!(sum(all, &checkout("10")), 0.0);
    assert_eq!(sum(all, &checkout("50")), traces);
    let query = format!("traces_span_metrics_duration_milliseconds_bucket{{{t},{QUERY},le=\"8\"}}");
    assert_eq!(sum(all, &query), traces);
    assert_eq!(sum(all, &format!("traces_service_graph_request_total{{{t},{EDGE}}}")), traces);
    assert_eq!(sum(all, &format!("traces_service_graph_request_failed_total{{{t},{EDGE}}}")), traces, "db failed");
    let client = sum(all, &format!("traces_service_graph_request_client_seconds_sum{{{t},{EDGE}}}"));
    assert!((client - traces * 0.010_000_007).abs() < 1e-9, "client seconds {client}");
    let server = sum(all, &format!("traces_service_graph_request_server_seconds_sum{{{t},{EDGE}}}"));
    assert!((server - traces * 0.008).abs() < 1e-9, "server seconds {server}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_in_one_counts_each_stored_span_once() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let start = now_ns() - 1_000_000_000;
    for seed in 1..=3 {
        let body = tracekeeper_model::otlp::to_request(&rich_trace(seed, start)).encode_to_vec();
        assert_eq!(server.post_otlp(body, "application/x-protobuf", &[]).await.0, 200);
    }
    // A client's retry of a batch already stored: stored once, counted once.
    let again = tracekeeper_model::otlp::to_request(&rich_trace(2, start)).encode_to_vec();
    assert_eq!(server.post_otlp(again, "application/x-protobuf", &[]).await.0, 200);
    let scrape = reqwest::get(server.query_url("/metrics")).await.unwrap().text().await.unwrap();
    assert_counts(&[series(&scrape)], "single-tenant", 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_indexers_share_the_counts_and_they_add_up() {
    let stack = tracekeeper_stack::require().await;
    let cluster = Cluster::create(&stack.kafka, &stack.cql, "red").await;
    let collector = cluster.collector();
    let indexers: Vec<Process> = vec![cluster.indexer("10s").await, cluster.indexer("10s").await];
    // Both members hold partitions before the load, so both count some of it.
    let deadline = Instant::now() + Duration::from_secs(60);
    for indexer in &indexers {
        while indexer.json("/api/status").await["member"]["assigned"].as_object().is_none_or(|a| a.is_empty()) {
            assert!(Instant::now() < deadline, "an indexer was given no partition");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let start = now_ns() - 1_000_000_000;
    let traces = 40u64;
    let retries = AtomicUsize::new(0);
    for seed in 0..traces {
        post_until_acked(&collector, &rich_trace(1_000 + seed, start), Duration::from_secs(30), &retries).await;
    }
    // A duplicate batch, as a collector's retry would send it.
    post_until_acked(&collector, &rich_trace(1_000, start), Duration::from_secs(30), &retries).await;

    let deadline = Instant::now() + Duration::from_secs(90);
    let expected = (traces * 3) as f64;
    loop {
        let mut stored = 0.0;
        for indexer in &indexers {
            stored += indexer.metric("tracekeeper_spans_stored_total").await;
        }
        // The duplicate is stored again (idempotently), so the store sees 3 more.
        if stored >= expected + 3.0 {
            break;
        }
        assert!(Instant::now() < deadline, "{stored} of {expected} spans stored within 90 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut all = Vec::new();
    for indexer in &indexers {
        let scrape = reqwest::get(indexer.url("/metrics")).await.unwrap().text().await.unwrap();
        let counted = series(&scrape);
        let mine = counted.iter().filter(|(k, _)| k.starts_with("traces_span_metrics_calls_total")).count();
        assert!(mine > 0, "each indexer counted its partitions' share");
        all.push(counted);
    }
    assert_counts(&all, "single-tenant", traces as f64);
}
