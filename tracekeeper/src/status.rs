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
    durability: Arc<serde_json::Value>,
}

/// `members`: the indexer's group members, one per topic; none on a query node.
/// `durability`: the keyspace's replication and the topics' (`roles::durability`).
/// Needs `admin`: it spans every tenant.
pub fn router(
    ledger: Arc<dyn OwnershipLedger>,
    members: Vec<GroupView>,
    clock: Arc<dyn Clock>,
    durability: serde_json::Value,
) -> Routes {
    Group::new(Declared::admin(Shape::Text)).get("/api/status", status).with_state(StatusState {
        ledger,
        members,
        clock,
        durability: Arc::new(durability),
    })
}

async fn status(axum::extract::State(state): axum::extract::State<StatusState>) -> Response {
    match tracekeeper_kafka::status::snapshot(&*state.ledger, &state.members, state.clock.now_ns()).await {
        Ok(status) => {
            let mut body = serde_json::to_value(status).unwrap_or_default();
            body["durability"] = (*state.durability).clone();
            Json(body).into_response()
        }
        Err(e) => {
            // The cause is for the operator's log, not the client.
            tracing::warn!(error = %e, "status: reading the ownership ledger failed");
            let body = serde_json::json!({"error": "the ownership ledger is unavailable; retry later"});
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}
