//! RED metrics and service-graph edges from known spans, on both shapes: each rich
//! trace is a frontend server span (25 ms), its client call (10 ms), and the db
//! server span that call reached (8 ms, an error). Known spans in, the known series out;
//! a batch sent twice counts once, and two indexers' series add up to the whole.

mod support;

use std::collections::BTreeMap;

use serde_json::{json, Value};
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
    let server = Server::start(data.path(), &["--red-flush-interval", "1s"]);
    let (minute, start) = five_minutes_ago();
    for seed in 1..=3 {
        let body = tracekeeper_model::otlp::to_request(&rich_trace(seed, start)).encode_to_vec();
        assert_eq!(server.post_otlp(body, "application/x-protobuf", &[]).await.0, 200);
    }
    // A client's retry of a batch already stored: stored once, counted once.
    let again = tracekeeper_model::otlp::to_request(&rich_trace(2, start)).encode_to_vec();
    assert_eq!(server.post_otlp(again, "application/x-protobuf", &[]).await.0, 200);
    let scrape = reqwest::get(server.query_url("/metrics")).await.unwrap().text().await.unwrap();
    assert_counts(&[series(&scrape)], "single-tenant", 3.0);
    assert_monitor_tab(&|path| server.query_url(path), minute, 3.0).await;
}

/// The start of the minute five minutes ago, and a time a second into it.
fn five_minutes_ago() -> (u64, u64) {
    let minute_ns = 60_000_000_000;
    let minute = (now_ns() - 5 * minute_ns) / minute_ns * minute_ns;
    (minute, minute + 1_000_000_000)
}

async fn get(url: String) -> (u16, Value) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// RFC 3339 in UTC, to the second, `plus_minutes` after `minute_ns`.
fn at(minute_ns: u64, plus_minutes: u64) -> String {
    let secs = (minute_ns / 1_000_000_000 + plus_minutes * 60) as i64;
    let at = chrono::DateTime::from_timestamp(secs, 0).expect("a time within chrono's range");
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Jaeger's Monitor tab over `traces` rich traces that started one second into `minute`:
/// points at the minute, one minute on and two minutes on, each over the minute before.
async fn assert_monitor_tab(url: &dyn Fn(&str) -> String, minute: u64, traces: f64) {
    let end_ms = minute / 1_000_000 + 120_000;
    let window = format!("endTs={end_ms}&lookback=120000&step=60000&ratePer=60000");
    let points = |values: &[Option<f64>]| -> Value {
        Value::Array(
            values
                .iter()
                .enumerate()
                .filter_map(|(n, v)| {
                    v.map(|v| json!({"gaugeValue": {"doubleValue": v}, "timestamp": at(minute, n as u64)}))
                })
                .collect(),
        )
    };
    let series = |service: &str, values: &[Option<f64>]| json!({"labels": [{"name": "service_name", "value": service}], "metricPoints": points(values)});
    let rate = traces / 60.0;
    let expected = json!({"name": "service_call_rate", "type": "GAUGE", "help": "calls/sec, grouped by service",
           "metrics": [series("db", &[Some(0.0), Some(rate), Some(0.0)]),
                       series("frontend", &[Some(0.0), Some(rate), Some(0.0)])]});
    // Every writer flushes its counts on its own clock: wait until all have.
    let calls_url = url(&format!("/api/metrics/calls?service=frontend&service=db&{window}"));
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (status, calls) = get(calls_url.clone()).await;
        assert_eq!(status, 200, "{calls}");
        if calls == expected {
            break;
        }
        assert!(Instant::now() < deadline, "the RED counts within 40 s:\n{calls}\nnot\n{expected}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (_, errors) = get(url(&format!("/api/metrics/errors?service=frontend&service=db&{window}"))).await;
    assert_eq!(errors["name"], "service_error_rate");
    assert_eq!(errors["metrics"][0], series("db", &[None, Some(1.0), None]), "every db call failed");
    assert_eq!(errors["metrics"][1], series("frontend", &[None, Some(0.0), None]));
    // 25 ms calls, all in the (10, 50] ms bucket: 10 + 40 × 0.95; 8 ms ones in (6, 8].
    let (_, latencies) =
        get(url(&format!("/api/metrics/latencies?service=frontend&service=db&quantile=0.95&{window}"))).await;
    assert_eq!(latencies["name"], "service_latencies");
    for (n, service, expected) in [(0, "db", 7.9), (1, "frontend", 48.0)] {
        let metric = &latencies["metrics"][n];
        assert_eq!(metric["labels"], json!([{"name": "service_name", "value": service}]));
        let points = metric["metricPoints"].as_array().unwrap();
        assert_eq!(points.len(), 1, "{metric}");
        assert_eq!(points[0]["timestamp"], at(minute, 1));
        let value = points[0]["gaugeValue"]["doubleValue"].as_f64().unwrap();
        assert!((value - expected).abs() < 1e-9, "{service}: {value} ms, not {expected}");
    }
    let (_, clients) =
        get(url(&format!("/api/metrics/calls?service=frontend&spanKind=client&groupByOperation=true&{window}"))).await;
    assert_eq!(clients["name"], "service_operation_call_rate");
    assert_eq!(
        clients["metrics"],
        json!([{"labels": [{"name": "service_name", "value": "frontend"}, {"name": "operation", "value": "SELECT cart"}],
                "metricPoints": points(&[Some(0.0), Some(rate), Some(0.0)])}])
    );
    let (status, minstep) = get(url("/api/metrics/minstep")).await;
    assert_eq!((status, &minstep["data"]), (200, &json!(60000)));
    let (status, refused) = get(url("/api/metrics/latencies?service=db")).await;
    assert_eq!(status, 400);
    assert!(refused["errors"][0]["msg"].as_str().unwrap().contains("quantile"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_indexers_share_the_counts_and_they_add_up() {
    let stack = tracekeeper_stack::require().await;
    let cluster = Cluster::create(&stack.kafka, &stack.cql, "red").await;
    let collector = cluster.collector();
    let indexers: Vec<Process> = vec![cluster.indexer("10s").await, cluster.indexer("10s").await];
    // (The indexers write their RED counts every 10 s, the default.)
    // Both members hold partitions before the load, so both count some of it.
    let deadline = Instant::now() + Duration::from_secs(60);
    for indexer in &indexers {
        while indexer.json("/api/status").await["member"]["assigned"].as_object().is_none_or(|a| a.is_empty()) {
            assert!(Instant::now() < deadline, "an indexer was given no partition");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let (minute, start) = five_minutes_ago();
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
    // The query node reads what both indexers wrote.
    let query = cluster.query().await;
    assert_monitor_tab(&|path| query.url(path), minute, traces as f64).await;
}
