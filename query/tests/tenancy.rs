//! Tenants kept apart at the API boundary, over real HTTP on both backends: on every one
//! of the 27 ways the query APIs can show a trace, a tenant sees its own trace and none
//! of another tenant's, although both are stored side by side with the same names.

mod support;

use std::sync::Arc;

use support::probes::{trace, PROBES};
use support::{wall_clock_now, Api, SEC};
use tracekeeper_model::clock::ManualClock;
use tracekeeper_storage::{SpanReader, SpanWriter, WriteBatch};

async fn tenants_see_only_their_own(writer: Arc<dyn SpanWriter>, reader: Arc<dyn SpanReader>) {
    let now = wall_clock_now();
    let start = now - 60 * SEC;
    let tenants =
        [("acme", trace(1, "acme-svc", "acme-op", start)), ("globex", trace(2, "globex-svc", "globex-op", start))];
    for (tenant, spans) in &tenants {
        let batch =
            WriteBatch { tenant: tenant.to_string(), spans: spans.clone(), retention_ns: 86_400 * SEC, now_ns: now };
        writer.write(batch).await.unwrap();
    }
    let clock = Arc::new(ManualClock::new(now));
    let window = ((start - 3600 * SEC) / 1000, now / 1000);
    for (me, mine) in &tenants {
        let api = Api::start_as(reader.clone(), clock.clone(), me).await;
        let (_, theirs) = tenants.iter().find(|(other, _)| other != me).unwrap();
        let (my_service, their_service) = (mine[0].service_name(), theirs[0].service_name());
        for probe in PROBES {
            assert!(
                probe.sees(&api, mine[0].trace_id, my_service, &mine[0].name, window).await,
                "{probe:?}: {me} sees its own"
            );
            assert!(
                !probe.sees(&api, theirs[0].trace_id, their_service, &theirs[0].name, window).await,
                "{probe:?}: {me} sees another tenant's"
            );
        }
    }
}

#[tokio::test]
async fn embedded_tenants_see_only_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let config = tracekeeper_storage::embedded::EmbeddedConfig::new(dir.path());
    let store = Arc::new(tracekeeper_storage::embedded::EmbeddedStore::open(config).unwrap());
    tenants_see_only_their_own(store.clone(), store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_tenants_see_only_their_own() {
    let stack = tracekeeper_stack::require().await;
    let store = Arc::new(tracekeeper_storage::cql::test_store(&stack.cql).await);
    tenants_see_only_their_own(store.clone(), store).await;
}
