//! Our spans as Jaeger's api_v2 model (`model.proto`), with the same tags, logs and
//! process the JSON API shows (`tracekeeper_model::jaeger`).

use tracekeeper_jaeger_proto::api_v2::{KeyValue, Log, Process, Span as JaegerSpan, SpanRef, SpanRefType, ValueType};
use tracekeeper_model::jaeger::{log_fields, process_tags, span_tags, value_to_text, TagJson};
use tracekeeper_model::{AnyValue, Span};

use super::timestamp;

fn key_value(tag: TagJson<'_>) -> KeyValue {
    let mut kv = KeyValue { key: String::new(), ..Default::default() };
    match tag {
        TagJson::Text(key, text) => (kv.key, kv.v_str) = (key.to_string(), text.to_string()),
        TagJson::Bool(key, b) => {
            (kv.key, kv.v_type, kv.v_bool) = (key.to_string(), ValueType::Bool as i32, b);
        }
        TagJson::Value(key, value) => {
            kv.key = key.to_string();
            match value {
                AnyValue::String(s) => kv.v_str = s.clone(),
                AnyValue::Bool(b) => (kv.v_type, kv.v_bool) = (ValueType::Bool as i32, *b),
                AnyValue::Int(i) => (kv.v_type, kv.v_int64) = (ValueType::Int64 as i32, *i),
                AnyValue::Double(d) => (kv.v_type, kv.v_float64) = (ValueType::Float64 as i32, *d),
                AnyValue::Bytes(b) => (kv.v_type, kv.v_binary) = (ValueType::Binary as i32, b.clone()),
                // Arrays and maps are strings in Jaeger's model, as its OTLP translator
                // writes them.
                other => kv.v_str = value_to_text(other),
            }
        }
    }
    kv
}

fn duration(ns: u64) -> prost_types::Duration {
    prost_types::Duration { seconds: (ns / 1_000_000_000) as i64, nanos: (ns % 1_000_000_000) as i32 }
}

/// One span, its process inline (the api_v2 gRPC API sends no process map).
pub fn span(span: &Span) -> JaegerSpan {
    let parent = span.parent_span_id.map(|parent| SpanRef {
        trace_id: span.trace_id.0.to_vec(),
        span_id: parent.0.to_vec(),
        ref_type: SpanRefType::ChildOf as i32,
    });
    let links = span.links.iter().map(|link| SpanRef {
        trace_id: link.trace_id.0.to_vec(),
        span_id: link.span_id.0.to_vec(),
        ref_type: SpanRefType::FollowsFrom as i32,
    });
    JaegerSpan {
        trace_id: span.trace_id.0.to_vec(),
        span_id: span.span_id.0.to_vec(),
        operation_name: span.name.clone(),
        references: parent.into_iter().chain(links).collect(),
        flags: span.flags,
        start_time: Some(timestamp(span.start_ns)),
        duration: Some(duration(span.duration_ns())),
        tags: span_tags(span).map(key_value).collect(),
        logs: span
            .events
            .iter()
            .map(|event| Log {
                timestamp: Some(timestamp(event.time_ns)),
                fields: log_fields(event).map(key_value).collect(),
            })
            .collect(),
        process: Some(Process {
            service_name: span.resource.service_name().to_string(),
            tags: process_tags(&span.resource).map(key_value).collect(),
        }),
        process_id: String::new(),
        warnings: Vec::new(),
    }
}
