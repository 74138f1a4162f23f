//! `jaeger.api_v3.QueryService`: traces in OTLP, over gRPC.

use std::sync::Arc;

use opentelemetry_proto::tonic::trace::v1::TracesData;
use tonic::{Request, Response, Status};
use tracekeeper_jaeger_proto::api_v3::query_service_server::{QueryService, QueryServiceServer};
use tracekeeper_jaeger_proto::api_v3::{
    FindTracesRequest, GetOperationsRequest, GetOperationsResponse, GetServicesRequest, GetServicesResponse,
    GetTraceRequest, Operation,
};

use super::{bad, find, found_stream, operations, search_of, services, tenant, trace_stream, traces_data, Streamed};
use crate::QueryState;

pub fn server(state: Arc<QueryState>) -> QueryServiceServer<ApiV3> {
    QueryServiceServer::new(ApiV3(state))
}

pub struct ApiV3(Arc<QueryState>);

#[tonic::async_trait]
impl QueryService for ApiV3 {
    type GetTraceStream = Streamed<TracesData>;
    type FindTracesStream = Streamed<TracesData>;

    async fn get_trace(&self, request: Request<GetTraceRequest>) -> Result<Response<Self::GetTraceStream>, Status> {
        let tenant = tenant(&self.0, &request)?;
        let id = tracekeeper_model::TraceId::from_hex(&request.get_ref().trace_id)
            .map_err(|e| bad(format!("invalid trace id {:?}: {e}", request.get_ref().trace_id)))?;
        Ok(Response::new(trace_stream(&self.0, tenant, id, traces_data)))
    }

    async fn find_traces(
        &self,
        request: Request<FindTracesRequest>,
    ) -> Result<Response<Self::FindTracesStream>, Status> {
        let tenant = tenant(&self.0, &request)?;
        let params = request.get_ref().query.as_ref().ok_or_else(|| bad("query is required"))?;
        let tags = params.attributes.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        Ok(Response::new(found_stream(find(&self.0, &tenant, search_of!(params, tags)).await?)))
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
        let operations = operations(&self.0, &tenant, &request.get_ref().service, &request.get_ref().span_kind)
            .await?
            .into_iter()
            .map(|(name, span_kind)| Operation { name, span_kind })
            .collect();
        Ok(Response::new(GetOperationsResponse { operations }))
    }
}
