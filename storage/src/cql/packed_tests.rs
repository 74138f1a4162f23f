use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::cql::shards;
use crate::schema::ValueRef;

const BASE: u64 = 1_700_000_000_000_000_000 / HOUR_NS * HOUR_NS;

/// Reads `term` from `rows` the way the CQL store does: every partition the term may
/// have entries in, each merged from its rows newest first, then the partitions merged.
fn read(
    rows: &[PackedRow],
    term: TermRef<'_>,
    newest: u64,
    oldest: u64,
    after: Option<&Posting>,
    max: usize,
) -> Vec<Posting> {
    let term_id = term.id() as i64;
    let mut partitions: Vec<PartitionKey> = Vec::new();
    for bucket in (oldest / HOUR_NS)..=(newest / HOUR_NS) {
        for shard in 0..i32::from(shards(term)) {
            partitions.push((term_id, bucket as i64, shard));
        }
        partitions.push((overflow_term(term_id), bucket as i64, 0));
    }
    let lists = partitions
        .into_iter()
        .map(|partition| {
            let mut merge = Merge::new(term_id, newest, oldest, after, max);
            let mut of_partition: Vec<&PackedRow> = rows.iter().filter(|r| r.partition == partition).collect();
            of_partition.sort_by_key(|r| Reverse(r.newest_ns));
            let rows_newest = merge.rows_newest();
            for row in of_partition.into_iter().filter(|r| r.newest_ns <= rows_newest && r.newest_ns >= oldest) {
                if merge.done() {
                    break;
                }
                merge.push(row.newest_ns, &decode(&row.entries).expect("a packed row"));
            }
            merge.finish()
        })
        .collect();
    merge_sources(lists, max)
}

/// What a read of `term` must return, from the postings themselves.
fn expected(
    postings: &[PostingRow<'_>],
    term: TermRef<'_>,
    newest: u64,
    oldest: u64,
    after: Option<&Posting>,
    max: usize,
) -> Vec<Posting> {
    let mut longest: BTreeMap<(Reverse<u64>, TraceId), u64> = BTreeMap::new();
    for &(t, time, trace, duration) in postings {
        let after_cursor = after.is_none_or(|a| time < a.time_ns || (time == a.time_ns && trace > a.trace_id));
        if t == term && time <= newest && time >= oldest && after_cursor {
            let slot = longest.entry((Reverse(time), trace)).or_insert(0);
            *slot = (*slot).max(duration.div_ceil(1000) * 1000);
        }
    }
    longest
        .into_iter()
        .take(max)
        .map(|((Reverse(time_ns), trace_id), d)| Posting { time_ns, trace_id, max_duration_ns: Some(d) })
        .collect()
}

const SERVICES: [&str; 2] = ["a", "b"];
const USERS: [&str; 6] = ["u1", "u2", "u3", "u4", "u5", "u6"];

fn term_of(choice: u8) -> TermRef<'static> {
    match choice % 5 {
        0 => TermRef::All,
        1 => TermRef::Service(SERVICES[usize::from(choice / 5) % 2]),
        2 => TermRef::Operation(SERVICES[usize::from(choice / 5) % 2], "GET"),
        _ => TermRef::Attribute("user", ValueRef::Str(USERS[usize::from(choice / 5) % USERS.len()])),
    }
}

/// Milliseconds after BASE, bunched like the postings' times so that bounds and cursors
/// fall among them.
fn arb_ms() -> impl Strategy<Value = u64> {
    prop_oneof![3 => 0u64..3, 1 => 0u64..40_000, 1 => 0u64..8_000_000]
}

fn arb_postings() -> impl Strategy<Value = Vec<PostingRow<'static>>> {
    // Times over two hours and a bit, many within one window, with ties.
    let time = arb_ms().prop_map(|t| BASE + t * 1_000_000);
    prop::collection::vec((0u8..15, time, 0u8..6, 0u64..20_000_000), 0..60).prop_map(|raw| {
        raw.into_iter()
            .map(|(term, time, trace, duration)| (term_of(term), time, TraceId([trace; 16]), duration))
            .collect()
    })
}

proptest! {
    #[test]
    fn packed_rows_read_back_exactly_newest_first(
        batches in prop::collection::vec(arb_postings(), 1..4),
        term in 0u8..15,
        bounds in (arb_ms(), arb_ms()),
        cursor in prop::option::of((arb_ms(), 0u8..6)),
        max in 1usize..12,
    ) {
        // Rows of several batches share partitions, as the writes of several indexer
        // batches do.
        let rows: Vec<PackedRow> = batches.iter().flat_map(|b| pack(b)).collect();
        let postings: Vec<PostingRow<'_>> = batches.concat();
        let term = term_of(term);
        let (newest, oldest) = (BASE + bounds.0.max(bounds.1) * 1_000_000, BASE + bounds.0.min(bounds.1) * 1_000_000);
        let after = cursor.map(|(t, id)| Posting { time_ns: BASE + t * 1_000_000, trace_id: TraceId([id; 16]), max_duration_ns: None });
        prop_assert_eq!(
            read(&rows, term, newest, oldest, after.as_ref(), max),
            expected(&postings, term, newest, oldest, after.as_ref(), max)
        );
    }

    #[test]
    fn rows_keep_their_invariants(postings in arb_postings()) {
        let rows = pack(&postings);
        let entries: usize = rows.iter().map(|r| decode(&r.entries).expect("decodes").len()).sum();
        prop_assert!(entries <= postings.len());
        for row in &rows {
            let entries = decode(&row.entries).expect("decodes");
            prop_assert!(!entries.is_empty() && entries.len() <= MAX_ENTRIES);
            prop_assert_eq!(entries[0].time_ns, row.newest_ns);
            for e in &entries {
                prop_assert!(row.newest_ns - e.time_ns < WINDOW_NS, "a row spans at most one window");
                prop_assert_eq!((e.time_ns / HOUR_NS) as i64, row.partition.1, "one hour per row");
            }
        }
        prop_assert_eq!(pack(&postings), rows, "packing is a pure function of the batch");
    }
}

#[test]
fn terms_alone_in_a_batch_share_overflow_rows() {
    // 500 spans of 10 traces, each span with its own user id: one posting per user.
    let users: Vec<String> = (0..500).map(|i| format!("user-{i}")).collect();
    let mut postings = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let trace = TraceId([(i / 50) as u8; 16]);
        let time = BASE + i as u64 * 1_000_000;
        postings.push((TermRef::Attribute("user.id", ValueRef::Str(user)), time, trace, 1_000));
        postings.push((TermRef::All, time, trace, 1_000));
    }
    let rows = pack(&postings);
    let all = TermRef::All.id() as i64;
    let overflow = rows.iter().filter(|r| r.partition.0 != all).count();
    assert!(overflow <= 500 - 100, "{overflow} rows for 500 singleton postings");
    assert!(rows.iter().all(|r| r.partition.0 == all || r.partition.0 == overflow_term(r.partition.0)));
    let every_trace = rows.iter().filter(|r| r.partition.0 == all).count();
    assert!(every_trace <= usize::from(shards(TermRef::All)), "the 10 traces' postings share their shards' rows");
    let user = TermRef::Attribute("user.id", ValueRef::Str(&users[7]));
    let found = read(&rows, user, BASE + HOUR_NS, BASE, None, 10);
    assert_eq!(found.iter().map(|p| p.trace_id).collect::<Vec<_>>(), vec![TraceId([0; 16])]);
}

#[test]
fn durations_round_up_and_saturate() {
    let trace = TraceId([1; 16]);
    let postings = [(TermRef::Service("a"), BASE, trace, 1), (TermRef::Service("b"), BASE, trace, u64::MAX)];
    let rows = pack(&postings);
    let a = read(&rows, TermRef::Service("a"), BASE, BASE, None, 1);
    assert_eq!(a[0].max_duration_ns, Some(1000), "1 ns is bounded by 1 µs, never by 0");
    let b = read(&rows, TermRef::Service("b"), BASE, BASE, None, 1);
    assert_eq!(b[0].max_duration_ns, Some(u64::MAX), "beyond u32 µs means unbounded");
}

#[test]
fn foreign_bytes_do_not_decode() {
    assert_eq!(decode(&[]), None);
    assert_eq!(decode(&[2; 37]), None, "unknown format");
    assert_eq!(decode(&[FORMAT, 1, 2]), None, "a partial entry");
    assert_eq!(decode(&[FORMAT]), Some(vec![]));
}

#[test]
fn rows_with_the_same_newest_time_merge_by_trace_id() {
    let term_id = TermRef::Service("a").id() as i64;
    let entry =
        |trace: u8, max_duration_us| Entry { term_id, time_ns: BASE, trace_id: TraceId([trace; 16]), max_duration_us };
    let mut merge = Merge::new(term_id, BASE, 0, None, 2);
    merge.push(BASE, &[entry(5, 10)]);
    merge.push(BASE, &[entry(2, 10), entry(5, 30)]);
    let found = merge.finish();
    let ids: Vec<_> = found.iter().map(|p| (p.trace_id.0[0], p.max_duration_ns)).collect();
    assert_eq!(ids, vec![(2, Some(10_000)), (5, Some(30_000))], "one posting per trace, the longer bound");
}
