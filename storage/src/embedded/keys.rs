//! Key layout inside one bucket keyspace (docs/adr/0002-key-layout.md). Every key
//! starts with a table byte and holds the length-prefixed tenant, so tenants never
//! share a key: catalog and RED keys put the tenant right after the table byte; span
//! and posting keys put it after the trace or term id. The memtable orders keys by
//! comparing a 4-byte inline prefix before the key bytes behind a pointer: keys of one
//! tenant that started with the tenant all shared that prefix, so every comparison
//! read the key from memory (a cache miss), while ids mostly differ within it (16%
//! more spans/s on the same machine). Buckets written in the layouts before this one
//! are rewritten by `super::upgrade`.

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
    push_tenant(&mut key, tenant);
    key
}

fn push_tenant(key: &mut Vec<u8>, tenant: &str) {
    key.push(u8::try_from(tenant.len()).expect("tenant ids are at most 150 bytes"));
    key.extend_from_slice(tenant.as_bytes());
}

/// `table`, the id (trace or term), then the tenant.
fn owned_prefix(table: u8, tenant: &str, id: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + tenant.len() + id.len() + 32);
    key.push(table);
    key.extend_from_slice(id);
    push_tenant(&mut key, tenant);
    key
}

/// The tenant, the id (trace or term, `id_len` bytes) and the rest of a span or posting
/// key.
pub fn split_owner(key: &[u8], id_len: usize) -> Option<(&str, &[u8], &[u8])> {
    let tenant_at = 1 + id_len;
    let len = usize::from(*key.get(tenant_at)?);
    let tenant = std::str::from_utf8(key.get(tenant_at + 1..tenant_at + 1 + len)?).ok()?;
    let after_tenant = tenant_at + 1 + len;
    Some((tenant, key.get(1..1 + id_len)?, key.get(after_tenant..)?))
}

pub fn trace_prefix(tenant: &str, trace_id: TraceId) -> Vec<u8> {
    owned_prefix(SPAN, tenant, &trace_id.0)
}

/// The key that marks a trace as having spans in a bucket part (see `parts`): its
/// span-key prefix, so that its tenant is read back with [`split_owner`].
pub fn trace_mark(tenant: &str, trace_id: TraceId) -> Vec<u8> {
    trace_prefix(tenant, trace_id)
}

/// A span's key: its trace, start time and `row_id` ([`crate::schema::row_id`]: the
/// span id, and a marker for a shared span), so that a trace's spans are stored in the
/// order they are sent and can be read a page at a time.
pub fn span_key(tenant: &str, trace_id: TraceId, start_ns: u64, row_id: &[u8]) -> Vec<u8> {
    let mut key = trace_prefix(tenant, trace_id);
    key.extend_from_slice(&start_ns.to_be_bytes());
    key.extend_from_slice(row_id);
    key
}

/// The row id in what follows the trace prefix of a span key.
pub fn row_id_of(after_trace_prefix: &[u8]) -> Option<&[u8]> {
    let row_id = after_trace_prefix.get(8..)?;
    (row_id.len() >= 8).then_some(row_id)
}

/// Past every span key of a trace: start times and row ids are at most 17 bytes.
pub fn trace_end(tenant: &str, trace_id: TraceId) -> Vec<u8> {
    let mut key = trace_prefix(tenant, trace_id);
    key.extend_from_slice(&[0xff; 18]);
    key
}

pub fn term_prefix(tenant: &str, term: TermRef<'_>) -> Vec<u8> {
    term_id_prefix(tenant, term.id())
}

/// [`term_prefix`] of the term whose id is `term_id`.
pub fn term_id_prefix(tenant: &str, term_id: u64) -> Vec<u8> {
    owned_prefix(POSTING, tenant, &term_id.to_be_bytes())
}

/// Times are stored inverted so that a forward scan runs newest first. After the trace
/// id comes the longest duration of the spans the posting stands for (see
/// [`duration_suffix`]), when given: range bounds leave it out. It is in the key rather
/// than the value so that two batches grouping different spans under one (time, trace)
/// keep both bounds instead of the last one written.
pub fn posting_key(term_prefix: &[u8], time_ns: u64, trace_id: TraceId, max_duration_ns: Option<u64>) -> Vec<u8> {
    let mut key = Vec::with_capacity(term_prefix.len() + 28);
    key.extend_from_slice(term_prefix);
    key.extend_from_slice(&(u64::MAX - time_ns).to_be_bytes());
    key.extend_from_slice(&trace_id.0);
    if let Some(duration) = max_duration_ns {
        key.extend_from_slice(&duration_suffix(duration));
    }
    key
}

/// A duration in µs, rounded up so that it stays an upper bound, and capped: the cap
/// reads back as `u64::MAX`, no bound.
pub fn duration_suffix(duration_ns: u64) -> [u8; 4] {
    u32::try_from(duration_ns.div_ceil(1000)).unwrap_or(u32::MAX).to_be_bytes()
}

/// (time, trace, longest span duration) of a posting key whose term prefix is
/// `prefix_len` bytes.
pub fn parse_posting(key: &[u8], prefix_len: usize) -> Option<(u64, TraceId, u64)> {
    let rest = key.get(prefix_len..)?;
    if rest.len() != 28 {
        return None;
    }
    let time = u64::MAX - u64::from_be_bytes(rest[..8].try_into().ok()?);
    let trace = TraceId(rest[8..24].try_into().ok()?);
    let duration = match u32::from_be_bytes(rest[24..].try_into().ok()?) {
        u32::MAX => u64::MAX,
        micros => u64::from(micros) * 1000,
    };
    Some((time, trace, duration))
}

/// Length of the term prefix of a posting key for `tenant` ([`term_prefix`]).
pub fn term_prefix_len(tenant: &str) -> usize {
    2 + tenant.len() + 8
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posting_keys_read_back_and_sort_newest_first_within_their_range_bounds() {
        let prefix = term_prefix("t", TermRef::All);
        let trace = TraceId([7; 16]);
        for duration in [0, 1, 999, 1000, 1001, 5_000_000, 4_294_967_294_000, u64::MAX] {
            let key = posting_key(&prefix, 42, trace, Some(duration));
            let (time, id, bound) = parse_posting(&key, term_prefix_len("t")).unwrap();
            assert_eq!((time, id), (42, trace));
            assert!(bound >= duration, "{bound} bounds {duration}");
            assert!(bound - duration < 1000 || bound == u64::MAX, "{bound} is within a µs of {duration}");
            assert_eq!(posting_key(&prefix, 42, trace, Some(bound)), key, "a bound read back writes the same key");
        }
        let range_bound = posting_key(&prefix, 42, trace, None);
        assert_eq!(parse_posting(&range_bound, term_prefix_len("t")), None, "a range bound is not a posting");
        let newer = posting_key(&prefix, 43, trace, Some(u64::MAX));
        let key = posting_key(&prefix, 42, trace, Some(5));
        let lowest = posting_key(&prefix, 42, TraceId([0; 16]), None);
        let highest = posting_key(&prefix, 42, TraceId([0xff; 16]), Some(u64::MAX));
        assert!(newer < lowest && lowest < key && key < highest, "newest first, and the bounds enclose a time");
        assert_eq!(parse_posting(&key[..key.len() - 1], term_prefix_len("t")), None);
    }

    #[test]
    fn keys_keep_tenants_apart_and_read_their_owner_back() {
        let trace = TraceId([0x50; 16]);
        let key = span_key("ab", trace, 7, &[1; 8]);
        let (tenant, id, rest) = split_owner(&key, 16).unwrap();
        assert_eq!((tenant, id), ("ab", &trace.0[..]));
        assert_eq!(row_id_of(rest), Some(&[1u8; 8][..]));
        assert!(key.starts_with(&trace_prefix("ab", trace)) && key < trace_end("ab", trace));
        for other in ["a", "abc", "b"] {
            assert!(!key.starts_with(&trace_prefix(other, trace)), "{other} reads ab's span");
        }
        let term = term_prefix("ab", TermRef::All);
        let posting = posting_key(&term, 9, trace, Some(1000));
        let (tenant, id, _) = split_owner(&posting, 8).unwrap();
        assert_eq!((tenant, id), ("ab", &TermRef::All.id().to_be_bytes()[..]));
        assert_eq!(parse_posting(&posting, term_prefix_len("ab")), Some((9, trace, 1000)));
        assert!(!posting.starts_with(&term_prefix("a", TermRef::All)));
        assert_eq!(&key[..5], &[SPAN, 0x50, 0x50, 0x50, 0x50], "the trace id follows the table byte");
    }
}
