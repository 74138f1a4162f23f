//! Zipkin: `POST /api/v2/spans`, a JSON list of v2 spans, optionally gzip.

use axum::body::Body;
use axum::extract::State;
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tracekeeper_model::otlp::summarize_rejections;

use crate::body::RequestBody;
use crate::error::IngestError;
use crate::IngestState;
use tracekeeper_serve::{Declared, Group, Routes, Shape};

/// `POST /api/v2/spans`: needs `write`; errors are plain text, as Zipkin's are.
pub fn router(state: IngestState) -> Routes {
    Group::new(Declared::write(Shape::Text)).post("/api/v2/spans", spans).with_state(state)
}

async fn spans(State(state): State<IngestState>, extensions: Extensions, headers: HeaderMap, body: Body) -> Response {
    let tenant = tracekeeper_serve::requested_tenant(&extensions, &headers);
    match handle(&state, &headers, tenant, body).await {
        Ok(rejected) => match summarize_rejections(&rejected) {
            // Zipkin has no partial success: the valid spans are stored, and the
            // client is told which were not.
            Some(message) => (StatusCode::BAD_REQUEST, message).into_response(),
            None => StatusCode::ACCEPTED.into_response(),
        },
        Err(e) => e.into_text_response(),
    }
}

async fn handle(
    state: &IngestState,
    headers: &HeaderMap,
    tenant: Option<&[u8]>,
    body: Body,
) -> Result<Vec<String>, IngestError> {
    let content_type =
        headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    if !content_type.trim().to_ascii_lowercase().starts_with("application/json") {
        return Err(IngestError::UnsupportedContentType(format!(
            "{content_type} (this receiver takes Zipkin v2 JSON: application/json)"
        )));
    }
    let RequestBody { tenant, bytes, _permit } = RequestBody::read(state, headers, tenant, body).await?;
    let decoded = tracekeeper_model::zipkin::decode(&bytes)
        .map_err(|e| IngestError::BadBody(format!("invalid Zipkin v2 JSON (expected a list of spans): {e}")))?;
    state.deliver("zipkin", &tenant, decoded, bytes.len()).await
}
