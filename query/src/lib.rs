//! The query side: the engine that searches and fetches traces, and the HTTP APIs
//! that expose it.
//!
//! # Layout
//! - [`engine`]: exact, newest-first search and trace fetch over any [`SpanReader`].
//! - [`predicate`]: what a search asks of a span, and the posting lists that cover it.
//! - [`jaeger_api`]: Jaeger's classic JSON API (a trace by id is streamed by
//!   `jaeger_stream`); [`jaeger_v3`]: Jaeger's `/api/v3`.
//! - [`zipkin_api`]: Zipkin's v2 query API.
//! - [`tempo_api`]: Grafana Tempo's API, searching with the [`traceql`] subset.
//! - [`dependencies`]: the service graph, computed from stored traces.
//! - [`error`]: the one place where query errors become HTTP responses.
//!
//! [`SpanReader`]: tracekeeper_storage::SpanReader

pub mod budget;
pub mod dependencies;
pub mod engine;
pub mod error;
pub mod grpc;
pub mod jaeger_api;
pub mod jaeger_metrics;
mod jaeger_stream;
pub mod jaeger_v3;
pub mod params;
pub mod predicate;
pub mod telemetry;
pub mod tempo_api;
pub mod tempo_metrics;
mod tempo_tags;
pub mod tenant_gate;
pub mod trace_pages;
pub mod traceql;
pub mod zipkin_api;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::sync::Arc;

use tracekeeper_model::Tenancy;
use tracekeeper_serve::Routes;
use tracekeeper_storage::{RedCell, RedStore};

pub use engine::{QueryEngine, TraceQuery, TraceSummary};
pub use error::{api_not_found, QueryError};

pub struct QueryState {
    pub engine: QueryEngine,
    pub tenancy: Tenancy,
    /// Each tenant's share of this node's queries.
    pub tenant_gate: tenant_gate::TenantGate,
    /// The RED cells the Monitor tab reads; none, and it has no data.
    pub red: Option<Arc<dyn RedStore>>,
}

impl QueryState {
    pub fn new(engine: QueryEngine, tenancy: Tenancy) -> Self {
        Self { engine, tenancy, tenant_gate: Default::default(), red: None }
    }

    /// Answers Jaeger's Monitor tab from `store`.
    pub fn with_red(mut self, store: Arc<dyn RedStore>) -> Self {
        self.red = Some(store);
        self
    }

    async fn red_cells(&self, tenant: &str, from_ns: u64, to_ns: u64) -> Result<Vec<RedCell>, QueryError> {
        match &self.red {
            Some(store) => Ok(store.red(tenant, from_ns, to_ns).await?),
            None => Ok(Vec::new()),
        }
    }

    /// At most `max` queries of one tenant at once.
    pub fn with_max_queries_per_tenant(mut self, max: usize) -> Self {
        self.tenant_gate = tenant_gate::TenantGate::new(max);
        self
    }

    /// The request's tenant, holding one of its query slots for as long as the handler
    /// keeps the answer. Handlers take it as the [`Tenant`] extractor.
    fn tenant(&self, parts: &axum::http::request::Parts) -> Result<tenant_gate::TenantSlot, QueryError> {
        let named = tracekeeper_serve::requested_tenant(&parts.extensions, &parts.headers);
        let tenant = self.tenancy.resolve(named)?;
        self.tenant_gate.enter(tenant)
    }

    pub fn truncation_warning(&self, truncated: bool) -> Vec<String> {
        if truncated {
            vec![format!(
                "trace truncated: only the first {} spans (by start time) are returned; raise --max-trace-spans to see more",
                self.engine.max_trace_spans()
            )]
        } else {
            Vec::new()
        }
    }
}

/// The tenant a request acts for, as the serving layer let it through (with auth on,
/// the tenant its credentials were granted), holding one of that tenant's query
/// slots until the handler is done. The only place handlers learn their tenant from.
pub struct Tenant(tenant_gate::TenantSlot);

impl std::ops::Deref for Tenant {
    type Target = String;
    fn deref(&self) -> &String {
        &self.0
    }
}

impl axum::extract::FromRequestParts<Arc<QueryState>> for Tenant {
    /// A refusal in the shape of the API the request was for.
    type Rejection = axum::response::Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Arc<QueryState>,
    ) -> Result<Self, Self::Rejection> {
        state
            .tenant(parts)
            .map(Tenant)
            .map_err(|e| e.into_shaped_response(tracekeeper_serve::shape_of(&parts.extensions)))
    }
}

/// Every query API, each needing `read` and answering errors in its own API's shape.
pub fn router(state: Arc<QueryState>) -> Routes {
    jaeger_api::router(state.clone())
        .merge(jaeger_v3::router(state.clone()))
        .merge(zipkin_api::router(state.clone()))
        .merge(tempo_api::router(state.clone()))
        .merge(tempo_metrics::router(state.clone()))
        .merge(jaeger_metrics::router(state))
}
