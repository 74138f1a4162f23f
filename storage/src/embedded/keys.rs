//! Key layout inside one bucket keyspace. Every key starts with a table byte and holds
//! the length-prefixed tenant, so tenants never share a key: catalog and RED keys put
//! the tenant right after the table byte; span and posting keys put it after the trace
//! or term id in buckets of the current layout ([`Layout`]).

use tracekeeper_model::{SpanKind, TraceId};

use crate::schema::TermRef;

pub const SPAN: u8 = b'S';
pub const POSTING: u8 = b'P';
pub const CATALOG: u8 = b'C';
/// RED cells (`super::red`).
pub const RED: u8 = b'R';

/// How a bucket lays out its span and posting keys; fixed when the bucket is created
/// and told by its name (`super::bucket_name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `b…` buckets: tenant first, and span keys without the start time, so a trace's
    /// spans are sorted after reading.
    NoStartTime,
    /// `c…` buckets: tenant first, then the trace or term id.
    TenantFirst,
    /// `d…` buckets: the trace or term id right after the table byte, then the tenant.
    /// The memtable orders keys by comparing a 4-byte inline prefix before the key
    /// bytes behind a pointer: tenant-first keys of one tenant all share that prefix,
    /// so every comparison read the key from memory (a cache miss). Id-first keys
    /// mostly differ within it; 16% more spans/s on the same machine.
    IdFirst,
}

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

/// `table`, then tenant and `id` in the order `layout` puts them.
fn owned_prefix(layout: Layout, table: u8, tenant: &str, id: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + tenant.len() + id.len() + 32);
    key.push(table);
    if layout == Layout::IdFirst {
        key.extend_from_slice(id);
        push_tenant(&mut key, tenant);
    } else {
        push_tenant(&mut key, tenant);
        key.extend_from_slice(id);
    }
    key
}

/// The tenant, the id (trace or term, `id_len` bytes) and the rest of a span or posting
/// key.
pub fn split_owner(layout: Layout, key: &[u8], id_len: usize) -> Option<(&str, &[u8], &[u8])> {
    let tenant_at = if layout == Layout::IdFirst { 1 + id_len } else { 1 };
    let len = usize::from(*key.get(tenant_at)?);
    let tenant = std::str::from_utf8(key.get(tenant_at + 1..tenant_at + 1 + len)?).ok()?;
    let after_tenant = tenant_at + 1 + len;
    let (id, rest) = if layout == Layout::IdFirst {
        (key.get(1..1 + id_len)?, key.get(after_tenant..)?)
    } else {
        (key.get(after_tenant..after_tenant + id_len)?, key.get(after_tenant + id_len..)?)
    };
    Some((tenant, id, rest))
}

pub fn trace_prefix(layout: Layout, tenant: &str, trace_id: TraceId) -> Vec<u8> {
    owned_prefix(layout, SPAN, tenant, &trace_id.0)
}

/// The key that marks a trace as having spans in a bucket part (see `parts`): its
/// span-key prefix in the id-first layout, whatever the part's layout, so that its
/// tenant is read back with [`split_owner`].
pub fn trace_mark(tenant: &str, trace_id: TraceId) -> Vec<u8> {
    trace_prefix(Layout::IdFirst, tenant, trace_id)
}

/// A span's key: its trace, start time and `row_id` ([`crate::schema::row_id`]: the
/// span id, and a marker for a shared span), so that a trace's spans are stored in the
/// order they are sent and can be read a page at a time. [`Layout::NoStartTime`] keys
/// leave the start time out.
pub fn span_key(layout: Layout, tenant: &str, trace_id: TraceId, start_ns: u64, row_id: &[u8]) -> Vec<u8> {
    let mut key = trace_prefix(layout, tenant, trace_id);
    if layout != Layout::NoStartTime {
        key.extend_from_slice(&start_ns.to_be_bytes());
    }
    key.extend_from_slice(row_id);
    key
}

/// The row id in what follows the trace prefix of a span key.
pub fn row_id_of(after_trace_prefix: &[u8], layout: Layout) -> Option<&[u8]> {
    let row_id = match layout {
        Layout::NoStartTime => after_trace_prefix,
        Layout::TenantFirst | Layout::IdFirst => after_trace_prefix.get(8..)?,
    };
    (row_id.len() >= 8).then_some(row_id)
}

/// Past every span key of a trace: start times and row ids are at most 17 bytes.
pub fn trace_end(layout: Layout, tenant: &str, trace_id: TraceId) -> Vec<u8> {
    let mut key = trace_prefix(layout, tenant, trace_id);
    key.extend_from_slice(&[0xff; 18]);
    key
}

pub fn term_prefix(layout: Layout, tenant: &str, term: TermRef<'_>) -> Vec<u8> {
    owned_prefix(layout, POSTING, tenant, &term.id().to_be_bytes())
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
/// `prefix_len` bytes. Keys written before the duration was recorded have none.
pub fn parse_posting(key: &[u8], prefix_len: usize) -> Option<(u64, TraceId, Option<u64>)> {
    let rest = key.get(prefix_len..)?;
    let time = u64::MAX - u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let trace = TraceId(rest.get(8..24)?.try_into().ok()?);
    let duration = match rest.len() {
        24 => None,
        28 => Some(match u32::from_be_bytes(rest[24..].try_into().ok()?) {
            u32::MAX => u64::MAX,
            micros => u64::from(micros) * 1000,
        }),
        _ => return None,
    };
    Some((time, trace, duration))
}

/// Length of the term prefix of a posting key for `tenant` ([`term_prefix`]), in every
/// layout.
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
        let prefix = term_prefix(Layout::IdFirst, "t", TermRef::All);
        let trace = TraceId([7; 16]);
        for duration in [0, 1, 999, 1000, 1001, 5_000_000, 4_294_967_294_000, u64::MAX] {
            let key = posting_key(&prefix, 42, trace, Some(duration));
            let (time, id, bound) = parse_posting(&key, term_prefix_len("t")).unwrap();
            assert_eq!((time, id), (42, trace));
            let bound = bound.unwrap();
            assert!(bound >= duration, "{bound} bounds {duration}");
            assert!(bound - duration < 1000 || bound == u64::MAX, "{bound} is within a µs of {duration}");
            assert_eq!(posting_key(&prefix, 42, trace, Some(bound)), key, "a bound read back writes the same key");
        }
        let old = posting_key(&prefix, 42, trace, None);
        assert_eq!(parse_posting(&old, term_prefix_len("t")), Some((42, trace, None)), "keys written before bounds");
        let newer = posting_key(&prefix, 43, trace, Some(u64::MAX));
        let key = posting_key(&prefix, 42, trace, Some(5));
        let lowest = posting_key(&prefix, 42, TraceId([0; 16]), None);
        let highest = posting_key(&prefix, 42, TraceId([0xff; 16]), Some(u64::MAX));
        assert!(newer < lowest && lowest < key && key < highest, "newest first, and the bounds enclose a time");
        assert_eq!(parse_posting(&key[..key.len() - 1], term_prefix_len("t")), None);
    }

    #[test]
    fn every_layout_keeps_tenants_apart_and_reads_its_owner_back() {
        let trace = TraceId([0x50; 16]);
        for layout in [Layout::NoStartTime, Layout::TenantFirst, Layout::IdFirst] {
            let key = span_key(layout, "ab", trace, 7, &[1; 8]);
            let (tenant, id, rest) = split_owner(layout, &key, 16).unwrap();
            assert_eq!((tenant, id), ("ab", &trace.0[..]), "{layout:?}");
            assert_eq!(row_id_of(rest, layout), Some(&[1u8; 8][..]), "{layout:?}");
            assert!(key.starts_with(&trace_prefix(layout, "ab", trace)) && key < trace_end(layout, "ab", trace));
            for other in ["a", "abc", "b"] {
                assert!(!key.starts_with(&trace_prefix(layout, other, trace)), "{layout:?}: {other} reads ab's span");
            }
            let term = term_prefix(layout, "ab", TermRef::All);
            let posting = posting_key(&term, 9, trace, Some(1000));
            let (tenant, id, _) = split_owner(layout, &posting, 8).unwrap();
            assert_eq!((tenant, id), ("ab", &TermRef::All.id().to_be_bytes()[..]), "{layout:?}");
            assert_eq!(parse_posting(&posting, term_prefix_len("ab")), Some((9, trace, Some(1000))));
            assert!(!posting.starts_with(&term_prefix(layout, "a", TermRef::All)));
        }
        let id_first = span_key(Layout::IdFirst, "t", trace, 7, &[1; 8]);
        assert_eq!(&id_first[..5], &[SPAN, 0x50, 0x50, 0x50, 0x50], "the trace id follows the table byte");
    }
}
