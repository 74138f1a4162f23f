//! Retention at the API boundary, over real HTTP on both backends, with a manual
//! clock: a span that starts just inside its tenant's retention is visible on every
//! query API; one that starts just outside is on none of them, although both are
//! still stored.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tracekeeper_model::{Tenancy, TraceId};
use tracekeeper_query::{QueryEngine, QueryState};
use tracekeeper_retention::{ManualClock, RetentionPolicies};
use tracekeeper_storage::testing::span;
use tracekeeper_storage::{SpanReader, SpanWriter, WriteBatch};

const SEC: u64 = 1_000_000_000;
const RETENTION: Duration = Duration::from_secs(24 * 3600);

struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    async fn start(reader: Arc<dyn SpanReader>, clock: Arc<ManualClock>) -> Self {
        let policies = RetentionPolicies { default: RETENTION, ..Default::default() };
        let engine = QueryEngine::new(reader, Arc::new(policies), clock, 1000);
        let state = Arc::new(QueryState { engine, tenancy: Tenancy { multi_tenant: false } });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, tracekeeper_query::router(state)).await });
        Self { base, client: reqwest::Client::new() }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(format!("{}{path}", self.base)).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// One way to see a trace (and its service and operation) through the APIs.
#[derive(Debug, Clone, Copy)]
#[allow(clippy::enum_variant_names)] // until the other APIs' probes join
enum Probe {
    JaegerTrace,
    JaegerMultiGet,
    JaegerSearchByService,
    JaegerSearchByTag,
    JaegerServices,
    JaegerServiceOperations,
    JaegerOperations,
}

const PROBES: [Probe; 7] = [
    Probe::JaegerTrace,
    Probe::JaegerMultiGet,
    Probe::JaegerSearchByService,
    Probe::JaegerSearchByTag,
    Probe::JaegerServices,
    Probe::JaegerServiceOperations,
    Probe::JaegerOperations,
];

fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .map_or(vec![], |d| d.iter().filter_map(|t| t["traceID"].as_str().map(String::from)).collect())
}

fn strings(body: &Value, field: Option<&str>) -> Vec<String> {
    let items = body["data"].as_array().cloned().unwrap_or_default();
    items.iter().filter_map(|v| field.map_or(v, |f| &v[f]).as_str().map(String::from)).collect()
}

impl Probe {
    /// Does `api` show the trace `id` whose only span is `service`/`operation`?
    async fn sees(self, api: &Api, id: TraceId, service: &str, operation: &str, start_us: u64) -> bool {
        let hex = id.to_hex();
        match self {
            Probe::JaegerTrace => api.get(&format!("/api/traces/{hex}")).await.0 == 200,
            Probe::JaegerMultiGet => ids(&api.get(&format!("/api/traces?traceID={hex}")).await.1).contains(&hex),
            Probe::JaegerSearchByService => {
                let path = format!("/api/traces?service={service}&start={start_us}&limit=10");
                ids(&api.get(&path).await.1).contains(&hex)
            }
            Probe::JaegerSearchByTag => {
                let path = format!("/api/traces?tag=probe:{service}&start={start_us}&limit=10");
                ids(&api.get(&path).await.1).contains(&hex)
            }
            Probe::JaegerServices => strings(&api.get("/api/services").await.1, None).contains(&service.to_string()),
            Probe::JaegerServiceOperations => {
                let body = api.get(&format!("/api/services/{service}/operations")).await.1;
                strings(&body, None).contains(&operation.to_string())
            }
            Probe::JaegerOperations => {
                let body = api.get(&format!("/api/operations?service={service}")).await.1;
                strings(&body, Some("name")).contains(&operation.to_string())
            }
        }
    }
}

async fn just_inside_is_visible_just_outside_is_not(writer: Arc<dyn SpanWriter>, reader: Arc<dyn SpanReader>) {
    // Now, to the second, so that CQL TTLs (which run on the server's clock) are sane.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() * SEC;
    let clock = Arc::new(ManualClock::new(now));
    let horizon = now - RETENTION.as_secs() * SEC;
    let mut inside = span(1, 1, "inside-svc", "inside-op", horizon);
    let mut outside = span(2, 1, "outside-svc", "outside-op", horizon - 1);
    for s in [&mut inside, &mut outside] {
        let service = s.service_name().to_string();
        s.attributes.push(tracekeeper_model::KeyValue::string("probe", service));
    }
    // Stored while both were inside (a minute ago), as an indexer would have; on CQL
    // the rows get about a minute of TTL.
    let batch = WriteBatch {
        tenant: "single-tenant".into(),
        spans: vec![inside.clone(), outside.clone()],
        retention_ns: RETENTION.as_nanos() as u64,
        now_ns: now - 60 * SEC,
    };
    writer.write(batch).await.unwrap();
    assert_eq!(reader.trace("single-tenant", outside.trace_id, 10).await.unwrap().0.len(), 1, "stored");

    let api = Api::start(reader, clock).await;
    let start_us = (horizon - 3600 * SEC) / 1000;
    for probe in PROBES {
        assert!(probe.sees(&api, inside.trace_id, "inside-svc", "inside-op", start_us).await, "{probe:?}: just inside");
        assert!(
            !probe.sees(&api, outside.trace_id, "outside-svc", "outside-op", start_us).await,
            "{probe:?}: just outside"
        );
    }
}

#[tokio::test]
async fn embedded_just_inside_is_visible_just_outside_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        tracekeeper_storage::embedded::EmbeddedStore::open(tracekeeper_storage::embedded::EmbeddedConfig::new(
            dir.path(),
        ))
        .unwrap(),
    );
    just_inside_is_visible_just_outside_is_not(store.clone(), store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_just_inside_is_visible_just_outside_is_not() {
    let stack = tracekeeper_stack::require().await;
    let store = Arc::new(tracekeeper_storage::cql::test_store(&stack.cql).await);
    just_inside_is_visible_just_outside_is_not(store.clone(), store).await;
}
