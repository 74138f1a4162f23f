//! model → the JSON the Jaeger UI and Jaeger's classic `/api/traces` clients read.
//!
//! Shapes follow Jaeger's `uimodel` (see `shared/reference/jaeger.md` §3): a trace has a
//! `processes` map, spans refer to it by `processID`, the parent is a `CHILD_OF`
//! reference and links are `FOLLOWS_FROM`. For OTLP data we add the tags Jaeger's own
//! OTLP translator adds (`span.kind`, `otel.status_code`, `error`, ...).

use std::sync::Arc;

use base64::Engine;
use serde::Serialize;

use crate::span::{AnyValue, KeyValue, Resource, Span, SpanKind, StatusCode};

/// The largest integer a JavaScript number holds exactly.
const JS_MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Trace {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    pub spans: Vec<JaegerSpan>,
    pub processes: std::collections::BTreeMap<String, Process>,
    pub warnings: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JaegerSpan {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
    pub flags: u32,
    pub operation_name: String,
    pub references: Vec<Reference>,
    pub start_time: u64,
    pub duration: u64,
    pub tags: Vec<Tag>,
    pub logs: Vec<Log>,
    #[serde(rename = "processID")]
    pub process_id: String,
    pub warnings: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Reference {
    pub ref_type: &'static str,
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Tag {
    pub key: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Log {
    pub timestamp: u64,
    pub fields: Vec<Tag>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    pub service_name: String,
    pub tags: Vec<Tag>,
}

/// Text for values Jaeger has no type for (arrays, maps) and for Zipkin's string tags.
pub fn value_to_text(value: &AnyValue) -> String {
    match value {
        AnyValue::Empty => String::new(),
        AnyValue::String(s) => s.clone(),
        AnyValue::Bool(b) => b.to_string(),
        AnyValue::Int(i) => i.to_string(),
        AnyValue::Double(d) => d.to_string(),
        AnyValue::Bytes(b) => base64::engine::general_purpose::STANDARD.encode(b),
        AnyValue::Array(_) | AnyValue::KvList(_) => value_to_json(value).to_string(),
    }
}

fn value_to_json(value: &AnyValue) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        AnyValue::Empty => J::Null,
        AnyValue::String(s) => J::String(s.clone()),
        AnyValue::Bool(b) => J::Bool(*b),
        AnyValue::Int(i) => J::from(*i),
        AnyValue::Double(d) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
        AnyValue::Bytes(_) => J::String(value_to_text(value)),
        AnyValue::Array(items) => J::Array(items.iter().map(value_to_json).collect()),
        AnyValue::KvList(kvs) => J::Object(kvs.iter().map(|kv| (kv.key.clone(), value_to_json(&kv.value))).collect()),
    }
}

pub fn tag(key: &str, value: &AnyValue) -> Tag {
    let (kind, value) = match value {
        AnyValue::String(s) => ("string", serde_json::Value::String(s.clone())),
        AnyValue::Bool(b) => ("bool", serde_json::Value::Bool(*b)),
        // Beyond 2^53 a JS number would silently round, so the UI gets the digits.
        AnyValue::Int(i) if i.abs() > JS_MAX_SAFE_INTEGER => ("int64", serde_json::Value::String(i.to_string())),
        AnyValue::Int(i) => ("int64", serde_json::Value::from(*i)),
        AnyValue::Double(d) => match serde_json::Number::from_f64(*d) {
            Some(n) => ("float64", serde_json::Value::Number(n)),
            None => ("float64", serde_json::Value::String(d.to_string())),
        },
        AnyValue::Bytes(_) => ("binary", serde_json::Value::String(value_to_text(value))),
        other => ("string", serde_json::Value::String(value_to_text(other))),
    };
    Tag { key: key.to_string(), kind, value }
}

fn tags(attrs: &[KeyValue]) -> Vec<Tag> {
    attrs.iter().map(|kv| tag(&kv.key, &kv.value)).collect()
}

fn string_tag(key: &str, value: impl Into<String>) -> Tag {
    tag(key, &AnyValue::String(value.into()))
}

/// Converts the spans of one trace. `warnings` are trace-level (truncation and the like).
pub fn to_trace(spans: &[Span], warnings: Vec<String>) -> Trace {
    let mut process_of: Vec<(Arc<Resource>, String)> = Vec::new();
    let mut processes = std::collections::BTreeMap::new();
    let mut out = Vec::with_capacity(spans.len());
    for span in spans {
        let process_id = match process_of.iter().find(|(r, _)| Arc::ptr_eq(r, &span.resource) || **r == *span.resource)
        {
            Some((_, id)) => id.clone(),
            None => {
                let id = format!("p{}", process_of.len() + 1);
                processes.insert(
                    id.clone(),
                    Process {
                        service_name: span.service_name().to_string(),
                        tags: tags(
                            &span
                                .resource
                                .attributes
                                .iter()
                                .filter(|kv| kv.key != "service.name")
                                .cloned()
                                .collect::<Vec<_>>(),
                        ),
                    },
                );
                process_of.push((Arc::clone(&span.resource), id.clone()));
                id
            }
        };
        out.push(to_span(span, process_id));
    }
    Trace {
        trace_id: spans.first().map(|s| s.trace_id.to_jaeger_hex()).unwrap_or_default(),
        spans: out,
        processes,
        warnings: (!warnings.is_empty()).then_some(warnings),
    }
}

fn to_span(span: &Span, process_id: String) -> JaegerSpan {
    let mut references = Vec::new();
    if let Some(parent) = span.parent_span_id {
        references.push(Reference {
            ref_type: "CHILD_OF",
            trace_id: span.trace_id.to_jaeger_hex(),
            span_id: parent.to_hex(),
        });
    }
    for link in &span.links {
        references.push(Reference {
            ref_type: "FOLLOWS_FROM",
            trace_id: link.trace_id.to_jaeger_hex(),
            span_id: link.span_id.to_hex(),
        });
    }
    let mut span_tags = tags(&span.attributes);
    if !span.scope.name.is_empty() {
        span_tags.push(string_tag("otel.scope.name", span.scope.name.clone()));
    }
    if !span.scope.version.is_empty() {
        span_tags.push(string_tag("otel.scope.version", span.scope.version.clone()));
    }
    if span.kind != SpanKind::Unspecified {
        span_tags.push(string_tag("span.kind", span.kind.jaeger_name()));
    }
    match span.status.code {
        StatusCode::Unset => {}
        StatusCode::Ok => span_tags.push(string_tag("otel.status_code", "OK")),
        StatusCode::Error => {
            span_tags.push(string_tag("otel.status_code", "ERROR"));
            span_tags.push(tag("error", &AnyValue::Bool(true)));
        }
    }
    if !span.status.message.is_empty() {
        span_tags.push(string_tag("otel.status_description", span.status.message.clone()));
    }
    if !span.trace_state.is_empty() {
        span_tags.push(string_tag("w3c.tracestate", span.trace_state.clone()));
    }
    JaegerSpan {
        trace_id: span.trace_id.to_jaeger_hex(),
        span_id: span.span_id.to_hex(),
        flags: span.flags,
        operation_name: span.name.clone(),
        references,
        start_time: span.start_ns / 1000,
        duration: span.duration_ns() / 1000,
        tags: span_tags,
        logs: span
            .events
            .iter()
            .map(|e| {
                let mut fields = vec![string_tag("event", e.name.clone())];
                fields.extend(tags(&e.attributes));
                Log { timestamp: e.time_ns / 1000, fields }
            })
            .collect(),
        process_id,
        warnings: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{SpanId, TraceId};
    use crate::span::{Event, Link, Scope, Status};

    fn span() -> Span {
        Span {
            trace_id: TraceId([0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]),
            span_id: SpanId([9; 8]),
            parent_span_id: Some(SpanId([7; 8])),
            trace_state: "k=v".into(),
            flags: 1,
            name: "GET /".into(),
            kind: SpanKind::Server,
            start_ns: 1_000_000_123_456,
            end_ns: 1_000_002_123_456,
            attributes: vec![KeyValue::new("big", AnyValue::Int(1 << 60)), KeyValue::new("ok", AnyValue::Bool(true))],
            dropped_attributes_count: 0,
            events: vec![Event {
                time_ns: 1_000_001_000_000,
                name: "retry".into(),
                attributes: vec![KeyValue::new("n", AnyValue::Double(1.5))],
                dropped_attributes_count: 0,
            }],
            dropped_events_count: 0,
            links: vec![Link {
                trace_id: TraceId([1; 16]),
                span_id: SpanId([2; 8]),
                trace_state: String::new(),
                attributes: vec![],
                dropped_attributes_count: 0,
                flags: 0,
            }],
            dropped_links_count: 0,
            status: Status { code: StatusCode::Error, message: "bad".into() },
            resource: Arc::new(Resource {
                attributes: vec![KeyValue::string("service.name", "api"), KeyValue::string("host", "h1")],
                ..Default::default()
            }),
            scope: Arc::new(Scope { name: "lib".into(), version: "1.0".into(), ..Default::default() }),
        }
    }

    #[test]
    fn span_maps_to_jaeger_shape() {
        let trace = serde_json::to_value(to_trace(&[span()], vec![])).unwrap();
        let s = &trace["spans"][0];
        assert_eq!(trace["traceID"], "0102030405060708");
        assert_eq!(trace["processes"]["p1"]["serviceName"], "api");
        assert_eq!(trace["processes"]["p1"]["tags"][0]["key"], "host");
        assert_eq!(s["startTime"], 1_000_000_123u64);
        assert_eq!(s["duration"], 2000);
        assert_eq!(s["references"][0]["refType"], "CHILD_OF");
        assert_eq!(s["references"][1]["refType"], "FOLLOWS_FROM");
        assert_eq!(s["references"][1]["traceID"], "01010101010101010101010101010101");
        assert_eq!(s["logs"][0]["fields"][0]["value"], "retry");
        assert_eq!(s["logs"][0]["fields"][1]["type"], "float64");
        let tag = |k: &str| s["tags"].as_array().unwrap().iter().find(|t| t["key"] == k).cloned().unwrap();
        assert_eq!(tag("big")["value"], (1i64 << 60).to_string());
        assert_eq!(tag("span.kind")["value"], "server");
        assert_eq!(tag("otel.status_code")["value"], "ERROR");
        assert_eq!(tag("error")["value"], true);
        assert_eq!(tag("otel.status_description")["value"], "bad");
        assert_eq!(tag("otel.scope.name")["value"], "lib");
        assert_eq!(tag("otel.scope.version")["value"], "1.0");
        assert_eq!(tag("w3c.tracestate")["value"], "k=v");
        assert!(trace["warnings"].is_null());
    }
}
