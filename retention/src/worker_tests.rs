//! The lifecycle contract and the worker, on both backends, with a manual clock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tracekeeper_model::TraceId;
use tracekeeper_storage::embedded::{EmbeddedConfig, EmbeddedStore};
use tracekeeper_storage::testing::{batch, span};
use tracekeeper_storage::{Lifecycle, LifecycleError, SpanReader, SpanWriter};

use crate::worker::{RunOutcome, Worker, WorkerConfig};
use crate::{Clock, ManualClock, RetentionPolicies, Watermarks};

const SEC: u64 = 1_000_000_000;
const HOUR: u64 = 3600 * SEC;
const NOW: u64 = 1_000 * 24 * HOUR;

async fn lease_and_watermark_contract(store: &dyn Lifecycle) {
    let ttl = 30 * SEC;
    assert_eq!(store.acquire("a", NOW, ttl).await.unwrap(), Some(1));
    assert_eq!(store.acquire("b", NOW + SEC, ttl).await.unwrap(), None, "a holds a live lease");
    assert_eq!(store.acquire("a", NOW + 10 * SEC, ttl).await.unwrap(), Some(1), "a renewal keeps the epoch");
    store.advance_watermark("a", 1, NOW + 10 * SEC, "t", 500).await.unwrap();
    // a is paused past its lease; b takes over with a new epoch.
    assert_eq!(store.acquire("b", NOW + 60 * SEC, ttl).await.unwrap(), Some(2));
    match store.advance_watermark("a", 1, NOW + 61 * SEC, "t", 900).await {
        Err(LifecycleError::Fenced { epoch, .. }) => assert_eq!(epoch, 2),
        other => panic!("a stale worker must be fenced, got {other:?}"),
    }
    store.advance_watermark("b", 2, NOW + 61 * SEC, "t", 400).await.unwrap();
    assert_eq!(store.watermarks().await.unwrap(), BTreeMap::from([("t".to_string(), 500)]), "never moves back");
    store.advance_watermark("b", 2, NOW + 62 * SEC, "t", 700).await.unwrap();
    assert_eq!(store.watermarks().await.unwrap()["t"], 700);

    assert_eq!(store.record_policy("t", 3600, 1).await.unwrap().version, 1);
    assert_eq!(store.record_policy("t", 3600, 2).await.unwrap().version, 1, "unchanged: no new version");
    let changed = store.record_policy("t", 60, 3).await.unwrap();
    assert_eq!((changed.version, changed.retention_secs, changed.made_ns), (2, 60, 3));
    let versions: Vec<(String, u32)> =
        store.policies().await.unwrap().into_iter().map(|p| (p.tenant, p.version)).collect();
    assert_eq!(versions, [("t".to_string(), 1), ("t".to_string(), 2)]);
}

#[tokio::test]
async fn embedded_lifecycle_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap();
    lease_and_watermark_contract(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_lifecycle_keeps_the_contract() {
    let stack = tracekeeper_stack::require().await;
    let store = tracekeeper_storage::cql::test_store(&stack.cql).await;
    let lifecycle =
        tracekeeper_storage::cql::lifecycle::CqlLifecycle::new(store.shared_session(), store.keyspace()).await.unwrap();
    lease_and_watermark_contract(&lifecycle).await;
}

fn worker(store: Arc<EmbeddedStore>, clock: Arc<ManualClock>, holder: &str, policies: &RetentionPolicies) -> Worker {
    Worker {
        store,
        policies: Arc::new(policies.clone()),
        clock,
        watermarks: Watermarks::default(),
        config: WorkerConfig {
            holder: holder.into(),
            interval: Duration::from_secs(10),
            lease_ttl: Duration::from_secs(30),
        },
    }
}

#[tokio::test]
async fn shortened_policy_hides_at_once_then_buckets_drop_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = EmbeddedConfig::new(dir.path());
    config.bucket_width = Duration::from_secs(3600);
    let store = Arc::new(EmbeddedStore::open(config).unwrap());
    let clock = Arc::new(ManualClock::new(NOW));
    let old = span(1, 1, "svc", "op", NOW - 5 * HOUR);
    let fresh = span(2, 1, "svc", "op", NOW - 10 * SEC);
    store.write(batch("acme", vec![old.clone(), fresh.clone()])).await.unwrap();
    store.write(batch("other", vec![span(3, 1, "svc", "op", NOW - 5 * HOUR)])).await.unwrap();

    let mut policies = RetentionPolicies::default();
    policies.per_tenant.insert("acme".into(), Duration::from_secs(2 * 3600));
    let w = worker(store.clone(), clock.clone(), "w1", &policies);
    let outcome = w.run_once().await.unwrap();
    assert!(matches!(outcome, RunOutcome::Ran { epoch: 1, tenants: 2, buckets_expired: 0 }), "{outcome:?}");
    // Hidden at once: acme's watermark is now − 2h; "other" still sees its 5h-old span,
    // so the bucket stays.
    assert_eq!(w.watermarks.expired_before("acme"), NOW - 2 * HOUR);
    assert_eq!(store.trace("other", TraceId([3; 16]), 10).await.unwrap().0.len(), 1);
    assert_eq!(store.policies().await.unwrap().iter().filter(|p| p.tenant == "acme").count(), 1);

    // Once every tenant's horizon has passed the buckets, they are dropped whole.
    clock.advance(Duration::from_secs(7 * 24 * 3600));
    let outcome = w.run_once().await.unwrap();
    let RunOutcome::Ran { buckets_expired, .. } = outcome else { panic!("{outcome:?}") };
    assert!(buckets_expired >= 1, "{outcome:?}");
    assert!(store.trace("acme", old.trace_id, 10).await.unwrap().0.is_empty());
    assert!(store.trace("other", TraceId([3; 16]), 10).await.unwrap().0.is_empty());
}

#[tokio::test]
async fn two_workers_one_acts_and_a_paused_one_is_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap());
    store.write(batch("acme", vec![span(1, 1, "svc", "op", NOW - HOUR)])).await.unwrap();
    let clock = Arc::new(ManualClock::new(NOW));
    let policies = RetentionPolicies::default();
    let (a, b) =
        (worker(store.clone(), clock.clone(), "a", &policies), worker(store.clone(), clock.clone(), "b", &policies));
    assert!(matches!(a.run_once().await.unwrap(), RunOutcome::Ran { epoch: 1, .. }));
    assert_eq!(b.run_once().await.unwrap(), RunOutcome::Standby);
    clock.advance(Duration::from_secs(10));
    assert!(matches!(a.run_once().await.unwrap(), RunOutcome::Ran { epoch: 1, .. }), "renewed");

    // a is paused past its lease; b takes over; a, resumed mid-run, is refused.
    clock.advance(Duration::from_secs(60));
    assert!(matches!(b.run_once().await.unwrap(), RunOutcome::Ran { epoch: 2, .. }));
    let stale = store.advance_watermark("a", 1, clock.now_ns(), "acme", u64::MAX).await;
    assert!(matches!(stale, Err(LifecycleError::Fenced { epoch: 2, .. })), "{stale:?}");
    assert_eq!(a.run_once().await.unwrap(), RunOutcome::Standby);
    assert!(store.watermarks().await.unwrap()["acme"] < clock.now_ns(), "the stale write changed nothing");
}
