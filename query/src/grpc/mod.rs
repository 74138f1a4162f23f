//! Jaeger's gRPC APIs, over the same engine, tenants and limits as the HTTP ones:
//! `jaeger.api_v2.QueryService` ([`api_v2`]), `jaeger.api_v3.QueryService`
//! ([`api_v3`]), and the remote storage API Jaeger v2 reads a store through,
//! `jaeger.storage.v2.TraceReader` and `DependencyReader` ([`storage_v2`]). The
//! messages are generated from Jaeger's own protos (`tracekeeper-jaeger-proto`).

mod api_v2;
mod api_v2_model;
mod api_v3;
mod storage_v2;

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use opentelemetry_proto::tonic::trace::v1::TracesData;
use tonic::Status;
use tracekeeper_model::{Span, TENANT_HEADER};

use crate::engine::TraceQuery;
use crate::error::QueryError;
use crate::predicate::SpanPredicate;
use crate::tenant_gate::TenantSlot;
use crate::QueryState;

/// What the gRPC query listener needs: `read`, as every query API.
pub const ACCESS: tracekeeper_serve::Declared = tracekeeper_serve::Declared::read(tracekeeper_serve::Shape::Text);

/// Both query services, for the query gRPC listener (`--query-grpc-addr`).
pub fn query_services(state: Arc<QueryState>) -> tonic::service::Routes {
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(api_v2::server(Arc::clone(&state)));
    routes.add_service(api_v3::server(state));
    routes.routes()
}

/// The remote storage services, for the listener Jaeger v2 is pointed at
/// (`--jaeger-storage-grpc-addr`).
pub fn storage_services(state: Arc<QueryState>) -> tonic::service::Routes {
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(storage_v2::trace_reader(Arc::clone(&state)));
    routes.add_service(storage_v2::dependency_reader(state));
    routes.routes()
}

/// A server-streamed answer.
type Streamed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The tenant a gRPC request acts for, as [`crate::Tenant`] finds it for HTTP: the one
/// its credentials were granted, else the tenant header as metadata; holding one of
/// that tenant's query slots.
fn tenant<T>(state: &QueryState, request: &tonic::Request<T>) -> Result<TenantSlot, Status> {
    let named = match tracekeeper_serve::access::granted_tenant(request.extensions()) {
        Some(granted) => Some(granted.as_bytes()),
        None => request.metadata().get(TENANT_HEADER).map(|v| v.as_bytes()),
    };
    let tenant = state.tenancy.resolve(named).map_err(QueryError::from).map_err(QueryError::into_status)?;
    state.tenant_gate.enter(tenant).map_err(QueryError::into_status)
}

fn bad(message: impl Into<String>) -> Status {
    QueryError::BadRequest(message.into()).into_status()
}

/// A protobuf timestamp as ns since the epoch; `what` names it in the refusal.
fn timestamp_ns(time: Option<&prost_types::Timestamp>, what: &str) -> Result<Option<u64>, Status> {
    let Some(time) = time else { return Ok(None) };
    let ns = i128::from(time.seconds) * 1_000_000_000 + i128::from(time.nanos);
    u64::try_from(ns).map(Some).map_err(|_| bad(format!("{what} is before 1970 or out of range")))
}

fn duration_ns(duration: Option<&prost_types::Duration>, what: &str) -> Result<Option<u64>, Status> {
    let Some(duration) = duration else { return Ok(None) };
    let ns = i128::from(duration.seconds) * 1_000_000_000 + i128::from(duration.nanos);
    u64::try_from(ns).map(Some).map_err(|_| bad(format!("{what} must not be negative")))
}

fn timestamp(ns: u64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: (ns / 1_000_000_000) as i64, nanos: (ns % 1_000_000_000) as i32 }
}

/// A request's `TraceQueryParameters` as a [`Search`], with `tags` already read: the
/// three APIs name these fields alike, in messages of their own.
macro_rules! search_of {
    ($params:expr, $tags:expr) => {
        super::Search {
            service: &$params.service_name,
            operation: &$params.operation_name,
            tags: $tags,
            start_min: $params.start_time_min.as_ref(),
            start_max: $params.start_time_max.as_ref(),
            duration_min: $params.duration_min.as_ref(),
            duration_max: $params.duration_max.as_ref(),
            search_depth: $params.search_depth,
        }
    };
}
use search_of;

fn storage_status(e: tracekeeper_storage::StorageError) -> Status {
    QueryError::from(e).into_status()
}

/// The traces a search finds, newest first.
async fn find(state: &QueryState, tenant: &str, search: Search<'_>) -> Result<crate::budget::Searched, Status> {
    state.engine.search(tenant, &search.query()?).await.map_err(storage_status)
}

async fn services(state: &QueryState, tenant: &str) -> Result<Vec<String>, Status> {
    state.engine.services(tenant).await.map_err(storage_status)
}

/// (name, span kind) of a service's operations, of one kind when `span_kind` names one;
/// every service's when `service` is empty.
async fn operations(
    state: &QueryState,
    tenant: &str,
    service: &str,
    span_kind: &str,
) -> Result<Vec<(String, String)>, Status> {
    let kind =
        crate::jaeger_api::parse_kind((!span_kind.is_empty()).then_some(span_kind)).map_err(QueryError::into_status)?;
    let service = (!service.is_empty()).then_some(service);
    let operations = state.engine.operations(tenant, service).await.map_err(storage_status)?;
    Ok(operations
        .into_iter()
        .filter(|o| kind.is_none_or(|k| o.kind == k))
        .map(|o| (o.name, o.kind.jaeger_name().to_string()))
        .collect())
}

/// The search parameters the three APIs share.
struct Search<'a> {
    service: &'a str,
    operation: &'a str,
    tags: Vec<(String, String)>,
    start_min: Option<&'a prost_types::Timestamp>,
    start_max: Option<&'a prost_types::Timestamp>,
    duration_min: Option<&'a prost_types::Duration>,
    duration_max: Option<&'a prost_types::Duration>,
    search_depth: i32,
}

/// Traces a search returns unless it asks for fewer, and at most.
const DEFAULT_SEARCH_DEPTH: usize = 100;
const MAX_SEARCH_DEPTH: usize = 10_000;

impl Search<'_> {
    fn query(self) -> Result<TraceQuery, Status> {
        let start_ns =
            timestamp_ns(self.start_min, "start_time_min")?.ok_or_else(|| bad("start_time_min is required"))?;
        let end_ns =
            timestamp_ns(self.start_max, "start_time_max")?.ok_or_else(|| bad("start_time_max is required"))?;
        if start_ns > end_ns {
            return Err(bad("start_time_min must not be after start_time_max"));
        }
        // Jaeger's Go clients send a zero duration for "no bound".
        let min = duration_ns(self.duration_min, "duration_min")?.filter(|d| *d > 0);
        let max = duration_ns(self.duration_max, "duration_max")?.filter(|d| *d > 0);
        if let (Some(min), Some(max)) = (min, max) {
            if min > max {
                return Err(bad("duration_min must not be greater than duration_max"));
            }
        }
        let depth = usize::try_from(self.search_depth).ok().filter(|d| *d > 0).unwrap_or(DEFAULT_SEARCH_DEPTH);
        let text = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Ok(TraceQuery {
            span: SpanPredicate {
                service: text(self.service),
                operation: text(self.operation),
                tags: self.tags,
                min_duration_ns: min,
                max_duration_ns: max,
                ..Default::default()
            },
            start_ns,
            end_ns,
            min_trace_duration_ns: None,
            max_trace_duration_ns: None,
            limit: depth.min(MAX_SEARCH_DEPTH),
        })
    }
}

/// One trace's spans as OTLP, resources and scopes grouped as they arrived.
fn traces_data(spans: &[Span]) -> TracesData {
    TracesData { resource_spans: tracekeeper_model::otlp::to_request(spans).resource_spans }
}

/// A whole trace, a page of spans at a time, each page made a message by `message`;
/// `NOT_FOUND` when it has no span. The tenant's query slot is held until the stream
/// ends.
fn trace_stream<T: Send + 'static>(
    state: &QueryState,
    tenant: TenantSlot,
    trace_id: tracekeeper_model::TraceId,
    message: fn(&[Span]) -> T,
) -> Streamed<T> {
    let pages = state.engine.trace_pages(&tenant, trace_id);
    Box::pin(futures::stream::unfold((pages, Some(tenant), true), move |(mut pages, slot, first)| async move {
        slot.as_ref()?;
        let answer = match pages.next().await {
            Ok(Some(page)) => Ok(message(&page)),
            Ok(None) if first => Err(Status::not_found("trace not found")),
            Ok(None) => return None,
            Err(e) => Err(storage_status(e)),
        };
        // After an error, the stream ends.
        let slot = if answer.is_ok() { slot } else { None };
        Some((answer, (pages, slot, false)))
    }))
}

/// Each found trace as one `TracesData`, in the order found.
fn found_stream(found: crate::budget::Searched) -> Streamed<TracesData> {
    Box::pin(futures::stream::iter(found.found.into_iter().map(|f| Ok(traces_data(&f.spans)))))
}

/// The service graph of `[start, end]`, both required, as the HTTP APIs compute it.
async fn dependency_links(
    state: &QueryState,
    tenant: &str,
    start: Option<&prost_types::Timestamp>,
    end: Option<&prost_types::Timestamp>,
) -> Result<Vec<crate::dependencies::DependencyLink>, Status> {
    let (start, end) = (timestamp_ns(start, "start_time")?, timestamp_ns(end, "end_time")?);
    let (Some(start), Some(end)) = (start, end) else { return Err(bad("start_time and end_time are required")) };
    if start > end {
        return Err(bad("start_time must not be after end_time"));
    }
    let term = tracekeeper_storage::IndexTerm::All;
    let (links, _) =
        crate::dependencies::graph(&state.engine, tenant, term, start, end).await.map_err(storage_status)?;
    Ok(links)
}
