//! Zipkin v2 JSON ↔ model.
//!
//! The mapping follows the OpenTelemetry Collector's Zipkin translator in spirit:
//! the local endpoint's service name becomes the resource's `service.name`, endpoint
//! addresses become `net.host.*` / `net.peer.*` attributes, the `error` tag becomes an
//! error status, and annotations become events. Every choice is reversible, so a span
//! that arrived as Zipkin goes back out unchanged; the one exception is a status written
//! the OpenTelemetry way (`otel.status_code`, `otel.status_description`), which is read
//! as the status and goes back out in Zipkin's own form (`error`).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ids::{SpanId, TraceId};
use crate::otlp::Decoded;
use crate::span::{AnyValue, Event, KeyValue, Resource, Scope, Span, SpanKind, Status, StatusCode};

/// A Zipkin v2 span as it travels in JSON.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZipkinSpan {
    pub trace_id: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_endpoint: Option<Endpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_endpoint: Option<Endpoint>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<Annotation>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    pub timestamp: u64,
    pub value: String,
}

/// Attribute keys that carry endpoint fields, so they are not echoed back as tags.
const LOCAL_KEYS: [&str; 3] = ["net.host.ip", "net.host.ipv6", "net.host.port"];
const REMOTE_KEYS: [&str; 4] = ["peer.service", "net.peer.ip", "net.peer.ipv6", "net.peer.port"];
const DEBUG_KEY: &str = "zipkin.debug";
const OTEL_STATUS_CODE: &str = "otel.status_code";
const OTEL_STATUS_DESCRIPTION: &str = "otel.status_description";
const SHARED_KEY: &str = "zipkin.shared";

/// Parses a `POST /api/v2/spans` JSON body. A body that is not a JSON list of spans is
/// an error; a span with bad ids or no timestamp is rejected on its own.
pub fn decode(body: &[u8]) -> Result<Decoded, serde_json::Error> {
    let spans: Vec<ZipkinSpan> = serde_json::from_slice(body)?;
    let mut out = Decoded::default();
    for span in spans {
        match from_zipkin(span) {
            Ok(span) => out.spans.push(span),
            Err(reason) => out.rejected.push(reason),
        }
    }
    Ok(out)
}

pub fn from_zipkin(z: ZipkinSpan) -> Result<Span, String> {
    let who = format!("span {}/{}", z.trace_id, z.id);
    if z.trace_id.len() != 16 && z.trace_id.len() != 32 {
        return Err(format!("{who}: traceId must be 16 or 32 hex characters"));
    }
    let trace_id = TraceId::from_hex(&z.trace_id).map_err(|e| format!("{who}: {e}"))?;
    let span_id = SpanId::from_hex(&z.id).map_err(|e| format!("{who}: {e}"))?;
    let parent_span_id = match z.parent_id.as_deref() {
        // Some tracers (and the OpenTelemetry Collector's Zipkin encoders) write a
        // root's absent parent as zeros.
        None | Some("") => None,
        Some(p) if p.bytes().all(|b| b == b'0') => None,
        Some(p) => Some(SpanId::from_hex(p).map_err(|e| format!("{who}: parent {e}"))?),
    };
    let timestamp = z.timestamp.ok_or_else(|| format!("{who}: timestamp is required"))?;
    let start_ns = timestamp.saturating_mul(1000);
    let end_ns = start_ns.saturating_add(z.duration.unwrap_or(0).saturating_mul(1000));

    let mut resource = Resource::default();
    let mut attributes = Vec::new();
    if let Some(local) = z.local_endpoint {
        if let Some(name) = local.service_name {
            resource.attributes.push(KeyValue::string("service.name", name));
        }
        push_endpoint(&mut attributes, &LOCAL_KEYS, local.ipv4, local.ipv6, local.port);
    }
    if let Some(remote) = z.remote_endpoint {
        if let Some(name) = remote.service_name {
            attributes.push(KeyValue::string("peer.service", name));
        }
        push_endpoint(&mut attributes, &REMOTE_KEYS[1..], remote.ipv4, remote.ipv6, remote.port);
    }
    let mut tags = z.tags;
    // OpenTelemetry's Zipkin exporters write the status as `otel.status_code` (and
    // `otel.status_description`) beside Zipkin's `error` tag; those win when present.
    let status = match tags.remove(OTEL_STATUS_CODE).as_deref() {
        Some("ERROR" | "STATUS_CODE_ERROR") => {
            tags.remove("error");
            Status { code: StatusCode::Error, message: tags.remove(OTEL_STATUS_DESCRIPTION).unwrap_or_default() }
        }
        Some("OK" | "STATUS_CODE_OK") => {
            tags.remove(OTEL_STATUS_DESCRIPTION);
            Status { code: StatusCode::Ok, message: String::new() }
        }
        other => {
            if let Some(code) = other {
                tags.insert(OTEL_STATUS_CODE.into(), code.into());
            }
            match tags.remove("error") {
                Some(message) => Status { code: StatusCode::Error, message },
                None => Status::default(),
            }
        }
    };
    for (key, value) in tags {
        attributes.push(KeyValue::string(key, value));
    }
    if let Some(debug) = z.debug {
        attributes.push(KeyValue::new(DEBUG_KEY, AnyValue::Bool(debug)));
    }
    if let Some(shared) = z.shared {
        attributes.push(KeyValue::new(SHARED_KEY, AnyValue::Bool(shared)));
    }
    let kind = match z.kind.as_deref() {
        None => SpanKind::Unspecified,
        Some("CLIENT") => SpanKind::Client,
        Some("SERVER") => SpanKind::Server,
        Some("PRODUCER") => SpanKind::Producer,
        Some("CONSUMER") => SpanKind::Consumer,
        Some(other) => return Err(format!("{who}: unknown kind {other:?}")),
    };
    Ok(Span {
        trace_id,
        span_id,
        parent_span_id,
        trace_state: String::new(),
        flags: 0,
        name: z.name.unwrap_or_default(),
        kind,
        start_ns,
        end_ns,
        attributes,
        dropped_attributes_count: 0,
        events: z
            .annotations
            .into_iter()
            .map(|a| Event {
                time_ns: a.timestamp.saturating_mul(1000),
                name: a.value,
                attributes: Vec::new(),
                dropped_attributes_count: 0,
            })
            .collect(),
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        status,
        resource: Arc::new(resource),
        scope: Arc::new(Scope::default()),
    })
}

fn push_endpoint(attrs: &mut Vec<KeyValue>, keys: &[&str], v4: Option<String>, v6: Option<String>, port: Option<u16>) {
    if let Some(ip) = v4 {
        attrs.push(KeyValue::string(keys[0], ip));
    }
    if let Some(ip) = v6 {
        attrs.push(KeyValue::string(keys[1], ip));
    }
    if let Some(port) = port {
        attrs.push(KeyValue::new(keys[2], AnyValue::Int(i64::from(port))));
    }
}

fn string_of(value: &AnyValue) -> String {
    match value {
        AnyValue::String(s) => s.clone(),
        other => crate::jaeger::value_to_text(other),
    }
}

fn endpoint_from(attrs: &[KeyValue], keys: &[&str], service_name: Option<String>) -> Option<Endpoint> {
    let get = |k: &str| attrs.iter().find(|kv| kv.key == k).map(|kv| &kv.value);
    let port = match get(keys[2]) {
        Some(AnyValue::Int(p)) => u16::try_from(*p).ok(),
        _ => None,
    };
    let endpoint =
        Endpoint { service_name, ipv4: get(keys[0]).map(string_of), ipv6: get(keys[1]).map(string_of), port };
    (endpoint != Endpoint::default()).then_some(endpoint)
}

/// The Zipkin v2 form of a stored span: endpoints from the resource and the peer
/// attributes, string tags from every other attribute, annotations from events.
pub fn to_zipkin(span: &Span) -> ZipkinSpan {
    let service = span.resource.attributes.iter().find(|kv| kv.key == "service.name").map(|kv| string_of(&kv.value));
    let remote_service = span.attributes.iter().find(|kv| kv.key == REMOTE_KEYS[0]).map(|kv| string_of(&kv.value));
    let mut tags = BTreeMap::new();
    let mut debug = None;
    let mut shared = None;
    for kv in &span.attributes {
        match (kv.key.as_str(), &kv.value) {
            (DEBUG_KEY, AnyValue::Bool(b)) => debug = Some(*b),
            (SHARED_KEY, AnyValue::Bool(b)) => shared = Some(*b),
            (k, _) if LOCAL_KEYS.contains(&k) || REMOTE_KEYS.contains(&k) => {}
            (k, v) => {
                tags.insert(k.to_string(), string_of(v));
            }
        }
    }
    if span.status.code == StatusCode::Error {
        tags.insert("error".into(), span.status.message.clone());
    }
    ZipkinSpan {
        trace_id: span.trace_id.to_jaeger_hex(),
        id: span.span_id.to_hex(),
        parent_id: span.parent_span_id.map(|p| p.to_hex()),
        name: (!span.name.is_empty()).then(|| span.name.clone()),
        kind: match span.kind {
            SpanKind::Client => Some("CLIENT".into()),
            SpanKind::Server => Some("SERVER".into()),
            SpanKind::Producer => Some("PRODUCER".into()),
            SpanKind::Consumer => Some("CONSUMER".into()),
            SpanKind::Unspecified | SpanKind::Internal => None,
        },
        timestamp: Some(span.start_ns / 1000),
        duration: Some(span.duration_ns() / 1000),
        local_endpoint: endpoint_from(&span.attributes, &LOCAL_KEYS, service),
        remote_endpoint: endpoint_from(&span.attributes, &REMOTE_KEYS[1..], remote_service),
        annotations: span
            .events
            .iter()
            .map(|e| Annotation { timestamp: e.time_ns / 1000, value: e.name.clone() })
            .collect(),
        tags,
        debug,
        shared,
    }
}

#[cfg(test)]
mod tests {
    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;

    use super::*;

    fn arb_endpoint() -> impl Strategy<Value = Option<Endpoint>> {
        proptest::option::of(
            (
                proptest::option::of("[a-z]{1,8}"),
                proptest::option::of("10\\.[0-9]{1,3}\\.0\\.1"),
                proptest::option::of("::[0-9]{1,3}"),
                proptest::option::of(any::<u16>()),
            )
                .prop_map(|(service_name, ipv4, ipv6, port)| Endpoint { service_name, ipv4, ipv6, port })
                .prop_filter("not empty", |e| *e != Endpoint::default()),
        )
    }

    prop_compose! {
        fn arb_zipkin()(
            long in any::<bool>(),
            trace in any::<u128>().prop_filter("high half set", |t| (*t >> 64) != 0),
            id in 1u64..,
            parent in proptest::option::of(1u64..),
            name in proptest::option::of("[a-z /]{1,10}"),
            kind in proptest::option::of(prop_oneof![Just("CLIENT"), Just("SERVER"), Just("PRODUCER"), Just("CONSUMER")]),
            timestamp in 1u64..4_000_000_000_000_000,
            duration in 0u64..1_000_000_000,
            local in arb_endpoint(),
            remote in arb_endpoint(),
            annotations in vec((1u64..4_000_000_000_000_000, ".{0,10}"), 0..3),
            tags in btree_map("[a-z.]{1,8}", ".{0,10}", 0..4),
            debug in proptest::option::of(any::<bool>()),
            shared in proptest::option::of(any::<bool>()),
        ) -> ZipkinSpan {
            ZipkinSpan {
                trace_id: if long { format!("{trace:032x}") } else { format!("{:016x}", trace as u64 | 1) },
                id: format!("{id:016x}"),
                parent_id: parent.map(|p| format!("{p:016x}")),
                name, kind: kind.map(String::from), timestamp: Some(timestamp), duration: Some(duration),
                local_endpoint: local, remote_endpoint: remote,
                annotations: annotations.into_iter().map(|(timestamp, value)| Annotation { timestamp, value }).collect(),
                tags, debug, shared,
            }
        }
    }

    #[test]
    fn an_opentelemetry_status_is_the_status() {
        let tags = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let span = |t| ZipkinSpan {
            trace_id: "0102030405060708".into(),
            id: "0102030405060708".into(),
            timestamp: Some(1),
            tags: t,
            ..Default::default()
        };
        let error = from_zipkin(span(tags(&[
            ("otel.status_code", "STATUS_CODE_ERROR"),
            ("otel.status_description", "card declined"),
            ("error", "true"),
        ])))
        .unwrap();
        assert_eq!(error.status, Status { code: StatusCode::Error, message: "card declined".into() });
        assert!(error.attributes.is_empty(), "{:?}", error.attributes);
        let ok = from_zipkin(span(tags(&[("otel.status_code", "OK")]))).unwrap();
        assert_eq!(ok.status.code, StatusCode::Ok);
        let zipkin = from_zipkin(span(tags(&[("error", "timeout")]))).unwrap();
        assert_eq!(zipkin.status, Status { code: StatusCode::Error, message: "timeout".into() });
        let odd = from_zipkin(span(tags(&[("otel.status_code", "MAYBE")]))).unwrap();
        assert_eq!(odd.status.code, StatusCode::Unset);
        assert_eq!(odd.attributes, vec![KeyValue::string("otel.status_code", "MAYBE")], "kept as it came");
    }

    proptest! {
        /// Zipkin → model → Zipkin gives back exactly what was sent.
        #[test]
        fn zipkin_round_trip_is_lossless(z in arb_zipkin()) {
            let span = from_zipkin(z.clone()).unwrap();
            prop_assert_eq!(to_zipkin(&span), z);
        }
    }

    #[test]
    fn bad_spans_are_rejected_one_by_one() {
        let body = br#"[
            {"traceId":"0000000000000001","id":"0000000000000002","timestamp":1,"name":"ok"},
            {"traceId":"xyz","id":"0000000000000002","timestamp":1},
            {"traceId":"0000000000000001","id":"0000000000000003"}
        ]"#;
        let decoded = decode(body).unwrap();
        assert_eq!(decoded.spans.len(), 1);
        assert_eq!(decoded.rejected.len(), 2);
        assert!(decoded.rejected[0].contains("traceId must be 16 or 32"), "{}", decoded.rejected[0]);
        assert!(decoded.rejected[1].contains("timestamp is required"), "{}", decoded.rejected[1]);
    }

    #[test]
    fn error_tag_becomes_status() {
        let body = br#"[{"traceId":"0000000000000001","id":"0000000000000002","timestamp":5,"tags":{"error":"boom"}}]"#;
        let span = &decode(body).unwrap().spans[0];
        assert_eq!(span.status, Status { code: StatusCode::Error, message: "boom".into() });
        assert!(span.attributes.is_empty());
    }
}
