//! Every bucket key layout ([`Layout`]) keeps the store's contracts: the buckets older
//! versions created are read, written, checked and purged in their own layout, next
//! to buckets of the current one.

use tracekeeper_model::TraceId;

use super::keys::Layout;
use super::{EmbeddedConfig, EmbeddedStore};
use crate::schema::IndexTerm;
use crate::testing::{self, batch, span};
use crate::{Checkable, Horizons, Lifecycle, SpanReader, SpanWriter};

const DAY: u64 = 86_400_000_000_000;
const T0: u64 = 1_700_000_000_000_000_000 - 1_700_000_000_000_000_000 % DAY;
const LAYOUTS: [Layout; 3] = [Layout::NoStartTime, Layout::TenantFirst, Layout::IdFirst];

fn store_creating(dir: &tempfile::TempDir, layout: Layout) -> EmbeddedStore {
    EmbeddedStore::open_creating(EmbeddedConfig::new(dir.path()), layout).unwrap()
}

async fn traces_of(store: &EmbeddedStore, tenant: &str, term: &IndexTerm) -> Vec<TraceId> {
    let postings = store.postings(tenant, term, u64::MAX, 0, None, 1000).await.unwrap();
    postings.iter().map(|p| p.trace_id).collect()
}

#[tokio::test]
async fn every_layout_passes_the_conformance_suites() {
    for layout in LAYOUTS {
        let dir = tempfile::tempdir().unwrap();
        let store = store_creating(&dir, layout);
        testing::conformance(&store, &store).await;
        let dir = tempfile::tempdir().unwrap();
        let store = store_creating(&dir, layout);
        testing::checker_conformance(&store, &store).await;
        let layouts: Vec<Layout> = store.inner.buckets.read().unwrap().values().map(|b| b.layout).collect();
        assert!(!layouts.is_empty() && layouts.iter().all(|l| *l == layout), "{layout:?}: {layouts:?}");
    }
}

/// A tenant's purge takes its spans, postings and catalog from a shared bucket and
/// leaves the other tenant's; purging the last tenant drops the bucket whole.
#[tokio::test]
async fn every_layout_purges_one_tenant_of_a_shared_bucket() {
    for layout in LAYOUTS {
        let dir = tempfile::tempdir().unwrap();
        let store = store_creating(&dir, layout);
        store
            .write(batch("a", vec![span(1, 1, "svc-a", "op", T0 + 10), span(1, 2, "svc-a", "op", T0 + 20)]))
            .await
            .unwrap();
        store.write(batch("ab", vec![span(1, 1, "svc-ab", "op", T0 + 30)])).await.unwrap();
        store.write(batch("ab", vec![span(2, 1, "svc-ab", "op", T0 + 40)])).await.unwrap();

        let (expired, next) = store.purge_tenant("a", T0, T0 + DAY).await.unwrap();
        assert_eq!(next, T0 + DAY, "{layout:?}");
        assert_eq!(expired.buckets, 1, "{layout:?}");
        assert!(expired.rows >= 4, "{layout:?}: two spans, a catalog entry and postings: {expired:?}");
        assert!(store.trace("a", TraceId([1; 16]), 10).await.unwrap().0.is_empty(), "{layout:?}");
        assert!(traces_of(&store, "a", &IndexTerm::All).await.is_empty(), "{layout:?}");
        assert!(store.services("a", 0).await.unwrap().is_empty(), "{layout:?}");
        assert_eq!(store.trace("ab", TraceId([1; 16]), 10).await.unwrap().0.len(), 1, "{layout:?}");
        assert_eq!(traces_of(&store, "ab", &IndexTerm::All).await, [TraceId([2; 16]), TraceId([1; 16])], "{layout:?}");
        assert_eq!(store.services("ab", 0).await.unwrap(), ["svc-ab"], "{layout:?}");
        assert_eq!(store.bucket_starts(), [T0], "{layout:?}: another tenant's rows keep the bucket");

        store.purge_tenant("ab", T0, T0 + DAY).await.unwrap();
        assert!(store.bucket_starts().is_empty(), "{layout:?}: its last tenant's purge dropped the bucket");
        assert!(store.trace("ab", TraceId([2; 16]), 10).await.unwrap().0.is_empty(), "{layout:?}");
    }
}

/// An upgraded data directory: yesterday's bucket in an older layout, today's in the
/// current one. A trace and a posting list that cross them read as one, and the
/// checker reads both.
#[tokio::test]
async fn older_buckets_are_read_next_to_new_ones() {
    for old in [Layout::NoStartTime, Layout::TenantFirst] {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = store_creating(&dir, old);
            store
                .write(batch("t", vec![span(1, 1, "svc", "old", T0 + 10), span(2, 1, "svc", "old", T0 + 20)]))
                .await
                .unwrap();
        }
        let store = EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap();
        store
            .write(batch("t", vec![span(1, 2, "svc", "new", T0 + DAY + 5), span(3, 1, "svc", "new", T0 + DAY + 6)]))
            .await
            .unwrap();
        assert_eq!(store.inner.layout(T0 / DAY), Some(old));
        assert_eq!(store.inner.layout(T0 / DAY + 1), Some(Layout::IdFirst));

        let (trace, _) = store.trace("t", TraceId([1; 16]), usize::MAX).await.unwrap();
        assert_eq!(trace.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["old", "new"], "{old:?}");
        let first_page = store.trace_page("t", TraceId([1; 16]), None, 1).await.unwrap();
        let cursor = crate::api::SpanCursor::after(&first_page[0]);
        let second_page = store.trace_page("t", TraceId([1; 16]), Some(&cursor), 1).await.unwrap();
        assert_eq!([first_page, second_page].concat(), trace, "{old:?}: paged across the two layouts");

        let newest_first = [TraceId([3; 16]), TraceId([1; 16]), TraceId([2; 16]), TraceId([1; 16])];
        assert_eq!(traces_of(&store, "t", &IndexTerm::Service("svc".into())).await, newest_first, "{old:?}");
        let keep = |_: &str| 0;
        let report = store.check(&Horizons { visible_from: &keep, gone_before: &keep }, &|_| {}).await.unwrap();
        assert_eq!((report.duplicate_spans, report.dangling_postings), (0, 0), "{old:?}");
        let counts = &report.tenants["t"];
        assert_eq!((counts.spans, counts.traces), (4, 3), "{old:?}: the checker reads both layouts");
        assert_eq!(store.services("t", 0).await.unwrap(), ["svc"]);
    }
}

/// Buckets are created while readers list them. The layouts were once kept in a map of
/// their own, locked in the opposite order by readers and by bucket creation, and
/// ingest stopped within seconds under the load generator, whose write path reads a
/// trace's span rows. The store runs on a thread of its own, so that a deadlock fails
/// the test instead of hanging it.
#[test]
fn creating_buckets_while_reading_them_does_not_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
        runtime.block_on(async {
            let writers = (0..4u8).map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    for day in 0..50u64 {
                        let start = T0 + (u64::from(w) * 50 + day) * DAY;
                        store.write(batch("t", vec![span(w, day as u8, "svc", "op", start)])).await.unwrap();
                    }
                })
            });
            let readers = (0..4u8).map(|r| {
                let store = store.clone();
                tokio::spawn(async move {
                    for _ in 0..200 {
                        store.span_rows("t", TraceId([r; 16]), 10).await.unwrap();
                        store.postings("t", &IndexTerm::All, u64::MAX, 0, None, 1).await.unwrap();
                    }
                })
            });
            for task in writers.chain(readers).collect::<Vec<_>>() {
                task.await.unwrap();
            }
        });
        let _ = done.send(store.bucket_starts().len());
    });
    let buckets = finished
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("writers and readers finish (a lock-order deadlock leaves them waiting)");
    assert_eq!(buckets, 200);
}
