//! Zipkin: `POST /api/v2/spans`, a JSON list of v2 spans, optionally gzip.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use tracekeeper_model::otlp::summarize_rejections;

use crate::body::RequestBody;
use crate::error::IngestError;
use crate::IngestState;

pub fn router(state: IngestState) -> Router {
    Router::new().route("/api/v2/spans", post(spans)).with_state(state)
}

async fn spans(State(state): State<IngestState>, headers: HeaderMap, body: Body) -> Response {
    match handle(&state, &headers, body).await {
        Ok(rejected) => match summarize_rejections(&rejected) {
            // Zipkin has no partial success: the valid spans are stored, and the
            // client is told which were not.
            Some(message) => (StatusCode::BAD_REQUEST, message).into_response(),
            None => StatusCode::ACCEPTED.into_response(),
        },
        Err(e) => e.into_text_response(),
    }
}

async fn handle(state: &IngestState, headers: &HeaderMap, body: Body) -> Result<Vec<String>, IngestError> {
    let content_type =
        headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    if !content_type.trim().to_ascii_lowercase().starts_with("application/json") {
        return Err(IngestError::UnsupportedContentType(format!(
            "{content_type} (this receiver takes Zipkin v2 JSON: application/json)"
        )));
    }
    let RequestBody { tenant, bytes, _permit } = RequestBody::read(state, headers, body).await?;
    let decoded = tracekeeper_model::zipkin::decode(&bytes)
        .map_err(|e| IngestError::BadBody(format!("invalid Zipkin v2 JSON (expected a list of spans): {e}")))?;
    state.deliver("zipkin", &tenant, decoded, bytes.len()).await
}
