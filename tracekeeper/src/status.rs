//! `GET /api/status` on indexers and query nodes: partition ownership, offsets, lag and
//! per-tenant counters from the ownership ledger (`tracekeeper_kafka::status`).

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tracekeeper_kafka::group::GroupView;
use tracekeeper_model::clock::Clock;
use tracekeeper_serve::{Declared, Group, Routes, Shape};
use tracekeeper_storage::OwnershipLedger;

#[derive(Clone)]
struct StatusState {
    ledger: Arc<dyn OwnershipLedger>,
    members: Vec<GroupView>,
    clock: Arc<dyn Clock>,
}

/// `members`: the indexer's group members, one per topic; none on a query node.
/// Needs `admin`: it spans every tenant.
pub fn router(ledger: Arc<dyn OwnershipLedger>, members: Vec<GroupView>, clock: Arc<dyn Clock>) -> Routes {
    Group::new(Declared::admin(Shape::Text)).get("/api/status", status).with_state(StatusState {
        ledger,
        members,
        clock,
    })
}

async fn status(axum::extract::State(state): axum::extract::State<StatusState>) -> Response {
    match tracekeeper_kafka::status::snapshot(&*state.ledger, &state.members, state.clock.now_ns()).await {
        Ok(status) => Json(status).into_response(),
        Err(e) => {
            // The cause is for the operator's log, not the client.
            tracing::warn!(error = %e, "status: reading the ownership ledger failed");
            let body = serde_json::json!({"error": "the ownership ledger is unavailable; retry later"});
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}
