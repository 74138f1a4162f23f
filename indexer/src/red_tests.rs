use std::sync::Arc;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use tracekeeper_model::{Resource, Status};

use super::*;

fn recorder() -> (PrometheusRecorder, PrometheusHandle) {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(DURATION.into()), DURATION_BUCKETS_MS)
        .unwrap()
        .set_buckets(&[0.001, 0.01, 0.1, 1.0])
        .unwrap()
        .build_recorder();
    let handle = recorder.handle();
    (recorder, handle)
}

fn span(service: &str, name: &str, kind: SpanKind, id: u8, parent: Option<u8>, millis: u64) -> Span {
    let mut span = tracekeeper_storage::testing::span(7, id, service, name, 1_000_000_000);
    span.kind = kind;
    span.parent_span_id = parent.map(|p| SpanId([p; 8]));
    span.span_id = SpanId([id; 8]);
    span.end_ns = span.start_ns + millis * 1_000_000;
    span.resource = Arc::new(Resource {
        attributes: vec![tracekeeper_model::KeyValue::string("service.name", service)],
        ..Default::default()
    });
    span
}

fn observe(spans: &[Span]) -> Observed {
    Observed::of(spans)
}

/// The value of the series whose name and labels are exactly as given.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn calls_errors_and_durations_per_service_operation_kind_and_status() {
    let (recorder, handle) = recorder();
    let red = Red::new(RedConfig::default());
    let mut failed = span("cart", "GET /cart", SpanKind::Server, 2, None, 30);
    failed.status = Status { code: StatusCode::Error, message: "boom".into() };
    let spans = vec![
        span("cart", "GET /cart", SpanKind::Server, 1, None, 5),
        failed,
        span("cart", "GET /cart", SpanKind::Server, 3, None, 700),
        span("cart", "select", SpanKind::Client, 4, Some(1), 3),
    ];
    metrics::with_local_recorder(&recorder, || red.record("acme", &observe(&spans), Instant::now()));
    let text = handle.render();
    let labels = |name: &str, kind: &str, status: &str| {
        format!(
            "tenant=\"acme\",service_name=\"cart\",span_name=\"{name}\",span_kind=\"{kind}\",status_code=\"{status}\""
        )
    };
    let ok = labels("GET /cart", "SPAN_KIND_SERVER", "STATUS_CODE_UNSET");
    assert_eq!(value(&text, &format!("{CALLS}{{{ok}}}")), Some(2.0), "{text}");
    let error = labels("GET /cart", "SPAN_KIND_SERVER", "STATUS_CODE_ERROR");
    assert_eq!(value(&text, &format!("{CALLS}{{{error}}}")), Some(1.0), "{text}");
    let client = labels("select", "SPAN_KIND_CLIENT", "STATUS_CODE_UNSET");
    assert_eq!(value(&text, &format!("{CALLS}{{{client}}}")), Some(1.0), "{text}");
    // 5 ms and 700 ms: one in the 6 ms bucket, both by 800 ms.
    assert_eq!(value(&text, &format!("{DURATION}_bucket{{{ok},le=\"6\"}}")), Some(1.0), "{text}");
    assert_eq!(value(&text, &format!("{DURATION}_bucket{{{ok},le=\"400\"}}")), Some(1.0), "{text}");
    assert_eq!(value(&text, &format!("{DURATION}_bucket{{{ok},le=\"800\"}}")), Some(2.0), "{text}");
    assert_eq!(value(&text, &format!("{DURATION}_sum{{{ok}}}")), Some(705.0), "{text}");
}

#[test]
fn a_client_and_its_server_child_make_one_edge_whichever_arrives_first() {
    let (recorder, handle) = recorder();
    let red = Red::new(RedConfig::default());
    let now = Instant::now();
    let client = span("frontend", "GET /cart", SpanKind::Client, 1, None, 40);
    let mut server = span("cart", "GET /cart", SpanKind::Server, 2, Some(1), 30);
    server.status = Status { code: StatusCode::Error, message: String::new() };
    let producer = span("cart", "publish", SpanKind::Producer, 3, Some(2), 2);
    let consumer = span("billing", "consume", SpanKind::Consumer, 4, Some(3), 9);
    metrics::with_local_recorder(&recorder, || {
        // The server half first, then its client in a later batch; the messaging pair in one.
        red.record("acme", &observe(&[server]), now);
        red.record("acme", &observe(&[client, producer, consumer]), now + Duration::from_secs(1));
    });
    let text = handle.render();
    let http = "tenant=\"acme\",client=\"frontend\",server=\"cart\",connection_type=\"\"";
    assert_eq!(value(&text, &format!("{EDGE_REQUESTS}{{{http}}}")), Some(1.0), "{text}");
    assert_eq!(value(&text, &format!("{EDGE_FAILED}{{{http}}}")), Some(1.0), "{text}");
    assert_eq!(value(&text, &format!("{EDGE_CLIENT_SECONDS}_sum{{{http}}}")), Some(0.04), "{text}");
    assert_eq!(value(&text, &format!("{EDGE_SERVER_SECONDS}_sum{{{http}}}")), Some(0.03), "{text}");
    let messaging = "tenant=\"acme\",client=\"cart\",server=\"billing\",connection_type=\"messaging_system\"";
    assert_eq!(value(&text, &format!("{EDGE_REQUESTS}{{{messaging}}}")), Some(1.0), "{text}");
    assert_eq!(value(&text, &format!("{EDGE_FAILED}{{{messaging}}}")), None, "{text}");
}

#[test]
fn a_half_that_waits_too_long_is_unpaired_and_the_wait_is_bounded() {
    let (recorder, handle) = recorder();
    let red = Red::new(RedConfig { edge_wait: Duration::from_secs(10), max_pending_edges: 2, ..Default::default() });
    let now = Instant::now();
    metrics::with_local_recorder(&recorder, || {
        let clients: Vec<Span> = (1..=3).map(|id| span("frontend", "call", SpanKind::Client, id, None, 1)).collect();
        red.record("acme", &observe(&clients), now);
        // Eleven seconds on, both waiting clients expire; their servers find nothing.
        let late = span("cart", "serve", SpanKind::Server, 9, Some(1), 1);
        red.record("acme", &observe(&[late]), now + Duration::from_secs(11));
    });
    let text = handle.render();
    assert_eq!(value(&text, &format!("{EDGES_DROPPED}{{tenant=\"acme\"}}")), Some(1.0), "the third client: {text}");
    assert_eq!(value(&text, &format!("{EDGES_UNPAIRED}{{tenant=\"acme\",side=\"client\"}}")), Some(2.0), "{text}");
    assert_eq!(
        value(
            &text,
            &format!("{EDGE_REQUESTS}{{tenant=\"acme\",client=\"frontend\",server=\"cart\",connection_type=\"\"}}")
        ),
        None
    );
}

#[test]
fn label_sets_past_the_limit_are_folded_and_counted() {
    let (recorder, handle) = recorder();
    let red = Red::new(RedConfig { max_series: 2, ..Default::default() });
    let spans: Vec<Span> =
        (1..=5).map(|id| span("cart", &format!("GET /item/{id}"), SpanKind::Server, id, None, 1)).collect();
    metrics::with_local_recorder(&recorder, || red.record("acme", &observe(&spans), Instant::now()));
    let text = handle.render();
    let calls: Vec<&str> = text.lines().filter(|l| l.starts_with(CALLS)).collect();
    assert_eq!(calls.len(), 3, "two series and the folded one: {calls:?}");
    let folded = "tenant=\"acme\",service_name=\"__folded__\",span_name=\"__folded__\",span_kind=\"SPAN_KIND_SERVER\",status_code=\"STATUS_CODE_UNSET\"";
    assert_eq!(value(&text, &format!("{CALLS}{{{folded}}}")), Some(3.0), "{text}");
    assert_eq!(value(&text, &format!("{FOLDED}{{tenant=\"acme\"}}")), Some(3.0), "{text}");
}
