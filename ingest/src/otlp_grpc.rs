//! OTLP/gRPC: `TraceService/Export`, with gzip accepted.
//!
//! The service is routed here rather than by the generated `TraceServiceServer` for one
//! reason: a request that does not decode is the client's error. The generated codec
//! answers INTERNAL, which reads as our fault; OTLP exporters treat both as final, and
//! INVALID_ARGUMENT says what happened. A message past the size limit, whether it says
//! so up front or decompresses past it (stopped while it decompresses), is
//! RESOURCE_EXHAUSTED without retry information: OTLP exporters give up on it. tonic
//! answers the first case with OUT_OF_RANGE, which exporters retry, forever.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::codec::{BufferSettings, Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings};
use tonic::Status;
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};
use tracekeeper_model::otlp::{self, summarize_rejections};

use crate::IngestState;
use tracekeeper_model::TENANT_HEADER;

const GRPC_STATUS: &str = "grpc-status";
const OUT_OF_RANGE: &[u8] = b"11";

/// The gRPC method path of OTLP trace export.
pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

pub struct OtlpGrpc {
    state: IngestState,
}

/// The gRPC service, ready to add to a tonic server.
/// What the OTLP/gRPC service needs: `write` (errors are gRPC statuses).
pub const ACCESS: tracekeeper_serve::Declared = tracekeeper_serve::Declared::write(tracekeeper_serve::Shape::Text);

pub fn service(state: IngestState) -> OtlpGrpcService {
    let max_decoding = state.limits.max_body_bytes;
    OtlpGrpcService { inner: Arc::new(OtlpGrpc { state }), max_decoding }
}

#[derive(Clone)]
pub struct OtlpGrpcService {
    inner: Arc<OtlpGrpc>,
    /// Largest message after decompression.
    max_decoding: usize,
}

impl tonic::server::NamedService for OtlpGrpcService {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

type Answer = Pin<Box<dyn Future<Output = Result<http::Response<tonic::body::Body>, Infallible>> + Send>>;

impl tower::Service<http::Request<tonic::body::Body>> for OtlpGrpcService {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Answer {
        if request.uri().path() != EXPORT_PATH {
            let unknown = format!("no such method {:?}; this server offers {EXPORT_PATH}", request.uri().path());
            return Box::pin(async move { Ok(Status::unimplemented(unknown).into_http()) });
        }
        let (method, max_decoding) = (ExportMethod(self.inner.clone()), self.max_decoding);
        Box::pin(async move {
            let mut gzip = EnabledCompressionEncodings::default();
            gzip.enable(CompressionEncoding::Gzip);
            let mut grpc = tonic::server::Grpc::new(RequestCodec::default())
                .apply_compression_config(gzip, gzip)
                .apply_max_message_size_config(Some(max_decoding), None);
            let mut answer = grpc.unary(method, request).await;
            // Nothing else in this service answers OUT_OF_RANGE than tonic's size check.
            let status = answer.headers().get(GRPC_STATUS);
            if status.is_some_and(|s| s.as_bytes() == OUT_OF_RANGE) {
                answer
                    .headers_mut()
                    .insert(GRPC_STATUS, http::HeaderValue::from(tonic::Code::ResourceExhausted as i32));
            }
            Ok(answer)
        })
    }
}

struct ExportMethod(Arc<OtlpGrpc>);

impl tonic::server::UnaryService<ExportTraceServiceRequest> for ExportMethod {
    type Response = ExportTraceServiceResponse;
    type Future = Pin<Box<dyn Future<Output = Result<tonic::Response<ExportTraceServiceResponse>, Status>> + Send>>;

    fn call(&mut self, request: tonic::Request<ExportTraceServiceRequest>) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move { inner.export(request).await })
    }
}

/// Protobuf both ways; a request that does not decode is INVALID_ARGUMENT.
#[derive(Default)]
struct RequestCodec(ProstCodec<ExportTraceServiceResponse, ExportTraceServiceRequest>);

impl Codec for RequestCodec {
    type Encode = ExportTraceServiceResponse;
    type Decode = ExportTraceServiceRequest;
    type Encoder = ProstEncoder<ExportTraceServiceResponse>;
    type Decoder = RequestDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder(self.0.decoder())
    }
}

struct RequestDecoder(ProstDecoder<ExportTraceServiceRequest>);

impl Decoder for RequestDecoder {
    type Item = ExportTraceServiceRequest;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        self.0.decode(src).map_err(|e| {
            Status::invalid_argument(format!("the request is not an OTLP ExportTraceServiceRequest: {}", e.message()))
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

#[tonic::async_trait]
impl TraceService for OtlpGrpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        // As `tracekeeper_serve::requested_tenant`, over gRPC metadata.
        let named = match tracekeeper_serve::access::granted_tenant(request.extensions()) {
            Some(granted) => Some(granted.as_bytes()),
            None => request.metadata().get(TENANT_HEADER).map(|v| v.as_bytes()),
        };
        let tenant = self.state.tenant(named)?;
        let request = request.into_inner();
        let size = request.encoded_len();
        let _permit = self.state.reserve(size)?;
        let rejected = self.state.deliver("otlp_grpc", &tenant, otlp::from_request(request), size).await?;
        let partial_success = summarize_rejections(&rejected)
            .map(|error_message| ExportTracePartialSuccess { rejected_spans: rejected.len() as i64, error_message });
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success }))
    }
}
