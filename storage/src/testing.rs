//! The conformance suite every backend must pass, and span builders for tests.

use std::sync::Arc;

use tracekeeper_model::{AnyValue, KeyValue, Resource, Scope, Span, SpanId, SpanKind, Status, TraceId};

use crate::api::{Operation, SpanReader, SpanWriter, WriteBatch};
use crate::schema::{IndexTerm, IndexValue};

const DAY_NS: u64 = 86_400_000_000_000;

/// A minimal span: trace `trace`, span `span`, 1 ms long.
pub fn span(trace: u8, span: u8, service: &str, name: &str, start_ns: u64) -> Span {
    Span {
        trace_id: TraceId([trace; 16]),
        span_id: SpanId([span; 8]),
        parent_span_id: None,
        trace_state: String::new(),
        flags: 0,
        name: name.into(),
        kind: SpanKind::Server,
        start_ns,
        end_ns: start_ns + 1_000_000,
        attributes: vec![],
        dropped_attributes_count: 0,
        events: vec![],
        dropped_events_count: 0,
        links: vec![],
        dropped_links_count: 0,
        status: Status::default(),
        resource: Arc::new(Resource {
            attributes: vec![KeyValue::string("service.name", service)],
            ..Default::default()
        }),
        scope: Arc::new(Scope::default()),
    }
}

pub fn batch(tenant: &str, spans: Vec<Span>) -> WriteBatch {
    WriteBatch { tenant: tenant.into(), spans, retention_ns: 7 * DAY_NS, now_ns: 1_700_000_000_000_000_000 + DAY_NS }
}

/// Runs every storage contract check against one backend. The store must be empty.
pub async fn conformance(writer: &dyn SpanWriter, reader: &dyn SpanReader) {
    let t0 = 1_700_000_000_000_000_000u64;
    let mut a1 = span(1, 1, "api", "GET /", t0);
    a1.attributes.push(KeyValue::new("http.status_code", AnyValue::Int(200)));
    let mut a2 = span(1, 2, "db", "query", t0 + 5_000);
    a2.parent_span_id = Some(SpanId([1; 8]));
    a2.kind = SpanKind::Client;
    let b1 = span(2, 1, "api", "GET /", t0 + 10 * 1_000_000_000);
    let c1 = span(3, 1, "api", "POST /", t0 + DAY_NS + 1);

    writer.write(batch("acme", vec![a2.clone(), a1.clone()])).await.unwrap();
    writer.write(batch("acme", vec![b1.clone(), c1.clone()])).await.unwrap();
    // Writing the same spans again, split differently, changes nothing.
    writer.write(batch("acme", vec![a1.clone()])).await.unwrap();
    writer.write(batch("acme", vec![a1.clone(), a2.clone(), b1.clone()])).await.unwrap();
    writer.write(batch("other", vec![span(1, 9, "secret", "x", t0)])).await.unwrap();

    // Traces: all spans, ordered by start, no duplicates, tenant-scoped.
    let (trace, truncated) = reader.trace("acme", a1.trace_id, usize::MAX).await.unwrap();
    assert_eq!(trace, vec![a1.clone(), a2.clone()]);
    assert!(!truncated);
    let (first, truncated) = reader.trace("acme", a1.trace_id, 1).await.unwrap();
    assert_eq!((first, truncated), (vec![a1.clone()], true));
    assert!(reader.trace("acme", TraceId([9; 16]), usize::MAX).await.unwrap().0.is_empty());
    let (other, _) = reader.trace("other", a1.trace_id, usize::MAX).await.unwrap();
    assert_eq!(other.len(), 1, "tenants must not see each other's spans");
    assert_eq!(other[0].service_name(), "secret");

    // Postings: newest first, inclusive range, paging.
    let all = reader.postings("acme", &IndexTerm::All, u64::MAX, 0, None, 100).await.unwrap();
    let mut traces: Vec<TraceId> = all.iter().map(|p| p.trace_id).collect();
    traces.dedup();
    assert_eq!(traces, vec![c1.trace_id, b1.trace_id, a1.trace_id]);
    assert!(all.windows(2).all(|w| w[0].time_ns >= w[1].time_ns), "newest first: {all:?}");
    assert!(all.iter().any(|p| p.trace_id == c1.trace_id && p.time_ns == c1.start_ns));

    let api = IndexTerm::Service("api".into());
    let window = reader.postings("acme", &api, b1.start_ns, a1.start_ns, None, 100).await.unwrap();
    assert_eq!(
        window.iter().map(|p| (p.time_ns, p.trace_id)).collect::<Vec<_>>(),
        vec![(b1.start_ns, b1.trace_id), (a1.start_ns, a1.trace_id)]
    );
    // A recorded bound is an upper bound of the durations of the spans it stands for.
    for (posting, span) in window.iter().zip([&b1, &a1]) {
        assert!(posting.max_duration_ns.is_none_or(|d| d >= span.duration_ns()), "{posting:?} for {span:?}");
    }
    let page1 = reader.postings("acme", &api, u64::MAX, 0, None, 1).await.unwrap();
    let page2 = reader.postings("acme", &api, u64::MAX, 0, page1.last().copied(), 1).await.unwrap();
    let page3 = reader.postings("acme", &api, u64::MAX, 0, page2.last().copied(), 5).await.unwrap();
    assert_eq!(page1[0].trace_id, c1.trace_id);
    assert_eq!(page2[0].trace_id, b1.trace_id);
    assert_eq!(page3.iter().map(|p| p.trace_id).collect::<Vec<_>>(), vec![a1.trace_id]);

    let typed = IndexTerm::Attribute { key: "http.status_code".into(), value: IndexValue::Int(200) };
    let hits = reader.postings("acme", &typed, u64::MAX, 0, None, 10).await.unwrap();
    assert_eq!(hits.iter().map(|p| p.trace_id).collect::<Vec<_>>(), vec![a1.trace_id]);
    let as_string = IndexTerm::Attribute { key: "http.status_code".into(), value: IndexValue::Str("200".into()) };
    assert!(reader.postings("acme", &as_string, u64::MAX, 0, None, 10).await.unwrap().is_empty());
    // Tags are indexed wherever a span holds them: its scope's attributes, and each
    // event's attributes and name (Jaeger's log fields, its `event` field); an array's
    // elements each as a value of its key.
    let mut logged = span(0x53, 1, "api", "GET /logged", t0 + 20 * 1_000_000_000);
    let mut scope = (*logged.scope).clone();
    scope.attributes.push(KeyValue::string("lib.flavor", "grpc"));
    logged.scope = Arc::new(scope);
    logged.events.push(tracekeeper_model::Event {
        time_ns: logged.start_ns + 1,
        name: "retry".into(),
        attributes: vec![KeyValue::new("attempt", AnyValue::Int(3))],
        dropped_attributes_count: 0,
    });
    logged
        .attributes
        .push(KeyValue::new("colours", AnyValue::Array(vec![AnyValue::String("blue".into()), AnyValue::Int(7)])));
    writer.write(batch("logged", vec![logged.clone()])).await.unwrap();
    for (key, value) in [
        ("colours", IndexValue::Str("blue".into())),
        ("colours", IndexValue::Int(7)),
        ("lib.flavor", IndexValue::Str("grpc".into())),
        ("attempt", IndexValue::Int(3)),
        ("event", IndexValue::Str("retry".into())),
    ] {
        let term = IndexTerm::Attribute { key: key.into(), value };
        let hits = reader.postings("logged", &term, u64::MAX, 0, None, 10).await.unwrap();
        assert_eq!(hits.iter().map(|p| p.trace_id).collect::<Vec<_>>(), vec![logged.trace_id], "{term:?}");
    }
    let db_op = IndexTerm::Operation { service: "db".into(), name: "query".into() };
    assert_eq!(reader.postings("acme", &db_op, u64::MAX, 0, None, 10).await.unwrap().len(), 1);
    assert!(reader.postings("other", &api, u64::MAX, 0, None, 10).await.unwrap().is_empty());

    // Catalogs.
    assert_eq!(reader.services("acme", 0).await.unwrap(), vec!["api".to_string(), "db".to_string()]);
    assert_eq!(reader.services("other", 0).await.unwrap(), vec!["secret".to_string()]);
    assert_eq!(reader.services("acme", t0 + 2 * DAY_NS).await.unwrap(), Vec::<String>::new());
    assert_eq!(
        reader.operations("acme", Some("api"), 0).await.unwrap(),
        vec![
            Operation { service: "api".into(), name: "GET /".into(), kind: SpanKind::Server },
            Operation { service: "api".into(), name: "POST /".into(), kind: SpanKind::Server },
        ]
    );
    assert_eq!(reader.operations("acme", None, 0).await.unwrap().len(), 3);

    // Span rows: counted without reading spans, rewrites not counted twice, and the
    // server half of a shared Zipkin span (same id) is a row of its own.
    let mut client = span(0x51, 1, "a", "call", t0);
    client.kind = SpanKind::Client;
    let rows = vec![client.clone(), span(0x51, 1, "b", "serve", t0 + 1), span(0x51, 2, "a", "x", t0 + 2)];
    writer.write(batch("rows", rows.clone())).await.unwrap();
    writer.write(batch("rows", rows)).await.unwrap();
    let id = TraceId([0x51; 16]);
    assert_eq!(reader.span_rows("rows", id, 100).await.unwrap().len(), 3);
    assert_eq!(reader.span_rows("rows", id, 2).await.unwrap().len(), 2);
    assert!(reader.span_rows("other", id, 100).await.unwrap().is_empty());
    assert_eq!(reader.trace("rows", id, 100).await.unwrap().0.len(), 3);

    // Pages: the trace's spans in the same order as whole, from any page size, across a
    // day (bucket) boundary, with equal start times and a shared span's two halves.
    let midnight = (t0 / DAY_NS + 1) * DAY_NS;
    let mut spans: Vec<Span> = (1..=9u8).map(|i| span(0x52, i, "p", "op", midnight - 3 + u64::from(i / 2))).collect();
    let mut shared_client = span(0x52, 5, "p", "call", midnight);
    shared_client.kind = SpanKind::Client;
    spans.push(shared_client);
    writer.write(batch("pages", spans[5..].to_vec())).await.unwrap();
    writer.write(batch("pages", spans[..5].to_vec())).await.unwrap();
    let id = TraceId([0x52; 16]);
    let (whole, _) = reader.trace("pages", id, usize::MAX).await.unwrap();
    assert_eq!(whole.len(), 10);
    let order: Vec<(u64, Vec<u8>)> = whole.iter().map(|s| (s.start_ns, crate::schema::row_id(s))).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "ordered by (start, row id): {order:?}");
    for page_size in [1, 3, 4, 10, 11] {
        assert_eq!(read_in_pages(reader, "pages", id, page_size).await, whole, "pages of {page_size}");
    }
    assert!(reader.trace_page("rows", id, None, 10).await.unwrap().is_empty(), "tenant-scoped");
}

/// The checker's contract on one backend, from an empty store: clean data is reported
/// clean with its counts; a span stored twice and data past its horizon are found.
pub async fn checker_conformance(writer: &dyn SpanWriter, checker: &dyn crate::Checkable) {
    let t0 = 1_700_000_000_000_000_000u64;
    let spans = vec![span(1, 1, "api", "GET /", t0), span(1, 2, "db", "query", t0 + 5), span(2, 1, "api", "GET /", t0)];
    writer.write(batch("t", spans)).await.unwrap();
    let keep_all = |_: &str| 0;
    let horizons = crate::Horizons { visible_from: &keep_all, gone_before: &keep_all };
    let report = checker.check(&horizons, &|_| {}).await.unwrap();
    assert_eq!(report.violations(), 0, "{report:?}");
    let counts = &report.tenants["t"];
    assert_eq!((counts.spans, counts.traces), (3, 2), "{report:?}");
    assert!(counts.postings > 0);

    // The same span id again with another start: two rows for one span.
    writer.write(batch("t", vec![span(2, 1, "api", "GET /", t0 + 2 * DAY_NS)])).await.unwrap();
    let report = checker.check(&horizons, &|_| {}).await.unwrap();
    assert_eq!(report.duplicate_spans, 1, "{report:?}");

    let after_all = |_: &str| u64::MAX;
    let expired = crate::Horizons { visible_from: &keep_all, gone_before: &after_all };
    assert_eq!(checker.check(&expired, &|_| {}).await.unwrap().expired_present, 4);
}

/// The [`crate::RedStore`] contract: additive cells, read back by minute range, per
/// tenant, with expired minutes (past retention at write time) not kept.
pub async fn red_conformance(store: &dyn crate::RedStore) {
    use crate::red::{RedCell, MINUTE_NS};
    let hour = 3_600_000_000_000u64;
    // An hour boundary falls between the second and third minutes.
    let minute = |n: u64| 1_800_000_000 * 1_000_000_000 / hour * hour - 2 * MINUTE_NS + n * MINUTE_NS;
    let now = minute(10);
    let cell = |m: u64, service: &str, error: bool, durations: &[f64]| {
        let mut cell = RedCell::new(minute(m), service, "GET /x", SpanKind::Server, error);
        durations.iter().for_each(|ms| cell.observe((ms * 1e6) as u64));
        cell
    };
    let day = 86_400_000_000_000;
    store
        .add_red("red-a", vec![cell(0, "cart", false, &[5.0, 7.0]), cell(1, "cart", true, &[900.0])], day, now)
        .await
        .unwrap();
    store
        .add_red("red-a", vec![cell(0, "cart", false, &[1.0]), cell(2, "pay", false, &[30.0]).of_roots(true)], day, now)
        .await
        .unwrap();
    store.add_red("red-b", vec![cell(0, "cart", false, &[1.0])], day, now).await.unwrap();
    // Already past a one-minute retention when written: not kept.
    store.add_red("red-a", vec![cell(3, "old", false, &[1.0])], MINUTE_NS, now).await.unwrap();

    let mut all = store.red("red-a", minute(0), minute(10)).await.unwrap();
    all.sort_by(|a, b| (a.minute_ns, &a.service, a.calls).cmp(&(b.minute_ns, &b.service, b.calls)));
    let summary: Vec<(u64, &str, bool, u64)> =
        all.iter().map(|c| ((c.minute_ns - minute(0)) / MINUTE_NS, c.service.as_str(), c.error, c.calls)).collect();
    assert_eq!(summary, [(0, "cart", false, 1), (0, "cart", false, 2), (1, "cart", true, 1), (2, "pay", false, 1)]);
    let twice = all.iter().find(|c| c.calls == 2).unwrap();
    assert_eq!(twice.sum_ms, 12.0);
    assert_eq!(twice.buckets.iter().sum::<u64>(), 2);
    assert_eq!(twice, &cell(0, "cart", false, &[5.0, 7.0]), "every field read back");
    let roots: Vec<&str> = all.iter().filter(|c| c.root).map(|c| c.service.as_str()).collect();
    assert_eq!(roots, ["pay"], "cells of root spans say so");

    let middle = store.red("red-a", minute(1), minute(2)).await.unwrap();
    assert_eq!(middle.len(), 1, "[from, to) by minute: {middle:?}");
    assert!(store.red("red-a", minute(5), minute(5)).await.unwrap().is_empty());
    assert_eq!(store.red("red-b", minute(0), minute(10)).await.unwrap().len(), 1, "tenants apart");
}

/// A whole trace read `page_size` spans at a time, each page resuming after the last.
pub async fn read_in_pages(reader: &dyn SpanReader, tenant: &str, id: TraceId, page_size: usize) -> Vec<Span> {
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = reader.trace_page(tenant, id, after.as_ref(), page_size).await.unwrap();
        assert!(page.len() <= page_size, "a page of {} for {page_size}", page.len());
        let Some(last) = page.last() else { return paged };
        after = Some(crate::api::SpanCursor::after(last));
        paged.extend(page);
    }
}
