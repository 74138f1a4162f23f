//! Ingest errors, and the one place where they become HTTP and gRPC responses.
//!
//! OTLP requires error bodies to be a `google.rpc.Status` in the request's encoding;
//! Zipkin clients read plain text. Internal details are logged, never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use tracekeeper_serve::shapes::{self, Shape};

use crate::SinkError;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the request body could not be decoded: {0}")]
    BadBody(String),
    #[error("the request body is larger than the limit of {0} bytes")]
    TooLarge(usize),
    #[error("unsupported content type {0:?}: use application/x-protobuf or application/json")]
    UnsupportedContentType(String),
    #[error("unsupported content encoding {0:?}: use gzip or none")]
    UnsupportedEncoding(String),
    #[error(transparent)]
    Tenant(#[from] tracekeeper_model::TenantError),
    #[error("the server is overloaded, retry later")]
    Overloaded,
    #[error(
        "tenant {tenant:?} is over its ingest rate of {} {} per second; retry in {} s",
        limited.per_second, limited.measure, limited.retry_after_secs
    )]
    TenantRate { tenant: String, limited: crate::tenant_limits::RateLimited },
    #[error("storage is temporarily unavailable, retry later")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl From<SinkError> for IngestError {
    fn from(e: SinkError) -> Self {
        match e {
            SinkError::Unavailable(why) => Self::Unavailable(why),
            SinkError::Internal(why) => Self::Internal(why),
        }
    }
}

pub use tracekeeper_serve::shapes::RpcStatus;

/// Seconds a client should wait before retrying an overloaded or unavailable server.
const RETRY_AFTER_SECS: &str = "1";

impl IngestError {
    pub fn http_status(&self) -> StatusCode {
        match self {
            Self::BadBody(_) | Self::Tenant(tracekeeper_model::TenantError::Invalid(_)) => StatusCode::BAD_REQUEST,
            Self::Tenant(tracekeeper_model::TenantError::Missing) => StatusCode::UNAUTHORIZED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedContentType(_) | Self::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Overloaded | Self::TenantRate { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            Self::BadBody(_)
            | Self::Tenant(tracekeeper_model::TenantError::Invalid(_))
            | Self::UnsupportedContentType(_)
            | Self::UnsupportedEncoding(_) => tonic::Code::InvalidArgument,
            Self::Tenant(tracekeeper_model::TenantError::Missing) => tonic::Code::Unauthenticated,
            Self::TooLarge(_) | Self::TenantRate { .. } => tonic::Code::ResourceExhausted,
            Self::Overloaded | Self::Unavailable(_) => tonic::Code::Unavailable,
            Self::Internal(_) => tonic::Code::Internal,
        }
    }

    fn log(&self) {
        match self {
            Self::Internal(why) | Self::Unavailable(why) => {
                tracing::error!(error = %why, "ingest failed")
            }
            other => tracing::debug!(error = %other, "ingest request refused"),
        }
    }

    /// The OTLP/HTTP response: a `Status` body, protobuf or JSON like the request.
    pub fn into_otlp_response(self, json: bool) -> Response {
        self.into_shaped_response(Shape::Otlp { json })
    }

    /// The Zipkin response: plain text, as Zipkin's own server answers.
    pub fn into_text_response(self) -> Response {
        self.into_shaped_response(Shape::Text)
    }

    /// The error in `shape`, the same body the serving layer writes for its refusals.
    fn into_shaped_response(self, shape: Shape) -> Response {
        self.log();
        let response = shapes::response(shape, self.http_status(), self.grpc_code() as i32, &self.to_string());
        self.with_headers(response)
    }

    fn with_headers(&self, mut response: Response) -> Response {
        if matches!(self, Self::Overloaded | Self::Unavailable(_)) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
        }
        if let Self::TenantRate { limited, .. } = self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(limited.retry_after_secs));
        }
        response
    }
}

impl From<IngestError> for tonic::Status {
    fn from(e: IngestError) -> Self {
        e.log();
        tonic::Status::new(e.grpc_code(), e.to_string())
    }
}
