//! Hostile requests against the real binary: numbers out of every range in every query
//! parameter, invalid UTF-8, oversized headers, ancient and far-future spans, a
//! thousand tenants. Each gets an answer below 500 (a clear 4xx, or a correct 200),
//! the process stays up, the data stored before is unchanged, and `tracekeeper check`
//! finds the store clean afterwards.

mod support;

use prost::Message;
use serde_json::Value;
use support::{check_store, now_ns, rich_trace, Server};
use tracekeeper_model::otlp;

const TENANT: (&str, &str) = ("X-Scope-OrgID", "base");

async fn get(server: &Server, path: &str, headers: &[(&str, &[u8])]) -> Result<(u16, String), reqwest::Error> {
    let mut request = reqwest::Client::new().get(server.query_url(path));
    for (k, v) in headers {
        request = request.header(*k, reqwest::header::HeaderValue::from_bytes(v).unwrap());
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await.unwrap_or_default()))
}

/// A trace of three spans: one good, one from 1970, one from the next century.
fn ancient_and_far_future() -> Vec<tracekeeper_model::Span> {
    let mut strange = rich_trace(8, now_ns() - 1_000_000_000);
    strange[1].start_ns = 1;
    strange[1].end_ns = 2;
    strange[2].start_ns = now_ns() + 100 * 365 * 86_400_000_000_000;
    strange[2].end_ns = strange[2].start_ns + 1;
    strange
}

async fn assert_up(server: &Server) {
    let (status, _) = get(server, "/ready", &[]).await.expect("the process still answers");
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_clear_answers_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &["--multi-tenancy"]);
    let base = rich_trace(7, now_ns() - 60_000_000_000);
    let trace = base[0].trace_id.to_hex();
    let body = otlp::to_request(&base).encode_to_vec();
    assert_eq!(server.post_otlp(body, "application/x-protobuf", &[TENANT]).await.0, 200);
    let tenant: &[(&str, &[u8])] = &[("X-Scope-OrgID", b"base")];
    let (_, before) = get(&server, &format!("/api/traces/{trace}"), tenant).await.unwrap();

    // Every numeric parameter, with values no client should send.
    let values = [
        "-1",
        "0",
        "18446744073709551616",
        "99999999999999999999999999",
        "1e309",
        "NaN",
        "0x10",
        "%FF%FE",
        "9999999h",
        "-5s",
    ];
    let templates = [
        "/api/traces?service=frontend&limit={}",
        "/api/traces?service=frontend&start={}",
        "/api/traces?service=frontend&end={}",
        "/api/traces?service=frontend&lookback={}",
        "/api/traces?service=frontend&minDuration={}",
        "/api/traces?service=frontend&maxDuration={}",
        "/api/dependencies?endTs={}",
        "/api/dependencies?lookback={}",
        "/api/v3/trace-summaries?query.serviceName=frontend&query.startTimeMin=2000-01-01T00:00:00Z&query.startTimeMax=2100-01-01T00:00:00Z&query.searchDepth={}",
        "/api/v3/traces?query.serviceName=frontend&query.startTimeMin={}&query.startTimeMax=2100-01-01T00:00:00Z",
        "/api/v3/traces?query.serviceName=frontend&query.startTimeMin=2000-01-01T00:00:00Z&query.startTimeMax=2100-01-01T00:00:00Z&query.durationMin={}",
        "/api/v2/traces?serviceName=frontend&limit={}",
        "/api/v2/traces?serviceName=frontend&endTs={}&lookback=3600000",
        "/api/v2/traces?serviceName=frontend&lookback={}",
        "/api/v2/traces?serviceName=frontend&minDuration={}",
        "/api/v2/dependencies?endTs={}",
        "/api/search?limit={}",
        "/api/search?spss={}",
        "/api/search?start={}&end=4102444800",
        "/api/search?start=0&end={}",
        "/api/search?minDuration={}",
        "/api/search/tags?start={}",
        "/api/v2/search/tag/service.name/values?end={}",
        "/api/traces/{}",
        "/api/v3/traces/{}",
        "/api/v2/trace/{}",
    ];
    for template in templates {
        for value in values {
            let path = template.replace("{}", value);
            let (status, text) = get(&server, &path, tenant).await.unwrap();
            assert!(status < 500, "{path}: {status} {text}");
            if status == 400 {
                assert!(!text.trim().is_empty(), "{path}: a 400 must say why");
            }
        }
    }
    assert_up(&server).await;

    // A slow client (slowloris) that never finishes its request head is cut off once the
    // head deadline passes, and the process serves everyone else meanwhile.
    let slow = std::time::Instant::now();
    let mut stream = tokio::net::TcpStream::connect(server.query.as_str()).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(b"GET /api/services HTTP/1.1\r\nHost: tracekeeper\r\nX-Slow: ").await.unwrap();
    let drip = async {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            if stream.write_all(b"a").await.is_err() {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), drip).await;
    assert_up(&server).await;
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(30), stream.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the slow connection is closed by the server");
    let waited = slow.elapsed();
    assert!(waited < std::time::Duration::from_secs(25), "cut off at the 10 s head deadline, not later: {waited:?}");
    let answer = String::from_utf8_lossy(&rest);
    assert!(!answer.contains("200 OK"), "nothing is served to it: {answer}");

    // A range since 1970 is searched back 30 days (--max-search-window), and says so.
    let since_1970 = format!("/api/traces?service=frontend&start=0&end={}", now_ns() / 1000);
    let response =
        reqwest::Client::new().get(server.query_url(&since_1970)).header(TENANT.0, TENANT.1).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let note = response.headers().get("x-tracekeeper-partial").map(|v| v.to_str().unwrap().to_string());
    assert!(note.as_deref().is_some_and(|n| n.contains("--max-search-window")), "{note:?}");
    let found: Value = response.json().await.unwrap();
    assert_eq!(found["data"].as_array().map(Vec::len), Some(1), "the base trace is within the newest 30 days");

    // Invalid UTF-8 and oversized headers.
    let (status, text) = get(&server, "/api/services", &[("X-Scope-OrgID", &[0xff, 0xfe])]).await.unwrap();
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("UTF-8"), "{text}");
    let (status, _) = get(&server, "/api/traces/%FF%FE", tenant).await.unwrap();
    assert_eq!(status, 400);
    // The serving layer buffers at most 64 KB of request head per connection.
    let huge = vec![b'a'; 100 * 1024];
    match get(&server, "/api/services", &[("X-Scope-OrgID", b"base"), ("X-Padding", &huge)]).await {
        Ok((status, _)) => assert_eq!(status, 431, "oversized headers are refused"),
        Err(e) => assert!(e.is_request() || e.is_connect() || e.is_body(), "the connection is closed: {e}"),
    }
    assert_up(&server).await;

    // Spans from 1970 and from the next century, next to a good one.
    let strange = ancient_and_far_future();
    let (status, reply) =
        server.post_otlp(otlp::to_request(&strange).encode_to_vec(), "application/x-protobuf", &[TENANT]).await;
    assert_eq!(status, 200);
    let partial =
        opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::decode(reply.as_slice())
            .unwrap()
            .partial_success
            .expect("two spans refused");
    assert_eq!(partial.rejected_spans, 2);
    assert!(partial.error_message.contains("retention horizon") && partial.error_message.contains("--max-future-skew"));

    // A thousand tenants, each with its own trace, none seeing another's.
    for i in 0..1000u64 {
        let name = format!("tenant-{i}");
        let spans = rich_trace(10_000 + i, now_ns() - 1_000_000_000);
        let body = otlp::to_request(&spans[..1]).encode_to_vec();
        let (status, _) = server.post_otlp(body, "application/x-protobuf", &[("X-Scope-OrgID", &name)]).await;
        assert_eq!(status, 200, "{name}");
    }
    let (status, text) =
        get(&server, &format!("/api/traces/{trace}"), &[("X-Scope-OrgID", b"tenant-500")]).await.unwrap();
    assert_eq!(status, 404, "another tenant's trace is not found: {text}");
    let (_, services) = get(&server, "/api/services", &[("X-Scope-OrgID", b"tenant-999")]).await.unwrap();
    let services: Value = serde_json::from_str(&services).unwrap();
    assert_eq!(services["data"], serde_json::json!(["frontend"]));
    assert_up(&server).await;

    // Nothing stored before changed, and the store is consistent.
    let (_, after) = get(&server, &format!("/api/traces/{trace}"), tenant).await.unwrap();
    assert_eq!(after, before, "the data stored before the hostile requests is unchanged");
    assert!(server.terminate().success());
    let report = check_store(&["--data-dir", dir.path().to_str().unwrap()]);
    assert_eq!(report["tenants"]["base"]["spans"].as_u64(), Some((base.len() + strange.len() - 2) as u64), "{report}");
    assert_eq!(report["tenants"].as_object().unwrap().len(), 1001, "base and a thousand tenants");
}

/// An export request whose resource spans are given as raw bytes, so a test can send
/// what no well-behaved encoder would (same wire format as the real message).
#[derive(Clone, PartialEq, prost::Message)]
struct RawExport {
    #[prost(bytes = "vec", repeated, tag = "1")]
    resource_spans: Vec<Vec<u8>>,
}

fn raw(request: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest) -> RawExport {
    RawExport { resource_spans: request.resource_spans.iter().map(Message::encode_to_vec).collect() }
}

type ExportResponse = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;

async fn export(
    server: &Server,
    request: RawExport,
    gzip: bool,
    tenant: &str,
) -> Result<ExportResponse, tonic::Status> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", server.otlp_grpc))
        .unwrap()
        .connect()
        .await
        .expect("the gRPC port accepts connections");
    let mut grpc = tonic::client::Grpc::new(channel);
    if gzip {
        grpc = grpc.send_compressed(tonic::codec::CompressionEncoding::Gzip);
    }
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(request);
    request.metadata_mut().insert("x-scope-orgid", tenant.parse().unwrap());
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    let codec = tonic_prost::ProstCodec::<RawExport, ExportResponse>::default();
    grpc.unary(request, path, codec).await.map(tonic::Response::into_inner)
}

fn refused(answer: Result<ExportResponse, tonic::Status>, code: tonic::Code, says: &str) {
    let status = answer.expect_err("refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(status.message().contains(says), "{:?} should say {says:?}", status.message());
}

/// The same over OTLP/gRPC: bombs, deep nesting, invalid UTF-8, garbage, oversized
/// messages and metadata, and spans from the wrong century each get a clear status,
/// never INTERNAL or UNKNOWN, and the process stays up with its data unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_grpc_requests_get_clear_statuses_and_change_nothing() {
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, ArrayValue, KeyValue};
    use tonic::Code;

    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &["--multi-tenancy", "--max-body-bytes", "4194304"]);
    let base = rich_trace(7, now_ns() - 60_000_000_000);
    assert!(export(&server, raw(&otlp::to_request(&base)), false, "base").await.unwrap().partial_success.is_none());
    let tenant: &[(&str, &[u8])] = &[("X-Scope-OrgID", b"base")];
    let path = format!("/api/traces/{}", base[0].trace_id.to_hex());
    let (_, before) = get(&server, &path, tenant).await.unwrap();

    // A gzip bomb: 512 MiB of one letter in an attribute, about half a MiB on the wire.
    let mut bomb = otlp::to_request(&rich_trace(20, now_ns() - 1_000_000_000));
    let span = &mut bomb.resource_spans[0].scope_spans[0].spans[0];
    let letters = any_value::Value::StringValue("a".repeat(512 << 20));
    span.attributes.push(KeyValue {
        key: "bomb".into(),
        value: Some(AnyValue { value: Some(letters) }),
        ..Default::default()
    });
    let bomb = raw(&bomb);
    refused(export(&server, bomb.clone(), true, "base").await, Code::ResourceExhausted, "size limit");
    // The same bytes uncompressed are over the message limit before they are read.
    refused(export(&server, bomb, false, "base").await, Code::ResourceExhausted, "message length too large");
    assert_up(&server).await;

    // An attribute value nested 1,000 arrays deep.
    let mut deep = AnyValue { value: Some(any_value::Value::StringValue("leaf".into())) };
    for _ in 0..1000 {
        deep = AnyValue { value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![deep] })) };
    }
    let mut nested = otlp::to_request(&rich_trace(21, now_ns() - 1_000_000_000));
    nested.resource_spans[0].scope_spans[0].spans[0].attributes.push(KeyValue {
        key: "deep".into(),
        value: Some(deep),
        ..Default::default()
    });
    refused(export(&server, raw(&nested), false, "base").await, Code::InvalidArgument, "recursion limit");

    // A schema URL that is not UTF-8, and bytes that are no message at all.
    let invalid_utf8 = RawExport { resource_spans: vec![vec![0x1a, 0x02, 0xff, 0xfe]] };
    refused(export(&server, invalid_utf8, false, "base").await, Code::InvalidArgument, "UTF-8");
    let garbage = RawExport { resource_spans: vec![vec![0xff; 64]] };
    refused(export(&server, garbage, true, "base").await, Code::InvalidArgument, "not an OTLP");
    assert_up(&server).await;

    // Tenants no one may be, and metadata larger than the serving layer reads.
    refused(export(&server, raw(&otlp::to_request(&base)), false, "*").await, Code::InvalidArgument, "tenant");
    refused(export(&server, raw(&otlp::to_request(&base)), false, "../etc").await, Code::InvalidArgument, "tenant");
    let huge = "a".repeat(100 * 1024);
    let answer = export(&server, raw(&otlp::to_request(&base)), false, &huge).await;
    // Refused with a status, or, when the server's refusal (it closes the connection
    // past its header limit) overtakes the client still writing, a closed connection:
    // the race is the client's. Never an internal error, never accepted.
    let closed_while_sending = |s: &tonic::Status| s.code() == Code::Unknown && s.message() == "transport error";
    assert!(
        answer.as_ref().is_err_and(|s| closed_while_sending(s) || !matches!(s.code(), Code::Internal | Code::Unknown)),
        "oversized metadata is refused: {answer:?}"
    );
    assert_up(&server).await;

    // Spans from 1970 and from the next century, next to a good one.
    let strange = ancient_and_far_future();
    let partial = export(&server, raw(&otlp::to_request(&strange)), true, "base")
        .await
        .unwrap()
        .partial_success
        .expect("two spans refused");
    assert_eq!(partial.rejected_spans, 2);
    assert!(partial.error_message.contains("retention horizon") && partial.error_message.contains("--max-future-skew"));

    assert_up(&server).await;
    let (_, after) = get(&server, &path, tenant).await.unwrap();
    assert_eq!(after, before, "the data stored before the hostile requests is unchanged");
    assert!(server.terminate().success());
    let report = check_store(&["--data-dir", dir.path().to_str().unwrap()]);
    assert_eq!(report["tenants"]["base"]["spans"].as_u64(), Some((base.len() + strange.len() - 2) as u64), "{report}");
}
