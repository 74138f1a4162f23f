//! The logical schema both backends hold.
//!
//! - **Span rows**, keyed by (tenant, trace id, span id): the span, encoded as an OTLP
//!   `ResourceSpans` holding just that span ([`encode_span`]).
//! - **Postings**, keyed by (tenant, [`IndexTerm`], time, trace id). A posting says
//!   "this trace has a span producing this term, starting at or before `time`". Spans
//!   of one trace, in one batch, producing one term, in one [`POSTING_GROUP_NS`] slot
//!   share a single posting whose time is the latest of their start times. So every
//!   matching span start lies in `(time - POSTING_GROUP_NS, time]`, which lets the
//!   query engine scan an exact superset of a time range and verify each candidate.
//! - **Catalog entries**, keyed by (tenant, service, kind, operation).
//!
//! Every row is a pure function of the batch, so replays rewrite the same keys.

use std::collections::BTreeSet;

use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use prost::Message;
use tracekeeper_model::{otlp, AnyValue, Span, SpanKind, TraceId};

use crate::api::StorageError;

/// Width of the slot within which one trace's spans share a posting.
pub const POSTING_GROUP_NS: u64 = 1_000_000_000;

/// Attribute keys and string values longer than this are not indexed (as in Jaeger);
/// queries on them fall back to scanning a broader posting list and verifying.
pub const MAX_INDEXED_LEN: usize = 256;

/// A searchable term.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IndexTerm {
    /// Every trace.
    All,
    /// Traces with a span of this service.
    Service(String),
    /// Traces with a span of this service and span name.
    Operation { service: String, name: String },
    /// Traces with a span whose span or resource attributes hold `key = value`.
    Attribute { key: String, value: IndexValue },
}

/// An attribute value in its indexed, typed form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IndexValue {
    Str(String),
    Bool(bool),
    Int(i64),
    /// The IEEE-754 bits, so that the type is `Eq`. Values are normalised (-0.0 → 0.0).
    Double(u64),
}

impl IndexValue {
    pub fn double(d: f64) -> Self {
        Self::Double(if d == 0.0 {
            0.0f64.to_bits()
        } else {
            d.to_bits()
        })
    }

    /// The indexed form of a stored value, or `None` for values that are not indexed
    /// (arrays, maps, bytes, empty, and over-long strings).
    pub fn of(value: &AnyValue) -> Option<Self> {
        match value {
            AnyValue::String(s) if s.len() <= MAX_INDEXED_LEN => Some(Self::Str(s.clone())),
            AnyValue::Bool(b) => Some(Self::Bool(*b)),
            AnyValue::Int(i) => Some(Self::Int(*i)),
            AnyValue::Double(d) if d.is_finite() => Some(Self::double(*d)),
            _ => None,
        }
    }
}

impl IndexTerm {
    /// Bytes of the term, prefix-free (every component is length-prefixed), so that a
    /// key scan for one term never runs into another.
    pub fn encode(&self, out: &mut Vec<u8>) {
        fn push_str(out: &mut Vec<u8>, s: &str) {
            out.extend_from_slice(&(s.len() as u32).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        match self {
            Self::All => out.push(b'a'),
            Self::Service(service) => {
                out.push(b's');
                push_str(out, service);
            }
            Self::Operation { service, name } => {
                out.push(b'o');
                push_str(out, service);
                push_str(out, name);
            }
            Self::Attribute { key, value } => {
                out.push(b't');
                push_str(out, key);
                match value {
                    IndexValue::Str(s) => {
                        out.push(b's');
                        push_str(out, s);
                    }
                    IndexValue::Bool(b) => out.extend_from_slice(&[b'b', u8::from(*b)]),
                    IndexValue::Int(i) => {
                        out.push(b'i');
                        out.extend_from_slice(&i.to_be_bytes());
                    }
                    IndexValue::Double(bits) => {
                        out.push(b'd');
                        out.extend_from_slice(&bits.to_be_bytes());
                    }
                }
            }
        }
    }
}

/// The terms a span produces.
pub fn terms_of(span: &Span) -> impl Iterator<Item = IndexTerm> + '_ {
    let service = span.service_name();
    let fixed = [
        IndexTerm::All,
        IndexTerm::Service(service.to_string()),
        IndexTerm::Operation {
            service: service.to_string(),
            name: span.name.clone(),
        },
    ];
    let attrs = span
        .attributes
        .iter()
        .chain(
            span.resource
                .attributes
                .iter()
                .filter(|kv| kv.key != "service.name"),
        )
        .filter(|kv| kv.key.len() <= MAX_INDEXED_LEN)
        .filter_map(|kv| {
            IndexValue::of(&kv.value).map(|value| IndexTerm::Attribute {
                key: kv.key.clone(),
                value,
            })
        });
    fixed.into_iter().chain(attrs)
}

/// A posting to write: (term, time, trace).
pub type PostingRow = (IndexTerm, u64, TraceId);

/// The postings a batch produces, deduplicated as described in the module docs.
pub fn postings_of(spans: &[Span]) -> Vec<PostingRow> {
    let mut latest: std::collections::HashMap<(IndexTerm, TraceId, u64), u64> =
        std::collections::HashMap::new();
    for span in spans {
        let slot = span.start_ns / POSTING_GROUP_NS;
        for term in terms_of(span) {
            let time = latest
                .entry((term, span.trace_id, slot))
                .or_insert(span.start_ns);
            *time = (*time).max(span.start_ns);
        }
    }
    latest
        .into_iter()
        .map(|((term, trace, _), time)| (term, time, trace))
        .collect()
}

/// The catalog entries a batch produces: (service, kind, operation, span start).
pub fn catalog_of(spans: &[Span]) -> BTreeSet<(String, SpanKind, String)> {
    spans
        .iter()
        .map(|s| (s.service_name().to_string(), s.kind, s.name.clone()))
        .collect()
}

pub fn encode_span(span: &Span) -> Vec<u8> {
    let mut groups = otlp::to_resource_spans(std::iter::once(span));
    groups
        .pop()
        .expect("one span gives one group")
        .encode_to_vec()
}

pub fn decode_span(bytes: &[u8]) -> Result<Span, StorageError> {
    let rs = ResourceSpans::decode(bytes).map_err(|e| StorageError::Corrupt(e.to_string()))?;
    let mut decoded = otlp::from_resource_spans(vec![rs]);
    match (decoded.spans.pop(), decoded.rejected.first()) {
        (Some(span), None) => Ok(span),
        (_, Some(reason)) => Err(StorageError::Corrupt(reason.clone())),
        (None, None) => Err(StorageError::Corrupt("stored row holds no span".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn term_encoding_is_prefix_free() {
        let mut a = Vec::new();
        IndexTerm::Service("ab".into()).encode(&mut a);
        let mut b = Vec::new();
        IndexTerm::Service("abc".into()).encode(&mut b);
        assert!(!b.starts_with(&a));
    }
}
