//! The query APIs served over a real socket, on any backend, with a manual clock.
#![allow(dead_code)]

pub mod probes;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tracekeeper_model::clock::ManualClock;
use tracekeeper_model::Tenancy;
use tracekeeper_query::{QueryEngine, QueryState};
use tracekeeper_retention::RetentionPolicies;
use tracekeeper_storage::red::RedStore;
use tracekeeper_storage::SpanReader;

pub const SEC: u64 = 1_000_000_000;

pub struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    pub async fn start(reader: Arc<dyn SpanReader>, clock: Arc<ManualClock>, retention: Duration) -> Self {
        Self::serve(reader, clock, retention, None, None, Default::default()).await
    }

    /// A server that also answers from `red`'s per-minute cells.
    pub async fn start_with_red(
        reader: Arc<dyn SpanReader>,
        red: Arc<dyn RedStore>,
        clock: Arc<ManualClock>,
        retention: Duration,
    ) -> Self {
        Self::serve(reader, clock, retention, None, Some(red), Default::default()).await
    }

    /// The same, held to `budget` (timeout, window, traces read).
    pub async fn start_with_budget(
        reader: Arc<dyn SpanReader>,
        red: Arc<dyn RedStore>,
        clock: Arc<ManualClock>,
        retention: Duration,
        budget: tracekeeper_query::budget::SearchBudget,
    ) -> Self {
        Self::serve(reader, clock, retention, None, Some(red), budget).await
    }

    /// A multi-tenant server, asked as `tenant` (in X-Scope-OrgID) on every request.
    pub async fn start_as(reader: Arc<dyn SpanReader>, clock: Arc<ManualClock>, tenant: &str) -> Self {
        Self::serve(reader, clock, Duration::from_secs(86_400), Some(tenant), None, Default::default()).await
    }

    async fn serve(
        reader: Arc<dyn SpanReader>,
        clock: Arc<ManualClock>,
        retention: Duration,
        tenant: Option<&str>,
        red: Option<Arc<dyn RedStore>>,
        budget: tracekeeper_query::budget::SearchBudget,
    ) -> Self {
        let policies = RetentionPolicies { default: retention, ..Default::default() };
        let engine = QueryEngine::new(reader, Arc::new(policies), clock, 1000).with_search_budget(budget);
        let mut state = QueryState::new(engine, Tenancy { multi_tenant: tenant.is_some() });
        if let Some(red) = red {
            state = state.with_red(red);
        }
        let state = Arc::new(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        // Behind the serving layer, as every listener: the routes' declared access and
        // error shapes apply (auth is off).
        let prepared = tracekeeper_serve::ServingConfig::default().http(listener, "query").unwrap();
        tokio::spawn(prepared.serve_http(tracekeeper_query::router(state), std::future::pending()));
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(tenant) = tenant {
            headers.insert("x-scope-orgid", tenant.parse().unwrap());
        }
        Self { base, client: reqwest::Client::builder().default_headers(headers).build().unwrap() }
    }

    /// Status and body; a body that is not JSON comes back as a JSON string.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(format!("{}{path}", self.base)).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

impl Api {
    /// Status and body of a GET that asks for protobuf, as Grafana's Tempo data source
    /// does; a 200 must carry a non-empty protobuf body.
    pub async fn get_protobuf(&self, path: &str) -> (u16, Vec<u8>) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header("accept", "application/protobuf")
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let is_protobuf = response.headers().get("content-type").is_some_and(|v| v == "application/protobuf");
        let body = response.bytes().await.unwrap();
        assert!(status != 200 || (is_protobuf && !body.is_empty()), "a 200 must be protobuf");
        (status, body.to_vec())
    }
}

/// Now, to the second: CQL TTLs run on the server's clock, so data must be recent.
pub fn wall_clock_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() * SEC
}
