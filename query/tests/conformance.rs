//! One table of query API calls, run over HTTP against the embedded and the CQL backend
//! loaded with the same data, whose answers must be identical byte for byte. The data:
//! OTLP captured from the OpenTelemetry Python SDK, Zipkin v2 JSON captured from
//! py_zipkin (`tests/fixtures/capture.py`), and hand-built edge cases.

mod support;

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use serde_json::Value;
use support::{wall_clock_now, Api, SEC};
use tracekeeper_model::clock::ManualClock;
use tracekeeper_model::{AnyValue, KeyValue, Link, Span, SpanId, SpanKind, TraceId};
use tracekeeper_storage::testing::span;
use tracekeeper_storage::{SpanReader, SpanWriter, WriteBatch};

const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");

struct Data {
    spans: Vec<Span>,
    /// The Zipkin fixture, its times shifted like the spans.
    zipkin: Vec<Value>,
    now: u64,
}

/// Shifts every time so that the newest span starts a minute before `now`.
fn load(now: u64) -> Data {
    let otlp = std::fs::read(format!("{FIXTURES}/otel-python.pb")).unwrap();
    let request =
        opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(&otlp[..]).unwrap();
    let decoded = tracekeeper_model::otlp::from_request(request);
    assert!(decoded.rejected.is_empty(), "{:?}", decoded.rejected);
    let zipkin_text = std::fs::read(format!("{FIXTURES}/zipkin-py.json")).unwrap();
    let zipkin_decoded = tracekeeper_model::zipkin::decode(&zipkin_text).unwrap();
    assert!(zipkin_decoded.rejected.is_empty(), "{:?}", zipkin_decoded.rejected);
    let mut zipkin: Vec<Value> = serde_json::from_slice(&zipkin_text).unwrap();

    let mut spans = decoded.spans;
    spans.extend(zipkin_decoded.spans);
    let newest = spans.iter().map(|s| s.start_ns).max().unwrap();
    // Whole microseconds, so Zipkin's µs times shift exactly.
    let shift_us = (now - 60 * SEC - newest) / 1000;
    for s in &mut spans {
        s.start_ns += shift_us * 1000;
        s.end_ns += shift_us * 1000;
        for e in &mut s.events {
            e.time_ns += shift_us * 1000;
        }
    }
    for z in &mut zipkin {
        z["timestamp"] = Value::from(z["timestamp"].as_u64().unwrap() + shift_us);
        for a in z.get_mut("annotations").and_then(Value::as_array_mut).into_iter().flatten() {
            a["timestamp"] = Value::from(a["timestamp"].as_u64().unwrap() + shift_us);
        }
    }
    spans.extend(edge_cases(now - 120 * SEC));
    Data { spans, zipkin, now }
}

/// Clock skew, a missing parent, links, unicode and empty attributes.
fn edge_cases(t: u64) -> Vec<Span> {
    let mut root = span(0xe1, 1, "édge-svc", "ルート", t);
    root.attributes = vec![
        KeyValue::new("empty.value", AnyValue::Empty),
        KeyValue::string("empty.string", ""),
        KeyValue::string("ключ", "значение"),
    ];
    // The child starts 5 ms before its parent (clock skew between hosts).
    let mut skewed = span(0xe1, 2, "other-svc", "skewed child", t - 5_000_000);
    skewed.parent_span_id = Some(root.span_id);
    skewed.kind = SpanKind::Client;
    // A parent that never arrived.
    let mut orphan = span(0xe2, 3, "édge-svc", "orphan", t + 1000);
    orphan.parent_span_id = Some(SpanId([0x77; 8]));
    orphan.links.push(Link {
        trace_id: TraceId([0xe1; 16]),
        span_id: root.span_id,
        trace_state: String::new(),
        attributes: vec![KeyValue::string("link.kind", "retry")],
        dropped_attributes_count: 0,
        flags: 0,
    });
    vec![root, skewed, orphan]
}

async fn serve(writer: Arc<dyn SpanWriter>, reader: Arc<dyn SpanReader>, data: &Data) -> Api {
    let batch = WriteBatch {
        tenant: "single-tenant".into(),
        spans: data.spans.clone(),
        retention_ns: RETENTION.as_nanos() as u64,
        now_ns: data.now,
    };
    writer.write(batch).await.unwrap();
    Api::start(reader, Arc::new(ManualClock::new(data.now)), RETENTION).await
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Every call of the suite, with the status it must answer.
fn calls(data: &Data) -> Vec<(String, u16)> {
    let now_us = data.now / 1000;
    let (start_us, end_ms, start_s) = (now_us - 3_600_000_000, now_us / 1000, data.now / SEC - 3600);
    let rfc = |us: u64| {
        chrono::DateTime::from_timestamp_micros(us as i64).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    };
    let v3 = format!("query.startTimeMin={}&query.startTimeMax={}", urlencode(&rfc(start_us)), urlencode(&rfc(now_us)));
    let v3_snake = v3.replace("startTimeMin", "start_time_min").replace("startTimeMax", "start_time_max");
    let zipkin_ids: Vec<String> = {
        let mut ids: Vec<String> = data.zipkin.iter().map(|z| z["traceId"].as_str().unwrap().to_string()).collect();
        ids.dedup();
        ids
    };
    let otlp_ids: Vec<String> = {
        let mut ids: Vec<String> = data.spans.iter().map(|s| s.trace_id.to_hex()).collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let tempo = |q: &str| format!("/api/search?q={}&start={start_s}&end={}", urlencode(q), data.now / SEC + 1);
    let mut calls: Vec<(String, u16)> = vec![
        // Jaeger classic
        ("/api/services".into(), 200),
        ("/api/services/shop/operations".into(), 200),
        ("/api/operations?service=shop&spanKind=server".into(), 200),
        (format!("/api/traces?service=shop&start={start_us}&limit=10"), 200),
        (format!("/api/traces?service=shop&operation=GET%20%2Fcheckout&start={start_us}"), 200),
        (format!("/api/traces?tags=%7B%22http.status_code%22%3A%22500%22%7D&start={start_us}"), 200),
        (format!("/api/traces?service=payments&minDuration=1us&start={start_us}&limit=1"), 200),
        (format!("/api/traces?traceID={}&traceID={}", otlp_ids[0], "ab".repeat(16)), 200),
        (format!("/api/dependencies?endTs={end_ms}&lookback=3600000"), 200),
        ("/api/traces/nothex".into(), 400),
        // Jaeger api_v3
        ("/api/v3/services".into(), 200),
        ("/api/v3/operations?service=payments".into(), 200),
        (format!("/api/v3/traces?query.serviceName=shop&{v3}"), 200),
        (format!("/api/v3/trace-summaries?query.serviceName=frontend&{v3}"), 200),
        (format!("/api/v3/traces?query.serviceName=nobody&{v3}"), 404),
        // The snake_case aliases many clients send.
        (format!("/api/v3/traces?query.service_name=payments&query.num_traces=1&{v3_snake}"), 200),
        ("/api/v3/traces?query.serviceName=shop".into(), 400),
        // Zipkin v2
        ("/api/v2/services".into(), 200),
        ("/api/v2/spans?serviceName=frontend".into(), 200),
        (format!("/api/v2/remoteServices?serviceName=frontend&endTs={end_ms}"), 200),
        (format!("/api/v2/traces?serviceName=frontend&endTs={end_ms}&lookback=3600000"), 200),
        (format!("/api/v2/traces?annotationQuery=http.method%3DGET%20and%20wire.recv&endTs={end_ms}"), 200),
        (format!("/api/v2/traces?remoteServiceName=postgres&minDuration=1&endTs={end_ms}"), 200),
        (format!("/api/v2/traceMany?traceIds={},{}", zipkin_ids[0], zipkin_ids[zipkin_ids.len() - 1]), 200),
        (format!("/api/v2/traceMany?traceIds={}", zipkin_ids[0]), 400),
        (format!("/api/v2/dependencies?endTs={end_ms}&lookback=3600000"), 200),
        ("/api/v2/dependencies".into(), 400),
        (format!("/api/v2/autocompleteKeys?endTs={end_ms}"), 200),
        (format!("/api/v2/autocompleteValues?key=http.method&endTs={end_ms}"), 200),
        ("/api/v2/trace/abc".into(), 400),
        // Tempo
        ("/api/echo".into(), 200),
        ("/api/status/buildinfo".into(), 200),
        (tempo("{ resource.service.name = \"shop\" && span.http.status_code = 500 }"), 200),
        (tempo("{ name = \"GET /checkout\" } >> { status = error }"), 200),
        (tempo("{ kind = client } | count() > 1"), 200),
        (tempo("{ .customer =~ \"zo.*\" } && { resource.service.name = \"payments\" }"), 200),
        (tempo("{ trace:rootService = \"frontend\" && duration > 1us }"), 200),
        (tempo("{ } << { }"), 200),
        (tempo("{ } !< { } | by(resource.service.name) | count() > 0 | select(span.http.method)"), 200),
        (tempo("{ span.http.status_code != nil } &>> { status = error } with (most_recent = true)"), 200),
        (tempo("{ parent.x = 1 }"), 400),
        (format!("/api/search?tags=service.name%3Dshop&minDuration=1us&limit=2&spss=1&start={start_s}"), 200),
        (format!("/api/search/tags?start={start_s}"), 200),
        ("/api/search/tags?scope=intrinsic".into(), 200),
        (format!("/api/v2/search/tags?start={start_s}"), 200),
        (format!("/api/search/tag/http.method/values?start={start_s}"), 200),
        (format!("/api/v2/search/tag/resource.service.name/values?start={start_s}"), 200),
        (format!("/api/v2/search/tag/status/values?start={start_s}&q={}", urlencode("{ kind = server }")), 200),
    ];
    for id in otlp_ids.iter().chain(&zipkin_ids) {
        calls.push((format!("/api/traces/{id}"), 200));
        calls.push((format!("/api/v3/traces/{id}"), 200));
        calls.push((format!("/api/v2/traces/{id}"), 200));
    }
    for id in &zipkin_ids {
        calls.push((format!("/api/v2/trace/{id}"), 200));
    }
    calls
}

/// Zipkin spans as sent, in the order the store returns them: start, then id, the
/// client half of a shared span before its server half.
fn sorted_zipkin(spans: &[Value], trace_id: &str) -> Vec<Value> {
    let mut out: Vec<Value> = spans.iter().filter(|z| z["traceId"] == trace_id).cloned().collect();
    out.sort_by_key(|z| (z["timestamp"].as_u64(), z["id"].as_str().map(String::from), z["kind"] == "SERVER"));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_answers_the_same_on_both_backends() {
    let stack = tracekeeper_stack::require().await;
    let data = load(wall_clock_now());
    let dir = tempfile::tempdir().unwrap();
    let embedded = Arc::new(
        tracekeeper_storage::embedded::EmbeddedStore::open(tracekeeper_storage::embedded::EmbeddedConfig::new(
            dir.path(),
        ))
        .unwrap(),
    );
    let cql = Arc::new(tracekeeper_storage::cql::test_store(&stack.cql).await);
    let apis = [serve(embedded.clone(), embedded, &data).await, serve(cql.clone(), cql, &data).await];

    for (path, status) in calls(&data) {
        let (a, b) = (apis[0].get(&path).await, apis[1].get(&path).await);
        assert_eq!(a.0, status, "{path}: {}", a.1);
        assert_eq!(a, b, "{path}: embedded and CQL differ");
    }

    // Tempo's protobuf trace by id, as Grafana asks for it: the same bytes from both,
    // decoding to every span of the trace.
    let mut ids: Vec<TraceId> = data.spans.iter().map(|s| s.trace_id).collect();
    ids.sort();
    ids.dedup();
    for id in ids {
        for path in [format!("/api/traces/{}", id.to_hex()), format!("/api/v2/traces/{}", id.to_hex())] {
            let (a, b) = (apis[0].get_protobuf(&path).await, apis[1].get_protobuf(&path).await);
            assert_eq!(a.0, 200, "{path}");
            assert_eq!(a, b, "{path}: embedded and CQL differ");
        }
        let (_, body) = apis[0].get_protobuf(&format!("/api/traces/{}", id.to_hex())).await;
        let decoded = opentelemetry_proto::tonic::trace::v1::TracesData::decode(&body[..]).unwrap();
        let served: usize = decoded.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
        assert_eq!(served, data.spans.iter().filter(|s| s.trace_id == id).count(), "trace {id}");
    }

    // Spans that arrived as Zipkin come back as they were sent, shared halves and all.
    let mut zipkin_ids: Vec<&str> = data.zipkin.iter().map(|z| z["traceId"].as_str().unwrap()).collect();
    zipkin_ids.dedup();
    for id in zipkin_ids {
        let (status, served) = apis[0].get(&format!("/api/v2/trace/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(served, Value::Array(sorted_zipkin(&data.zipkin, id)), "trace {id}");
    }
    // Spot checks that the table's answers are the right ones, not only the same ones.
    let (_, deps) = apis[0].get(&format!("/api/v2/dependencies?endTs={}&lookback=3600000", data.now / 1_000_000)).await;
    let deps = deps.to_string();
    assert!(deps.contains(r#"{"callCount":3,"child":"payments","errorCount":1,"parent":"shop"}"#), "{deps}");
    assert!(deps.contains(r#""child":"inventory""#), "shared Zipkin spans make an edge: {deps}");
    let tempo = format!(
        "/api/search?q={}&start={}&end={}",
        urlencode("{ name = \"GET /checkout\" } >> { status = error }"),
        data.now / SEC - 3600,
        data.now / SEC + 1
    );
    let snake = calls(&data).into_iter().find(|(p, _)| p.contains("query.service_name")).unwrap().0;
    let (_, body) = apis[0].get(&snake).await;
    let mut trace_ids: Vec<&str> = body["result"]["resourceSpans"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["scopeSpans"].as_array().unwrap())
        .flat_map(|s| s["spans"].as_array().unwrap())
        .map(|s| s["traceId"].as_str().unwrap())
        .collect();
    trace_ids.dedup();
    assert_eq!(trace_ids.len(), 1, "query.num_traces=1 is honoured: {body}");
    let (_, found) = apis[0].get(&tempo).await;
    let traces = found["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 1, "one checkout had its charge declined: {found}");
    assert_eq!(traces[0]["spanSets"][0]["spans"][0]["name"], "charge");
    assert_eq!(traces[0]["rootServiceName"], "shop");
}
