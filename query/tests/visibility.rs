//! Retention at the API boundary, over real HTTP on both backends, with a manual
//! clock: a span that starts just inside its tenant's retention is visible on every
//! query API; one that starts just outside is on none of them, although both are
//! still stored.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::probes::{trace, PROBES};
use support::{wall_clock_now, Api, SEC};
use tracekeeper_model::clock::ManualClock;
use tracekeeper_storage::{SpanReader, SpanWriter, WriteBatch};

const RETENTION: Duration = Duration::from_secs(24 * 3600);

async fn just_inside_is_visible_just_outside_is_not(writer: Arc<dyn SpanWriter>, reader: Arc<dyn SpanReader>) {
    let now = wall_clock_now();
    let clock = Arc::new(ManualClock::new(now));
    let horizon = now - RETENTION.as_secs() * SEC;
    // Only the root decides: it is the one at the horizon.
    let inside = trace(1, "inside-svc", "inside-op", horizon);
    let outside = trace(2, "outside-svc", "outside-op", horizon - 1);
    // Stored while both were inside (a minute ago), as an indexer would have; on CQL
    // the rows get about a minute of TTL.
    let batch = WriteBatch {
        tenant: "single-tenant".into(),
        spans: [inside.clone(), outside.clone()].concat(),
        retention_ns: RETENTION.as_nanos() as u64,
        now_ns: now - 60 * SEC,
    };
    writer.write(batch).await.unwrap();
    let (inside, outside) = (&inside[0], &outside[0]);
    assert_eq!(reader.trace("single-tenant", outside.trace_id, 10).await.unwrap().0.len(), 2, "stored");

    let api = Api::start(reader, clock, RETENTION).await;
    let window = ((horizon - 3600 * SEC) / 1000, now / 1000);
    for probe in PROBES {
        assert!(probe.sees(&api, inside.trace_id, "inside-svc", "inside-op", window).await, "{probe:?}: just inside");
        assert!(
            !probe.sees(&api, outside.trace_id, "outside-svc", "outside-op", window).await,
            "{probe:?}: just outside"
        );
    }
}

#[tokio::test]
async fn embedded_just_inside_is_visible_just_outside_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let config = tracekeeper_storage::embedded::EmbeddedConfig::new(dir.path());
    let store = Arc::new(tracekeeper_storage::embedded::EmbeddedStore::open(config).unwrap());
    just_inside_is_visible_just_outside_is_not(store.clone(), store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_just_inside_is_visible_just_outside_is_not() {
    let stack = tracekeeper_stack::require().await;
    let store = Arc::new(tracekeeper_storage::cql::test_store(&stack.cql).await);
    just_inside_is_visible_just_outside_is_not(store.clone(), store).await;
}
