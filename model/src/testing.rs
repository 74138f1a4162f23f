//! proptest strategies for the model, shared by the tests of every crate.

use std::sync::Arc;

use proptest::collection::vec;
use proptest::prelude::*;

use crate::ids::{SpanId, TraceId};
use crate::span::*;

fn arb_trace_id() -> impl Strategy<Value = TraceId> {
    any::<[u8; 16]>().prop_filter("non-zero", |b| *b != [0; 16]).prop_map(TraceId)
}

fn arb_span_id() -> impl Strategy<Value = SpanId> {
    any::<[u8; 8]>().prop_filter("non-zero", |b| *b != [0; 8]).prop_map(SpanId)
}

fn arb_scalar() -> impl Strategy<Value = AnyValue> {
    prop_oneof![
        Just(AnyValue::Empty),
        ".{0,12}".prop_map(AnyValue::String),
        any::<bool>().prop_map(AnyValue::Bool),
        any::<i64>().prop_map(AnyValue::Int),
        any::<f64>().prop_filter("finite", |d| d.is_finite()).prop_map(AnyValue::Double),
        vec(any::<u8>(), 0..8).prop_map(AnyValue::Bytes),
    ]
}

pub fn arb_value() -> impl Strategy<Value = AnyValue> {
    arb_scalar().prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..3).prop_map(AnyValue::Array),
            vec(("[a-z.]{1,6}", inner), 0..3)
                .prop_map(|kvs| AnyValue::KvList(kvs.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect())),
        ]
    })
}

pub fn arb_attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    vec(("[a-z._]{1,10}", arb_value()), 0..4)
        .prop_map(|kvs| kvs.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect())
}

fn arb_kind() -> impl Strategy<Value = SpanKind> {
    (0..6i32).prop_map(SpanKind::from_otlp)
}

fn arb_status() -> impl Strategy<Value = Status> {
    (prop_oneof![Just(StatusCode::Unset), Just(StatusCode::Ok), Just(StatusCode::Error)], ".{0,8}")
        .prop_map(|(code, message)| Status { code, message })
}

fn arb_event() -> impl Strategy<Value = Event> {
    (any::<u64>(), ".{0,8}", arb_attributes(), any::<u32>()).prop_map(|(time_ns, name, attributes, dropped)| Event {
        time_ns,
        name,
        attributes,
        dropped_attributes_count: dropped,
    })
}

fn arb_link() -> impl Strategy<Value = Link> {
    (arb_trace_id(), arb_span_id(), "[a-z=,]{0,8}", arb_attributes(), any::<u32>(), any::<u32>()).prop_map(
        |(trace_id, span_id, trace_state, attributes, dropped, flags)| Link {
            trace_id,
            span_id,
            trace_state,
            attributes,
            dropped_attributes_count: dropped,
            flags,
        },
    )
}

prop_compose! {
    fn arb_span_body()(
        trace_id in arb_trace_id(),
        span_id in arb_span_id(),
        parent in proptest::option::of(arb_span_id()),
        trace_state in "[a-z=,]{0,8}",
        flags in any::<u32>(),
        name in ".{0,16}",
        kind in arb_kind(),
        start in 0u64..(u64::MAX / 2),
        len in 0u64..(u64::MAX / 2),
        attributes in arb_attributes(),
        dropped in any::<(u32, u32, u32)>(),
        events in vec(arb_event(), 0..3),
        links in vec(arb_link(), 0..2),
        status in arb_status(),
    ) -> Span {
        Span {
            trace_id, span_id, parent_span_id: parent, trace_state, flags, name, kind,
            start_ns: start, end_ns: start + len, attributes,
            dropped_attributes_count: dropped.0, events, dropped_events_count: dropped.1,
            links, dropped_links_count: dropped.2, status,
            resource: Arc::new(Resource::default()), scope: Arc::new(Scope::default()),
        }
    }
}

/// Spans grouped under distinct resources and scopes, in the order a grouped OTLP
/// request would list them, so that regrouping gives back the same structure.
pub fn arb_spans() -> impl Strategy<Value = Vec<Span>> {
    let scope_group = (".{0,6}", ".{0,6}", arb_attributes(), any::<u32>(), vec(arb_span_body(), 1..3));
    let resource_group = (arb_attributes(), any::<u32>(), "[a-z:/.]{0,8}", vec(scope_group, 1..3));
    vec(resource_group, 1..3).prop_map(|resources| {
        let mut spans = Vec::new();
        for (r, (mut attrs, dropped, schema_url, scopes)) in resources.into_iter().enumerate() {
            attrs.push(KeyValue::new("group", AnyValue::Int(r as i64)));
            let resource = Arc::new(Resource { attributes: attrs, dropped_attributes_count: dropped, schema_url });
            for (s, (name, version, mut attrs, dropped, bodies)) in scopes.into_iter().enumerate() {
                attrs.push(KeyValue::new("group", AnyValue::Int(s as i64)));
                let scope = Arc::new(Scope {
                    name,
                    version,
                    attributes: attrs,
                    dropped_attributes_count: dropped,
                    schema_url: String::new(),
                });
                for mut span in bodies {
                    span.resource = Arc::clone(&resource);
                    span.scope = Arc::clone(&scope);
                    spans.push(span);
                }
            }
        }
        spans
    })
}
