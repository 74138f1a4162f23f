//! Jaeger's remote storage API, as Jaeger v2's `grpc` storage backend reads a store:
//! `jaeger.storage.v2.TraceReader` and `DependencyReader`. Writes reach us over OTLP,
//! as Jaeger sends them.

use std::sync::Arc;

use opentelemetry_proto::tonic::trace::v1::TracesData;
use tonic::{Request, Response, Status};
use tracekeeper_jaeger_proto::storage_v2::any_value::Value;
use tracekeeper_jaeger_proto::storage_v2::dependency_reader_server::{DependencyReader, DependencyReaderServer};
use tracekeeper_jaeger_proto::storage_v2::trace_reader_server::{TraceReader, TraceReaderServer};
use tracekeeper_jaeger_proto::storage_v2::{
    Dependency, FindTraceIDsResponse, FindTracesRequest, FoundTraceId, GetDependenciesRequest, GetDependenciesResponse,
    GetOperationsRequest, GetOperationsResponse, GetServicesRequest, GetServicesResponse, GetTracesRequest, KeyValue,
    Operation,
};
use tracekeeper_model::TraceId;

use super::{
    bad, find, found_stream, operations, search_of, services, storage_status, tenant, timestamp, traces_data, Streamed,
};
use crate::QueryState;

pub fn trace_reader(state: Arc<QueryState>) -> TraceReaderServer<Storage> {
    TraceReaderServer::new(Storage(state))
}

pub fn dependency_reader(state: Arc<QueryState>) -> DependencyReaderServer<Storage> {
    DependencyReaderServer::new(Storage(state))
}

pub struct Storage(Arc<QueryState>);

/// `GetTraces` under way: the traces left, and the pages of the one being read. The
/// tenant's query slot is held until it ends.
struct Walk {
    state: Arc<QueryState>,
    tenant: crate::tenant_gate::TenantSlot,
    ids: std::vec::IntoIter<TraceId>,
    pages: Option<crate::trace_pages::TracePages>,
}

impl Walk {
    async fn next(mut self) -> Option<(Result<TracesData, Status>, Self)> {
        loop {
            if self.pages.is_none() {
                let id = self.ids.next()?;
                self.pages = Some(self.state.engine.trace_pages(&self.tenant, id));
            }
            match self.pages.as_mut()?.next().await {
                Ok(Some(page)) => return Some((Ok(traces_data(&page)), self)),
                Ok(None) => self.pages = None,
                Err(e) => {
                    // Nothing follows an error.
                    (self.ids, self.pages) = (Vec::new().into_iter(), None);
                    return Some((Err(storage_status(e)), self));
                }
            }
        }
    }
}

/// Most traces one `GetTraces` call may ask for.
const MAX_TRACES_PER_CALL: usize = 1_000;

/// A tag's value as search text, typed the way a tag filter compares it.
fn tag_text(kv: &KeyValue) -> Result<(String, String), Status> {
    let text = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(_) => {
            return Err(bad(format!("attribute {:?}: only string, bool, int and double values are searched", kv.key)))
        }
        None => return Err(bad(format!("attribute {:?} has no value", kv.key))),
    };
    Ok((kv.key.clone(), text))
}

impl Storage {
    async fn search(&self, request: &Request<FindTracesRequest>) -> Result<crate::budget::Searched, Status> {
        let tenant = tenant(&self.0, request)?;
        let params = request.get_ref().query.as_ref().ok_or_else(|| bad("query is required"))?;
        let tags = params.attributes.iter().map(tag_text).collect::<Result<_, _>>()?;
        find(&self.0, &tenant, search_of!(params, tags)).await
    }
}

#[tonic::async_trait]
impl TraceReader for Storage {
    type GetTracesStream = Streamed<TracesData>;
    type FindTracesStream = Streamed<TracesData>;

    /// Each asked-for trace that is stored, a page of spans at a time; those that are
    /// not are left out, as Jaeger's own stores do.
    async fn get_traces(&self, request: Request<GetTracesRequest>) -> Result<Response<Self::GetTracesStream>, Status> {
        let tenant = tenant(&self.0, &request)?;
        let asked = &request.get_ref().query;
        if asked.len() > MAX_TRACES_PER_CALL {
            return Err(bad(format!("at most {MAX_TRACES_PER_CALL} traces per call, not {}", asked.len())));
        }
        let ids = asked
            .iter()
            .map(|q| {
                let bytes: [u8; 16] = q
                    .trace_id
                    .as_slice()
                    .try_into()
                    .map_err(|_| bad(format!("a trace id is 16 bytes, not {}", q.trace_id.len())))?;
                Ok(TraceId(bytes))
            })
            .collect::<Result<Vec<_>, Status>>()?;
        let walk = Walk { state: Arc::clone(&self.0), tenant, ids: ids.into_iter(), pages: None };
        Ok(Response::new(Box::pin(futures::stream::unfold(walk, Walk::next))))
    }

    async fn get_services(
        &self,
        request: Request<GetServicesRequest>,
    ) -> Result<Response<GetServicesResponse>, Status> {
        let tenant = tenant(&self.0, &request)?;
        Ok(Response::new(GetServicesResponse { services: services(&self.0, &tenant).await? }))
    }

    async fn get_operations(
        &self,
        request: Request<GetOperationsRequest>,
    ) -> Result<Response<GetOperationsResponse>, Status> {
        let tenant = tenant(&self.0, &request)?;
        let (service, kind) = (&request.get_ref().service, &request.get_ref().span_kind);
        let operations = operations(&self.0, &tenant, service, kind)
            .await?
            .into_iter()
            .map(|(name, span_kind)| Operation { name, span_kind })
            .collect();
        Ok(Response::new(GetOperationsResponse { operations }))
    }

    async fn find_traces(
        &self,
        request: Request<FindTracesRequest>,
    ) -> Result<Response<Self::FindTracesStream>, Status> {
        Ok(Response::new(found_stream(self.search(&request).await?)))
    }

    async fn find_trace_i_ds(
        &self,
        request: Request<FindTracesRequest>,
    ) -> Result<Response<FindTraceIDsResponse>, Status> {
        let found = self.search(&request).await?;
        let trace_ids = found
            .iter()
            .map(|f| FoundTraceId {
                trace_id: f.summary.trace_id.0.to_vec(),
                start: Some(timestamp(f.summary.start_ns)),
                end: Some(timestamp(f.summary.start_ns + f.summary.duration_ns)),
            })
            .collect();
        Ok(Response::new(FindTraceIDsResponse { trace_ids }))
    }
}

#[tonic::async_trait]
impl DependencyReader for Storage {
    async fn get_dependencies(
        &self,
        request: Request<GetDependenciesRequest>,
    ) -> Result<Response<GetDependenciesResponse>, Status> {
        let tenant = tenant(&self.0, &request)?;
        let (start, end) = (request.get_ref().start_time.as_ref(), request.get_ref().end_time.as_ref());
        let links = super::dependency_links(&self.0, &tenant, start, end).await?;
        let dependencies = links
            .into_iter()
            .map(|l| Dependency { parent: l.parent, child: l.child, call_count: l.call_count, source: String::new() })
            .collect();
        Ok(Response::new(GetDependenciesResponse { dependencies }))
    }
}
