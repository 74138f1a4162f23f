//! Key layout inside one bucket keyspace. Every key starts with a table byte and the
//! length-prefixed tenant, so tenants never share a key range.

use tracekeeper_model::{SpanKind, TraceId};

use crate::schema::TermRef;

pub const SPAN: u8 = b'S';
pub const POSTING: u8 = b'P';
pub const CATALOG: u8 = b'C';
/// RED cells (`super::red`).
pub const RED: u8 = b'R';

pub fn tenant_prefix(table: u8, tenant: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(64);
    key.push(table);
    key.push(u8::try_from(tenant.len()).expect("tenant ids are at most 150 bytes"));
    key.extend_from_slice(tenant.as_bytes());
    key
}

pub fn trace_prefix(tenant: &str, trace_id: TraceId) -> Vec<u8> {
    let mut key = tenant_prefix(SPAN, tenant);
    key.extend_from_slice(&trace_id.0);
    key
}

/// `row_id` is [`crate::schema::row_id`]: the span id, and a marker for a shared span.
pub fn span_key(tenant: &str, trace_id: TraceId, row_id: &[u8]) -> Vec<u8> {
    let mut key = trace_prefix(tenant, trace_id);
    key.extend_from_slice(row_id);
    key
}

pub fn term_prefix(tenant: &str, term: TermRef<'_>) -> Vec<u8> {
    let mut key = tenant_prefix(POSTING, tenant);
    key.extend_from_slice(&term.id().to_be_bytes());
    key
}

/// Times are stored inverted so that a forward scan runs newest first.
pub fn posting_key(term_prefix: &[u8], time_ns: u64, trace_id: TraceId) -> Vec<u8> {
    let mut key = Vec::with_capacity(term_prefix.len() + 24);
    key.extend_from_slice(term_prefix);
    key.extend_from_slice(&(u64::MAX - time_ns).to_be_bytes());
    key.extend_from_slice(&trace_id.0);
    key
}

/// Splits the (time, trace) suffix off a posting key.
pub fn parse_posting_suffix(key: &[u8]) -> Option<(u64, TraceId)> {
    let suffix = key.get(key.len().checked_sub(24)?..)?;
    let time = u64::MAX - u64::from_be_bytes(suffix[..8].try_into().ok()?);
    Some((time, TraceId(suffix[8..].try_into().ok()?)))
}

pub fn catalog_key(tenant: &str, service: &str, kind: SpanKind, operation: &str) -> Vec<u8> {
    let mut key = tenant_prefix(CATALOG, tenant);
    key.extend_from_slice(&(service.len() as u32).to_be_bytes());
    key.extend_from_slice(service.as_bytes());
    key.push(kind.to_otlp() as u8);
    key.extend_from_slice(operation.as_bytes());
    key
}

/// (service, kind, operation) from a catalog key, given the tenant prefix length.
pub fn parse_catalog_key(key: &[u8], prefix_len: usize) -> Option<(String, SpanKind, String)> {
    let rest = key.get(prefix_len..)?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let service = std::str::from_utf8(rest.get(4..4 + len)?).ok()?.to_string();
    let kind = SpanKind::from_otlp(i32::from(*rest.get(4 + len)?));
    let operation = std::str::from_utf8(rest.get(5 + len..)?).ok()?.to_string();
    Some((service, kind, operation))
}
