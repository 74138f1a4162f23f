//! OTLP/HTTP: `POST /v1/traces`, protobuf or JSON, optionally gzip.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tracekeeper_model::otlp::{self, summarize_rejections};
use tracekeeper_model::otlp_json;

use crate::body::RequestBody;
use crate::error::IngestError;
use crate::IngestState;
use tracekeeper_serve::{Declared, Group, Routes, Shape};

/// `POST /v1/traces`: needs `write`, and answers errors as OTLP's `Status`.
pub fn router(state: IngestState) -> Routes {
    Group::new(Declared::write(Shape::OTLP)).post("/v1/traces", export).with_state(state)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

fn request_encoding(headers: &HeaderMap) -> Result<Encoding, IngestError> {
    let raw = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = raw.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        _ => Err(IngestError::UnsupportedContentType(raw.to_string())),
    }
}

async fn export(State(state): State<IngestState>, extensions: Extensions, headers: HeaderMap, body: Body) -> Response {
    let encoding = match request_encoding(&headers) {
        Ok(encoding) => encoding,
        Err(e) => return e.into_otlp_response(false),
    };
    let tenant = tracekeeper_serve::requested_tenant(&extensions, &headers);
    match handle(&state, &headers, tenant, body, encoding).await {
        Ok(response) => response,
        Err(e) => e.into_otlp_response(encoding == Encoding::Json),
    }
}

async fn handle(
    state: &IngestState,
    headers: &HeaderMap,
    tenant: Option<&[u8]>,
    body: Body,
    encoding: Encoding,
) -> Result<Response, IngestError> {
    let RequestBody { tenant, bytes, _permit } = RequestBody::read(state, headers, tenant, body).await?;
    let size = bytes.len();
    let (decoded, warning) = match encoding {
        Encoding::Protobuf => {
            let request = ExportTraceServiceRequest::decode(bytes)
                .map_err(|e| IngestError::BadBody(format!("invalid OTLP protobuf: {e}")))?;
            (otlp::from_request(request), None)
        }
        Encoding::Json => {
            let decoded = otlp_json::decode_request(&bytes)
                .map_err(|e| IngestError::BadBody(format!("invalid OTLP JSON: {e}")))?;
            (otlp::from_request(decoded.request), decoded.warning)
        }
    };
    let rejected = state.deliver("otlp_http", &tenant, decoded, size).await?;
    Ok(success(encoding, &rejected, warning))
}

fn success(encoding: Encoding, rejected: &[String], warning: Option<String>) -> Response {
    let message = summarize_rejections(rejected).or(warning);
    let partial_success =
        message.map(|error_message| ExportTracePartialSuccess { rejected_spans: rejected.len() as i64, error_message });
    match encoding {
        Encoding::Protobuf => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            ExportTraceServiceResponse { partial_success }.encode_to_vec(),
        )
            .into_response(),
        Encoding::Json => {
            let body = match partial_success {
                None => serde_json::json!({}),
                Some(p) => serde_json::json!({
                    "partialSuccess": {"rejectedSpans": p.rejected_spans, "errorMessage": p.error_message}
                }),
            };
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
        }
    }
}
