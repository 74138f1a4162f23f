//! OTLP/gRPC: `TraceService/Export`, with gzip accepted.

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::codec::CompressionEncoding;
use tracekeeper_model::otlp::{self, summarize_rejections};

use crate::IngestState;
use tracekeeper_model::TENANT_HEADER;

pub struct OtlpGrpc {
    state: IngestState,
}

/// The gRPC service, ready to add to a tonic server.
pub fn service(state: IngestState) -> TraceServiceServer<OtlpGrpc> {
    let limit = state.limits.max_body_bytes;
    TraceServiceServer::new(OtlpGrpc { state })
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit)
}

#[tonic::async_trait]
impl TraceService for OtlpGrpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let tenant = self.state.tenant(request.metadata().get(TENANT_HEADER).map(|v| v.as_bytes()))?;
        let request = request.into_inner();
        let size = request.encoded_len();
        let _permit = self.state.reserve(size)?;
        let rejected = self.state.deliver("otlp_grpc", &tenant, otlp::from_request(request), size).await?;
        let partial_success = summarize_rejections(&rejected)
            .map(|error_message| ExportTracePartialSuccess { rejected_spans: rejected.len() as i64, error_message });
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success }))
    }
}
