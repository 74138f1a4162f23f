//! What `fixtures/layouts-2026-12/` holds: the batches an older version wrote into it,
//! day by day, and the key layout each day's bucket was created in.

use tracekeeper_model::{AnyValue, KeyValue, SpanId};

use crate::api::WriteBatch;
use crate::testing::{batch, span};

pub const DAY: u64 = 86_400_000_000_000;
pub const T0: u64 = 1_700_000_000_000_000_000 - 1_700_000_000_000_000_000 % DAY;

/// The layouts of the fixture's buckets, oldest first: `b` (no start time in span
/// keys, no duration bound in postings), `c` (tenant first) and `d` (today's).
pub const BUCKET_LETTERS: [char; 3] = ['b', 'c', 'd'];

/// The batches written while buckets were created in layout `BUCKET_LETTERS[session]`,
/// in order. Trace 5 has spans in the first two days; its second-day batch also sends
/// a span that starts on the first day (it went into the `b` bucket).
pub fn session_batches(session: usize) -> Vec<WriteBatch> {
    let day = T0 + session as u64 * DAY;
    let tagged = |trace: u8, id: u8, service: &str, name: &str, start: u64, status: i64, ms: u64| {
        let mut s = span(trace, id, service, name, start);
        s.end_ns = start + ms * 1_000_000;
        s.attributes.push(KeyValue::new("http.status_code", AnyValue::Int(status)));
        s.attributes.push(KeyValue::string("user", format!("u{trace}")));
        s
    };
    let child = |mut s: tracekeeper_model::Span, parent: u8| {
        s.parent_span_id = Some(SpanId([parent; 8]));
        s
    };
    let base = u8::try_from(session * 10).unwrap();
    let mut out = vec![
        batch(
            "a",
            vec![
                tagged(base + 1, 1, "api", "GET /", day + 1_000, 200, 30),
                child(tagged(base + 1, 2, "db", "query", day + 2_000, 200, 7), 1),
                tagged(base + 2, 1, "api", "POST /", day + 3_600_000_000_000, 500, 120),
            ],
        ),
        batch("ab", vec![tagged(base + 3, 1, "billing", "charge", day + 7_200_000_000_000, 200, 3)]),
        // Sent again, split differently: nothing may be stored twice.
        batch("a", vec![child(tagged(base + 1, 2, "db", "query", day + 2_000, 200, 7), 1)]),
    ];
    match session {
        0 => out.push(batch("a", vec![tagged(5, 1, "api", "GET /long", T0 + DAY - 1_000_000_000, 200, 2_000)])),
        1 => out.push(batch(
            "a",
            vec![
                child(tagged(5, 2, "api", "late", T0 + DAY - 500_000_000, 200, 1), 1),
                child(tagged(5, 3, "worker", "after midnight", T0 + DAY + 5_000, 200, 900), 1),
            ],
        )),
        _ => {}
    }
    out
}
