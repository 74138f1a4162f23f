//! What each role serves on each HTTP listener, built in one place so that the roles
//! and the access walk (`listeners_tests.rs`) see the same routes. Every route comes
//! with its declared access ([`tracekeeper_serve::access`]); `/ready` and `/metrics`
//! are added to every listener by [`crate::serve::Servers`].

use std::sync::Arc;

use tracekeeper_ingest::IngestState;
use tracekeeper_query::QueryState;
use tracekeeper_serve::Routes;
use tracekeeper_ui::UiConfig;

/// OTLP/HTTP's `POST /v1/traces`.
pub fn otlp_http(ingest: &IngestState) -> Routes {
    tracekeeper_ingest::otlp_http::router(ingest.clone())
}

/// Zipkin's `POST /api/v2/spans`.
pub fn zipkin(ingest: &IngestState) -> Routes {
    tracekeeper_ingest::zipkin::router(ingest.clone())
}

/// The query listener: every query API, the role's admin APIs beside them, and the
/// web UI (or a 404 in the APIs' shape), under the base path.
pub fn query(state: Arc<QueryState>, admin: Routes, ui: &UiConfig) -> Routes {
    tracekeeper_ui::mount(tracekeeper_query::router(state).merge(admin), ui, tracekeeper_query::api_not_found)
}

#[cfg(test)]
#[path = "listeners_tests.rs"]
mod tests;
