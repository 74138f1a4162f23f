//! TraceQL metrics over HTTP (`/api/metrics/query_range` and `/api/metrics/query`) on
//! both backends, with answers worked out by hand from eight spans in three minutes.
//! Each query is asked both where the per-minute RED cells hold the answer and, with a
//! condition they cannot know of, where the spans are read one by one: the counts agree.

mod support;

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::any_value;
use serde_json::Value;
use support::{wall_clock_now, Api, SEC};
use tracekeeper_model::clock::ManualClock;
use tracekeeper_model::{KeyValue, Span, SpanKind, StatusCode};
use tracekeeper_storage::red::{RedCell, RedStore, MINUTE_NS};
use tracekeeper_storage::testing::span;
use tracekeeper_storage::{SpanReader, SpanWriter, WriteBatch};

const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
const TENANT: &str = "single-tenant";

/// Minute 0: frontend ×3 (10 ms), db 2 ms. Minute 1: frontend 10 ms and 30 ms (an
/// error), db 4 ms, and cache 5 ms, a child of the 10 ms frontend span. Minute 2: db
/// 100 ms. Every other span is the root of a trace of its own.
fn spans(t0: u64) -> Vec<Span> {
    let at = |id: u8, service: &str, minute: u64, ms: u64| {
        let name = if service == "db" { "query" } else { "GET /a" };
        let mut s = span(id, 1, service, name, t0 + minute * MINUTE_NS + u64::from(id) * SEC);
        s.end_ns = s.start_ns + ms * 1_000_000;
        s.kind = if service == "db" { SpanKind::Client } else { SpanKind::Server };
        s.attributes.push(KeyValue::string("http.method", "GET"));
        s
    };
    let mut failed = at(6, "frontend", 1, 30);
    failed.status.code = StatusCode::Error;
    let parent = at(5, "frontend", 1, 10);
    let mut child = at(5, "cache", 1, 5);
    child.span_id = tracekeeper_model::SpanId([2; 8]);
    child.parent_span_id = Some(parent.span_id);
    child.start_ns += 1_000_000;
    child.end_ns += 1_000_000;
    vec![
        child,
        at(1, "frontend", 0, 10),
        at(2, "frontend", 0, 10),
        at(3, "frontend", 0, 10),
        at(4, "db", 0, 2),
        at(5, "frontend", 1, 10),
        failed,
        at(7, "db", 1, 4),
        at(8, "db", 2, 100),
    ]
}

/// The cells an indexer counts for `spans`.
fn cells(spans: &[Span]) -> Vec<RedCell> {
    let mut out: Vec<RedCell> = Vec::new();
    for s in spans {
        let minute = s.start_ns - s.start_ns % MINUTE_NS;
        let cell = RedCell::new(minute, s.service_name(), &s.name, s.kind, s.is_error());
        let mut cell = cell.of_roots(s.parent_span_id.is_none());
        cell.observe(s.duration_ns());
        out.push(cell);
    }
    out
}

/// Tempo's metrics messages as `tempopb` numbers them, written out here from Tempo's
/// documentation, to read our protobuf answers with.
mod tempopb {
    use opentelemetry_proto::tonic::common::v1::KeyValue;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct QueryRangeResponse {
        #[prost(message, repeated, tag = "1")]
        pub series: Vec<TimeSeries>,
        #[prost(message, optional, tag = "2")]
        pub metrics: Option<SearchMetrics>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<KeyValue>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        #[prost(string, tag = "3")]
        pub prom_labels: String,
        #[prost(message, repeated, tag = "4")]
        pub exemplars: Vec<Exemplar>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(double, tag = "1")]
        pub value: f64,
        #[prost(int64, tag = "2")]
        pub timestamp_ms: i64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Exemplar {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<KeyValue>,
        #[prost(double, tag = "2")]
        pub value: f64,
        #[prost(int64, tag = "3")]
        pub timestamp_ms: i64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct QueryInstantResponse {
        #[prost(message, repeated, tag = "1")]
        pub series: Vec<InstantSeries>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct InstantSeries {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<KeyValue>,
        #[prost(double, tag = "2")]
        pub value: f64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SearchMetrics {
        #[prost(uint32, tag = "1")]
        pub inspected_traces: u32,
        #[prost(uint32, tag = "4")]
        pub completed_jobs: u32,
    }
}

async fn serve(
    writer: Arc<dyn SpanWriter>,
    reader: Arc<dyn SpanReader>,
    red: Arc<dyn RedStore>,
    now: u64,
) -> (Api, u64) {
    let t0 = now - 10 * MINUTE_NS - now % MINUTE_NS;
    let spans = spans(t0);
    let retention_ns = RETENTION.as_nanos() as u64;
    writer.write(WriteBatch { tenant: TENANT.into(), spans: spans.clone(), retention_ns, now_ns: now }).await.unwrap();
    red.add_red(TENANT, cells(&spans), retention_ns, now).await.unwrap();
    (Api::start_with_red(reader, red, Arc::new(ManualClock::new(now)), RETENTION).await, t0)
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Each series as (its labels as `k=v` text, its points as (minute, value)).
fn series(body: &Value, t0: u64) -> Vec<(String, Vec<(u64, f64)>)> {
    let mut out: Vec<(String, Vec<(u64, f64)>)> = body["series"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|s| {
            let labels: Vec<String> = s["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    let v = &l["value"];
                    let text = ["stringValue", "doubleValue", "intValue", "boolValue"]
                        .iter()
                        .find_map(|k| v.get(*k))
                        .map_or_else(String::new, |x| x.as_str().map_or_else(|| x.to_string(), String::from));
                    format!("{}={text}", l["key"].as_str().unwrap())
                })
                .collect();
            let points = s["samples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    let ms: u64 = p["timestampMs"].as_str().unwrap().parse().unwrap();
                    ((ms * 1_000_000 - t0) / MINUTE_NS, p["value"].as_f64().unwrap())
                })
                .collect();
            (labels.join(","), points)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

async fn range(api: &Api, q: &str, t0: u64) -> Vec<(String, Vec<(u64, f64)>)> {
    let path = format!(
        "/api/metrics/query_range?q={}&start={}&end={}&step=60s",
        urlencode(q),
        t0 / SEC,
        (t0 + 3 * MINUTE_NS) / SEC
    );
    let (status, body) = api.get(&path).await;
    assert_eq!(status, 200, "{q}: {body}");
    series(&body, t0)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

async fn check(api: &Api, t0: u64) {
    let roots = vec![
        ("resource.service.name=db".to_string(), vec![(0, 1.0), (1, 1.0), (2, 1.0)]),
        ("resource.service.name=frontend".to_string(), vec![(0, 3.0), (1, 2.0), (2, 0.0)]),
    ];
    let mut by_service = roots.clone();
    by_service.insert(0, ("resource.service.name=cache".to_string(), vec![(0, 0.0), (1, 1.0), (2, 0.0)]));
    // From RED cells (no trace read), then span by span (a condition the cells do not
    // keep).
    for (q, traces) in
        [("{ } | rate()", 0), ("{ nestedSetParent < 0 } | rate()", 0), ("{ span.http.method = \"GET\" } | rate()", 8)]
    {
        let path = format!(
            "/api/metrics/query_range?q={}&start={}&end={}&step=60s",
            urlencode(&format!("{q} with (exemplars=false)")),
            t0 / SEC,
            t0 / SEC + 180
        );
        let (_, body) = api.get(&path).await;
        assert_eq!(body["metrics"]["inspectedTraces"], traces, "{q}: {body}");
    }
    // Series from the cells still carry exemplars: spans read from each window of the
    // range (here one a minute), each on the series it was counted in.
    let path = format!(
        "/api/metrics/query_range?q={}&start={}&end={}&step=60s",
        urlencode("{ } | rate() by (resource.service.name)"),
        t0 / SEC,
        t0 / SEC + 180
    );
    let (_, body) = api.get(&path).await;
    let service_of: std::collections::HashMap<(String, String), String> =
        spans(t0).iter().map(|s| ((s.trace_id.to_hex(), s.span_id.to_hex()), s.service_name().to_string())).collect();
    let mut minutes = std::collections::BTreeSet::new();
    for series in body["series"].as_array().unwrap() {
        let service = series["labels"][0]["value"]["stringValue"].as_str().unwrap();
        for exemplar in series["exemplars"].as_array().unwrap() {
            let label = |n: usize| exemplar["labels"][n]["value"]["stringValue"].as_str().unwrap().to_string();
            assert_eq!(
                (&exemplar["labels"][0]["key"], &exemplar["labels"][1]["key"]),
                (&"trace:id".into(), &"span:id".into())
            );
            assert_eq!(service_of[&(label(0), label(1))], service, "{body}");
            let ms: u64 = exemplar["timestampMs"].as_str().unwrap().parse().unwrap();
            let minute = (ms * 1_000_000 - t0) / MINUTE_NS;
            minutes.insert(minute);
            // As Tempo: a rate's exemplar shows the series' value where it sits.
            assert_eq!(exemplar["value"], series["samples"][minute as usize]["value"], "{body}");
        }
    }
    assert_eq!(minutes.into_iter().collect::<Vec<_>>(), [0, 1, 2], "{body}");
    assert_eq!(range(api, "{ } | count_over_time() by (resource.service.name)", t0).await, by_service);
    assert_eq!(
        range(api, "{ span.http.method = \"GET\" } | count_over_time() by (resource.service.name)", t0).await,
        by_service
    );
    // Root spans only, as Drilldown asks: from the cells, and span by span.
    let root_query =
        "{ nestedSetParent < 0 && resource.service.name != nil } | count_over_time() by (resource.service.name)";
    assert_eq!(range(api, root_query, t0).await, roots);
    let root_scan = "{ nestedSetParent < 0 && duration > 0 } | count_over_time() by (resource.service.name)";
    assert_eq!(range(api, root_scan, t0).await, roots);
    let errors = vec![("__name__=count_over_time".to_string(), vec![(0, 0.0), (1, 1.0), (2, 0.0)])];
    assert_eq!(range(api, "{ status = error } | count_over_time()", t0).await, errors);
    assert_eq!(range(api, "{ status = error && duration > 0 } | count_over_time()", t0).await, errors);
    let rate = range(api, "{ resource.service.name = \"db\" } | rate()", t0).await;
    assert_eq!(rate.len(), 1);
    assert!(rate[0].1.iter().all(|(_, v)| close(*v, 1.0 / 60.0)), "{rate:?}");
    // Averages from the cells' sums: (10 + 30) / 2 ms in minute 1.
    let avg = range(api, "{ resource.service.name = \"frontend\" } | avg_over_time(duration)", t0).await;
    assert!(close(avg[0].1[1].1, 0.020), "{avg:?}");
    // Exact quantiles when spans are read: one db span a minute is its own median.
    let p50 = range(
        api,
        "{ kind = client && duration > 0 } | quantile_over_time(duration, .5) by (resource.service.name)",
        t0,
    )
    .await;
    assert_eq!(p50.len(), 1, "{p50:?}");
    assert_eq!(p50[0].0, "resource.service.name=db,p=0.5");
    let got: Vec<f64> = p50[0].1.iter().map(|(_, v)| *v).collect();
    assert!(got.iter().zip([0.002, 0.004, 0.1]).all(|(a, b)| close(*a, b)), "{got:?}");
    // From the cells, quantiles come from buckets a quarter of a power of two wide: each
    // value within 19% of the exact one above.
    let p50 = range(api, "{ kind = client } | quantile_over_time(duration, .5) by (resource.service.name)", t0).await;
    let got: Vec<f64> = p50[0].1.iter().map(|(_, v)| *v).collect();
    assert!(got.iter().zip([0.002, 0.004, 0.1]).all(|(a, b)| (a / b - 1.0).abs() < 0.19), "{got:?}");
    // Histograms in Tempo's power-of-two buckets, the same from the cells as from the
    // spans: 10 ms falls in (2^23, 2^24] ns, 30 ms in (2^24, 2^25] ns.
    let histogram = "histogram_over_time(duration) by (resource.service.name)";
    let from_cells = range(api, &format!("{{ }} | {histogram}"), t0).await;
    assert_eq!(from_cells, range(api, &format!("{{ duration > 0 }} | {histogram}"), t0).await);
    let frontend: Vec<&(String, Vec<(u64, f64)>)> =
        from_cells.iter().filter(|(labels, _)| labels.starts_with("resource.service.name=frontend")).collect();
    let bucket = |power: i32| format!("resource.service.name=frontend,__bucket={}", 2f64.powi(power) / 1e9);
    assert_eq!(frontend.len(), 2, "{from_cells:?}");
    assert_eq!(frontend[0], &(bucket(24), vec![(0, 3.0), (1, 1.0)]));
    assert_eq!(frontend[1], &(bucket(25), vec![(1, 1.0)]));
    // The error share, by arithmetic between two queries.
    let share = range(api, "({ status = error } | count_over_time()) / ({ } | count_over_time())", t0).await;
    let got: Vec<f64> = share[0].1.iter().map(|(_, v)| *v).collect();
    assert!(got.iter().zip([0.0, 1.0 / 4.0, 0.0]).all(|(a, b)| close(*a, b)), "{got:?}");
    // Second stages: the busiest service each minute, and the points above one.
    let top = range(api, "{ } | count_over_time() by (resource.service.name) | topk(1)", t0).await;
    assert_eq!(
        top,
        vec![
            ("resource.service.name=db".to_string(), vec![(2, 1.0)]),
            ("resource.service.name=frontend".to_string(), vec![(0, 3.0), (1, 2.0)]),
        ]
    );
    let above = range(api, "{ } | count_over_time() by (resource.service.name) > 1", t0).await;
    assert_eq!(above, vec![("resource.service.name=frontend".to_string(), vec![(0, 3.0), (1, 2.0)])]);
    // Drilldown's comparison: the failed span's name in the selection.
    let compared = range(api, "{ } | compare({ status = error })", t0).await;
    let selected: Vec<&(String, Vec<(u64, f64)>)> =
        compared.iter().filter(|(l, _)| l.contains("__meta_type=selection,") && l.contains("name=GET /a")).collect();
    assert_eq!(selected.len(), 1, "{compared:?}");
    assert_eq!(selected[0].1, vec![(1, 1.0)]);

    // At a step the cells cannot cut (Drilldown's), the spans are read: 30 s steps.
    let path = format!(
        "/api/metrics/query_range?q={}&start={}&end={}&step=30s",
        urlencode("{ nestedSetParent < 0 } | count_over_time()"),
        t0 / SEC,
        t0 / SEC + 180
    );
    let (_, body) = api.get(&path).await;
    let halves: Vec<(u64, f64)> = body["series"][0]["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (p["timestampMs"].as_str().unwrap().parse::<u64>().unwrap() * 1_000_000 - t0, p["value"].as_f64().unwrap())
        })
        .filter(|(_, v)| *v > 0.0)
        .map(|(ns, v)| (ns / (30 * SEC), v))
        .collect();
    // Every span starts `id` seconds into its minute: all in the first half.
    assert_eq!(halves, [(0, 4.0), (2, 3.0), (4, 1.0)], "{body}");

    // The same answer as protobuf, numbered as Tempo's `tempopb`.
    let path = format!(
        "/api/metrics/query_range?q={}&start={}&end={}&step=60s",
        urlencode("{ } | count_over_time() by (resource.service.name)"),
        t0 / SEC,
        t0 / SEC + 180
    );
    let (status, bytes) = api.get_protobuf(&path).await;
    assert_eq!(status, 200);
    let decoded = <tempopb::QueryRangeResponse as prost::Message>::decode(bytes.as_slice()).unwrap();
    let from_proto: Vec<(String, Vec<(u64, f64)>)> = decoded
        .series
        .iter()
        .map(|s| {
            let label = &s.labels[0];
            let value = match label.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(v)) => v.clone(),
                other => panic!("{other:?}"),
            };
            let points =
                s.samples.iter().map(|p| ((p.timestamp_ms as u64 * 1_000_000 - t0) / MINUTE_NS, p.value)).collect();
            (format!("{}={value}", label.key), points)
        })
        .collect();
    assert_eq!(from_proto, by_service);
    assert!(decoded.series.iter().all(|s| s.prom_labels.starts_with("{resource.service.name=")));
    assert!(decoded
        .series
        .iter()
        .flat_map(|s| &s.exemplars)
        .all(|e| e.labels[0].key == "trace:id" && e.timestamp_ms > 0));
    assert_eq!(decoded.metrics.map(|m| m.completed_jobs), Some(1));

    // The instant query counts the whole range.
    let path = format!(
        "/api/metrics/query?q={}&start={}&end={}",
        urlencode("{ } | count_over_time()"),
        t0 / SEC,
        (t0 + 3 * MINUTE_NS) / SEC
    );
    let (status, body) = api.get(&path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["series"][0]["value"], 9.0, "{body}");
    let (status, bytes) = api.get_protobuf(&path).await;
    assert_eq!(status, 200);
    let decoded = <tempopb::QueryInstantResponse as prost::Message>::decode(bytes.as_slice()).unwrap();
    assert_eq!(decoded.series.iter().map(|s| s.value).collect::<Vec<_>>(), [9.0]);

    // Bounds and mistakes are refused with what to do.
    for (path, says) in [
        (
            format!(
                "/api/metrics/query_range?q={}&start={}&end={}&step=1ms",
                urlencode("{ } | rate()"),
                t0 / SEC,
                t0 / SEC + 180
            ),
            "raise 'step'",
        ),
        (format!("/api/metrics/query_range?q={}", urlencode("{ } | count() > 1")), "this is a search query"),
        (format!("/api/metrics/query_range?q={}", urlencode("{ } | rate() + 5")), "parentheses"),
        ("/api/metrics/query_range".to_string(), "'q'"),
    ] {
        let (status, body) = api.get(&path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.as_str().is_some_and(|m| m.contains(says)), "{path}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_answer_exactly_on_both_backends() {
    let now = wall_clock_now();
    let dir = tempfile::tempdir().unwrap();
    let embedded = Arc::new(
        tracekeeper_storage::embedded::EmbeddedStore::open(tracekeeper_storage::embedded::EmbeddedConfig::new(
            dir.path(),
        ))
        .unwrap(),
    );
    let (api, t0) = serve(embedded.clone(), embedded.clone(), embedded, now).await;
    check(&api, t0).await;

    let stack = tracekeeper_stack::require().await;
    let cql = Arc::new(tracekeeper_storage::cql::test_store(&stack.cql).await);
    let (api, t0) = serve(cql.clone(), cql.clone(), cql, now).await;
    check(&api, t0).await;
}

/// Past the bound on traces read span by span, a query the per-minute cells can answer
/// at a step they cannot cut (Drilldown's) is answered from them at whole minutes, and
/// says so; one they cannot answer is refused with what to narrow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_span_bound_cells_answer_at_whole_minutes() {
    let now = wall_clock_now();
    let t0 = now - 10 * MINUTE_NS - now % MINUTE_NS;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        tracekeeper_storage::embedded::EmbeddedStore::open(tracekeeper_storage::embedded::EmbeddedConfig::new(
            dir.path(),
        ))
        .unwrap(),
    );
    let count = tracekeeper_query::tempo_metrics::MAX_TRACES as u64 + 1;
    let spans: Vec<Span> = (0..count)
        .map(|n| {
            let mut s = span(1, 1, "bulk", "job", t0 + n * (2 * MINUTE_NS / count));
            s.trace_id = tracekeeper_model::TraceId((u128::from(n) + 1).to_be_bytes());
            s
        })
        .collect();
    let retention_ns = RETENTION.as_nanos() as u64;
    store.write(WriteBatch { tenant: TENANT.into(), spans: spans.clone(), retention_ns, now_ns: now }).await.unwrap();
    store.add_red(TENANT, cells(&spans), retention_ns, now).await.unwrap();
    let api = Api::start_with_red(store.clone(), store.clone(), Arc::new(ManualClock::new(now)), RETENTION).await;
    let ask = |q: &str| {
        format!("/api/metrics/query_range?q={}&start={}&end={}&step=30s", urlencode(q), t0 / SEC, t0 / SEC + 180)
    };
    let (status, body) = api.get(&ask("{ nestedSetParent < 0 } | count_over_time()")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("at a step of 60 s")), "{body}");
    let samples = body["series"][0]["samples"].as_array().unwrap();
    let minutes: Vec<u64> = samples
        .iter()
        .map(|p| (p["timestampMs"].as_str().unwrap().parse::<u64>().unwrap() * 1_000_000 - t0) / MINUTE_NS)
        .collect();
    assert_eq!(minutes, [0, 1, 2], "{body}");
    let total: f64 = samples.iter().map(|p| p["value"].as_f64().unwrap()).sum();
    assert_eq!(total, count as f64, "every span counted once: {body}");
    let (status, body) = api.get(&ask("{ duration > 0 } | count_over_time()")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.as_str().is_some_and(|m| m.contains("narrow the time range")), "{body}");

    // Held to the search budget: a query that runs past the timeout is refused, and a
    // range longer than the search window is answered over the window and says so.
    let budget = tracekeeper_query::budget::SearchBudget {
        timeout: Duration::from_millis(1),
        max_window: Duration::from_secs(3600),
        ..Default::default()
    };
    let api =
        Api::start_with_budget(store.clone(), store.clone(), Arc::new(ManualClock::new(now)), RETENTION, budget).await;
    let (status, body) =
        api.get(&ask("{ resource.service.name = \"bulk\" && duration > 0 } | count_over_time()")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.as_str().is_some_and(|m| m.contains("--query-timeout")), "{body}");
    let budget =
        tracekeeper_query::budget::SearchBudget { max_window: Duration::from_secs(3600), ..Default::default() };
    let api = Api::start_with_budget(store.clone(), store, Arc::new(ManualClock::new(now)), RETENTION, budget).await;
    let day = format!(
        "/api/metrics/query_range?q={}&start={}&end={}&step=60s",
        urlencode("{ } | count_over_time()"),
        now / SEC - 86_400,
        now / SEC
    );
    let (status, body) = api.get(&day).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("--max-search-window")), "{body}");
    let first_ms: u64 = body["series"][0]["samples"][0]["timestampMs"].as_str().unwrap().parse().unwrap();
    assert!(first_ms * 1_000_000 >= now - 3_600 * SEC, "no point before the window: {body}");
    let total: f64 =
        body["series"][0]["samples"].as_array().unwrap().iter().map(|p| p["value"].as_f64().unwrap()).sum();
    assert_eq!(total, count as f64, "the spans are inside the window: {body}");
}
