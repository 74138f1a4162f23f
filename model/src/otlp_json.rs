//! OTLP JSON ↔ model.
//!
//! Decoding uses the serde types generated into `opentelemetry-proto`, which follow
//! the OTLP JSON rules (hex ids, integer enums, 64-bit integers as strings or numbers,
//! unknown fields ignored). Ignoring unknown fields has a trap: a body written with
//! snake_case keys decodes to an empty request. [`decode_request`] spots that and
//! returns a warning, so that the client is not told its spans were stored.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::TracesData;

use crate::otlp::to_resource_spans;
use crate::span::Span;

/// A request body decoded from OTLP JSON, with a warning when the body had content
/// that carried no spans.
#[derive(Debug)]
pub struct DecodedJson {
    pub request: ExportTraceServiceRequest,
    pub warning: Option<String>,
}

pub fn decode_request(body: &[u8]) -> Result<DecodedJson, serde_json::Error> {
    let request: ExportTraceServiceRequest = serde_json::from_slice(body)?;
    let span_count: usize = request.resource_spans.iter().flat_map(|rs| &rs.scope_spans).map(|ss| ss.spans.len()).sum();
    let warning = if span_count == 0 { empty_body_warning(body) } else { None };
    Ok(DecodedJson { request, warning })
}

/// Explains why a non-trivial body decoded to no spans, or `None` when it really was
/// empty (`{}`, `{"resourceSpans":[]}` and the like).
fn empty_body_warning(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let mut snake = Vec::new();
    let mut meaningful = false;
    walk(&value, &mut snake, &mut meaningful);
    if !snake.is_empty() {
        snake.sort();
        snake.dedup();
        let shown: Vec<_> = snake.iter().take(5).map(|k| format!("{k:?}")).collect();
        return Some(format!(
            "no spans were found in the request: OTLP JSON keys must be lowerCamelCase, \
             and these snake_case keys were ignored: {}",
            shown.join(", ")
        ));
    }
    meaningful.then(|| {
        "no spans were found in the request: it has content, but no resourceSpans[].scopeSpans[].spans[] entries"
            .to_string()
    })
}

fn walk(value: &serde_json::Value, snake: &mut Vec<String>, meaningful: &mut bool) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                if key.contains('_') {
                    snake.push(key.clone());
                }
                walk(inner, snake, meaningful);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, snake, meaningful)),
        serde_json::Value::Null => {}
        _ => *meaningful = true,
    }
}

/// The OTLP JSON `TracesData` for these spans, grouped by resource and scope.
pub fn encode_traces_data<'a>(spans: impl IntoIterator<Item = &'a Span>) -> serde_json::Value {
    serde_json::to_value(TracesData { resource_spans: to_resource_spans(spans) })
        .expect("OTLP serde types always serialize")
}

pub fn encode_request<'a>(spans: impl IntoIterator<Item = &'a Span>) -> Vec<u8> {
    serde_json::to_vec(&ExportTraceServiceRequest { resource_spans: to_resource_spans(spans) })
        .expect("OTLP serde types always serialize")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::otlp::from_request;
    use crate::testing::arb_spans;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn json_round_trip_is_lossless(spans in arb_spans()) {
            let body = encode_request(&spans);
            let decoded = decode_request(&body).unwrap();
            prop_assert!(decoded.warning.is_none());
            let back = from_request(decoded.request);
            prop_assert!(back.rejected.is_empty(), "{:?}", back.rejected);
            prop_assert_eq!(back.spans, spans);
        }
    }

    #[test]
    fn snake_case_body_gets_a_warning_naming_the_keys() {
        let body = br#"{"resource_spans":[{"scope_spans":[{"spans":[{"trace_id":"01"}]}]}]}"#;
        let decoded = decode_request(body).unwrap();
        let warning = decoded.warning.unwrap();
        assert!(warning.contains("\"resource_spans\""), "{warning}");
        assert!(warning.contains("lowerCamelCase"), "{warning}");
    }

    #[test]
    fn truly_empty_bodies_get_no_warning() {
        for body in [&b"{}"[..], br#"{"resourceSpans":[]}"#, br#"{"resourceSpans":[{"scopeSpans":[]}]}"#] {
            assert!(decode_request(body).unwrap().warning.is_none());
        }
    }

    #[test]
    fn ids_are_hex_and_numbers_may_be_strings_or_numbers() {
        let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{
            "traceId":"0102030405060708090A0B0C0D0E0F10","spanId":"0102030405060708",
            "name":"x","kind":2,"startTimeUnixNano":"1700000000000000001","endTimeUnixNano":1700000000000000002,
            "attributes":[{"key":"n","value":{"intValue":"42"}}]}]}]}]}"#;
        let spans = from_request(decode_request(body).unwrap().request).spans;
        assert_eq!(spans[0].trace_id.to_hex(), "0102030405060708090a0b0c0d0e0f10");
        assert_eq!(spans[0].start_ns, 1_700_000_000_000_000_001);
        assert_eq!(spans[0].end_ns, 1_700_000_000_000_000_002);
        assert_eq!(spans[0].attributes[0].value, crate::AnyValue::Int(42));
    }
}
