//! model → the JSON the Jaeger UI and Jaeger's classic `/api/traces` clients read.
//!
//! Shapes follow Jaeger's `uimodel` (see `shared/reference/jaeger.md` §3): a trace has a
//! `processes` map, spans refer to it by `processID`, the parent is a `CHILD_OF`
//! reference and links are `FOLLOWS_FROM`. For OTLP data we add the tags Jaeger's own
//! OTLP translator adds (`span.kind`, `otel.status_code`, `error`, ...).
//!
//! The JSON is written straight from borrowed spans: building an owned tree first cost
//! most of the time of fetching a large trace, in allocations alone. [`SpanJson`] and
//! [`Processes`] let a caller stream a trace a few spans at a time.

use std::sync::Arc;

use base64::Engine;
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};

use crate::span::{AnyValue, KeyValue, Resource, Span, SpanKind, StatusCode};

/// The largest integer a JavaScript number holds exactly.
const JS_MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

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

/// An id as lower-case hex, without allocating.
struct Hex<'a>(&'a [u8]);

impl Serialize for Hex<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 32];
        let out = &mut buf[..self.0.len() * 2];
        hex::encode_to_slice(self.0, out).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(std::str::from_utf8(out).map_err(serde::ser::Error::custom)?)
    }
}

/// One Jaeger tag: `{"key", "type", "value"}` in JSON; Jaeger's gRPC API builds its
/// `KeyValue` from the same tags ([`span_tags`], [`log_fields`], [`process_tags`]).
pub enum TagJson<'a> {
    Value(&'a str, &'a AnyValue),
    Text(&'a str, &'a str),
    Bool(&'a str, bool),
}

/// A tag's value as Jaeger types it.
enum TagValue<'a> {
    Text(&'a str),
    Owned(String),
    Bool(bool),
    Int(i64),
    Float(f64),
}

impl Serialize for TagValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            TagValue::Text(text) => serializer.serialize_str(text),
            TagValue::Owned(text) => serializer.serialize_str(text),
            TagValue::Bool(b) => serializer.serialize_bool(*b),
            TagValue::Int(i) => serializer.serialize_i64(*i),
            TagValue::Float(d) => serializer.serialize_f64(*d),
        }
    }
}

/// Jaeger's type name and value for an attribute value.
fn typed(value: &AnyValue) -> (&'static str, TagValue<'_>) {
    match value {
        AnyValue::String(s) => ("string", TagValue::Text(s)),
        AnyValue::Bool(b) => ("bool", TagValue::Bool(*b)),
        // Beyond 2^53 a JS number would silently round, so the UI gets the digits.
        AnyValue::Int(i) if i.abs() > JS_MAX_SAFE_INTEGER => ("int64", TagValue::Owned(i.to_string())),
        AnyValue::Int(i) => ("int64", TagValue::Int(*i)),
        AnyValue::Double(d) if d.is_finite() => ("float64", TagValue::Float(*d)),
        AnyValue::Double(d) => ("float64", TagValue::Owned(d.to_string())),
        AnyValue::Bytes(_) => ("binary", TagValue::Owned(value_to_text(value))),
        other => ("string", TagValue::Owned(value_to_text(other))),
    }
}

impl Serialize for TagJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (key, (kind, value)) = match *self {
            TagJson::Text(key, text) => (key, ("string", TagValue::Text(text))),
            TagJson::Bool(key, b) => (key, ("bool", TagValue::Bool(b))),
            TagJson::Value(key, value) => (key, typed(value)),
        };
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("key", key)?;
        map.serialize_entry("type", kind)?;
        map.serialize_entry("value", &value)?;
        map.end()
    }
}

fn attribute_tags(attrs: &[KeyValue]) -> impl Iterator<Item = TagJson<'_>> {
    attrs.iter().map(|kv| TagJson::Value(&kv.key, &kv.value))
}

/// A span's tags as Jaeger shows them: its attributes, then those Jaeger's OTLP
/// translator derives (scope, kind, status, trace state).
pub fn span_tags(span: &Span) -> impl Iterator<Item = TagJson<'_>> {
    attribute_tags(&span.attributes).chain(derived_tags(span))
}

/// An event's fields as a Jaeger log's: its name as `event`, then its attributes.
pub fn log_fields(event: &crate::Event) -> impl Iterator<Item = TagJson<'_>> {
    std::iter::once(TagJson::Text("event", &event.name)).chain(attribute_tags(&event.attributes))
}

/// A resource's attributes as a Jaeger process's tags (`service.name` is the process's
/// service name instead).
pub fn process_tags(resource: &Resource) -> impl Iterator<Item = TagJson<'_>> {
    attribute_tags(&resource.attributes).filter(|t| !is_service_name(t))
}

/// Serializes the items an iterator-making closure yields as a JSON array.
struct Seq<F>(F);

impl<F, I> Serialize for Seq<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq((self.0)())
    }
}

/// The Jaeger process ids (`p1`, `p2`, ...) of a trace's resources, in order of first
/// appearance. Serializes as the trace's `processes` map.
#[derive(Debug, Default)]
pub struct Processes {
    resources: Vec<Arc<Resource>>,
}

impl Processes {
    /// The 1-based number of `resource`'s process, assigning the next one to a resource
    /// not seen before.
    pub fn number_of(&mut self, resource: &Arc<Resource>) -> usize {
        // Spans decoded together share one Arc per resource, so the pointer test
        // almost always settles it.
        let found = self.resources.iter().position(|r| Arc::ptr_eq(r, resource) || **r == **resource);
        match found {
            Some(i) => i + 1,
            None => {
                self.resources.push(Arc::clone(resource));
                self.resources.len()
            }
        }
    }
}

struct ProcessJson<'a>(&'a Resource);

impl Serialize for ProcessJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut process = serializer.serialize_struct("Process", 2)?;
        process.serialize_field("serviceName", self.0.service_name())?;
        process.serialize_field("tags", &Seq(|| process_tags(self.0)))?;
        process.end()
    }
}

fn is_service_name(tag: &TagJson<'_>) -> bool {
    matches!(tag, TagJson::Value("service.name", _))
}

impl Serialize for Processes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.resources.len()))?;
        for (i, resource) in self.resources.iter().enumerate() {
            map.serialize_entry(&format_args!("p{}", i + 1), &ProcessJson(resource))?;
        }
        map.end()
    }
}

/// One span in Jaeger's shape; `process` is its number from [`Processes::number_of`].
pub struct SpanJson<'a> {
    pub span: &'a Span,
    pub process: usize,
}

struct Reference<'a> {
    kind: &'static str,
    trace_id: &'a crate::TraceId,
    span_id: &'a crate::SpanId,
}

impl Serialize for Reference<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut reference = serializer.serialize_struct("Reference", 3)?;
        reference.serialize_field("refType", self.kind)?;
        reference.serialize_field("traceID", &Hex(self.trace_id.jaeger_bytes()))?;
        reference.serialize_field("spanID", &Hex(&self.span_id.0))?;
        reference.end()
    }
}

/// The tags Jaeger's OTLP translator adds after a span's own attributes.
fn derived_tags(span: &Span) -> impl Iterator<Item = TagJson<'_>> {
    let scope = &span.scope;
    let status = match span.status.code {
        StatusCode::Unset => None,
        StatusCode::Ok => Some("OK"),
        StatusCode::Error => Some("ERROR"),
    };
    [
        (!scope.name.is_empty()).then_some(TagJson::Text("otel.scope.name", &scope.name)),
        (!scope.version.is_empty()).then_some(TagJson::Text("otel.scope.version", &scope.version)),
        (span.kind != SpanKind::Unspecified).then(|| TagJson::Text("span.kind", span.kind.jaeger_name())),
        status.map(|code| TagJson::Text("otel.status_code", code)),
        (span.status.code == StatusCode::Error).then_some(TagJson::Bool("error", true)),
        (!span.status.message.is_empty()).then_some(TagJson::Text("otel.status_description", &span.status.message)),
        (!span.trace_state.is_empty()).then_some(TagJson::Text("w3c.tracestate", &span.trace_state)),
    ]
    .into_iter()
    .flatten()
}

struct LogJson<'a>(&'a crate::Event);

impl Serialize for LogJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let event = self.0;
        let mut log = serializer.serialize_struct("Log", 2)?;
        log.serialize_field("timestamp", &(event.time_ns / 1000))?;
        log.serialize_field("fields", &Seq(|| log_fields(event)))?;
        log.end()
    }
}

impl Serialize for SpanJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let span = self.span;
        let mut out = serializer.serialize_struct("Span", 12)?;
        out.serialize_field("traceID", &Hex(span.trace_id.jaeger_bytes()))?;
        out.serialize_field("spanID", &Hex(&span.span_id.0))?;
        out.serialize_field("flags", &span.flags)?;
        out.serialize_field("operationName", &span.name)?;
        let references = || {
            let parent = span.parent_span_id.as_ref().map(|parent| Reference {
                kind: "CHILD_OF",
                trace_id: &span.trace_id,
                span_id: parent,
            });
            let links = span.links.iter().map(|link| Reference {
                kind: "FOLLOWS_FROM",
                trace_id: &link.trace_id,
                span_id: &link.span_id,
            });
            parent.into_iter().chain(links)
        };
        out.serialize_field("references", &Seq(references))?;
        out.serialize_field("startTime", &(span.start_ns / 1000))?;
        out.serialize_field("duration", &(span.duration_ns() / 1000))?;
        out.serialize_field("tags", &Seq(|| span_tags(span)))?;
        out.serialize_field("logs", &Seq(|| span.events.iter().map(LogJson)))?;
        out.serialize_field("processID", &format_args!("p{}", self.process))?;
        out.serialize_field("warnings", &None::<()>)?;
        out.end()
    }
}

/// One whole trace in Jaeger's shape. `warnings` are trace-level (truncation and the
/// like); none serializes as `null`, as Jaeger does.
pub struct TraceJson<'a> {
    pub spans: &'a [Span],
    pub warnings: Vec<String>,
}

/// The Jaeger JSON of one trace's spans.
pub fn to_trace(spans: &[Span], warnings: Vec<String>) -> TraceJson<'_> {
    TraceJson { spans, warnings }
}

impl TraceJson<'_> {
    /// Process numbers of the spans, in span order, and the processes they refer to.
    fn processes(&self) -> (Vec<usize>, Processes) {
        let mut processes = Processes::default();
        let numbers = self.spans.iter().map(|s| processes.number_of(&s.resource)).collect();
        (numbers, processes)
    }
}

/// The Jaeger trace id of a trace's spans (of the first; empty for none).
pub fn trace_id_text(spans: &[Span]) -> String {
    spans.first().map(|s| s.trace_id.to_jaeger_hex()).unwrap_or_default()
}

impl Serialize for TraceJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (numbers, processes) = self.processes();
        let mut trace = serializer.serialize_struct("Trace", 4)?;
        trace.serialize_field("traceID", &trace_id_text(self.spans))?;
        let spans = || self.spans.iter().zip(&numbers).map(|(span, &process)| SpanJson { span, process });
        trace.serialize_field("spans", &Seq(spans))?;
        trace.serialize_field("processes", &processes)?;
        trace.serialize_field("warnings", &(!self.warnings.is_empty()).then_some(&self.warnings))?;
        trace.end()
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

    #[test]
    fn tag_values_keep_their_jaeger_types() {
        let mut s = span();
        s.attributes = vec![
            KeyValue::new("small", AnyValue::Int(-5)),
            KeyValue::new("nan", AnyValue::Double(f64::NAN)),
            KeyValue::new("half", AnyValue::Double(0.5)),
            KeyValue::new("raw", AnyValue::Bytes(vec![0xff, 0])),
            KeyValue::new("list", AnyValue::Array(vec![AnyValue::Int(1), AnyValue::String("a\"b".into())])),
            KeyValue::new("none", AnyValue::Empty),
        ];
        let trace = serde_json::to_value(to_trace(&[s], vec!["cut".into()])).unwrap();
        let tags = &trace["spans"][0]["tags"];
        let expect = [
            ("small", "int64", serde_json::json!(-5)),
            ("nan", "float64", serde_json::json!("NaN")),
            ("half", "float64", serde_json::json!(0.5)),
            ("raw", "binary", serde_json::json!("/wA=")),
            ("list", "string", serde_json::json!("[1,\"a\\\"b\"]")),
            ("none", "string", serde_json::json!("")),
        ];
        for (i, (key, kind, value)) in expect.iter().enumerate() {
            assert_eq!(tags[i], serde_json::json!({"key": key, "type": kind, "value": value}), "tag {key}");
        }
        assert_eq!(trace["warnings"], serde_json::json!(["cut"]));
    }

    #[test]
    fn resources_become_numbered_processes_in_order_of_first_use() {
        let a = span();
        let mut b = span();
        b.resource =
            Arc::new(Resource { attributes: vec![KeyValue::string("service.name", "db")], ..Default::default() });
        let mut a_again = span();
        a_again.resource = Arc::new((*a.resource).clone());
        let trace = serde_json::to_value(to_trace(&[a, b, a_again], vec![])).unwrap();
        let ids: Vec<_> = trace["spans"].as_array().unwrap().iter().map(|s| s["processID"].clone()).collect();
        assert_eq!(ids, ["p1", "p2", "p1"]);
        assert_eq!(trace["processes"]["p2"], serde_json::json!({"serviceName": "db", "tags": []}));
        assert_eq!(trace["processes"].as_object().unwrap().len(), 2);
    }
}
