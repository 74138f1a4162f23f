//! Search semantics every backend must give identically: run against each store.

use std::sync::Arc;
use std::time::Duration;

use tracekeeper_model::clock::ManualClock;
use tracekeeper_model::{AnyValue, KeyValue, Resource, Span, SpanId, StatusCode, TraceId};
use tracekeeper_retention::RetentionPolicies;
use tracekeeper_storage::testing::{batch, span};
use tracekeeper_storage::{SpanReader, SpanWriter};

use crate::engine::{QueryEngine, TraceQuery};
use crate::predicate::SpanPredicate;

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_800_000_000 * SEC;

fn query(span: SpanPredicate, limit: usize) -> TraceQuery {
    TraceQuery {
        span,
        start_ns: T0 - 3600 * SEC,
        end_ns: T0 + 3600 * SEC,
        min_trace_duration_ns: None,
        max_trace_duration_ns: None,
        limit,
    }
}

fn svc(name: &str) -> SpanPredicate {
    SpanPredicate { service: Some(name.into()), ..Default::default() }
}

fn tid(n: u32) -> TraceId {
    let mut id = [0u8; 16];
    id[12..].copy_from_slice(&n.to_be_bytes());
    id[0] = 0xab;
    TraceId(id)
}

fn at(trace: u32, span_id: u8, service: &str, name: &str, start_ns: u64) -> Span {
    let mut s = span(1, span_id, service, name, start_ns);
    s.trace_id = tid(trace);
    s
}

async fn ids(engine: &QueryEngine, q: &TraceQuery) -> Vec<TraceId> {
    engine.search("t", q).await.unwrap().into_iter().map(|f| f.summary.trace_id).collect()
}

/// Writes a fixed data set and checks every search rule. The store must be empty.
pub async fn search_conformance(writer: Arc<dyn SpanWriter>, reader: Arc<dyn SpanReader>) {
    let clock = Arc::new(ManualClock::new(T0 + 60 * SEC));
    let engine = QueryEngine::new(reader, Arc::new(RetentionPolicies::default()), clock.clone(), 1000);

    // 700 "web" traces, one a second, newest last; every one has http.method=GET, so
    // any LIMIT-then-intersect over a page of them would lose older matches.
    let mut spans = Vec::new();
    for i in 0..700u32 {
        let mut s = at(i, 1, "web", if i == 3 { "checkout" } else { "home" }, T0 - u64::from(700 - i) * SEC);
        s.attributes.push(KeyValue::string("http.method", "GET"));
        s.attributes.push(KeyValue::new("http.status_code", AnyValue::Int(if i == 3 { 500 } else { 200 })));
        spans.push(s);
    }
    for chunk in spans.chunks(100) {
        writer.write(batch("t", chunk.to_vec())).await.unwrap();
    }

    // Newest first, limit exact.
    assert_eq!(ids(&engine, &query(svc("web"), 3)).await, vec![tid(699), tid(698), tid(697)]);
    // Exact across the whole range: the one old match is found behind 696 newer ones.
    let combined = SpanPredicate {
        service: Some("web".into()),
        operation: Some("checkout".into()),
        tags: vec![("http.method".into(), "GET".into()), ("http.status_code".into(), "500".into())],
        ..Default::default()
    };
    assert_eq!(ids(&engine, &query(combined, 20)).await, vec![tid(3)]);
    // The service is optional; a typed tag alone finds it too.
    let by_tag = SpanPredicate { tags: vec![("http.status_code".into(), "500".into())], ..Default::default() };
    assert_eq!(ids(&engine, &query(by_tag, 20)).await, vec![tid(3)]);
    // Time range: [start, end] on span start.
    let mut window = query(svc("web"), 100);
    window.start_ns = T0 - 10 * SEC;
    window.end_ns = T0 - 8 * SEC;
    assert_eq!(ids(&engine, &window).await, vec![tid(692), tid(691), tid(690)]);

    // All conditions of one search hold on the same span.
    let mut a = at(1000, 1, "api", "GET /a", T0);
    a.attributes.push(KeyValue::string("user", "ann"));
    let mut b = at(1000, 2, "api", "GET /b", T0 + 1000);
    b.parent_span_id = Some(SpanId([1; 8]));
    b.end_ns = b.start_ns + 50 * 1_000_000;
    b.status.code = StatusCode::Error;
    b.resource = Arc::new(Resource {
        attributes: vec![KeyValue::string("service.name", "api"), KeyValue::string("region", "eu")],
        ..Default::default()
    });
    writer.write(batch("t", vec![a, b])).await.unwrap();
    let split = SpanPredicate {
        service: Some("api".into()),
        operation: Some("GET /a".into()),
        tags: vec![("region".into(), "eu".into())],
        ..Default::default()
    };
    assert!(ids(&engine, &query(split, 10)).await.is_empty(), "conditions must hold on one span");
    let same = SpanPredicate {
        operation: Some("GET /b".into()),
        tags: vec![("region".into(), "eu".into()), ("error".into(), "true".into())],
        min_duration_ns: Some(40 * 1_000_000),
        max_duration_ns: Some(60 * 1_000_000),
        ..svc("api")
    };
    assert_eq!(ids(&engine, &query(same.clone(), 10)).await, vec![tid(1000)]);
    let too_short = SpanPredicate { min_duration_ns: Some(51 * 1_000_000), ..same };
    assert!(ids(&engine, &query(too_short, 10)).await.is_empty());

    // Span duration bounds recorded with postings never hide a match. Trace 3000's long
    // span is in an older posting than its short ones; trace 3001's long and short
    // spans start at the same nanosecond but arrive in two batches, so they share a
    // (time, trace) and only a bound per batch keeps the long one findable.
    let ms = 1_000_000;
    let mut long_then_short = vec![at(3000, 1, "timer", "tick", T0 - 300 * SEC)];
    long_then_short[0].end_ns = long_then_short[0].start_ns + 80 * ms;
    long_then_short.extend((2..6).map(|i| at(3000, i, "timer", "tick", T0 - 200 * SEC + u64::from(i))));
    writer.write(batch("t", long_then_short)).await.unwrap();
    let mut long = at(3001, 1, "timer", "tock", T0 - 250 * SEC);
    long.end_ns = long.start_ns + 70 * ms;
    writer.write(batch("t", vec![long])).await.unwrap();
    writer.write(batch("t", vec![at(3001, 2, "timer", "tock", T0 - 250 * SEC)])).await.unwrap();
    let at_least = |min_ms: u64| SpanPredicate { min_duration_ns: Some(min_ms * ms), ..svc("timer") };
    assert_eq!(ids(&engine, &query(at_least(60), 10)).await, vec![tid(3001), tid(3000)]);
    assert_eq!(ids(&engine, &query(at_least(75), 10)).await, vec![tid(3000)]);
    assert!(ids(&engine, &query(at_least(81), 10)).await.is_empty());
    let any_timer = SpanPredicate { min_duration_ns: Some(60 * ms), ..Default::default() };
    let found = ids(&engine, &query(any_timer, 100)).await;
    assert!(found.contains(&tid(3000)) && found.contains(&tid(3001)), "by duration alone: {found:?}");

    // Trace duration and the summary.
    let mut long = query(svc("api"), 10);
    long.min_trace_duration_ns = Some(50 * 1_000_000);
    let found = engine.search("t", &long).await.unwrap();
    assert_eq!(found.len(), 1);
    let summary = &found[0].summary;
    assert_eq!((summary.root_service.as_str(), summary.root_name.as_str()), ("api", "GET /a"));
    assert_eq!((summary.span_count, summary.error_count), (2, 1));
    assert_eq!(summary.duration_ns, 1000 + 50 * 1_000_000);
    long.min_trace_duration_ns = Some(51 * 1_000_000);
    assert!(engine.search("t", &long).await.unwrap().is_empty());

    // A long trace ranks by its start, even when its matching span is recent.
    let mut early = at(2000, 1, "batch", "job", T0 - 1800 * SEC);
    early.end_ns = T0;
    let late_child = at(2000, 2, "batch", "step", T0 - 5 * SEC);
    let recent = at(2001, 1, "batch", "job", T0 - 100 * SEC);
    writer.write(batch("t", vec![early, late_child, recent])).await.unwrap();
    assert_eq!(ids(&engine, &query(svc("batch"), 10)).await, vec![tid(2001), tid(2000)]);
    assert_eq!(ids(&engine, &query(svc("batch"), 1)).await, vec![tid(2001)]);

    // Other tenants see nothing.
    assert!(engine.search("other", &query(svc("web"), 10)).await.unwrap().is_empty());

    // Retention: once a span is older than the tenant's retention it is gone from
    // every path, deleted or not.
    clock.set(T0 - 650 * SEC + Duration::from_secs(7 * 86_400).as_nanos() as u64);
    let visible = ids(&engine, &query(svc("web"), 1000)).await;
    assert_eq!(visible.len(), 650, "traces 0..50 started more than 7 days ago");
    assert_eq!(visible.last(), Some(&tid(50)));
    assert!(engine.trace("t", tid(3)).await.unwrap().0.is_empty());
    assert_eq!(engine.trace("t", tid(50)).await.unwrap().0.len(), 1);
}
