//! `jaeger.api_v2.QueryService`: Jaeger's classic query API over gRPC, which Jaeger's
//! own tools and Kiali (`use_grpc`) read through.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use tracekeeper_jaeger_proto::api_v2::query_service_server::{QueryService, QueryServiceServer};
use tracekeeper_jaeger_proto::api_v2::{
    ArchiveTraceRequest, ArchiveTraceResponse, DependencyLink, FindTracesRequest, GetDependenciesRequest,
    GetDependenciesResponse, GetOperationsRequest, GetOperationsResponse, GetServicesRequest, GetServicesResponse,
    GetTraceRequest, Operation, SpansResponseChunk,
};
use tracekeeper_model::TraceId;

use super::{api_v2_model, bad, find, operations, search_of, services, tenant, trace_stream, Streamed};
use crate::QueryState;

pub fn server(state: Arc<QueryState>) -> QueryServiceServer<ApiV2> {
    QueryServiceServer::new(ApiV2(state))
}

pub struct ApiV2(Arc<QueryState>);

fn trace_id(bytes: &[u8]) -> Result<TraceId, Status> {
    Ok(TraceId(bytes.try_into().map_err(|_| bad(format!("a trace id is 16 bytes, not {}", bytes.len())))?))
}

fn chunk(spans: &[tracekeeper_model::Span]) -> SpansResponseChunk {
    SpansResponseChunk { spans: spans.iter().map(api_v2_model::span).collect() }
}

#[tonic::async_trait]
impl QueryService for ApiV2 {
    type GetTraceStream = Streamed<SpansResponseChunk>;
    type FindTracesStream = Streamed<SpansResponseChunk>;

    async fn get_trace(&self, request: Request<GetTraceRequest>) -> Result<Response<Self::GetTraceStream>, Status> {
        let tenant = tenant(&self.0, &request)?;
        let id = trace_id(&request.get_ref().trace_id)?;
        Ok(Response::new(trace_stream(&self.0, tenant, id, chunk)))
    }

    async fn archive_trace(&self, _: Request<ArchiveTraceRequest>) -> Result<Response<ArchiveTraceResponse>, Status> {
        Err(Status::unimplemented("tracekeeper has no archive storage: every trace is kept for its tenant's retention"))
    }

    async fn find_traces(
        &self,
        request: Request<FindTracesRequest>,
    ) -> Result<Response<Self::FindTracesStream>, Status> {
        let tenant = tenant(&self.0, &request)?;
        let params = request.get_ref().query.as_ref().ok_or_else(|| bad("query is required"))?;
        let tags = params.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let found = find(&self.0, &tenant, search_of!(params, tags)).await?;
        let chunks = found.found.into_iter().map(|f| Ok(chunk(&f.spans)));
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
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
        let operations = operations(&self.0, &tenant, service, kind).await?;
        Ok(Response::new(GetOperationsResponse {
            operation_names: operations.iter().map(|(name, _)| name.clone()).collect(),
            operations: operations.into_iter().map(|(name, span_kind)| Operation { name, span_kind }).collect(),
        }))
    }

    async fn get_dependencies(
        &self,
        request: Request<GetDependenciesRequest>,
    ) -> Result<Response<GetDependenciesResponse>, Status> {
        let tenant = tenant(&self.0, &request)?;
        let (start, end) = (request.get_ref().start_time.as_ref(), request.get_ref().end_time.as_ref());
        let links = super::dependency_links(&self.0, &tenant, start, end).await?;
        let dependencies = links
            .into_iter()
            .map(|l| DependencyLink {
                parent: l.parent,
                child: l.child,
                call_count: l.call_count,
                source: String::new(),
            })
            .collect();
        Ok(Response::new(GetDependenciesResponse { dependencies }))
    }
}
