//! A bucket stored in several parts ([`super::parts`]) keeps the store's contracts:
//! reads merge the parts, a row written to two of them is read once, and purge,
//! expiry and reopening take every part into account.

use tracekeeper_model::TraceId;

use super::parts::Bucket;
use super::{EmbeddedConfig, EmbeddedStore};
use crate::schema::IndexTerm;
use crate::testing::{self, batch, span};
use crate::{Checkable, Horizons, Lifecycle, SpanReader, SpanWriter};

const DAY: u64 = 86_400_000_000_000;
const T0: u64 = 1_700_000_000_000_000_000 - 1_700_000_000_000_000_000 % DAY;

/// A store whose buckets start a new part after every write.
fn store_with_part_bytes(dir: &tempfile::TempDir, part_bytes: u64) -> EmbeddedStore {
    EmbeddedStore::open(EmbeddedConfig { part_bytes, ..EmbeddedConfig::new(dir.path()) }).unwrap()
}

fn part_counts(store: &EmbeddedStore) -> Vec<usize> {
    store.inner.buckets.read().unwrap().values().map(|b| b.parts().len()).collect()
}

async fn postings_of(store: &EmbeddedStore, tenant: &str) -> Vec<(u64, TraceId)> {
    let postings = store.postings(tenant, &IndexTerm::All, u64::MAX, 0, None, 1000).await.unwrap();
    postings.iter().map(|p| (p.time_ns, p.trace_id)).collect()
}

#[tokio::test]
async fn the_conformance_suites_pass_when_every_write_starts_a_new_part() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_part_bytes(&dir, 0);
    testing::conformance(&store, &store).await;
    assert!(part_counts(&store).iter().any(|n| *n > 3), "parts: {:?}", part_counts(&store));
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_part_bytes(&dir, 0);
    testing::checker_conformance(&store, &store).await;
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_part_bytes(&dir, 0);
    testing::red_conformance(&store).await;
}

/// A part is closed once it holds `part_bytes` on disk, not before: rows still in the
/// memtable do not count.
#[tokio::test]
async fn a_part_is_closed_once_its_tables_reach_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_part_bytes(&dir, 1);
    store.write(batch("t", vec![span(1, 1, "svc", "op", T0 + 10)])).await.unwrap();
    store.write(batch("t", vec![span(1, 2, "svc", "op", T0 + 20)])).await.unwrap();
    assert_eq!(part_counts(&store), [1], "nothing on disk yet");
    store.flush_memtables().unwrap();
    store.write(batch("t", vec![span(1, 3, "svc", "op", T0 + 30)])).await.unwrap();
    assert_eq!(part_counts(&store), [2]);
    store.write(batch("t", vec![span(1, 4, "svc", "op", T0 + 40)])).await.unwrap();
    assert_eq!(part_counts(&store), [2], "the new part's rows are still in its memtable");
    let (spans, _) = store.trace("t", TraceId([1; 16]), 10).await.unwrap();
    assert_eq!(spans.iter().map(|s| s.start_ns - T0).collect::<Vec<_>>(), [10, 20, 30, 40]);
}

/// A request sent again after the part that holds it was closed (a client retrying)
/// writes the same keys into the new part; every read still sees each row once.
#[tokio::test]
async fn a_batch_sent_again_into_a_new_part_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let id = TraceId([1; 16]);
    let first = vec![span(1, 1, "svc", "root", T0 + 10), span(1, 2, "svc", "child", T0 + 20)];
    {
        let store = store_with_part_bytes(&dir, 0);
        store.write(batch("t", first.clone())).await.unwrap();
        let postings_once = postings_of(&store, "t").await;
        store.write(batch("t", first.clone())).await.unwrap();
        store.write(batch("t", first.clone())).await.unwrap();
        assert_eq!(part_counts(&store), [4]);
        assert_eq!(postings_of(&store, "t").await, postings_once, "postings repeat nothing");
        store.write(batch("t", vec![span(1, 3, "svc", "late", T0 + 30)])).await.unwrap();
    }
    // Reopened, the store finds every part again.
    let store = store_with_part_bytes(&dir, 0);
    assert_eq!(part_counts(&store), [5]);
    let (whole, _) = store.trace("t", id, 100).await.unwrap();
    assert_eq!(whole.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["root", "child", "late"]);
    assert_eq!(testing::read_in_pages(&store, "t", id, 1).await, whole);
    assert_eq!(store.span_rows("t", id, 100).await.unwrap().len(), 3);
    assert_eq!(store.services("t", 0).await.unwrap(), ["svc"]);
    let keep = |_: &str| 0;
    let report = store.check(&Horizons { visible_from: &keep, gone_before: &keep }, &|_| {}).await.unwrap();
    assert_eq!((report.tenants["t"].spans, report.duplicate_spans), (3, 0), "{report:?}");
}

/// Purging a tenant reaches its rows in every part; expiry drops every part.
#[tokio::test]
async fn purge_and_expiry_reach_every_part() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_part_bytes(&dir, 0);
    for n in 1..=3u8 {
        store.write(batch("gone", vec![span(n, 1, "svc-gone", "op", T0 + u64::from(n))])).await.unwrap();
        store.write(batch("kept", vec![span(n, 1, "svc-kept", "op", T0 + u64::from(n))])).await.unwrap();
    }
    assert_eq!(part_counts(&store), [7]);
    let (expired, _) = store.purge_tenant("gone", T0, T0 + DAY).await.unwrap();
    assert_eq!(expired.buckets, 1);
    for n in 1..=3u8 {
        assert!(store.trace("gone", TraceId([n; 16]), 10).await.unwrap().0.is_empty(), "trace {n}");
        assert_eq!(store.trace("kept", TraceId([n; 16]), 10).await.unwrap().0.len(), 1, "trace {n}");
    }
    assert!(postings_of(&store, "gone").await.is_empty());
    assert_eq!(postings_of(&store, "kept").await.len(), 3);
    assert!(store.services("gone", 0).await.unwrap().is_empty());

    let expired = store.expire_before(T0 + DAY).await.unwrap();
    assert_eq!(expired.buckets, 1);
    assert!(store.bucket_starts().is_empty());
    let left: Vec<String> =
        store.inner.db.list_keyspace_names().iter().map(|n| n.as_ref().to_string()).collect::<Vec<String>>();
    assert_eq!(left, ["meta"], "every part's keyspace is gone");
    drop(store);
    let store = store_with_part_bytes(&dir, 0);
    assert!(store.trace("kept", TraceId([1; 16]), 10).await.unwrap().0.is_empty());
}

/// Which parts hold (tenant, trace), as their trace marks tell.
fn parts_holding(store: &EmbeddedStore, tenant: &str, trace: u8) -> Vec<bool> {
    let mark = super::keys::trace_mark(tenant, TraceId([trace; 16]));
    let buckets = store.inner.buckets.read().unwrap();
    buckets.values().flat_map(Bucket::parts).map(|p| p.may_hold(&mark).unwrap()).collect()
}

/// Each part marks the traces it holds, per tenant, and a purge takes the tenant's
/// marks with its rows.
#[tokio::test]
async fn trace_marks_tell_which_parts_hold_a_trace() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = store_with_part_bytes(&dir, 0);
        store.write(batch("t", vec![span(1, 1, "svc", "a", T0 + 10)])).await.unwrap();
        store.write(batch("t", vec![span(2, 1, "svc", "b", T0 + 20)])).await.unwrap();
        store.write(batch("t", vec![span(1, 2, "svc", "c", T0 + 30)])).await.unwrap();
        store.write(batch("u", vec![span(3, 1, "svc", "d", T0 + 40)])).await.unwrap();
    }
    let store = store_with_part_bytes(&dir, 0);
    assert_eq!(parts_holding(&store, "t", 1), [true, false, true, false, false]);
    assert_eq!(parts_holding(&store, "t", 2), [false, true, false, false, false]);
    assert_eq!(parts_holding(&store, "u", 1), [false; 5], "marks are per tenant");
    let (spans, _) = store.trace("t", TraceId([1; 16]), 10).await.unwrap();
    assert_eq!(spans.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["a", "c"]);
    assert_eq!(store.span_rows("t", TraceId([2; 16]), 10).await.unwrap().len(), 1);

    store.purge_tenant("t", T0, T0 + DAY).await.unwrap();
    assert_eq!(parts_holding(&store, "t", 1), [false; 5]);
    assert_eq!(parts_holding(&store, "u", 3), [false, false, false, true, false]);
    assert_eq!(store.trace("u", TraceId([3; 16]), 10).await.unwrap().0.len(), 1);
}
