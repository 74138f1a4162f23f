//! Query errors, and the one place where they become HTTP responses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tracekeeper_model::TenantError;
use tracekeeper_storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Tenant(#[from] TenantError),
    #[error("storage failed")]
    Storage(#[from] StorageError),
    /// The tenant already runs its share of queries; retryable.
    #[error("{0}")]
    Busy(String),
}

impl QueryError {
    pub fn http_status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::Tenant(TenantError::Invalid(_)) => StatusCode::BAD_REQUEST,
            Self::Tenant(TenantError::Missing) => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Storage(e) if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
            Self::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// Every shape's response gets the same status and, when retrying helps, the
    /// same Retry-After.
    fn finish(&self, mut response: Response) -> Response {
        if matches!(self, Self::Busy(_)) {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        }
        response
    }

    /// The message a client may see: storage details stay in the log.
    fn public_message(&self) -> String {
        if let Self::Storage(e) = self {
            tracing::error!(error = %e, "query failed");
        }
        self.to_string()
    }

    /// Jaeger's envelope: `{"data":null,...,"errors":[{"code","msg"}]}`.
    pub fn into_jaeger_response(self) -> Response {
        let status = self.http_status();
        let body = serde_json::json!({
            "data": null, "total": 0, "limit": 0, "offset": 0,
            "errors": [{"code": status.as_u16(), "msg": self.public_message()}],
        });
        self.finish((status, Json(body)).into_response())
    }
}

impl QueryError {
    /// Jaeger api_v3's shape: `{"error":{"httpCode","message"}}`.
    pub fn into_v3_response(self) -> Response {
        let status = self.http_status();
        let body = serde_json::json!({"error": {"httpCode": status.as_u16(), "message": self.public_message()}});
        self.finish((status, Json(body)).into_response())
    }

    /// Zipkin's shape: the message as plain text.
    pub fn into_text_response(self) -> Response {
        let status = self.http_status();
        self.finish((status, self.public_message()).into_response())
    }
}

/// A path under `/api` that no API answers: Jaeger's JSON error envelope, so that API
/// clients get JSON and never the web UI's page.
pub fn api_not_found(path: &str) -> Response {
    QueryError::NotFound(format!("no API at {path}")).into_jaeger_response()
}

/// Wraps a handler result so that errors take Zipkin's plain-text shape.
pub struct TextResult(pub Result<Response, QueryError>);

impl IntoResponse for TextResult {
    fn into_response(self) -> Response {
        self.0.unwrap_or_else(QueryError::into_text_response)
    }
}

/// Wraps a handler result so that errors take the Jaeger shape.
pub struct JaegerResult(pub Result<Response, QueryError>);

impl IntoResponse for JaegerResult {
    fn into_response(self) -> Response {
        self.0.unwrap_or_else(QueryError::into_jaeger_response)
    }
}
