//! The lifecycle contract and the worker, on both backends, with a manual clock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracekeeper_model::TraceId;
use tracekeeper_storage::check::{CheckReport, Checkable, Horizons};
use tracekeeper_storage::embedded::{EmbeddedConfig, EmbeddedStore};
use tracekeeper_storage::lifecycle::Expired;
use tracekeeper_storage::testing::{batch, span};
use tracekeeper_storage::{
    IndexTerm, Lifecycle, LifecycleError, PolicyVersion, SpanReader, SpanWriter, StorageError, WriteBatch,
};

use crate::worker::{RunOutcome, Worker, WorkerConfig};
use tracekeeper_model::clock::{Clock, ManualClock};

use crate::{RetentionPolicies, Watermarks};

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
    Worker::new(
        store,
        Arc::new(policies.clone()),
        clock,
        Watermarks::default(),
        WorkerConfig { holder: holder.into(), interval: Duration::from_secs(10), lease_ttl: Duration::from_secs(30) },
    )
}

/// What every backend under the worker must offer the tests.
struct Backend {
    lifecycle: Arc<dyn Lifecycle>,
    writer: Arc<dyn SpanWriter>,
    reader: Arc<dyn SpanReader>,
    checker: Arc<dyn Checkable>,
    /// Embedded: catalogs are per hour bucket here and expiry drops buckets. CQL:
    /// catalogs are per day and rows expire by a TTL that runs on the server's own
    /// clock, which the test's manual clock does not move.
    embedded: bool,
}

impl Backend {
    fn embedded(dir: &std::path::Path) -> Self {
        let mut config = EmbeddedConfig::new(dir);
        config.bucket_width = Duration::from_secs(3600);
        let store = Arc::new(EmbeddedStore::open(config).unwrap());
        Self { lifecycle: store.clone(), writer: store.clone(), reader: store.clone(), checker: store, embedded: true }
    }

    async fn cql(cql: &str) -> Self {
        let store = Arc::new(tracekeeper_storage::cql::test_store(cql).await);
        let lifecycle =
            tracekeeper_storage::cql::lifecycle::CqlLifecycle::new(store.shared_session(), store.keyspace())
                .await
                .unwrap();
        Self {
            lifecycle: Arc::new(lifecycle),
            writer: store.clone(),
            reader: store.clone(),
            checker: store,
            embedded: false,
        }
    }

    fn worker(&self, clock: Arc<ManualClock>, holder: &str, policies: &RetentionPolicies) -> Worker {
        Worker::new(
            self.lifecycle.clone(),
            Arc::new(policies.clone()),
            clock,
            Watermarks::default(),
            WorkerConfig {
                holder: holder.into(),
                interval: Duration::from_secs(10),
                lease_ttl: Duration::from_secs(30),
            },
        )
    }

    /// Writes as an indexer would at `NOW` under the default policy (7 days).
    async fn write(&self, tenant: &str, spans: Vec<tracekeeper_model::Span>) {
        let retention_ns = RetentionPolicies::default().retention_ns(tenant);
        let batch = WriteBatch { tenant: tenant.into(), spans, retention_ns, now_ns: NOW };
        self.writer.write(batch).await.unwrap();
    }

    async fn stored(&self, tenant: &str, trace: u8) -> usize {
        self.reader.trace(tenant, TraceId([trace; 16]), 100).await.unwrap().0.len()
    }

    async fn postings(&self, tenant: &str) -> usize {
        self.reader.postings(tenant, &IndexTerm::All, u64::MAX, 0, None, 1000).await.unwrap().len()
    }

    /// The checker, holding every tenant to `policies`, with one bucket (an hour) of
    /// grace since only whole buckets are deleted.
    async fn check(&self, policies: &RetentionPolicies, now: u64) -> CheckReport {
        let horizon = |tenant: &str| policies.visible_from_ns(tenant, now);
        let gone = |tenant: &str| policies.visible_from_ns(tenant, now).saturating_sub(HOUR);
        let horizons = Horizons { visible_from: &horizon, gone_before: &gone };
        self.checker.check(&horizons, &|_| {}).await.unwrap()
    }
}

/// acme keeps 2.5 h instead of 7 days. Its 5 h old trace is hidden by the first run and
/// purged in the same run; "other" keeps its trace of the same age; acme's 2.75 h old
/// trace in the hour still being crossed is hidden at once and purged once that hour
/// lies wholly behind the horizon.
async fn shortened_policy_hides_then_purges(backend: Backend) {
    let clock = Arc::new(ManualClock::new(NOW));
    let fresh = span(2, 1, "svc", "op", NOW - 10 * SEC);
    backend.write("acme", vec![span(1, 1, "old-svc", "op", NOW - 5 * HOUR), fresh]).await;
    backend.write("acme", vec![span(4, 1, "svc", "op", NOW - 2 * HOUR - 45 * 60 * SEC)]).await;
    backend.write("other", vec![span(3, 1, "svc", "op", NOW - 5 * HOUR)]).await;
    assert_eq!(backend.postings("acme").await, 3);

    let mut policies = RetentionPolicies::default();
    policies.per_tenant.insert("acme".into(), Duration::from_secs(2 * 3600 + 1800));
    let w = backend.worker(clock.clone(), "w1", &policies);
    let outcome = w.run_once().await.unwrap();
    let RunOutcome::Ran { epoch: 1, tenants: 2, buckets_expired, rows_expired } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(w.watermarks.expired_before("acme"), NOW - 2 * HOUR - 1800 * SEC, "hidden at once");
    assert!(buckets_expired >= 1 && rows_expired >= 2, "{outcome:?}");
    assert_eq!(backend.stored("acme", 1).await, 0, "the 5 h old trace is deleted early");
    assert_eq!(backend.stored("acme", 2).await, 1, "live data stays");
    assert_eq!(backend.stored("acme", 4).await, 1, "its hour is not wholly expired yet");
    assert_eq!(backend.stored("other", 3).await, 1, "another tenant keeps its data");
    assert_eq!(backend.postings("acme").await, 2, "acme's index entries in the purged hour are gone");
    if backend.embedded {
        let services = backend.reader.services("acme", 0).await.unwrap();
        assert_eq!(services, ["svc"], "the purged hour's catalog went with it");
    }

    clock.advance(Duration::from_secs(3600));
    let outcome = w.run_once().await.unwrap();
    assert!(matches!(outcome, RunOutcome::Ran { buckets_expired: 1, .. }), "{outcome:?}");
    assert_eq!(backend.stored("acme", 4).await, 0);
    assert_eq!(backend.postings("acme").await, 1);
    let report = backend.check(&policies, clock.now_ns()).await;
    assert_eq!(report.violations(), 0, "nothing past the shortened policy is left: {report:?}");
    assert_eq!(report.tenants["acme"].spans, 1);
    assert_eq!(report.tenants["other"].spans, 1);

    // Once every tenant's horizon has passed the buckets, they go whole (embedded) or
    // by TTL (CQL); either way the watermark hides them first.
    clock.advance(Duration::from_secs(7 * 24 * 3600));
    assert!(matches!(w.run_once().await.unwrap(), RunOutcome::Ran { .. }));
    assert!(w.watermarks.expired_before("other") > NOW - 5 * HOUR);
    if backend.embedded {
        assert_eq!(backend.stored("other", 3).await, 0);
        assert_eq!(backend.check(&policies, clock.now_ns()).await.violations(), 0);
    }
}

/// A worker cut off at many points mid-run (its future dropped, as a killed process
/// stops), each time replaced by a new one that lost its in-memory progress, leaves a
/// store the checker finds clean once a run completes.
async fn killed_mid_run_resumes_without_harm(backend: Backend) {
    let clock = Arc::new(ManualClock::new(NOW));
    for hour in 1..=6u8 {
        let spans = (0..40u8)
            .map(|i| {
                let start = NOW - u64::from(hour) * HOUR - 30 * 60 * SEC;
                let mut s = span(i, 1, "svc", &format!("op{i}"), start);
                s.trace_id.0[0] = hour;
                s
            })
            .collect();
        backend.write("acme", spans).await;
    }
    let mut policies = RetentionPolicies::default();
    policies.per_tenant.insert("acme".into(), Duration::from_secs(4 * 3600));
    // Killed after k store operations, for every k a run takes.
    let mut k = 0;
    loop {
        clock.advance(Duration::from_secs(31)); // the previous holder's lease runs out
        let mut w = backend.worker(clock.clone(), &format!("k{k}"), &policies);
        w.store = Arc::new(Interrupted { inner: backend.lifecycle.clone(), calls_left: AtomicUsize::new(k) });
        if w.run_once().await.is_ok() {
            break;
        }
        k += 1;
    }
    assert!(k >= 5, "a run takes several store operations, each a place to be killed: {k}");
    // And killed at arbitrary points inside store operations (the future dropped).
    let mut cut_inside = 0;
    for (restart, cut_ms) in [1u64, 2, 5, 10, 20, 40, 80].into_iter().enumerate() {
        clock.advance(Duration::from_secs(31));
        let w = backend.worker(clock.clone(), &format!("w{restart}"), &policies);
        cut_inside += usize::from(tokio::time::timeout(Duration::from_millis(cut_ms), w.run_once()).await.is_err());
    }
    if !backend.embedded {
        assert!(cut_inside >= 2, "the cuts must land inside runs: {cut_inside}");
    }
    clock.advance(Duration::from_secs(31));
    let w = backend.worker(clock.clone(), "final", &policies);
    assert!(matches!(w.run_once().await.unwrap(), RunOutcome::Ran { .. }));
    let report = backend.check(&policies, clock.now_ns()).await;
    assert_eq!(report.violations(), 0, "{report:?}");
    // Spans 1.5, 2.5 and 3.5 h old are inside 4 h; the hours holding the 4.5, 5.5 and
    // 6.5 h old ones lie wholly outside and must be gone.
    assert_eq!(report.tenants["acme"].spans, 3 * 40, "{report:?}");
    for hour in 1..=6u8 {
        let mut id = [0; 16];
        id[0] = hour;
        let stored = backend.reader.trace("acme", TraceId(id), 10).await.unwrap().0.len();
        assert_eq!(stored, usize::from(hour <= 3), "hour {hour}");
    }
}

/// A store that fails every operation after the first `calls_left`: a worker killed
/// after that many steps.
struct Interrupted {
    inner: Arc<dyn Lifecycle>,
    calls_left: AtomicUsize,
}

impl Interrupted {
    fn step(&self) -> Result<(), StorageError> {
        self.calls_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .map(drop)
            .map_err(|_| StorageError::Unavailable("killed".into()))
    }
}

#[async_trait::async_trait]
impl Lifecycle for Interrupted {
    async fn acquire(&self, holder: &str, now_ns: u64, ttl_ns: u64) -> Result<Option<u64>, StorageError> {
        self.step()?;
        self.inner.acquire(holder, now_ns, ttl_ns).await
    }

    async fn advance_watermark(
        &self,
        holder: &str,
        epoch: u64,
        now_ns: u64,
        tenant: &str,
        expired_before_ns: u64,
    ) -> Result<(), LifecycleError> {
        self.step()?;
        self.inner.advance_watermark(holder, epoch, now_ns, tenant, expired_before_ns).await
    }

    async fn watermarks(&self) -> Result<BTreeMap<String, u64>, StorageError> {
        self.step()?;
        self.inner.watermarks().await
    }

    async fn record_policy(&self, tenant: &str, secs: u64, now_ns: u64) -> Result<PolicyVersion, StorageError> {
        self.step()?;
        self.inner.record_policy(tenant, secs, now_ns).await
    }

    async fn policies(&self) -> Result<Vec<PolicyVersion>, StorageError> {
        self.step()?;
        self.inner.policies().await
    }

    async fn tenants(&self) -> Result<Vec<String>, StorageError> {
        self.step()?;
        self.inner.tenants().await
    }

    async fn expire_before(&self, before_ns: u64) -> Result<Expired, StorageError> {
        self.step()?;
        self.inner.expire_before(before_ns).await
    }

    async fn purge_tenant(&self, tenant: &str, from_ns: u64, before_ns: u64) -> Result<(Expired, u64), StorageError> {
        self.step()?;
        self.inner.purge_tenant(tenant, from_ns, before_ns).await
    }

    async fn purge_all(&self) -> Result<u64, StorageError> {
        self.step()?;
        self.inner.purge_all().await
    }
}

#[tokio::test]
async fn embedded_worker_killed_mid_run_resumes_without_harm() {
    let dir = tempfile::tempdir().unwrap();
    killed_mid_run_resumes_without_harm(Backend::embedded(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_worker_killed_mid_run_resumes_without_harm() {
    let stack = tracekeeper_stack::require().await;
    killed_mid_run_resumes_without_harm(Backend::cql(&stack.cql).await).await;
}

#[tokio::test]
async fn embedded_shortened_policy_hides_at_once_then_purges() {
    let dir = tempfile::tempdir().unwrap();
    shortened_policy_hides_then_purges(Backend::embedded(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_shortened_policy_hides_at_once_then_purges() {
    let stack = tracekeeper_stack::require().await;
    shortened_policy_hides_then_purges(Backend::cql(&stack.cql).await).await;
}

/// `purge_all` (the test suites' purge): every tenant's spans, postings and catalog
/// go; what is written afterwards is stored and found again, catalog included.
async fn purge_all_empties_every_tenant(backend: Backend) {
    backend.write("acme", vec![span(1, 1, "svc", "op", NOW - 10 * SEC)]).await;
    backend.write("other", vec![span(2, 1, "svc", "op", NOW - 2 * HOUR)]).await;
    assert!(backend.lifecycle.purge_all().await.unwrap() > 0);
    for (tenant, trace) in [("acme", 1), ("other", 2)] {
        assert_eq!(backend.stored(tenant, trace).await, 0, "{tenant}");
        assert_eq!(backend.postings(tenant).await, 0, "{tenant}");
        assert!(backend.reader.services(tenant, 0).await.unwrap().is_empty(), "{tenant}");
    }
    // The same span again, as a test suite writes its fixture after each purge: the
    // catalog a writer remembers having written is written again too.
    backend.write("acme", vec![span(1, 1, "svc", "op", NOW - 10 * SEC)]).await;
    assert_eq!((backend.stored("acme", 1).await, backend.postings("acme").await), (1, 1));
    assert_eq!(backend.reader.services("acme", 0).await.unwrap(), ["svc"]);
}

#[tokio::test]
async fn embedded_purge_all_empties_every_tenant() {
    let dir = tempfile::tempdir().unwrap();
    purge_all_empties_every_tenant(Backend::embedded(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_purge_all_empties_every_tenant() {
    let stack = tracekeeper_stack::require().await;
    purge_all_empties_every_tenant(Backend::cql(&stack.cql).await).await;
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
