//! Kafka message → tenant and spans, in the encoding its topic was configured with:
//! the encodings the OpenTelemetry Collector's `kafka` exporter writes (our collector
//! writes `otlp_proto`), which include Zipkin reporters' own Kafka format (a JSON or
//! proto3 list of spans). The tenant is a header; without one, the default tenant.

use std::fmt;
use std::str::FromStr;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use rdkafka::message::{Headers, Message};
use tracekeeper_model::otlp::{self, Decoded as Spans};
use tracekeeper_model::{jaeger_kafka, otlp_json, zipkin, zipkin_proto, Span, DEFAULT_TENANT, KAFKA_TENANT_HEADER};

pub struct Decoded {
    pub tenant: String,
    pub spans: Vec<Span>,
    /// Spans in the message that were invalid and left out.
    pub invalid: usize,
    /// Why the first of them was.
    pub first_invalid: Option<String>,
}

/// How a topic's messages are encoded; named as the Collector's exporter names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// An OTLP `ExportTraceServiceRequest` in protobuf.
    #[default]
    OtlpProto,
    /// An OTLP `ExportTraceServiceRequest` in OTLP JSON.
    OtlpJson,
    /// One Jaeger `api_v2.Span`, with its process, in protobuf.
    JaegerProto,
    /// One Jaeger `api_v2.Span` in protobuf's JSON mapping.
    JaegerJson,
    /// A Zipkin proto3 `ListOfSpans`.
    ZipkinProto,
    /// A Zipkin v2 JSON list of spans (or one span).
    ZipkinJson,
}

impl Encoding {
    pub const ALL: [Encoding; 6] = [
        Encoding::OtlpProto,
        Encoding::OtlpJson,
        Encoding::JaegerProto,
        Encoding::JaegerJson,
        Encoding::ZipkinProto,
        Encoding::ZipkinJson,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Encoding::OtlpProto => "otlp_proto",
            Encoding::OtlpJson => "otlp_json",
            Encoding::JaegerProto => "jaeger_proto",
            Encoding::JaegerJson => "jaeger_json",
            Encoding::ZipkinProto => "zipkin_proto",
            Encoding::ZipkinJson => "zipkin_json",
        }
    }

    /// The spans of one message value; `Err` names why it is poison.
    pub fn spans(self, payload: &[u8]) -> Result<Spans, String> {
        match self {
            Encoding::OtlpProto => {
                let request =
                    ExportTraceServiceRequest::decode(payload).map_err(|e| format!("not OTLP protobuf: {e}"))?;
                Ok(otlp::from_request(request))
            }
            Encoding::OtlpJson => {
                let json = otlp_json::decode_request(payload).map_err(|e| format!("not OTLP JSON: {e}"))?;
                match json.warning {
                    Some(warning) => Err(warning),
                    None => Ok(otlp::from_request(json.request)),
                }
            }
            Encoding::JaegerProto => jaeger_kafka::decode_proto(payload),
            Encoding::JaegerJson => jaeger_kafka::decode_json(payload),
            Encoding::ZipkinProto => zipkin_proto::decode(payload),
            Encoding::ZipkinJson => {
                let list = if payload.trim_ascii_start().starts_with(b"{") {
                    [b"[", payload, b"]"].concat()
                } else {
                    payload.to_vec()
                };
                zipkin::decode(&list).map_err(|e| format!("not Zipkin v2 JSON: {e}"))
            }
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Encoding {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Encoding::ALL.into_iter().find(|e| e.name() == name).ok_or_else(|| {
            let names: Vec<&str> = Encoding::ALL.iter().map(|e| e.name()).collect();
            format!("unknown Kafka encoding {name:?}; one of {}", names.join(", "))
        })
    }
}

/// Decodes one message; `Err` names why it is poison.
pub fn decode(message: &impl Message, encoding: Encoding) -> Result<Decoded, String> {
    let payload = message.payload().ok_or("empty message")?;
    let spans = encoding.spans(payload)?;
    let tenant = message
        .headers()
        .and_then(|h| h.iter().find(|h| h.key.eq_ignore_ascii_case(KAFKA_TENANT_HEADER)))
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_else(|| DEFAULT_TENANT.to_string());
    tracekeeper_model::validate_tenant(&tenant).map_err(|e| format!("bad tenant header: {e}"))?;
    let invalid = spans.rejected.len();
    Ok(Decoded { tenant, spans: spans.spans, invalid, first_invalid: spans.rejected.into_iter().next() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_encoding_has_a_name_that_parses_back() {
        for encoding in Encoding::ALL {
            assert_eq!(encoding.name().parse::<Encoding>(), Ok(encoding));
        }
        let error = "thrift".parse::<Encoding>().unwrap_err();
        assert!(error.contains("unknown Kafka encoding \"thrift\"") && error.contains("zipkin_json"), "{error}");
    }

    #[test]
    fn a_payload_in_another_encoding_is_poison_with_a_reason() {
        let zipkin = br#"[{"traceId":"0102030405060708","id":"0102030405060708","timestamp":1}]"#;
        assert_eq!(Encoding::ZipkinJson.spans(zipkin).unwrap().spans.len(), 1);
        assert!(Encoding::OtlpProto.spans(zipkin).unwrap_err().starts_with("not OTLP protobuf"));
        assert!(Encoding::OtlpJson.spans(zipkin).unwrap_err().starts_with("not OTLP JSON"));
        assert!(Encoding::ZipkinProto.spans(zipkin).unwrap_err().starts_with("not a Zipkin proto3"));
        let single = br#"{"traceId":"0102030405060708","id":"0102030405060708","timestamp":1}"#;
        assert_eq!(Encoding::ZipkinJson.spans(single).unwrap().spans.len(), 1, "one span, not in a list");
        // A Jaeger span with a bad id is counted invalid; bytes that are no span are poison.
        let zero_id =
            br#"{"traceId":"AAAAAAAAAAAAAAAAAAAAAQ==","spanId":"AAAAAAAAAAA=","startTime":"2026-01-01T00:00:00Z"}"#;
        let bad = Encoding::JaegerJson.spans(zero_id).unwrap();
        assert_eq!((bad.spans.len(), bad.rejected.len()), (0, 1), "{:?}", bad.rejected);
        assert!(Encoding::JaegerJson.spans(b"{}").unwrap_err().starts_with("not a Jaeger JSON span"));
        assert!(Encoding::JaegerProto.spans(b"\xff").unwrap_err().starts_with("not a Jaeger protobuf span"));
    }
}
