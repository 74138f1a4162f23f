//! Query errors, and the one place where they become HTTP responses and gRPC statuses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tracekeeper_model::TenantError;
use tracekeeper_serve::shapes::{self, Shape};
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

    /// The error in `shape`, the same body the serving layer writes for its refusals.
    pub fn into_shaped_response(self, shape: Shape) -> Response {
        let response = shapes::response(shape, self.http_status(), UNKNOWN, &self.public_message());
        self.finish(response)
    }

    /// Jaeger's envelope: `{"data":null,...,"errors":[{"code","msg"}]}`.
    pub fn into_jaeger_response(self) -> Response {
        self.into_shaped_response(Shape::Jaeger)
    }

    /// Jaeger api_v3's shape: `{"error":{"httpCode","message"}}`.
    pub fn into_v3_response(self) -> Response {
        self.into_shaped_response(Shape::JaegerV3)
    }

    /// The gRPC status of Jaeger's gRPC APIs: the code that matches the HTTP status.
    pub fn into_status(self) -> tonic::Status {
        use tonic::Code;
        let code = match &self {
            Self::BadRequest(_) | Self::Tenant(TenantError::Invalid(_)) => Code::InvalidArgument,
            Self::Tenant(TenantError::Missing) => Code::Unauthenticated,
            Self::NotFound(_) => Code::NotFound,
            Self::Storage(e) if e.is_retryable() => Code::Unavailable,
            Self::Storage(_) => Code::Internal,
            Self::Busy(_) => Code::ResourceExhausted,
        };
        tonic::Status::new(code, self.public_message())
    }

    /// Zipkin's and Tempo's shape: the message as plain text.
    pub fn into_text_response(self) -> Response {
        self.into_shaped_response(Shape::Text)
    }
}

/// The gRPC code shapes other than OTLP's never show.
const UNKNOWN: i32 = 2;

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
