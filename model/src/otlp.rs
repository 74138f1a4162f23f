//! OTLP protobuf ↔ model.
//!
//! Decoding validates each span on its own, so that one bad span rejects only itself:
//! the OTLP partial-success contract.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{self as pc, any_value::Value as PValue};
use opentelemetry_proto::tonic::resource::v1 as pr;
use opentelemetry_proto::tonic::trace::v1::{self as pt, span as pspan};

use crate::ids::{IdError, SpanId, TraceId};
use crate::span::{AnyValue, Event, KeyValue, Link, Resource, Scope, Span, SpanKind, Status, StatusCode};

/// The spans a request carried, split into the valid ones and the reasons the others
/// were rejected.
#[derive(Debug, Default)]
pub struct Decoded {
    pub spans: Vec<Span>,
    pub rejected: Vec<String>,
}

impl Decoded {
    /// A one-line summary of the rejections for `partial_success.error_message`: the
    /// first few reasons and how many there were.
    pub fn rejection_message(&self) -> Option<String> {
        summarize_rejections(&self.rejected)
    }
}

/// Joins the first few rejection reasons into one readable message.
pub fn summarize_rejections(reasons: &[String]) -> Option<String> {
    const SHOWN: usize = 3;
    if reasons.is_empty() {
        return None;
    }
    let mut msg = format!("{} span(s) rejected: ", reasons.len());
    msg.push_str(&reasons.iter().take(SHOWN).cloned().collect::<Vec<_>>().join("; "));
    if reasons.len() > SHOWN {
        msg.push_str(&format!("; and {} more", reasons.len() - SHOWN));
    }
    Some(msg)
}

pub fn from_request(request: ExportTraceServiceRequest) -> Decoded {
    from_resource_spans(request.resource_spans)
}

pub fn from_resource_spans(resource_spans: Vec<pt::ResourceSpans>) -> Decoded {
    let mut out = Decoded::default();
    for rs in resource_spans {
        let resource = Arc::new(resource_from_proto(rs.resource, rs.schema_url));
        for ss in rs.scope_spans {
            let scope = Arc::new(scope_from_proto(ss.scope, ss.schema_url));
            for span in ss.spans {
                match span_from_proto(span, &resource, &scope) {
                    Ok(span) => out.spans.push(span),
                    Err(reason) => out.rejected.push(reason),
                }
            }
        }
    }
    out
}

pub fn resource_from_proto(resource: Option<pr::Resource>, schema_url: String) -> Resource {
    let resource = resource.unwrap_or_default();
    Resource {
        attributes: attributes_from_proto(resource.attributes),
        dropped_attributes_count: resource.dropped_attributes_count,
        schema_url,
    }
}

pub fn scope_from_proto(scope: Option<pc::InstrumentationScope>, schema_url: String) -> Scope {
    let scope = scope.unwrap_or_default();
    Scope {
        name: scope.name,
        version: scope.version,
        attributes: attributes_from_proto(scope.attributes),
        dropped_attributes_count: scope.dropped_attributes_count,
        schema_url,
    }
}

fn describe(trace_id: &[u8], span_id: &[u8]) -> String {
    format!("span {}/{}", hex::encode(trace_id), hex::encode(span_id))
}

/// One span, validated (ids, times) and attached to its resource and scope.
pub fn span_from_proto(span: pt::Span, resource: &Arc<Resource>, scope: &Arc<Scope>) -> Result<Span, String> {
    let who = || describe(&span.trace_id, &span.span_id);
    let id_err = |e: IdError| format!("{}: {e}", who());
    let trace_id = TraceId::from_bytes(&span.trace_id).map_err(id_err)?;
    let span_id = SpanId::from_bytes(&span.span_id).map_err(id_err)?;
    let parent_span_id = match span.parent_span_id.as_slice() {
        [] => None,
        bytes if bytes.iter().all(|b| *b == 0) && bytes.len() == 8 => None,
        bytes => Some(SpanId::from_bytes(bytes).map_err(|e| format!("{}: parent {e}", who()))?),
    };
    if span.end_time_unix_nano < span.start_time_unix_nano {
        return Err(format!(
            "{}: end time {} is before start time {}",
            who(),
            span.end_time_unix_nano,
            span.start_time_unix_nano
        ));
    }
    let mut links = Vec::with_capacity(span.links.len());
    for link in span.links {
        links.push(Link {
            trace_id: TraceId::from_bytes(&link.trace_id).map_err(|e| format!("{}: link {e}", who()))?,
            span_id: SpanId::from_bytes(&link.span_id).map_err(|e| format!("{}: link {e}", who()))?,
            trace_state: link.trace_state,
            attributes: attributes_from_proto(link.attributes),
            dropped_attributes_count: link.dropped_attributes_count,
            flags: link.flags,
        });
    }
    let status = span.status.unwrap_or_default();
    Ok(Span {
        trace_id,
        span_id,
        parent_span_id,
        trace_state: span.trace_state,
        flags: span.flags,
        name: span.name,
        kind: SpanKind::from_otlp(span.kind),
        start_ns: span.start_time_unix_nano,
        end_ns: span.end_time_unix_nano,
        attributes: attributes_from_proto(span.attributes),
        dropped_attributes_count: span.dropped_attributes_count,
        events: span
            .events
            .into_iter()
            .map(|e| Event {
                time_ns: e.time_unix_nano,
                name: e.name,
                attributes: attributes_from_proto(e.attributes),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: span.dropped_events_count,
        links,
        dropped_links_count: span.dropped_links_count,
        status: Status {
            code: match status.code {
                1 => StatusCode::Ok,
                2 => StatusCode::Error,
                _ => StatusCode::Unset,
            },
            message: status.message,
        },
        resource: Arc::clone(resource),
        scope: Arc::clone(scope),
    })
}

pub fn attributes_from_proto(attrs: Vec<pc::KeyValue>) -> Vec<KeyValue> {
    attrs.into_iter().map(|kv| KeyValue { key: kv.key, value: value_from_proto(kv.value) }).collect()
}

pub fn value_from_proto(value: Option<pc::AnyValue>) -> AnyValue {
    match value.and_then(|v| v.value) {
        None | Some(PValue::StringValueStrindex(_)) => AnyValue::Empty,
        Some(PValue::StringValue(s)) => AnyValue::String(s),
        Some(PValue::BoolValue(b)) => AnyValue::Bool(b),
        Some(PValue::IntValue(i)) => AnyValue::Int(i),
        Some(PValue::DoubleValue(d)) => AnyValue::Double(d),
        Some(PValue::BytesValue(b)) => AnyValue::Bytes(b),
        Some(PValue::ArrayValue(a)) => {
            AnyValue::Array(a.values.into_iter().map(|v| value_from_proto(Some(v))).collect())
        }
        Some(PValue::KvlistValue(l)) => AnyValue::KvList(attributes_from_proto(l.values)),
    }
}

pub fn attributes_to_proto(attrs: &[KeyValue]) -> Vec<pc::KeyValue> {
    attrs
        .iter()
        .map(|kv| pc::KeyValue { key: kv.key.clone(), value: Some(value_to_proto(&kv.value)), ..Default::default() })
        .collect()
}

pub fn value_to_proto(value: &AnyValue) -> pc::AnyValue {
    let value = match value {
        AnyValue::Empty => None,
        AnyValue::String(s) => Some(PValue::StringValue(s.clone())),
        AnyValue::Bool(b) => Some(PValue::BoolValue(*b)),
        AnyValue::Int(i) => Some(PValue::IntValue(*i)),
        AnyValue::Double(d) => Some(PValue::DoubleValue(*d)),
        AnyValue::Bytes(b) => Some(PValue::BytesValue(b.clone())),
        AnyValue::Array(a) => {
            Some(PValue::ArrayValue(pc::ArrayValue { values: a.iter().map(value_to_proto).collect() }))
        }
        AnyValue::KvList(l) => Some(PValue::KvlistValue(pc::KeyValueList { values: attributes_to_proto(l) })),
    };
    pc::AnyValue { value }
}

pub fn span_to_proto(span: &Span) -> pt::Span {
    pt::Span {
        trace_id: span.trace_id.0.to_vec(),
        span_id: span.span_id.0.to_vec(),
        trace_state: span.trace_state.clone(),
        parent_span_id: span.parent_span_id.map(|p| p.0.to_vec()).unwrap_or_default(),
        flags: span.flags,
        name: span.name.clone(),
        kind: span.kind.to_otlp(),
        start_time_unix_nano: span.start_ns,
        end_time_unix_nano: span.end_ns,
        attributes: attributes_to_proto(&span.attributes),
        dropped_attributes_count: span.dropped_attributes_count,
        events: span
            .events
            .iter()
            .map(|e| pspan::Event {
                time_unix_nano: e.time_ns,
                name: e.name.clone(),
                attributes: attributes_to_proto(&e.attributes),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: span.dropped_events_count,
        links: span
            .links
            .iter()
            .map(|l| pspan::Link {
                trace_id: l.trace_id.0.to_vec(),
                span_id: l.span_id.0.to_vec(),
                trace_state: l.trace_state.clone(),
                attributes: attributes_to_proto(&l.attributes),
                dropped_attributes_count: l.dropped_attributes_count,
                flags: l.flags,
            })
            .collect(),
        dropped_links_count: span.dropped_links_count,
        status: match (&span.status.code, span.status.message.is_empty()) {
            (StatusCode::Unset, true) => None,
            (code, _) => Some(pt::Status {
                message: span.status.message.clone(),
                code: match code {
                    StatusCode::Unset => 0,
                    StatusCode::Ok => 1,
                    StatusCode::Error => 2,
                },
            }),
        },
    }
}

pub fn resource_to_proto(resource: &Resource) -> pr::Resource {
    pr::Resource {
        attributes: attributes_to_proto(&resource.attributes),
        dropped_attributes_count: resource.dropped_attributes_count,
        ..Default::default()
    }
}

pub fn scope_to_proto(scope: &Scope) -> pc::InstrumentationScope {
    pc::InstrumentationScope {
        name: scope.name.clone(),
        version: scope.version.clone(),
        attributes: attributes_to_proto(&scope.attributes),
        dropped_attributes_count: scope.dropped_attributes_count,
    }
}

/// Groups spans back into `ResourceSpans` → `ScopeSpans`, in first-seen order. Spans
/// whose resource (or scope) is equal share one group, whether or not they share the
/// same allocation.
pub fn to_resource_spans<'a>(spans: impl IntoIterator<Item = &'a Span>) -> Vec<pt::ResourceSpans> {
    type ScopeGroup = (Arc<Scope>, Vec<pt::Span>);
    let mut groups: Vec<(Arc<Resource>, Vec<ScopeGroup>)> = Vec::new();
    for span in spans {
        let group = match groups.iter().position(|(r, _)| Arc::ptr_eq(r, &span.resource) || **r == *span.resource) {
            Some(i) => &mut groups[i].1,
            None => {
                groups.push((Arc::clone(&span.resource), Vec::new()));
                &mut groups.last_mut().expect("just pushed").1
            }
        };
        let scope_group = match group.iter().position(|(s, _)| Arc::ptr_eq(s, &span.scope) || **s == *span.scope) {
            Some(i) => &mut group[i].1,
            None => {
                group.push((Arc::clone(&span.scope), Vec::new()));
                &mut group.last_mut().expect("just pushed").1
            }
        };
        scope_group.push(span_to_proto(span));
    }
    groups
        .into_iter()
        .map(|(resource, scopes)| pt::ResourceSpans {
            resource: Some(resource_to_proto(&resource)),
            schema_url: resource.schema_url.clone(),
            scope_spans: scopes
                .into_iter()
                .map(|(scope, spans)| pt::ScopeSpans {
                    scope: Some(scope_to_proto(&scope)),
                    schema_url: scope.schema_url.clone(),
                    spans,
                })
                .collect(),
        })
        .collect()
}

pub fn to_request<'a>(spans: impl IntoIterator<Item = &'a Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest { resource_spans: to_resource_spans(spans) }
}

#[cfg(test)]
#[path = "otlp_tests.rs"]
mod tests;
