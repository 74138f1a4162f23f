//! Kafka message → tenant and spans. The value is an OTLP `ExportTraceServiceRequest`
//! (protobuf), as our collector and the OpenTelemetry Collector's `kafka` exporter
//! (`encoding: otlp_proto`) both write it; the tenant is a header.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use rdkafka::message::{Headers, Message};
use tracekeeper_model::{otlp, Span, DEFAULT_TENANT, KAFKA_TENANT_HEADER};

pub struct Decoded {
    pub tenant: String,
    pub spans: Vec<Span>,
    /// Spans in the message that were invalid and left out.
    pub invalid: usize,
}

/// Decodes one message; `Err` names why it is poison.
pub fn decode(message: &impl Message) -> Result<Decoded, String> {
    let payload = message.payload().ok_or("empty message")?;
    let request = ExportTraceServiceRequest::decode(payload).map_err(|e| format!("not OTLP protobuf: {e}"))?;
    let tenant = message
        .headers()
        .and_then(|h| h.iter().find(|h| h.key.eq_ignore_ascii_case(KAFKA_TENANT_HEADER)))
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_else(|| DEFAULT_TENANT.to_string());
    tracekeeper_model::validate_tenant(&tenant).map_err(|e| format!("bad tenant header: {e}"))?;
    let decoded = otlp::from_request(request);
    Ok(Decoded { tenant, spans: decoded.spans, invalid: decoded.rejected.len() })
}
