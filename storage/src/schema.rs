//! The logical schema both backends hold.
//!
//! - **Span rows**, keyed by (tenant, trace id, span id): the span, encoded as an OTLP
//!   `ResourceSpans` holding just that span ([`encode_span`]).
//! - **Postings**, keyed by (tenant, term id, time, trace id), where the term id is a
//!   stable hash of the [`IndexTerm`] ([`TermRef::id`]). A posting says
//!   "this trace has a span producing this term, starting at or before `time`". Spans
//!   of one trace, in one batch, producing one term, in one [`POSTING_GROUP_NS`] slot
//!   share a single posting whose time is the latest of their start times. So every
//!   matching span start lies in `(time - POSTING_GROUP_NS, time]`, which lets the
//!   query engine scan an exact superset of a time range and verify each candidate.
//! - **Catalog entries**, keyed by (tenant, service, kind, operation).
//!
//! Every row is a pure function of the batch, so replays rewrite the same keys.

use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use prost::Message;
use tracekeeper_model::{otlp, AnyValue, Span, TraceId};

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
        Self::Double(if d == 0.0 { 0.0f64.to_bits() } else { d.to_bits() })
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

/// A term borrowed from a span: what write paths hash and encode, without copying
/// strings. [`IndexTerm`] is its owned twin, for queries; both encode identically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TermRef<'a> {
    All,
    Service(&'a str),
    Operation(&'a str, &'a str),
    Attribute(&'a str, ValueRef<'a>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueRef<'a> {
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(u64),
}

impl<'a> ValueRef<'a> {
    fn of(value: &'a AnyValue) -> Option<Self> {
        match value {
            AnyValue::String(s) if s.len() <= MAX_INDEXED_LEN => Some(Self::Str(s)),
            AnyValue::Bool(b) => Some(Self::Bool(*b)),
            AnyValue::Int(i) => Some(Self::Int(*i)),
            AnyValue::Double(d) if d.is_finite() => match IndexValue::double(*d) {
                IndexValue::Double(bits) => Some(Self::Double(bits)),
                _ => unreachable!("double() builds a Double"),
            },
            _ => None,
        }
    }
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl TermRef<'_> {
    /// Bytes of the term, prefix-free (every component is length-prefixed), so that a
    /// key scan for one term never runs into another.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::All => out.push(b'a'),
            Self::Service(service) => {
                out.push(b's');
                push_str(out, service);
            }
            Self::Operation(service, name) => {
                out.push(b'o');
                push_str(out, service);
                push_str(out, name);
            }
            Self::Attribute(key, value) => {
                out.push(b't');
                push_str(out, key);
                match value {
                    ValueRef::Str(s) => {
                        out.push(b's');
                        push_str(out, s);
                    }
                    ValueRef::Bool(b) => out.extend_from_slice(&[b'b', u8::from(*b)]),
                    ValueRef::Int(i) => {
                        out.push(b'i');
                        out.extend_from_slice(&i.to_be_bytes());
                    }
                    ValueRef::Double(bits) => {
                        out.push(b'd');
                        out.extend_from_slice(&bits.to_be_bytes());
                    }
                }
            }
        }
    }
}

impl TermRef<'_> {
    /// The term's id in posting keys: a stable hash of its encoding. Two terms with the
    /// same id share a posting list, which only adds candidates; the query engine
    /// verifies every candidate, so results stay exact. Short fixed-size ids keep
    /// posting keys short, which is most of the cost of inserting them.
    pub fn id(&self) -> u64 {
        let mut bytes = Vec::with_capacity(64);
        self.encode(&mut bytes);
        tracekeeper_model::hash::fnv1a64(&bytes)
    }
}

impl IndexTerm {
    pub fn as_ref(&self) -> TermRef<'_> {
        match self {
            Self::All => TermRef::All,
            Self::Service(s) => TermRef::Service(s),
            Self::Operation { service, name } => TermRef::Operation(service, name),
            Self::Attribute { key, value } => TermRef::Attribute(
                key,
                match value {
                    IndexValue::Str(s) => ValueRef::Str(s),
                    IndexValue::Bool(b) => ValueRef::Bool(*b),
                    IndexValue::Int(i) => ValueRef::Int(*i),
                    IndexValue::Double(bits) => ValueRef::Double(*bits),
                },
            ),
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        self.as_ref().encode(out);
    }
}

/// The key under which an event's name is indexed and searched, as Jaeger shows it:
/// a log's `event` field.
pub const EVENT_NAME_KEY: &str = "event";

/// The terms a span produces. A tag is found wherever the span holds it, as Jaeger's
/// search finds it: the span's attributes, its resource's (`service.name` has its own
/// term), its instrumentation scope's, and each event's, with each event's name under
/// [`EVENT_NAME_KEY`]. An array's elements (the first [`MAX_INDEXED_ELEMENTS`]) are
/// indexed as values of its key.
pub fn terms_of(span: &Span) -> impl Iterator<Item = TermRef<'_>> + '_ {
    let service = span.service_name();
    let fixed = [TermRef::All, TermRef::Service(service), TermRef::Operation(service, &span.name)];
    let event_names = span
        .events
        .iter()
        .filter(|e| e.name.len() <= MAX_INDEXED_LEN && !e.name.is_empty())
        .map(|e| TermRef::Attribute(EVENT_NAME_KEY, ValueRef::Str(&e.name)));
    let attrs = span
        .attributes
        .iter()
        .chain(span.resource.attributes.iter().filter(|kv| kv.key != "service.name"))
        .chain(span.scope.attributes.iter())
        .chain(span.events.iter().flat_map(|e| e.attributes.iter()))
        .filter(|kv| kv.key.len() <= MAX_INDEXED_LEN)
        .flat_map(|kv| {
            let elements = match &kv.value {
                AnyValue::Array(items) => &items[..items.len().min(MAX_INDEXED_ELEMENTS)],
                single => std::slice::from_ref(single),
            };
            elements.iter().filter_map(|value| ValueRef::of(value).map(|value| TermRef::Attribute(&kv.key, value)))
        });
    fixed.into_iter().chain(attrs).chain(event_names)
}

/// Most elements of one array attribute indexed, each as a value of its key: TraceQL
/// and Jaeger's tags find an array by any of its elements.
pub const MAX_INDEXED_ELEMENTS: usize = 16;

/// A stored span's identity within its trace: the span id, plus a marker byte for
/// server spans. Zipkin tracers often report an RPC's client and server halves under
/// one span id (shared spans, not all of them flagged `shared`); the marker keeps both
/// halves. OTLP span ids are unique within a trace, so for OTLP data the marker never
/// merges or splits spans.
pub fn row_id(span: &Span) -> Vec<u8> {
    let mut id = span.span_id.0.to_vec();
    if span.kind == tracekeeper_model::SpanKind::Server {
        id.push(1);
    }
    id
}

/// A posting to write: (term, time, trace, longest duration of the spans it groups).
pub type PostingRow<'a> = (TermRef<'a>, u64, TraceId, u64);

/// The postings a batch produces, deduplicated as described in the module docs.
pub fn postings_of(spans: &[Span]) -> Vec<PostingRow<'_>> {
    type Fast = std::hash::BuildHasherDefault<tracekeeper_model::hash::Fnv1a64>;
    let mut latest: std::collections::HashMap<(TermRef<'_>, TraceId, u64), (u64, u64), Fast> = Default::default();
    for span in spans {
        let slot = span.start_ns / POSTING_GROUP_NS;
        let duration = span.duration_ns();
        for term in terms_of(span) {
            let (time, longest) = latest.entry((term, span.trace_id, slot)).or_insert((span.start_ns, duration));
            *time = (*time).max(span.start_ns);
            *longest = (*longest).max(duration);
        }
    }
    latest.into_iter().map(|((term, trace, _), (time, longest))| (term, time, trace, longest)).collect()
}

/// Encodes spans as stored rows. Spans of one request share their resource and scope,
/// so their encodings are computed once per batch rather than once per span.
#[derive(Default)]
pub struct SpanEncoder {
    /// Keyed by the address of the shared allocation (only compared, never followed).
    resources: Vec<(usize, Vec<u8>)>,
    scopes: Vec<(usize, Vec<u8>)>,
}

fn cached<'c, T>(
    cache: &'c mut Vec<(usize, Vec<u8>)>,
    item: &std::sync::Arc<T>,
    encode: impl FnOnce(&T) -> Vec<u8>,
) -> &'c [u8] {
    let ptr = std::sync::Arc::as_ptr(item) as usize;
    match cache.iter().position(|(p, _)| *p == ptr) {
        Some(i) => &cache[i].1,
        None => {
            cache.push((ptr, encode(item)));
            &cache.last().expect("just pushed").1
        }
    }
}

fn put_len_delimited(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    prost::encoding::encode_key(tag, prost::encoding::WireType::LengthDelimited, out);
    prost::encoding::encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

impl SpanEncoder {
    /// The same bytes as [`encode_span`]: a `ResourceSpans` holding one `ScopeSpans`
    /// holding the span.
    pub fn encode(&mut self, span: &Span) -> Vec<u8> {
        let span_bytes = otlp::span_to_proto(span).encode_to_vec();
        let scope = cached(&mut self.scopes, &span.scope, |s| otlp::scope_to_proto(s).encode_to_vec());
        let mut scope_spans = Vec::with_capacity(scope.len() + span_bytes.len() + 16);
        put_len_delimited(&mut scope_spans, 1, scope);
        put_len_delimited(&mut scope_spans, 2, &span_bytes);
        if !span.scope.schema_url.is_empty() {
            put_len_delimited(&mut scope_spans, 3, span.scope.schema_url.as_bytes());
        }
        let resource = cached(&mut self.resources, &span.resource, |r| otlp::resource_to_proto(r).encode_to_vec());
        let mut out = Vec::with_capacity(resource.len() + scope_spans.len() + 16);
        put_len_delimited(&mut out, 1, resource);
        put_len_delimited(&mut out, 2, &scope_spans);
        if !span.resource.schema_url.is_empty() {
            put_len_delimited(&mut out, 3, span.resource.schema_url.as_bytes());
        }
        out
    }
}

pub fn encode_span(span: &Span) -> Vec<u8> {
    let mut groups = otlp::to_resource_spans(std::iter::once(span));
    groups.pop().expect("one span gives one group").encode_to_vec()
}

/// Decodes stored rows, sharing one `Resource` and one `Scope` among the spans whose
/// stored encodings are equal. A trace's spans come from a few processes, so each is
/// decoded once, and a 50,000-span trace holds a few resources rather than 50,000
/// copies.
#[derive(Default)]
pub struct SpanDecoder {
    resources: Vec<(Vec<u8>, std::sync::Arc<tracekeeper_model::Resource>)>,
    scopes: Vec<(Vec<u8>, std::sync::Arc<tracekeeper_model::Scope>)>,
}

/// Most distinct resources (and scopes) a decoder remembers.
const DECODER_CACHE: usize = 64;

/// The length-delimited fields 1, 2 and 3 of a message, or `None` when it has any
/// other field (then the caller decodes it the slow way).
fn fields(mut bytes: &[u8]) -> Option<[&[u8]; 3]> {
    use prost::encoding::{decode_key, decode_varint, WireType};
    let mut out: [&[u8]; 3] = [&[], &[], &[]];
    while !bytes.is_empty() {
        let (tag, wire) = decode_key(&mut bytes).ok()?;
        if wire != WireType::LengthDelimited || !(1..=3).contains(&tag) {
            return None;
        }
        let len = usize::try_from(decode_varint(&mut bytes).ok()?).ok()?;
        let value = bytes.get(..len)?;
        out[tag as usize - 1] = value;
        bytes = &bytes[len..];
    }
    Some(out)
}

fn shared<T>(
    cache: &mut Vec<(Vec<u8>, std::sync::Arc<T>)>,
    key: Vec<u8>,
    decode: impl FnOnce() -> Result<T, StorageError>,
) -> Result<std::sync::Arc<T>, StorageError> {
    if let Some((_, item)) = cache.iter().find(|(k, _)| *k == key) {
        return Ok(std::sync::Arc::clone(item));
    }
    let item = std::sync::Arc::new(decode()?);
    if cache.len() < DECODER_CACHE {
        cache.push((key, std::sync::Arc::clone(&item)));
    }
    Ok(item)
}

impl SpanDecoder {
    pub fn decode(&mut self, bytes: &[u8]) -> Result<Span, StorageError> {
        let corrupt = |e: prost::DecodeError| StorageError::Corrupt(e.to_string());
        let Some([resource, scope_spans, resource_schema]) = fields(bytes) else { return decode_span(bytes) };
        let Some([scope, span, scope_schema]) = fields(scope_spans) else { return decode_span(bytes) };
        let resource = shared(&mut self.resources, [resource, b"\0", resource_schema].concat(), || {
            let proto = opentelemetry_proto::tonic::resource::v1::Resource::decode(resource).map_err(corrupt)?;
            let schema = String::from_utf8_lossy(resource_schema).into_owned();
            Ok(otlp::resource_from_proto(Some(proto), schema))
        })?;
        let scope = shared(&mut self.scopes, [scope, b"\0", scope_schema].concat(), || {
            let proto = opentelemetry_proto::tonic::common::v1::InstrumentationScope::decode(scope).map_err(corrupt)?;
            Ok(otlp::scope_from_proto(Some(proto), String::from_utf8_lossy(scope_schema).into_owned()))
        })?;
        let span = opentelemetry_proto::tonic::trace::v1::Span::decode(span).map_err(corrupt)?;
        otlp::span_from_proto(span, &resource, &scope).map_err(StorageError::Corrupt)
    }
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
    fn the_sharing_decoder_decodes_what_the_plain_one_does() {
        let spans = [
            crate::testing::span(1, 1, "a", "x", 10),
            crate::testing::span(1, 2, "a", "y", 11),
            crate::testing::span(1, 3, "b", "z", 12),
        ];
        let mut decoder = SpanDecoder::default();
        let decoded: Vec<Span> = spans.iter().map(|s| decoder.decode(&encode_span(s)).unwrap()).collect();
        for (d, s) in decoded.iter().zip(&spans) {
            assert_eq!(d, s);
            assert_eq!(*d, decode_span(&encode_span(s)).unwrap());
        }
        assert!(std::sync::Arc::ptr_eq(&decoded[0].resource, &decoded[1].resource), "one resource, shared");
        assert!(!std::sync::Arc::ptr_eq(&decoded[0].resource, &decoded[2].resource));
        assert!(decoder.decode(b"\xff\xff").is_err(), "garbage is reported, not decoded");
    }

    #[test]
    fn batch_encoder_matches_the_plain_encoding() {
        use proptest::prelude::*;
        proptest!(|(spans in tracekeeper_model::testing::arb_spans())| {
            let mut encoder = SpanEncoder::default();
            for span in &spans {
                prop_assert_eq!(encoder.encode(span), encode_span(span));
            }
        });
    }

    #[test]
    fn owned_and_borrowed_terms_encode_alike() {
        let term = IndexTerm::Attribute { key: "k".into(), value: IndexValue::Str("v".into()) };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        term.encode(&mut a);
        TermRef::Attribute("k", ValueRef::Str("v")).encode(&mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn term_encoding_is_prefix_free() {
        let mut a = Vec::new();
        IndexTerm::Service("ab".into()).encode(&mut a);
        let mut b = Vec::new();
        IndexTerm::Service("abc".into()).encode(&mut b);
        assert!(!b.starts_with(&a));
    }
}
