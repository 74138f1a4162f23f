//! The request layer every listener of every role goes through, HTTP and gRPC alike:
//! a request span in the logs, per-route metrics (rate, errors, duration as a
//! histogram), a timeout, and a panic caught as a 500 for that request alone. It hands
//! the listener's context (credentials, concurrency limit) to the route layer
//! ([`crate::access::Guarded`]), which checks them once the route is known. Refusals
//! are written in the listener's protocol: an HTTP status with the route's error body
//! ([`crate::shapes`]), or a trailers-only gRPC status.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::MatchedPath;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use futures::FutureExt;
use tokio::sync::Semaphore;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::access::ShapeSlot;
use crate::auth::{Authenticator, Refused};
use crate::shapes::Shape;

pub use crate::telemetry::{REFUSED, REQUESTS, REQUEST_DURATION};
/// Buckets for [`REQUEST_DURATION`]: 1 ms to 60 s.
pub const DURATION_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// How refusals are written: plain HTTP, or gRPC's status in the headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http,
    Grpc,
}

#[derive(Debug, Clone)]
pub(crate) enum Refusal {
    Overloaded,
    TimedOut,
    Panicked,
    Auth(Refused),
}

/// A response body the layer can build its refusals from.
pub trait RefusalBody: Sized {
    fn from_bytes(bytes: Vec<u8>) -> Self;
}

impl RefusalBody for axum::body::Body {
    fn from_bytes(bytes: Vec<u8>) -> Self {
        axum::body::Body::from(bytes)
    }
}

impl RefusalBody for tonic::body::Body {
    fn from_bytes(_bytes: Vec<u8>) -> Self {
        // A trailers-only gRPC response: the message travels in `grpc-message`.
        tonic::body::Body::default()
    }
}

/// Limits of one listener.
#[derive(Debug, Clone)]
pub struct Limits {
    pub request_timeout: Duration,
    pub max_concurrent_requests: usize,
    /// How long a client has to send its request line and headers (HTTP/1).
    pub header_read_timeout: Duration,
}

#[derive(Clone)]
pub struct ServingLayer {
    shared: Arc<Listener>,
}

/// One listener's context, handed to the route layer in each request's extensions.
pub(crate) struct Listener {
    name: &'static str,
    protocol: Protocol,
    limits: Limits,
    pub(crate) in_flight: Arc<Semaphore>,
    pub(crate) auth: Option<Arc<Authenticator>>,
}

impl ServingLayer {
    /// One layer per listener: its concurrency limit is its own. With `auth`, every
    /// request's credentials, scope and tenant are checked against it.
    pub fn new(listener: &'static str, protocol: Protocol, limits: Limits, auth: Option<Arc<Authenticator>>) -> Self {
        let in_flight = Arc::new(Semaphore::new(limits.max_concurrent_requests.max(1)));
        // Exported at zero from the start, so that alerts on their rate see the series.
        for reason in REFUSAL_REASONS {
            metrics::counter!(REFUSED, "listener" => listener, "reason" => reason).increment(0);
        }
        Self { shared: Arc::new(Listener { name: listener, protocol, limits, in_flight, auth }) }
    }
}

impl<S> Layer<S> for ServingLayer {
    type Service = Serving<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Serving { inner, shared: self.shared.clone() }
    }
}

#[derive(Clone)]
pub struct Serving<S> {
    inner: S,
    shared: Arc<Listener>,
}

/// The label for a request's route: the router's pattern where there is one, the gRPC
/// method for gRPC, and "unmatched" otherwise, so that no client can grow the number of
/// series by sending new paths.
fn route_of<B>(request: &Request<B>, protocol: Protocol) -> String {
    if let Some(path) = request.extensions().get::<MatchedPath>() {
        return path.as_str().to_string();
    }
    match protocol {
        Protocol::Grpc if request.uri().path() == GRPC_EXPORT => GRPC_EXPORT.to_string(),
        _ => "unmatched".to_string(),
    }
}

/// Every `reason` label of [`REFUSED`].
const REFUSAL_REASONS: [&str; 5] = ["unauthenticated", "forbidden", "overloaded", "timeout", "panic"];

const GRPC_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// The answer of a route that needs credentials, reached without the serving layer.
pub(crate) fn unguarded_refusal<RB: RefusalBody>(shape: Shape) -> Response<RB> {
    let status = StatusCode::INTERNAL_SERVER_ERROR;
    let (content_type, bytes) = crate::shapes::body(shape, status, 13, "internal error while serving this request");
    let mut response = Response::new(RB::from_bytes(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, content_type);
    response
}

impl Listener {
    pub(crate) fn refuse<RB: RefusalBody>(&self, refusal: Refusal, shape: Shape) -> Response<RB> {
        let (reason, status, grpc_code, message) = match &refusal {
            Refusal::Auth(Refused::Unauthenticated(why)) => {
                ("unauthenticated", StatusCode::UNAUTHORIZED, "16", why.to_string())
            }
            Refusal::Auth(Refused::Forbidden(why)) => ("forbidden", StatusCode::FORBIDDEN, "7", why.clone()),
            Refusal::Overloaded => (
                "overloaded",
                StatusCode::SERVICE_UNAVAILABLE,
                "14",
                format!(
                    "tracekeeper is at its limit of {} requests at once on the {} listener; retry shortly",
                    self.limits.max_concurrent_requests, self.name
                ),
            ),
            Refusal::TimedOut => (
                "timeout",
                StatusCode::SERVICE_UNAVAILABLE,
                "4",
                format!("the request took longer than the {:?} limit (--request-timeout)", self.limits.request_timeout),
            ),
            Refusal::Panicked => (
                "panic",
                StatusCode::INTERNAL_SERVER_ERROR,
                "13",
                "internal error while serving this request".to_string(),
            ),
        };
        metrics::counter!(REFUSED, "listener" => self.name, "reason" => reason).increment(1);
        let mut response = match self.protocol {
            Protocol::Http => {
                let code = grpc_code.parse().unwrap_or(2);
                let (content_type, bytes) = crate::shapes::body(shape, status, code, &message);
                let mut r = Response::new(RB::from_bytes(bytes));
                *r.status_mut() = status;
                r.headers_mut().insert(header::CONTENT_TYPE, content_type);
                r
            }
            Protocol::Grpc => {
                let mut r = Response::new(RB::from_bytes(Vec::new()));
                let headers = r.headers_mut();
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
                headers.insert("grpc-status", HeaderValue::from_static(grpc_code));
                if let Ok(value) = HeaderValue::from_str(&message) {
                    headers.insert("grpc-message", value);
                }
                r
            }
        };
        match refusal {
            Refusal::Overloaded | Refusal::TimedOut => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Refusal::Auth(Refused::Unauthenticated(_)) if self.protocol == Protocol::Http => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"tracekeeper\""));
            }
            _ => {}
        }
        response
    }
}

impl Listener {
    /// The answer to one request: the handler's (its route layer checks credentials and
    /// the concurrency limit), bounded by the timeout and with a panic turned into a 500.
    async fn answer<S, B, RB>(
        self: &Arc<Self>,
        inner: &mut S,
        mut request: Request<B>,
    ) -> Result<Response<RB>, S::Error>
    where
        S: Service<Request<B>, Response = Response<RB>>,
        RB: RefusalBody,
    {
        let slot = ShapeSlot::default();
        request.extensions_mut().insert(slot.clone());
        request.extensions_mut().insert(self.clone());
        let call = AssertUnwindSafe(inner.call(request)).catch_unwind();
        let outcome = tokio::time::timeout(self.limits.request_timeout, call).await;
        // The route layer recorded the route's shape; outside any route, plain text.
        let shape = slot.0.get().copied().unwrap_or(Shape::Text);
        Ok(match outcome {
            Ok(Ok(result)) => result?,
            Ok(Err(panic)) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(panic = %what, "a handler panicked; answered 500 for this request only");
                self.refuse(Refusal::Panicked, shape)
            }
            Err(_) => {
                tracing::warn!(limit = ?self.limits.request_timeout, "request timed out");
                self.refuse(Refusal::TimedOut, shape)
            }
        })
    }
}

impl<S, B, RB> Service<Request<B>> for Serving<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: RefusalBody + Send + 'static,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<RB>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let shared = self.shared.clone();
        // The clone that was made ready is the one that serves (tower's contract).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let route = route_of(&request, shared.protocol);
        let method = request.method().to_string();
        let span = tracing::info_span!("request", listener = shared.name, %method, %route);
        Box::pin(
            async move {
                let started = Instant::now();
                let response = shared.answer(&mut inner, request).await?;
                let status = grpc_or_http_status(&response, shared.protocol);
                let elapsed = started.elapsed();
                metrics::histogram!(REQUEST_DURATION, "listener" => shared.name, "route" => route.clone())
                    .record(elapsed.as_secs_f64());
                metrics::counter!(REQUESTS, "listener" => shared.name, "route" => route, "method" => method, "status" => status.clone())
                    .increment(1);
                tracing::debug!(%status, elapsed_ms = elapsed.as_millis() as u64, "served");
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// The HTTP status, or for gRPC the `grpc-status` when the answer is trailers-only.
fn grpc_or_http_status<RB>(response: &Response<RB>, protocol: Protocol) -> String {
    match (protocol, response.headers().get("grpc-status")) {
        (Protocol::Grpc, Some(code)) => format!("grpc-{}", code.to_str().unwrap_or("?")),
        _ => response.status().as_u16().to_string(),
    }
}
