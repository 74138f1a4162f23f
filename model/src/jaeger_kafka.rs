//! Jaeger `api_v2` spans → model: the `jaeger_proto` and `jaeger_json` encodings the
//! OpenTelemetry Collector's Kafka exporter writes (one span per message, with its
//! process), and what Jaeger's own collectors put on Kafka.
//!
//! The mapping inverts the Collector's OTLP → Jaeger translation, which is also the
//! form `crate::jaeger` shows spans in: `span.kind`, `otel.status_code`,
//! `otel.status_description` and `error` become the kind and status,
//! `otel.scope.name`/`version` (or the older `otel.library.*`) the scope,
//! `w3c.tracestate` the trace state, the process the resource, a log's `event` field the
//! event's name, the first `CHILD_OF` reference in the trace the parent and every other
//! reference a link.

use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;

use crate::ids::{SpanId, TraceId};
use crate::otlp::Decoded;
use crate::span::{AnyValue, Event, KeyValue, Link, Resource, Scope, Span, SpanKind, Status, StatusCode};

/// The `jaeger.api_v2` messages, with the field numbers of `model.proto`.
pub mod proto {
    /// `google.protobuf.Timestamp`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Timestamp {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }

    /// `google.protobuf.Duration`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Duration {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KeyValue {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(int32, tag = "2")]
        pub v_type: i32,
        #[prost(string, tag = "3")]
        pub v_str: String,
        #[prost(bool, tag = "4")]
        pub v_bool: bool,
        #[prost(int64, tag = "5")]
        pub v_int64: i64,
        #[prost(double, tag = "6")]
        pub v_float64: f64,
        #[prost(bytes = "vec", tag = "7")]
        pub v_binary: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Log {
        #[prost(message, optional, tag = "1")]
        pub timestamp: Option<Timestamp>,
        #[prost(message, repeated, tag = "2")]
        pub fields: Vec<KeyValue>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SpanRef {
        #[prost(bytes = "vec", tag = "1")]
        pub trace_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub span_id: Vec<u8>,
        #[prost(int32, tag = "3")]
        pub ref_type: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Process {
        #[prost(string, tag = "1")]
        pub service_name: String,
        #[prost(message, repeated, tag = "2")]
        pub tags: Vec<KeyValue>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Span {
        #[prost(bytes = "vec", tag = "1")]
        pub trace_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub span_id: Vec<u8>,
        #[prost(string, tag = "3")]
        pub operation_name: String,
        #[prost(message, repeated, tag = "4")]
        pub references: Vec<SpanRef>,
        #[prost(uint32, tag = "5")]
        pub flags: u32,
        #[prost(message, optional, tag = "6")]
        pub start_time: Option<Timestamp>,
        #[prost(message, optional, tag = "7")]
        pub duration: Option<Duration>,
        #[prost(message, repeated, tag = "8")]
        pub tags: Vec<KeyValue>,
        #[prost(message, repeated, tag = "9")]
        pub logs: Vec<Log>,
        #[prost(message, optional, tag = "10")]
        pub process: Option<Process>,
        #[prost(string, tag = "11")]
        pub process_id: String,
        #[prost(string, repeated, tag = "12")]
        pub warnings: Vec<String>,
    }
}

/// `ValueType` and `SpanRefType` of `model.proto`.
const BOOL: i32 = 1;
const INT64: i32 = 2;
const FLOAT64: i32 = 3;
const BINARY: i32 = 4;
const FOLLOWS_FROM: i32 = 1;

/// One `jaeger_proto` message: a `jaeger.api_v2.Span`. `Err` when the bytes are not
/// one; a span that is one but cannot be stored (bad ids, no start) is rejected.
pub fn decode_proto(bytes: &[u8]) -> Result<Decoded, String> {
    let span =
        <proto::Span as prost::Message>::decode(bytes).map_err(|e| format!("not a Jaeger protobuf span: {e}"))?;
    Ok(one(to_model(span)))
}

/// One `jaeger_json` message: a `jaeger.api_v2.Span` in protobuf's JSON mapping.
pub fn decode_json(bytes: &[u8]) -> Result<Decoded, String> {
    let json: JsonSpan = serde_json::from_slice(bytes).map_err(|e| format!("not a Jaeger JSON span: {e}"))?;
    Ok(one(to_model(json.into_proto()?)))
}

fn one(span: Result<Span, String>) -> Decoded {
    let mut out = Decoded::default();
    match span {
        Ok(span) => out.spans.push(span),
        Err(reason) => out.rejected.push(reason),
    }
    out
}

fn to_model(span: proto::Span) -> Result<Span, String> {
    let trace_id = TraceId(fixed_bytes(&span.trace_id, "traceId")?);
    let span_id = SpanId(fixed_bytes(&span.span_id, "spanId")?);
    let who = format!("span {}/{}", trace_id.to_hex(), span_id.to_hex());
    let start_ns = timestamp_ns(span.start_time.as_ref()).map_err(|e| format!("{who}: startTime {e}"))?;
    let duration_ns = match &span.duration {
        Some(d) if d.seconds < 0 || d.nanos < 0 => return Err(format!("{who}: negative duration")),
        Some(d) => (d.seconds as u64).saturating_mul(1_000_000_000).saturating_add(d.nanos as u64),
        None => 0,
    };

    let mut parent_span_id = None;
    let mut links = Vec::new();
    for reference in span.references {
        let linked_trace = TraceId(fixed_bytes(&reference.trace_id, "reference traceId")?);
        let linked_span = SpanId(fixed_bytes(&reference.span_id, "reference spanId")?);
        if reference.ref_type != FOLLOWS_FROM && parent_span_id.is_none() && linked_trace == trace_id {
            parent_span_id = Some(linked_span);
        } else {
            links.push(Link {
                trace_id: linked_trace,
                span_id: linked_span,
                trace_state: String::new(),
                attributes: Vec::new(),
                dropped_attributes_count: 0,
                flags: 0,
            });
        }
    }

    let mut kind = SpanKind::Unspecified;
    let mut status = Status::default();
    let mut error_tag = false;
    let mut scope = Scope::default();
    let mut trace_state = String::new();
    let mut attributes = Vec::new();
    for tag in span.tags {
        let value = tag_value(&tag);
        match (tag.key.as_str(), value) {
            ("span.kind", AnyValue::String(name)) => kind = kind_named(&name),
            ("otel.status_code", AnyValue::String(code)) if code == "OK" => status.code = StatusCode::Ok,
            ("otel.status_code", AnyValue::String(code)) if code == "ERROR" => status.code = StatusCode::Error,
            ("otel.status_description", AnyValue::String(message)) => status.message = message,
            ("error", AnyValue::Bool(true)) => error_tag = true,
            ("otel.scope.name" | "otel.library.name", AnyValue::String(name)) => scope.name = name,
            ("otel.scope.version" | "otel.library.version", AnyValue::String(version)) => scope.version = version,
            ("w3c.tracestate", AnyValue::String(state)) => trace_state = state,
            (_, value) => attributes.push(KeyValue::new(tag.key, value)),
        }
    }
    if error_tag && status.code == StatusCode::Unset {
        status.code = StatusCode::Error;
    }

    let mut events = Vec::with_capacity(span.logs.len());
    for log in span.logs {
        let time_ns = timestamp_ns(log.timestamp.as_ref()).map_err(|e| format!("{who}: log timestamp {e}"))?;
        let mut name = String::new();
        let mut attributes = Vec::new();
        for field in log.fields {
            match (field.key.as_str(), tag_value(&field)) {
                ("event", AnyValue::String(event)) if name.is_empty() => name = event,
                (_, value) => attributes.push(KeyValue::new(field.key, value)),
            }
        }
        events.push(Event { time_ns, name, attributes, dropped_attributes_count: 0 });
    }

    let mut resource = Resource::default();
    if let Some(process) = span.process {
        resource.attributes.push(KeyValue::string("service.name", process.service_name));
        resource.attributes.extend(process.tags.iter().map(|tag| KeyValue::new(tag.key.clone(), tag_value(tag))));
    }

    Ok(Span {
        trace_id,
        span_id,
        parent_span_id,
        trace_state,
        flags: span.flags,
        name: span.operation_name,
        kind,
        start_ns,
        end_ns: start_ns.saturating_add(duration_ns),
        attributes,
        dropped_attributes_count: 0,
        events,
        dropped_events_count: 0,
        links,
        dropped_links_count: 0,
        status,
        resource: Arc::new(resource),
        scope: Arc::new(scope),
    })
}

fn kind_named(name: &str) -> SpanKind {
    match name {
        "client" => SpanKind::Client,
        "server" => SpanKind::Server,
        "producer" => SpanKind::Producer,
        "consumer" => SpanKind::Consumer,
        "internal" => SpanKind::Internal,
        _ => SpanKind::Unspecified,
    }
}

fn tag_value(tag: &proto::KeyValue) -> AnyValue {
    match tag.v_type {
        BOOL => AnyValue::Bool(tag.v_bool),
        INT64 => AnyValue::Int(tag.v_int64),
        FLOAT64 => AnyValue::Double(tag.v_float64),
        BINARY => AnyValue::Bytes(tag.v_binary.clone()),
        _ => AnyValue::String(tag.v_str.clone()),
    }
}

/// Jaeger ids are big-endian bytes; a 64-bit trace id is widened to 128 bits.
fn fixed_bytes<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N], String> {
    let mut out = [0u8; N];
    match bytes.len() {
        len if len == N => out.copy_from_slice(bytes),
        8 if N == 16 => out[8..].copy_from_slice(bytes),
        len => return Err(format!("{what} has {len} bytes, not {N}")),
    }
    if out == [0u8; N] {
        return Err(format!("{what} is all zeros"));
    }
    Ok(out)
}

fn timestamp_ns(timestamp: Option<&proto::Timestamp>) -> Result<u64, String> {
    let t = timestamp.ok_or("is missing")?;
    if t.seconds <= 0 || !(0..1_000_000_000).contains(&t.nanos) {
        return Err(format!("is out of range ({}s {}ns)", t.seconds, t.nanos));
    }
    Ok((t.seconds as u64).saturating_mul(1_000_000_000).saturating_add(t.nanos as u64))
}

/// `jaeger.api_v2.Span` as protobuf's JSON mapping writes it: ids in base64, times in
/// RFC 3339, durations as decimal seconds, 64-bit integers as strings, enums by name.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonSpan {
    trace_id: String,
    span_id: String,
    #[serde(default)]
    operation_name: String,
    #[serde(default)]
    references: Vec<JsonRef>,
    #[serde(default)]
    flags: u32,
    start_time: String,
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    tags: Vec<JsonKeyValue>,
    #[serde(default)]
    logs: Vec<JsonLog>,
    #[serde(default)]
    process: Option<JsonProcess>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonRef {
    trace_id: String,
    span_id: String,
    #[serde(default)]
    ref_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonLog {
    timestamp: String,
    #[serde(default)]
    fields: Vec<JsonKeyValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonProcess {
    #[serde(default)]
    service_name: String,
    #[serde(default)]
    tags: Vec<JsonKeyValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonKeyValue {
    key: String,
    #[serde(default)]
    v_type: Option<String>,
    #[serde(default)]
    v_str: String,
    #[serde(default)]
    v_bool: bool,
    #[serde(default)]
    v_int64: Option<serde_json::Value>,
    #[serde(default)]
    v_float64: Option<serde_json::Value>,
    #[serde(default)]
    v_binary: Option<String>,
}

impl JsonSpan {
    fn into_proto(self) -> Result<proto::Span, String> {
        let references = self
            .references
            .into_iter()
            .map(|r| {
                let ref_type = match r.ref_type.as_deref() {
                    None | Some("CHILD_OF") => 0,
                    Some("FOLLOWS_FROM") => FOLLOWS_FROM,
                    Some(other) => return Err(format!("unknown refType {other:?}")),
                };
                Ok(proto::SpanRef { trace_id: base64(&r.trace_id)?, span_id: base64(&r.span_id)?, ref_type })
            })
            .collect::<Result<_, String>>()?;
        let logs = self
            .logs
            .into_iter()
            .map(|log| {
                let fields = log.fields.into_iter().map(JsonKeyValue::into_proto).collect::<Result<_, _>>()?;
                Ok(proto::Log { timestamp: Some(rfc3339(&log.timestamp)?), fields })
            })
            .collect::<Result<_, String>>()?;
        let process = match self.process {
            Some(p) => Some(proto::Process {
                service_name: p.service_name,
                tags: p.tags.into_iter().map(JsonKeyValue::into_proto).collect::<Result<_, _>>()?,
            }),
            None => None,
        };
        Ok(proto::Span {
            trace_id: base64(&self.trace_id)?,
            span_id: base64(&self.span_id)?,
            operation_name: self.operation_name,
            references,
            flags: self.flags,
            start_time: Some(rfc3339(&self.start_time)?),
            duration: self.duration.as_deref().map(seconds).transpose()?,
            tags: self.tags.into_iter().map(JsonKeyValue::into_proto).collect::<Result<_, _>>()?,
            logs,
            process,
            process_id: String::new(),
            warnings: Vec::new(),
        })
    }
}

impl JsonKeyValue {
    fn into_proto(self) -> Result<proto::KeyValue, String> {
        let v_type = match self.v_type.as_deref() {
            None | Some("STRING") => 0,
            Some("BOOL") => BOOL,
            Some("INT64") => INT64,
            Some("FLOAT64") => FLOAT64,
            Some("BINARY") => BINARY,
            Some(other) => return Err(format!("tag {:?}: unknown vType {other:?}", self.key)),
        };
        let v_int64 = match &self.v_int64 {
            None => 0,
            Some(serde_json::Value::String(s)) => s.parse().map_err(|_| format!("tag {:?}: vInt64 {s:?}", self.key))?,
            Some(v) => v.as_i64().ok_or_else(|| format!("tag {:?}: vInt64 {v}", self.key))?,
        };
        let v_float64 = match &self.v_float64 {
            None => 0.0,
            Some(serde_json::Value::String(s)) => match s.as_str() {
                "NaN" => f64::NAN,
                "Infinity" => f64::INFINITY,
                "-Infinity" => f64::NEG_INFINITY,
                _ => s.parse().map_err(|_| format!("tag {:?}: vFloat64 {s:?}", self.key))?,
            },
            Some(v) => v.as_f64().ok_or_else(|| format!("tag {:?}: vFloat64 {v}", self.key))?,
        };
        let v_binary = self.v_binary.as_deref().map(base64).transpose()?.unwrap_or_default();
        Ok(proto::KeyValue {
            key: self.key,
            v_type,
            v_str: self.v_str,
            v_bool: self.v_bool,
            v_int64,
            v_float64,
            v_binary,
        })
    }
}

fn base64(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| format!("{text:?} is not base64: {e}"))
}

fn rfc3339(text: &str) -> Result<proto::Timestamp, String> {
    let time =
        chrono::DateTime::parse_from_rfc3339(text).map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))?;
    Ok(proto::Timestamp { seconds: time.timestamp(), nanos: time.timestamp_subsec_nanos() as i32 })
}

/// A protobuf JSON duration: decimal seconds with an `s`, e.g. `"0.000020240s"`.
fn seconds(text: &str) -> Result<proto::Duration, String> {
    let bad = || format!("{text:?} is not a duration in seconds");
    let number = text.strip_suffix('s').ok_or_else(bad)?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.starts_with('-') || fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let seconds: i64 = whole.parse().map_err(|_| bad())?;
    let nanos: i32 = format!("{fraction:0<9}").parse().map_err(|_| bad())?;
    Ok(proto::Duration { seconds, nanos })
}

#[cfg(test)]
#[path = "jaeger_kafka_tests.rs"]
mod tests;
