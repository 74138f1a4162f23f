//! `POST /api/purge`: deletes every tenant's data at once, for test suites that empty
//! the store between cases (Jaeger's storage integration tests, through its
//! `PURGER_ENDPOINT`). Served only with `--test-purge-endpoint`; refused otherwise.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tracekeeper_serve::{Declared, Group, Routes, Shape};
use tracekeeper_storage::Lifecycle;

/// Needs `admin`: it deletes every tenant's data.
pub fn router(store: Arc<dyn Lifecycle>, enabled: bool) -> Routes {
    Group::new(Declared::admin(Shape::Text)).post("/api/purge", purge).with_state((store, enabled))
}

async fn purge(State((store, enabled)): State<(Arc<dyn Lifecycle>, bool)>) -> Response {
    if !enabled {
        let why = "the purge endpoint deletes every tenant's data and is for test suites only: \
                   start with --test-purge-endpoint to serve it";
        return (StatusCode::FORBIDDEN, why).into_response();
    }
    match store.purge_all().await {
        Ok(rows) => {
            tracing::warn!(rows, "every tenant's data was purged (--test-purge-endpoint)");
            // A test suite calls this between cases and may check that it leaves no
            // connection behind (Jaeger's does, with goleak): close this one.
            let close = [(axum::http::header::CONNECTION, "close")];
            (StatusCode::OK, close, format!("purged {rows}\n")).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "purging failed");
            (StatusCode::SERVICE_UNAVAILABLE, "purging failed; retry later\n").into_response()
        }
    }
}
