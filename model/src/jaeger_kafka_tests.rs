use prost::Message as _;

use super::*;

fn from_json(bytes: &[u8]) -> Result<Span, String> {
    let mut decoded = decode_json(bytes)?;
    decoded.rejected.pop().map_or_else(|| Ok(decoded.spans.remove(0)), Err)
}

fn from_proto(bytes: &[u8]) -> Result<Span, String> {
    let mut decoded = decode_proto(bytes)?;
    decoded.rejected.pop().map_or_else(|| Ok(decoded.spans.remove(0)), Err)
}

const TRACE: [u8; 16] =
    [0xa9, 0x9f, 0x18, 0xec, 0xce, 0xf1, 0xe0, 0x88, 0x1c, 0x99, 0xe9, 0x9c, 0xeb, 0x14, 0x14, 0xf3];

/// The span the Collector's `jaeger_json` encoding wrote for an SDK's server span.
const JSON: &str = r#"{"traceId":"qZ8Y7M7x4Igcmemc6xQU8w==","spanId":"ZWUftwfHL6o=","operationName":"checkout",
  "references":[{"traceId":"qZ8Y7M7x4Igcmemc6xQU8w==","spanId":"kpIh4+VwWHQ="},
                {"traceId":"AAAAAAAAAAAAAAAAAAAAAQ==","spanId":"AAAAAAAAAAI=","refType":"FOLLOWS_FROM"}],
  "flags":1,"startTime":"2026-11-28T23:54:09.332644813Z","duration":"0.004290502s",
  "tags":[{"key":"otel.scope.name","vStr":"tracekeeper-tests"},{"key":"otel.scope.version","vStr":"0.1"},
          {"key":"http.response.status_code","vType":"INT64","vInt64":"200"},
          {"key":"ratio","vType":"FLOAT64","vFloat64":0.5},{"key":"blob","vType":"BINARY","vBinary":"AQI="},
          {"key":"span.kind","vStr":"server"},{"key":"otel.status_code","vStr":"ERROR"},
          {"key":"error","vType":"BOOL","vBool":true},{"key":"otel.status_description","vStr":"card declined"}],
  "logs":[{"timestamp":"2026-11-28T23:54:09.332689089Z",
           "fields":[{"key":"event","vStr":"validated"},{"key":"items","vType":"INT64","vInt64":"3"}]}],
  "process":{"serviceName":"py-http","tags":[{"key":"deployment.environment","vStr":"test"}]}}"#;

fn kv(key: &str, v_type: i32, f: impl FnOnce(&mut proto::KeyValue)) -> proto::KeyValue {
    let mut out = proto::KeyValue { key: key.into(), v_type, ..Default::default() };
    f(&mut out);
    out
}

fn text(key: &str, value: &str) -> proto::KeyValue {
    kv(key, 0, |k| k.v_str = value.into())
}

fn the_same_span_in_protobuf() -> proto::Span {
    let mut other_trace = vec![0u8; 16];
    other_trace[15] = 1;
    proto::Span {
        trace_id: TRACE.to_vec(),
        span_id: vec![0x65, 0x65, 0x1f, 0xb7, 0x07, 0xc7, 0x2f, 0xaa],
        operation_name: "checkout".into(),
        references: vec![
            proto::SpanRef {
                trace_id: TRACE.to_vec(),
                span_id: vec![0x92, 0x92, 0x21, 0xe3, 0xe5, 0x70, 0x58, 0x74],
                ref_type: 0,
            },
            proto::SpanRef { trace_id: other_trace, span_id: vec![0, 0, 0, 0, 0, 0, 0, 2], ref_type: FOLLOWS_FROM },
        ],
        flags: 1,
        start_time: Some(proto::Timestamp { seconds: 1_795_910_049, nanos: 332_644_813 }),
        duration: Some(proto::Duration { seconds: 0, nanos: 4_290_502 }),
        tags: vec![
            text("otel.scope.name", "tracekeeper-tests"),
            text("otel.scope.version", "0.1"),
            kv("http.response.status_code", INT64, |k| k.v_int64 = 200),
            kv("ratio", FLOAT64, |k| k.v_float64 = 0.5),
            kv("blob", BINARY, |k| k.v_binary = vec![1, 2]),
            text("span.kind", "server"),
            text("otel.status_code", "ERROR"),
            kv("error", BOOL, |k| k.v_bool = true),
            text("otel.status_description", "card declined"),
        ],
        logs: vec![proto::Log {
            timestamp: Some(proto::Timestamp { seconds: 1_795_910_049, nanos: 332_689_089 }),
            fields: vec![text("event", "validated"), kv("items", INT64, |k| k.v_int64 = 3)],
        }],
        process: Some(proto::Process {
            service_name: "py-http".into(),
            tags: vec![text("deployment.environment", "test")],
        }),
        process_id: String::new(),
        warnings: vec![],
    }
}

#[test]
fn json_and_protobuf_forms_of_a_span_decode_alike() {
    let from_json = from_json(JSON.as_bytes()).unwrap();
    let from_proto = from_proto(&the_same_span_in_protobuf().encode_to_vec()).unwrap();
    assert_eq!(from_json, from_proto);
}

#[test]
fn the_collectors_conventions_become_fields() {
    let span = from_json(JSON.as_bytes()).unwrap();
    assert_eq!(span.trace_id, TraceId(TRACE));
    assert_eq!(span.parent_span_id.map(|p| p.to_hex()).as_deref(), Some("929221e3e5705874"));
    assert_eq!(span.links.len(), 1, "the FOLLOWS_FROM reference is a link");
    assert_eq!(span.links[0].span_id.to_hex(), "0000000000000002");
    assert_eq!(span.kind, SpanKind::Server);
    assert_eq!(span.status, Status { code: StatusCode::Error, message: "card declined".into() });
    assert_eq!((span.scope.name.as_str(), span.scope.version.as_str()), ("tracekeeper-tests", "0.1"));
    assert_eq!(span.start_ns, 1_795_910_049_332_644_813);
    assert_eq!(span.end_ns - span.start_ns, 4_290_502);
    let attributes: Vec<(&str, &AnyValue)> = span.attributes.iter().map(|kv| (kv.key.as_str(), &kv.value)).collect();
    assert_eq!(
        attributes,
        [
            ("http.response.status_code", &AnyValue::Int(200)),
            ("ratio", &AnyValue::Double(0.5)),
            ("blob", &AnyValue::Bytes(vec![1, 2])),
        ]
    );
    assert_eq!(span.events.len(), 1);
    assert_eq!(span.events[0].name, "validated");
    assert_eq!(span.events[0].attributes, vec![KeyValue::new("items", AnyValue::Int(3))]);
    assert_eq!(span.events[0].time_ns, 1_795_910_049_332_689_089);
    assert_eq!(
        span.resource.attributes,
        vec![KeyValue::string("service.name", "py-http"), KeyValue::string("deployment.environment", "test")]
    );
}

#[test]
fn the_error_tag_alone_means_an_error_status() {
    let mut span = the_same_span_in_protobuf();
    span.tags.retain(|t| !t.key.starts_with("otel.status"));
    let span = from_proto(&span.encode_to_vec()).unwrap();
    assert_eq!(span.status.code, StatusCode::Error);
}

#[test]
fn bad_spans_are_refused_with_a_reason() {
    let cases = [
        (JSON.replace("qZ8Y7M7x4Igcmemc6xQU8w==", "AAAA"), "traceId has 3 bytes"),
        (JSON.replace("2026-11-28T23:54:09.332644813Z", "yesterday"), "is not an RFC 3339 time"),
        (JSON.replace("0.004290502s", "4ms"), "is not a duration in seconds"),
        (JSON.replace(r#""vType":"FLOAT64""#, r#""vType":"DECIMAL""#), "unknown vType"),
        (JSON.replace(r#""vInt64":"200""#, r#""vInt64":"2e2""#), "vInt64"),
        ("[1,2]".to_string(), "not a Jaeger JSON span"),
    ];
    for (body, says) in cases {
        let error = from_json(body.as_bytes()).unwrap_err();
        assert!(error.contains(says), "{says}: {error}");
    }
    assert!(from_proto(b"\xff\xff").unwrap_err().starts_with("not a Jaeger protobuf span"));
    let mut zero = the_same_span_in_protobuf();
    zero.span_id = vec![0; 8];
    assert!(from_proto(&zero.encode_to_vec()).unwrap_err().contains("spanId is all zeros"));
}

#[test]
fn a_64_bit_trace_id_is_widened() {
    let mut span = the_same_span_in_protobuf();
    span.trace_id = vec![0, 0, 0, 0, 0, 0, 0, 9];
    span.references.clear();
    let span = from_proto(&span.encode_to_vec()).unwrap();
    assert_eq!(span.trace_id.to_hex(), "00000000000000000000000000000009");
}
