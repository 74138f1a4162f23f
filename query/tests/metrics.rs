//! TraceQL metrics over HTTP (`/api/metrics/query_range` and `/api/metrics/query`) on
//! both backends, with answers worked out by hand from eight spans in three minutes.
//! Each query is asked both where the per-minute RED cells hold the answer and, with a
//! condition they cannot know of, where the spans are read one by one: the counts agree.

mod support;

use std::sync::Arc;
use std::time::Duration;

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
            "/api/metrics/query_range?q={}&start={}&end={}&step=60s&exemplars=0",
            urlencode(q),
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
            minutes.insert((ms * 1_000_000 - t0) / MINUTE_NS);
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
