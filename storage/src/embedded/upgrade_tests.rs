//! The one-time rewrite of older key layouts ([`super::upgrade`]) on a data directory
//! that older versions wrote (`storage/fixtures/README.md`): refused before it, every
//! row read back after it, and a rewrite cut short finishes on the next run.

use std::collections::{BTreeMap, BTreeSet};

use tracekeeper_model::{AnyValue, Span, TraceId};

use super::parts::{self, Holds};
use super::upgrade_fixture::{session_batches, BUCKET_LETTERS, DAY, T0};
use super::{EmbeddedConfig, EmbeddedStore, Upgraded};
use crate::api::{SpanCursor, StorageError};
use crate::schema::{row_id, IndexTerm, IndexValue};
use crate::{Checkable, Horizons, Lifecycle, SpanReader};

const FIXTURE: &[u8] = include_bytes!("../../fixtures/embedded-layouts-b-c-d.tar.gz");

fn unpack_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(FIXTURE)).unpack(dir.path()).unwrap();
    dir
}

fn config(dir: &tempfile::TempDir) -> EmbeddedConfig {
    EmbeddedConfig { idle_flush: None, ..EmbeddedConfig::new(dir.path()) }
}

fn upgrade(dir: &tempfile::TempDir) -> (Upgraded, Vec<(usize, usize, u64)>) {
    let mut seen = Vec::new();
    let upgraded = EmbeddedStore::upgrade(&config(dir), &mut |p| seen.push((p.bucket, p.buckets, p.rows))).unwrap();
    (upgraded, seen)
}

/// Every span the fixture's batches wrote, once each, by (tenant, trace), in the order
/// traces are served: (start time, row id).
fn written() -> BTreeMap<(String, TraceId), Vec<Span>> {
    /// A trace's spans by (start time, row id).
    type Ordered = BTreeMap<(u64, Vec<u8>), Span>;
    let mut traces: BTreeMap<(String, TraceId), Ordered> = BTreeMap::new();
    for session in 0..BUCKET_LETTERS.len() {
        for batch in session_batches(session) {
            for span in batch.spans {
                let by_order = traces.entry((batch.tenant.clone(), span.trace_id)).or_default();
                by_order.insert((span.start_ns, row_id(&span)), span);
            }
        }
    }
    traces.into_iter().map(|(key, spans)| (key, spans.into_values().collect())).collect()
}

/// The traces of `tenant` with a span that `matches`.
fn traces_where(tenant: &str, matches: impl Fn(&Span) -> bool) -> BTreeSet<TraceId> {
    let written = written();
    written.iter().filter(|((t, _), spans)| t == tenant && spans.iter().any(&matches)).map(|((_, id), _)| *id).collect()
}

async fn posted(store: &EmbeddedStore, tenant: &str, term: &IndexTerm) -> BTreeSet<TraceId> {
    let postings = store.postings(tenant, term, u64::MAX, 0, None, 10_000).await.unwrap();
    postings.iter().map(|p| p.trace_id).collect()
}

fn keyspace_letters(dir: &tempfile::TempDir) -> BTreeSet<char> {
    let db = fjall::Database::builder(dir.path()).open().unwrap();
    let names = db.list_keyspace_names();
    names.iter().filter_map(|n| parts::parse_part_name(n.as_ref())).map(|(_, holds, _)| parts_letter(holds)).collect()
}

fn parts_letter(holds: Holds) -> char {
    parts::part_name(0, holds, 0).chars().next().unwrap()
}

#[tokio::test]
async fn a_directory_of_every_older_layout_is_refused_then_rewritten_and_reads_back_whole() {
    let dir = unpack_fixture();
    assert_eq!(keyspace_letters(&dir), BTreeSet::from(['b', 'c', 'd', 't']), "the fixture has every layout");
    let refused = EmbeddedStore::open(config(&dir)).err().expect("an older layout is refused");
    let StorageError::NeedsUpgrade(message) = &refused else { panic!("{refused}") };
    assert!(message.contains("tracekeeper compact") && message.contains("b0000"), "{message}");

    let (upgraded, progress) = upgrade(&dir);
    assert_eq!((upgraded.rewritten_buckets, upgraded.marked_parts), (2, 0), "{upgraded:?}");
    assert!(upgraded.rows > 0 && progress.iter().all(|&(n, of, _)| n >= 1 && n <= of && of == 2), "{progress:?}");
    let counts_up = progress.windows(2).all(|w| w[0].0 < w[1].0 || (w[0].0 == w[1].0 && w[0].2 <= w[1].2));
    assert!(counts_up, "each bucket's rows count up: {progress:?}");
    assert_eq!(keyspace_letters(&dir), BTreeSet::from(['d', 't']), "only today's layout is left");
    assert_eq!(upgrade(&dir).0, Upgraded::default(), "a second run has nothing to do");

    let store = EmbeddedStore::open(config(&dir)).unwrap();
    assert_eq!(store.bucket_starts(), [T0, T0 + DAY, T0 + 2 * DAY]);
    for ((tenant, trace_id), spans) in written() {
        let (read, more) = store.trace(&tenant, trace_id, usize::MAX).await.unwrap();
        assert!(!more);
        assert_eq!(read, spans, "{tenant} {trace_id:?}");
        // One span a page: every cursor resumes where the last page ended, across buckets.
        let mut paged = Vec::new();
        let mut cursor: Option<SpanCursor> = None;
        loop {
            let page = store.trace_page(&tenant, trace_id, cursor.as_ref(), 1).await.unwrap();
            let Some(last) = page.last() else { break };
            cursor = Some(SpanCursor { start_ns: last.start_ns, row_id: row_id(last) });
            paged.extend(page);
        }
        assert_eq!(paged, spans, "{tenant} {trace_id:?} a page at a time");
    }
    assert_eq!(store.trace("ab", TraceId([1; 16]), 10).await.unwrap().0, [], "tenant ab cannot read a's trace");

    for tenant in ["a", "ab"] {
        assert_eq!(posted(&store, tenant, &IndexTerm::All).await, traces_where(tenant, |_| true), "{tenant}");
        let services: BTreeSet<String> = written()
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .flat_map(|(_, spans)| spans.iter().map(|s| s.service_name().to_string()))
            .collect();
        assert_eq!(store.services(tenant, 0).await.unwrap().into_iter().collect::<BTreeSet<_>>(), services);
        for service in &services {
            let term = IndexTerm::Service(service.clone());
            assert_eq!(posted(&store, tenant, &term).await, traces_where(tenant, |s| s.service_name() == service));
        }
    }
    let failed = IndexTerm::Attribute { key: "http.status_code".into(), value: IndexValue::Int(500) };
    let with_500 = traces_where("a", |s| {
        s.attributes.iter().any(|kv| kv.key == "http.status_code" && kv.value == AnyValue::Int(500))
    });
    assert_eq!(with_500.len(), 3, "one a day");
    assert_eq!(posted(&store, "a", &failed).await, with_500);
    // The first layout's postings recorded no duration: they bound none, so that a
    // minimum-duration search still reads their traces. Trace 5's late span went into
    // that bucket from a version that recorded its bound (1 ms).
    let first_day = store.postings("a", &IndexTerm::All, T0 + DAY - 1, T0, None, 100).await.unwrap();
    let late_span_start = T0 + DAY - 500_000_000;
    let bounds: Vec<_> = first_day.iter().map(|p| (p.time_ns == late_span_start, p.max_duration_ns)).collect();
    assert_eq!(bounds.iter().filter(|(late, bound)| *late && *bound == Some(1_000_000)).count(), 1, "{first_day:?}");
    assert!(bounds.iter().all(|(late, bound)| *late || *bound == Some(u64::MAX)), "{first_day:?}");
    let second_day = store.postings("a", &IndexTerm::All, T0 + 2 * DAY - 1, T0 + DAY + 1, None, 100).await.unwrap();
    assert!(second_day.iter().all(|p| p.max_duration_ns < Some(u64::MAX)), "{second_day:?}");

    let keep_all = |_: &str| 0;
    let report = store.check(&Horizons { visible_from: &keep_all, gone_before: &keep_all }, &|_| {}).await.unwrap();
    assert_eq!(report.violations(), 0, "{report:?}");
    let spans_of =
        |tenant: &str| written().iter().filter(|((t, _), _)| t == tenant).map(|(_, s)| s.len() as u64).sum::<u64>();
    assert_eq!(report.tenants["a"].spans, spans_of("a"));
    assert_eq!(report.tenants["ab"].spans, spans_of("ab"));

    // Retention works on what was rewritten: tenant a's share of the first day goes.
    store.purge_tenant("a", T0, T0 + DAY).await.unwrap();
    assert!(store.postings("a", &IndexTerm::All, T0 + DAY - 1, T0, None, 100).await.unwrap().is_empty());
    assert!(!store.postings("ab", &IndexTerm::All, T0 + DAY - 1, T0, None, 100).await.unwrap().is_empty());
}

/// A rewrite stopped after it copied a part, before it deleted anything (a crash), and
/// a `d` part from before trace marks existed: the next run finishes both.
#[tokio::test]
async fn a_rewrite_cut_short_and_parts_without_trace_marks_are_finished_by_the_next_run() {
    let dir = unpack_fixture();
    {
        let db = fjall::Database::builder(dir.path()).open().unwrap();
        let marks = parts::part_name((T0 + 2 * DAY) / DAY, Holds::Traces, 0);
        db.delete_keyspace(db.keyspace(&marks, fjall::KeyspaceCreateOptions::default).unwrap()).unwrap();
    }
    let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        EmbeddedStore::upgrade(&config(&dir), &mut |p| assert_eq!(p.rows, 0, "stopped after the first copy"))
    }));
    assert!(stopped.is_err(), "the first run was stopped");
    assert!(keyspace_letters(&dir).contains(&'b'), "the older parts are still there");
    let refused = EmbeddedStore::open(config(&dir)).err().expect("still refused");
    assert!(matches!(refused, StorageError::NeedsUpgrade(_)), "{refused}");

    let (upgraded, _) = upgrade(&dir);
    assert_eq!((upgraded.rewritten_buckets, upgraded.marked_parts), (2, 1), "{upgraded:?}");
    let store = EmbeddedStore::open(config(&dir)).unwrap();
    for ((tenant, trace_id), spans) in written() {
        assert_eq!(store.trace(&tenant, trace_id, usize::MAX).await.unwrap().0, spans, "{tenant} {trace_id:?}");
    }
}
