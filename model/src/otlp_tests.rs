use proptest::prelude::*;
use prost::Message;

use super::*;
use crate::testing::arb_spans;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// model → OTLP protobuf bytes → model changes nothing.
    #[test]
    fn protobuf_round_trip_is_lossless(spans in arb_spans()) {
        let bytes = to_request(&spans).encode_to_vec();
        let back = from_request(ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap());
        prop_assert!(back.rejected.is_empty(), "{:?}", back.rejected);
        prop_assert_eq!(back.spans, spans);
    }

    /// OTLP protobuf → model → OTLP protobuf changes nothing either.
    #[test]
    fn proto_model_proto_is_identity(spans in arb_spans()) {
        let request = to_request(&spans);
        let again = to_request(&from_request(request.clone()).spans);
        prop_assert_eq!(again, request);
    }
}

fn valid_span() -> pt::Span {
    pt::Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        start_time_unix_nano: 10,
        end_time_unix_nano: 20,
        ..Default::default()
    }
}

fn decode_one(span: pt::Span) -> Decoded {
    from_resource_spans(vec![pt::ResourceSpans {
        scope_spans: vec![pt::ScopeSpans { spans: vec![span], ..Default::default() }],
        ..Default::default()
    }])
}

#[test]
fn each_invalid_span_is_rejected_with_its_reason() {
    let cases: Vec<(pt::Span, &str)> = vec![
        (pt::Span { trace_id: vec![0; 16], ..valid_span() }, "trace id is all zeros"),
        (pt::Span { trace_id: vec![1; 4], ..valid_span() }, "trace id must be 16 bytes, got 4"),
        (pt::Span { span_id: vec![0; 8], ..valid_span() }, "span id is all zeros"),
        (pt::Span { span_id: vec![], ..valid_span() }, "span id must be 8 bytes, got 0"),
        (pt::Span { end_time_unix_nano: 5, ..valid_span() }, "end time 5 is before start time 10"),
        (pt::Span { parent_span_id: vec![3; 3], ..valid_span() }, "parent span id must be 8 bytes"),
    ];
    for (span, reason) in cases {
        let decoded = decode_one(span);
        assert!(decoded.spans.is_empty());
        assert_eq!(decoded.rejected.len(), 1);
        assert!(decoded.rejected[0].contains(reason), "{} does not mention {reason}", decoded.rejected[0]);
    }
    assert_eq!(decode_one(valid_span()).spans.len(), 1);
}

#[test]
fn all_zero_parent_means_root() {
    let decoded = decode_one(pt::Span { parent_span_id: vec![0; 8], ..valid_span() });
    assert_eq!(decoded.spans[0].parent_span_id, None);
}

#[test]
fn rejection_message_counts_and_truncates() {
    let reasons: Vec<String> = (0..5).map(|i| format!("r{i}")).collect();
    assert_eq!(summarize_rejections(&reasons).unwrap(), "5 span(s) rejected: r0; r1; r2; and 2 more");
    assert_eq!(summarize_rejections(&[]), None);
}
