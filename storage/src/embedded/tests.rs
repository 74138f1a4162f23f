//! The embedded store's own tests: conformance, durability modes, reopening, idle
//! flushing and health.

use super::*;
use crate::testing;

#[tokio::test]
async fn embedded_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap();
    testing::conformance(&store, &store).await;
    testing::red_conformance(&store).await;
}

#[tokio::test]
async fn fsync_durability_writes_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let config = EmbeddedConfig { durability: Durability::Fsync, ..EmbeddedConfig::new(dir.path()) };
    let store = EmbeddedStore::open(config).unwrap();
    testing::conformance(&store, &store).await;
}

#[tokio::test]
async fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let span = testing::span(1, 1, "svc", "op", 1_700_000_000_000_000_000);
    {
        let store = EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap();
        store.write(testing::batch("t", vec![span.clone()])).await.unwrap();
    }
    let store = EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap();
    assert_eq!(store.trace("t", span.trace_id, usize::MAX).await.unwrap().0, vec![span]);
}

#[tokio::test]
async fn memtables_are_written_out_once_writes_pause() {
    let dir = tempfile::tempdir().unwrap();
    let idle = Duration::from_millis(300);
    let store =
        EmbeddedStore::open(EmbeddedConfig { idle_flush: Some(idle), ..EmbeddedConfig::new(dir.path()) }).unwrap();
    let spans: Vec<Span> = (0..2000u32)
        .map(|i| testing::span((i % 200) as u8, (i / 200 + 1) as u8, "svc", "op", 1_700_000_000_000_000_000))
        .collect();
    store.write(testing::batch("t", spans)).await.unwrap();
    let at = 1_700_000_000_000_000_000;
    assert_eq!(store.bucket_disk_space_at(at), 0, "the rows are in the memtable and the journal only");
    let deadline = std::time::Instant::now() + idle * 20;
    while store.bucket_disk_space_at(at) == 0 {
        assert!(std::time::Instant::now() < deadline, "no table was written after the pause");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (stored, _) = store.trace("t", testing::span(7, 0, "svc", "op", 0).trace_id, usize::MAX).await.unwrap();
    assert_eq!(stored.len(), 10, "the rows are in tables now");
    drop(store);
    let reopened = EmbeddedStore::open(EmbeddedConfig::new(dir.path())).expect("the dropped store let go of its lock");
    assert_eq!(reopened.trace("t", stored[0].trace_id, usize::MAX).await.unwrap().0, stored);
}

#[tokio::test]
async fn a_working_store_is_healthy_and_a_stopped_engine_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap();
    store.write(testing::batch("t", vec![testing::span(1, 1, "svc", "op", 1)])).await.unwrap();
    assert!(store.health().is_ok());
    let stopped = io(fjall::Error::Poisoned).to_string();
    assert!(stopped.contains("is the disk full?") && stopped.contains("restart"), "{stopped}");
    assert_eq!(io("other").to_string(), "storage I/O error: other");
}
