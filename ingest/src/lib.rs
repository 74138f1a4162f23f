//! Span receivers: OTLP/HTTP, OTLP/gRPC and Zipkin.
//!
//! Receivers decode and validate; a [`SpanSink`] decides where accepted spans go
//! (straight into storage in all-in-one, to Kafka in the collector). A receiver answers
//! success only after the sink has made the spans durable.
//!
//! # Layout
//! - [`body`]: size-limited, optionally gzip-compressed request bodies.
//! - [`error`]: the one place where ingest errors become HTTP and gRPC responses.
//! - [`otlp_http`], [`otlp_grpc`], [`zipkin`]: one receiver each.
//!
//! The collector's Kafka sink lives with the rest of the Kafka code, in
//! `tracekeeper-kafka`.

pub mod body;
pub mod error;
pub mod otlp_grpc;
pub mod otlp_http;
pub mod telemetry;
pub mod tenant_limits;
pub mod zipkin;

use std::sync::Arc;

use async_trait::async_trait;
use tracekeeper_model::Span;

pub use error::IngestError;
pub use tracekeeper_model::Tenancy;

/// Where accepted spans go.
///
/// # Contract
/// `accept` returns `Ok` only once every span it does not list as rejected is durable
/// (stored, or acknowledged by Kafka with acks=all). On `Err`, the client is told to
/// retry; some spans may have been stored, which is harmless because storage is
/// idempotent.
#[async_trait]
pub trait SpanSink: Send + Sync {
    async fn accept(&self, tenant: &str, spans: Vec<Span>) -> Result<SinkOutcome, SinkError>;
}

/// Spans the sink refused (too old, over a limit), with a reason each.
#[derive(Debug, Default)]
pub struct SinkOutcome {
    pub rejected: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Temporarily unable to accept: the client should retry later.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// Anything else; the detail is logged, not shown to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Limits shared by every receiver.
#[derive(Debug, Clone)]
pub struct IngestLimits {
    /// Largest request body, checked on the wire and again after decompression.
    pub max_body_bytes: usize,
    /// Most request bytes being processed at once; beyond it clients get 429.
    pub max_inflight_bytes: usize,
    /// Spans and bytes per second each tenant may send.
    pub tenant_rates: tenant_limits::TenantRates,
}

impl Default for IngestLimits {
    fn default() -> Self {
        Self { max_body_bytes: 16 << 20, max_inflight_bytes: 256 << 20, tenant_rates: Default::default() }
    }
}

/// What every receiver needs.
#[derive(Clone)]
pub struct IngestState {
    pub sink: Arc<dyn SpanSink>,
    pub tenancy: Tenancy,
    pub limits: IngestLimits,
    inflight: Arc<tokio::sync::Semaphore>,
    rates: Arc<tenant_limits::RateLimiter>,
}

impl IngestState {
    pub fn new(sink: Arc<dyn SpanSink>, tenancy: Tenancy, limits: IngestLimits) -> Self {
        let permits = limits.max_inflight_bytes.min(tokio::sync::Semaphore::MAX_PERMITS);
        let rates = Arc::new(tenant_limits::RateLimiter::new(limits.tenant_rates.clone()));
        Self { sink, tenancy, limits, inflight: Arc::new(tokio::sync::Semaphore::new(permits)), rates }
    }

    /// Reserves room for a request of `bytes`, or refuses at once when the receiver
    /// is already holding its limit: memory stays bounded under overload.
    pub fn reserve(&self, bytes: usize) -> Result<tokio::sync::OwnedSemaphorePermit, IngestError> {
        let bytes = u32::try_from(bytes.clamp(1, self.limits.max_inflight_bytes)).unwrap_or(u32::MAX);
        Arc::clone(&self.inflight).try_acquire_many_owned(bytes).map_err(|_| {
            metrics::counter!(crate::telemetry::REQUESTS_REFUSED_TOTAL, "reason" => "overloaded").increment(1);
            IngestError::Overloaded
        })
    }

    pub fn tenant(&self, header: Option<&[u8]>) -> Result<String, IngestError> {
        self.tenancy.resolve(header).map_err(IngestError::from)
    }

    /// Validated spans → sink, counting what happened. Returns the rejection reasons
    /// (decoding's and the sink's). `bytes` is the request's decoded size, which the
    /// tenant's byte rate counts.
    pub async fn deliver(
        &self,
        protocol: &'static str,
        tenant: &str,
        decoded: tracekeeper_model::otlp::Decoded,
        bytes: usize,
    ) -> Result<Vec<String>, IngestError> {
        if let Err(limited) = self.rates.admit(tenant, decoded.spans.len(), bytes) {
            metrics::counter!(crate::telemetry::REQUESTS_REFUSED_TOTAL, "reason" => "tenant_rate", "measure" => limited.measure)
                .increment(1);
            return Err(IngestError::TenantRate { tenant: tenant.to_string(), limited });
        }
        let mut rejected = decoded.rejected;
        metrics::counter!(crate::telemetry::SPANS_RECEIVED_TOTAL, "protocol" => protocol)
            .increment((decoded.spans.len() + rejected.len()) as u64);
        if !rejected.is_empty() {
            metrics::counter!(tracekeeper_model::telemetry::SPANS_REJECTED_TOTAL, "reason" => "invalid")
                .increment(rejected.len() as u64);
        }
        if !decoded.spans.is_empty() {
            let offered = decoded.spans.len();
            let outcome = match self.sink.accept(tenant, decoded.spans).await {
                Ok(outcome) => outcome,
                Err(e) => {
                    // Not acknowledged: the client is told to retry, so nothing is lost,
                    // but the operator sees how much was turned away and why.
                    let reason = if matches!(e, SinkError::Unavailable(_)) { "unavailable" } else { "failed" };
                    metrics::counter!(tracekeeper_model::telemetry::SPANS_DROPPED_TOTAL, "reason" => reason)
                        .increment(offered as u64);
                    return Err(e.into());
                }
            };
            let accepted = offered.saturating_sub(outcome.rejected.len());
            metrics::counter!(crate::telemetry::SPANS_ACCEPTED_TOTAL, "tenant" => tracekeeper_model::tenant_label(tenant))
                .increment(accepted as u64);
            rejected.extend(outcome.rejected);
        }
        Ok(rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NullSink;

    #[async_trait]
    impl SpanSink for NullSink {
        async fn accept(&self, _: &str, _: Vec<Span>) -> Result<SinkOutcome, SinkError> {
            Ok(SinkOutcome::default())
        }
    }

    #[test]
    fn overload_is_refused_with_429_and_retry_after_until_room_frees_up() {
        let limits = IngestLimits { max_body_bytes: 1000, max_inflight_bytes: 1500, ..Default::default() };
        let state = IngestState::new(Arc::new(NullSink), Tenancy::default(), limits);
        let first = state.reserve(1000).expect("room for one request");
        let refused = state.reserve(1000).expect_err("no room for a second");
        let response = refused.into_otlp_response(false);
        assert_eq!(response.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "1");
        let grpc: tonic::Status = state.reserve(1000).unwrap_err().into();
        assert_eq!(grpc.code(), tonic::Code::Unavailable, "retryable for gRPC clients");
        drop(first);
        assert!(state.reserve(1000).is_ok(), "room is given back when a request finishes");
    }

    #[test]
    fn a_tenant_over_its_rate_is_told_how_long_to_wait() {
        let limited = tenant_limits::RateLimited { measure: "spans", per_second: 20.0, retry_after_secs: 7 };
        let error = IngestError::TenantRate { tenant: "noisy".into(), limited };
        let grpc: tonic::Status = IngestError::TenantRate {
            tenant: "noisy".into(),
            limited: tenant_limits::RateLimited { measure: "spans", per_second: 20.0, retry_after_secs: 7 },
        }
        .into();
        assert_eq!(grpc.code(), tonic::Code::ResourceExhausted);
        let response = error.into_otlp_response(true);
        assert_eq!(response.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "7");
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    /// Small gzip bodies that expand: the budget counts what they expand to, so the
    /// second one is refused while the first is held, though both are tiny on the wire.
    #[tokio::test]
    async fn the_in_flight_budget_counts_decompressed_bytes() {
        let limits = IngestLimits { max_body_bytes: 1 << 20, max_inflight_bytes: 256 << 10, ..Default::default() };
        let state = IngestState::new(Arc::new(NullSink), Tenancy::default(), limits);
        let bomb = gzip(&vec![0u8; 200 << 10]);
        assert!(bomb.len() < 1024, "{} bytes on the wire", bomb.len());
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(axum::http::header::CONTENT_ENCODING, "gzip".parse().unwrap());
        let first =
            body::RequestBody::read(&state, &headers, None, axum::body::Body::from(bomb.clone())).await.unwrap();
        assert_eq!(first.bytes.len(), 200 << 10);
        let second = body::RequestBody::read(&state, &headers, None, axum::body::Body::from(bomb.clone())).await;
        assert!(matches!(second, Err(IngestError::Overloaded)), "the second expansion does not fit");
        drop(first);
        let third = body::RequestBody::read(&state, &headers, None, axum::body::Body::from(bomb)).await;
        assert!(third.is_ok(), "room comes back with the first request");
    }
}
