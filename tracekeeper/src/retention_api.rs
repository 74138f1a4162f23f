//! `GET /api/retention`: the policies in force (the latest version per tenant, `*` is
//! the default), every version with when it was made, and the watermarks.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tracekeeper_serve::{Declared, Group, Routes, Shape};
use tracekeeper_storage::{Lifecycle, PolicyVersion};

/// Needs `admin`: policies and watermarks span every tenant.
pub fn router(store: Arc<dyn Lifecycle>) -> Routes {
    Group::new(Declared::admin(Shape::Text)).get("/api/retention", retention).with_state(store)
}

async fn retention(axum::extract::State(store): axum::extract::State<Arc<dyn Lifecycle>>) -> Response {
    let read = async {
        let versions = store.policies().await?;
        let watermarks = store.watermarks().await?;
        Ok::<_, tracekeeper_storage::StorageError>((versions, watermarks))
    };
    match read.await {
        Ok((versions, watermarks)) => {
            let mut in_force: BTreeMap<String, PolicyVersion> = BTreeMap::new();
            for version in &versions {
                in_force.insert(version.tenant.clone(), version.clone());
            }
            let body = serde_json::json!({
                "policies": in_force,
                "versions": versions,
                "watermarks_expired_before_ns": watermarks,
            });
            Json(body).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "reading retention state failed");
            let body = serde_json::json!({"error": "retention state is unavailable; retry later"});
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}
