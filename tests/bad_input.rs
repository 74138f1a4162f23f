//! Malformed and partly invalid input: each case checks the status code, the message,
//! that the valid spans of the same request were stored, and that nothing else was.

mod support;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::trace::v1 as pt;
use prost::Message;
use serde_json::{json, Value};
use support::{gzip, now_ns, rich_trace, Server};
use tracekeeper_model::otlp;

#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// A request whose first span is valid and whose second is broken by `breaks`.
fn one_good_one_bad(seed: u64, breaks: impl Fn(&mut pt::Span)) -> (Vec<u8>, String) {
    let spans = rich_trace(seed, now_ns() - 1_000_000_000);
    let mut request = otlp::to_request(&spans[..2]);
    breaks(&mut request.resource_spans[0].scope_spans[0].spans[1]);
    (request.encode_to_vec(), spans[0].trace_id.to_hex())
}

/// Moves a span `by` nanoseconds into the future.
fn shift(span: &mut pt::Span, by: u64) {
    span.start_time_unix_nano += by;
    span.end_time_unix_nano += by;
}

async fn span_count(server: &Server, trace: &str) -> usize {
    let (status, body) = server.get_json(&format!("/api/traces/{trace}")).await;
    if status == 404 {
        return 0;
    }
    body["data"][0]["spans"].as_array().unwrap().len()
}

#[tokio::test]
async fn invalid_spans_get_partial_success_and_the_valid_ones_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    type Breaker = Box<dyn Fn(&mut pt::Span)>;
    let cases: Vec<(&str, Breaker, &str)> = vec![
        ("all-zero trace id", Box::new(|s| s.trace_id = vec![0; 16]), "trace id is all zeros"),
        ("short trace id", Box::new(|s| s.trace_id = vec![1; 8]), "trace id must be 16 bytes, got 8"),
        ("all-zero span id", Box::new(|s| s.span_id = vec![0; 8]), "span id is all zeros"),
        ("long span id", Box::new(|s| s.span_id = vec![1; 9]), "span id must be 8 bytes, got 9"),
        ("end before start", Box::new(|s| s.end_time_unix_nano = s.start_time_unix_nano - 1), "is before start time"),
        ("two hours ahead", Box::new(|s| shift(s, 2 * 3_600_000_000_000)), "more than 3600s after now"),
        ("fifty years ahead", Box::new(|s| shift(s, 50 * 365 * 86_400_000_000_000)), "--max-future-skew"),
    ];
    for (i, (name, breaks, message)) in cases.into_iter().enumerate() {
        let (body, trace) = one_good_one_bad(1000 + i as u64, breaks);
        let (status, resp) = server.post_otlp(body, "application/x-protobuf", &[]).await;
        assert_eq!(status, 200, "{name}");
        let partial = ExportTraceServiceResponse::decode(resp.as_slice()).unwrap().partial_success.expect(name);
        assert_eq!(partial.rejected_spans, 1, "{name}");
        assert!(partial.error_message.contains(message), "{name}: {:?} lacks {message:?}", partial.error_message);
        assert_eq!(span_count(&server, &trace).await, 1, "{name}: the valid span is stored, the invalid one is not");
    }
    let (_, services) = server.get_json("/api/services").await;
    assert_eq!(services["data"], json!(["frontend"]), "only the valid spans reached the catalog");
}

#[tokio::test]
async fn undecodable_or_refused_bodies_get_the_otlp_error_replies() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--max-body-bytes", "4096"]);
    let valid = otlp::to_request(&rich_trace(1, now_ns() - 1_000_000_000)).encode_to_vec();
    let big_json = format!("{{\"resourceSpans\":[],\"pad\":\"{}\"}}", "x".repeat(20_000));
    struct Case {
        name: &'static str,
        body: Vec<u8>,
        content_type: &'static str,
        headers: Vec<(&'static str, &'static str)>,
        status: u16,
        message: &'static str,
    }
    let cases = vec![
        Case {
            name: "garbage protobuf",
            body: b"\xff\xff\xff".to_vec(),
            content_type: "application/x-protobuf",
            headers: vec![],
            status: 400,
            message: "invalid OTLP protobuf",
        },
        Case {
            name: "garbage JSON",
            body: b"{not json".to_vec(),
            content_type: "application/json",
            headers: vec![],
            status: 400,
            message: "invalid OTLP JSON",
        },
        Case {
            name: "wrong JSON type",
            body: br#"{"resourceSpans":5}"#.to_vec(),
            content_type: "application/json",
            headers: vec![],
            status: 400,
            message: "invalid OTLP JSON",
        },
        Case {
            name: "unsupported type",
            body: valid.clone(),
            content_type: "text/plain",
            headers: vec![],
            status: 415,
            message: "unsupported content type",
        },
        Case {
            name: "unsupported encoding",
            body: valid.clone(),
            content_type: "application/x-protobuf",
            headers: vec![("content-encoding", "br")],
            status: 415,
            message: "unsupported content encoding",
        },
        Case {
            name: "broken gzip",
            body: b"not gzip".to_vec(),
            content_type: "application/x-protobuf",
            headers: vec![("content-encoding", "gzip")],
            status: 400,
            message: "could not be decompressed",
        },
        Case {
            name: "too large",
            body: big_json.clone().into_bytes(),
            content_type: "application/json",
            headers: vec![],
            status: 413,
            message: "larger than the limit of 4096 bytes",
        },
        Case {
            name: "too large once decompressed",
            body: gzip(big_json.as_bytes()),
            content_type: "application/json",
            headers: vec![("content-encoding", "gzip")],
            status: 413,
            message: "larger than the limit of 4096 bytes",
        },
    ];
    for case in cases {
        assert!(case.name != "too large once decompressed" || case.body.len() < 4096, "the compressed body must fit");
        let (status, body) = server.post_otlp(case.body, case.content_type, &case.headers).await;
        assert_eq!(status, case.status, "{}", case.name);
        let message = if case.content_type == "application/json" {
            let status: Value = serde_json::from_slice(&body).unwrap();
            status["message"].as_str().unwrap().to_string()
        } else {
            RpcStatus::decode(body.as_slice()).unwrap().message
        };
        assert!(message.contains(case.message), "{}: {message:?} lacks {:?}", case.name, case.message);
    }
    let (_, services) = server.get_json("/api/services").await;
    assert_eq!(services["data"], json!([]), "no refused request stored anything");

    // A body with content but no spans (snake_case keys) is not silently "accepted".
    let (status, body) = server
        .post_otlp(br#"{"resource_spans":[{"scope_spans":[{"spans":[{}]}]}]}"#.to_vec(), "application/json", &[])
        .await;
    assert_eq!(status, 200);
    let reply: Value = serde_json::from_slice(&body).unwrap();
    let warning = reply["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(warning.contains("no spans were found") && warning.contains("resource_spans"), "{warning}");
}

#[tokio::test]
async fn zipkin_errors_are_readable_and_partial_batches_keep_valid_spans() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        client
            .post(format!("http://{}/api/v2/spans", server.zipkin))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let resp = post(b"{\"not\":\"a list\"}".to_vec()).await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert!(resp.text().await.unwrap().contains("expected a list of spans"));

    let ts = now_ns() / 1000;
    let body = json!([
        {"traceId": "00000000000000aa", "id": "00000000000000bb", "timestamp": ts, "name": "ok", "localEndpoint": {"serviceName": "z"}},
        {"traceId": "00000000000000aa", "id": "nothex", "timestamp": ts}
    ]);
    let resp = post(serde_json::to_vec(&body).unwrap()).await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let text = resp.text().await.unwrap();
    assert!(text.contains("1 span(s) rejected") && text.contains("span id is not hex"), "{text}");
    assert_eq!(span_count(&server, "00000000000000aa").await, 1);
}

/// The query that used to overflow the stack and abort the whole process: TraceQL with
/// thousands of nested parentheses, over the real socket. A 400 that says why, and the
/// process still answers.
#[tokio::test]
async fn a_deeply_nested_traceql_query_is_a_400_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let deep = format!("{}{{ }}{}", "(".repeat(5000), ")".repeat(5000));
    let long = format!("{{ {} }}", vec!["name = \"a\""; 600].join(" && "));
    for query in [deep, long] {
        let url = server.query_url("/api/search");
        let response = reqwest::Client::new().get(url).query(&[("q", query.as_str())]).send().await.unwrap();
        assert_eq!(response.status(), 400);
        let message = response.text().await.unwrap();
        assert!(message.contains("deeper than 32") || message.contains("more than 512"), "{message}");
    }
    let (status, _) = server.get_json("/api/services").await;
    assert_eq!(status, 200, "the process is still up");
}

/// Attribute values nested far deeper than any real instrumentation writes: the
/// protobuf decoder stops at 100 levels and the JSON one at 128, so every recursive
/// step after them (conversion, storage encoding, the APIs' encoders) is bounded too.
/// A deep value is a 400 naming the problem, a moderately nested one is stored and read
/// back, and the process stays up either way.
#[tokio::test]
async fn deeply_nested_attribute_values_are_refused_and_moderate_ones_kept() {
    use opentelemetry_proto::tonic::common::v1::{any_value::Value as PValue, AnyValue as PAny, ArrayValue, KeyValue};
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let nested = |depth: usize| {
        let mut value = PAny { value: Some(PValue::StringValue("leaf".into())) };
        for _ in 0..depth {
            value = PAny { value: Some(PValue::ArrayValue(ArrayValue { values: vec![value] })) };
        }
        value
    };
    let request_with = |seed: u64, depth: usize| {
        let spans = rich_trace(seed, now_ns() - 1_000_000_000);
        let mut request = otlp::to_request(&spans[..1]);
        request.resource_spans[0].scope_spans[0].spans[0].attributes.push(KeyValue {
            key: "deep".into(),
            value: Some(nested(depth)),
            ..Default::default()
        });
        (request, spans[0].trace_id.to_hex())
    };

    // 150 levels: past the decoder's 100, and still shallow enough for this test's own
    // (recursive) encoder.
    let (deep, _) = request_with(3000, 150);
    let (status, body) = server.post_otlp(deep.encode_to_vec(), "application/x-protobuf", &[]).await;
    assert_eq!(status, 400);
    let reply = RpcStatus::decode(body.as_slice()).unwrap();
    assert!(reply.message.contains("recursion limit"), "{}", reply.message);

    let json = format!("{{\"resourceSpans\":[{{\"scopeSpans\":[{{\"spans\":[{{\"attributes\":[{{\"key\":\"deep\",\"value\":{}\"leaf\"{}}}]}}]}}]}}]}}",
        "{\"arrayValue\":{\"values\":[".repeat(5_000), "]}}".repeat(5_000));
    let (status, body) = server.post_otlp(json.into_bytes(), "application/json", &[]).await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("recursion limit"), "{}", String::from_utf8_lossy(&body));

    let (moderate, trace) = request_with(3001, 40);
    let (status, _) = server.post_otlp(moderate.encode_to_vec(), "application/x-protobuf", &[]).await;
    assert_eq!(status, 200);
    let (status, body) = server.get_json(&format!("/api/traces/{trace}")).await;
    assert_eq!(status, 200);
    let tag = body["data"][0]["spans"][0]["tags"].as_array().unwrap().iter().find(|t| t["key"] == "deep").cloned();
    let text = tag.expect("the nested attribute is kept")["value"].to_string();
    assert_eq!(text.matches("leaf").count(), 1);
    assert!(text.matches('[').count() >= 40, "all 40 levels survive: {text}");
}
