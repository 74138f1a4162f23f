//! Jaeger's gRPC APIs against all-in-one, through clients generated from Jaeger's own
//! protos: api_v2 and api_v3 QueryService on the query gRPC listener, and the remote
//! storage API (storage v2 TraceReader, DependencyReader) on its own listener.

mod support;

use prost::Message;
use support::{now_ns, rich_trace, trace_id, Server};
use tonic::transport::Channel;
use tonic::Code;
use tracekeeper_jaeger_proto::api_v2::query_service_client::QueryServiceClient as V2Client;
use tracekeeper_jaeger_proto::api_v2::{self as v2, ValueType};
use tracekeeper_jaeger_proto::api_v3 as v3;
use tracekeeper_jaeger_proto::api_v3::query_service_client::QueryServiceClient as V3Client;
use tracekeeper_jaeger_proto::storage_v2 as storage;
use tracekeeper_jaeger_proto::storage_v2::dependency_reader_client::DependencyReaderClient;
use tracekeeper_jaeger_proto::storage_v2::trace_reader_client::TraceReaderClient;
use tracekeeper_model::{otlp, Span};

fn timestamp(ns: u64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: (ns / 1_000_000_000) as i64, nanos: (ns % 1_000_000_000) as i32 }
}

async fn channel(addr: &str) -> Channel {
    Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap()
}

/// Collects a server stream, or its status.
async fn collect<T>(
    stream: Result<tonic::Response<tonic::Streaming<T>>, tonic::Status>,
) -> Result<Vec<T>, tonic::Status> {
    let mut stream = stream?.into_inner();
    let mut out = Vec::new();
    while let Some(item) = stream.message().await? {
        out.push(item);
    }
    Ok(out)
}

/// (trace, span id) of every span in OTLP `TracesData`, sorted.
fn otlp_span_ids(data: &[opentelemetry_proto::tonic::trace::v1::TracesData]) -> Vec<Vec<u8>> {
    let mut ids: Vec<Vec<u8>> = data
        .iter()
        .flat_map(|d| &d.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| [s.trace_id.clone(), s.span_id.clone()].concat())
        .collect();
    ids.sort();
    ids
}

fn span_ids(spans: &[Span]) -> Vec<Vec<u8>> {
    let mut ids: Vec<Vec<u8>> = spans.iter().map(|s| [s.trace_id.0.to_vec(), s.span_id.0.to_vec()].concat()).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jaeger_grpc_query_apis_and_remote_storage_answer_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--jaeger-storage-grpc-addr", "127.0.0.1:0"]);
    let base = now_ns() - 120_000_000_000;
    let traces: Vec<Vec<Span>> = (0..3u64).map(|i| rich_trace(500 + i, base + i * 1_000_000_000)).collect();
    for spans in &traces {
        let body = otlp::to_request(spans).encode_to_vec();
        assert_eq!(server.post_otlp(body, "application/x-protobuf", &[]).await.0, 200);
    }
    let (from, to) = (timestamp(base - 60_000_000_000), timestamp(now_ns()));

    // api_v2.
    let mut v2 = V2Client::new(channel(&server.query_grpc).await);
    let services = v2.get_services(v2::GetServicesRequest {}).await.unwrap().into_inner().services;
    assert_eq!(services, ["db", "frontend"]);
    let operations = v2
        .get_operations(v2::GetOperationsRequest { service: "frontend".into(), span_kind: "server".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(operations.operation_names, ["GET /checkout"]);
    assert_eq!(operations.operations[0].span_kind, "server");
    let wanted = &traces[1];
    let chunks = collect(
        v2.get_trace(v2::GetTraceRequest { trace_id: wanted[0].trace_id.0.to_vec(), ..Default::default() }).await,
    )
    .await
    .unwrap();
    let spans: Vec<&v2::Span> = chunks.iter().flat_map(|c| &c.spans).collect();
    assert_eq!(spans.len(), wanted.len());
    let root = spans.iter().find(|s| s.operation_name == "GET /checkout").unwrap();
    assert_eq!(root.process.as_ref().unwrap().service_name, "frontend");
    let status = root.tags.iter().find(|t| t.key == "http.status_code").unwrap();
    assert_eq!((status.v_type, status.v_int64), (ValueType::Int64 as i32, 200));
    assert!(root.tags.iter().any(|t| t.key == "span.kind" && t.v_str == "server"));
    assert_eq!(root.logs[0].fields[0].key, "event", "an event's name is its log's event field");
    assert_eq!(root.start_time, Some(timestamp(wanted[0].start_ns)));
    let child = spans.iter().find(|s| s.operation_name == "SELECT cart").unwrap();
    assert_eq!(child.references[0].span_id, wanted[0].span_id.0.to_vec(), "CHILD_OF its parent");
    let missing = v2.get_trace(v2::GetTraceRequest { trace_id: trace_id(999).0.to_vec(), ..Default::default() }).await;
    assert_eq!(collect(missing).await.unwrap_err().code(), Code::NotFound);
    let short = v2.get_trace(v2::GetTraceRequest { trace_id: vec![1, 2, 3], ..Default::default() }).await;
    let short = collect(short).await.unwrap_err();
    assert_eq!(short.code(), Code::InvalidArgument);
    assert!(short.message().contains("16 bytes"), "{}", short.message());
    let archive = v2.archive_trace(v2::ArchiveTraceRequest::default()).await.unwrap_err();
    assert_eq!(archive.code(), Code::Unimplemented);
    let find = |service: &str, tags: &[(&str, &str)], depth: i32| v2::FindTracesRequest {
        query: Some(v2::TraceQueryParameters {
            service_name: service.into(),
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            start_time_min: Some(from),
            start_time_max: Some(to),
            search_depth: depth,
            ..Default::default()
        }),
    };
    let found = collect(v2.find_traces(find("db", &[], 2)).await).await.unwrap();
    let ids: Vec<Vec<u8>> = found.iter().map(|c| c.spans[0].trace_id.clone()).collect();
    assert_eq!(ids, [traces[2][0].trace_id.0.to_vec(), traces[1][0].trace_id.0.to_vec()], "newest first, two");
    let by_log_field = collect(v2.find_traces(find("frontend", &[("key", "cart:1")], 10)).await).await.unwrap();
    assert_eq!(by_log_field.len(), 3, "a tag held by an event (a log field) finds its traces");
    let no_window = v2::FindTracesRequest { query: Some(v2::TraceQueryParameters::default()) };
    let refused = collect(v2.find_traces(no_window).await).await.map(|_| ()).unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "a search needs its time range");
    let graph = v2
        .get_dependencies(v2::GetDependenciesRequest { start_time: Some(from), end_time: Some(to) })
        .await
        .unwrap()
        .into_inner()
        .dependencies;
    assert_eq!((graph[0].parent.as_str(), graph[0].child.as_str(), graph[0].call_count), ("frontend", "db", 3));

    // api_v3: the trace in OTLP, a page at a time.
    let mut v3 = V3Client::new(channel(&server.query_grpc).await);
    let data = collect(
        v3.get_trace(v3::GetTraceRequest { trace_id: wanted[0].trace_id.to_hex(), ..Default::default() }).await,
    )
    .await
    .unwrap();
    assert_eq!(otlp_span_ids(&data), span_ids(wanted));
    let query = v3::TraceQueryParameters {
        service_name: "frontend".into(),
        start_time_min: Some(from),
        start_time_max: Some(to),
        ..Default::default()
    };
    let found = collect(v3.find_traces(v3::FindTracesRequest { query: Some(query) }).await).await.unwrap();
    assert_eq!(otlp_span_ids(&found), span_ids(&traces.concat()));
    let operations = v3.get_operations(v3::GetOperationsRequest { service: "db".into(), ..Default::default() }).await;
    assert_eq!(operations.unwrap().into_inner().operations[0].name, "query");

    // The remote storage API, as Jaeger v2 reads it: stored traces only, each whole.
    let storage_addr = server.jaeger_storage.clone().expect("the remote storage listener");
    let mut reader = TraceReaderClient::new(channel(&storage_addr).await);
    let ask =
        |id: tracekeeper_model::TraceId| storage::GetTraceParams { trace_id: id.0.to_vec(), ..Default::default() };
    let request = storage::GetTracesRequest {
        query: vec![ask(traces[0][0].trace_id), ask(trace_id(999)), ask(traces[2][0].trace_id)],
    };
    let data = collect(reader.get_traces(request).await).await.unwrap();
    assert_eq!(otlp_span_ids(&data), span_ids(&[traces[0].clone(), traces[2].clone()].concat()));
    let search = storage::FindTracesRequest {
        query: Some(storage::TraceQueryParameters {
            service_name: "frontend".into(),
            attributes: vec![storage::KeyValue {
                key: "http.status_code".into(),
                value: Some(storage::AnyValue { value: Some(storage::any_value::Value::IntValue(200)) }),
            }],
            start_time_min: Some(from),
            start_time_max: Some(to),
            ..Default::default()
        }),
    };
    let ids = reader.find_trace_i_ds(search).await.unwrap().into_inner().trace_ids;
    let ids: Vec<Vec<u8>> = ids.into_iter().map(|t| t.trace_id).collect();
    assert_eq!(ids, traces.iter().rev().map(|t| t[0].trace_id.0.to_vec()).collect::<Vec<_>>());
    let services = reader.get_services(storage::GetServicesRequest {}).await.unwrap().into_inner().services;
    assert_eq!(services, ["db", "frontend"]);
    let mut dependencies = DependencyReaderClient::new(channel(&storage_addr).await);
    let graph = dependencies
        .get_dependencies(storage::GetDependenciesRequest { start_time: Some(from), end_time: Some(to) })
        .await
        .unwrap()
        .into_inner()
        .dependencies;
    assert_eq!(graph.len(), 1);
}

/// With tenants kept apart, a gRPC request names its tenant in metadata, as HTTP does
/// in its header, and sees only that tenant's traces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_queries_are_tenant_scoped() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--multi-tenancy"]);
    let spans = rich_trace(600, now_ns() - 10_000_000_000);
    let body = otlp::to_request(&spans).encode_to_vec();
    assert_eq!(server.post_otlp(body, "application/x-protobuf", &[("X-Scope-OrgID", "acme")]).await.0, 200);
    let mut client = V2Client::new(channel(&server.query_grpc).await);
    let services = |tenant: Option<&str>| {
        let mut request = tonic::Request::new(v2::GetServicesRequest {});
        if let Some(tenant) = tenant {
            request.metadata_mut().insert("x-scope-orgid", tenant.parse().unwrap());
        }
        request
    };
    let none = client.get_services(services(None)).await.unwrap_err();
    assert_eq!(none.code(), Code::Unauthenticated, "{none:?}");
    assert_eq!(client.get_services(services(Some("acme"))).await.unwrap().into_inner().services, ["db", "frontend"]);
    assert!(client.get_services(services(Some("other"))).await.unwrap().into_inner().services.is_empty());
}

/// The purge endpoint Jaeger's suite empties the store with: refused unless asked
/// for by its flag; with it, every tenant's traces and catalog go, and new writes of
/// the same traces are stored again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_purge_endpoint_empties_the_store_only_when_enabled() {
    let client = reqwest::Client::new();
    let purge = |server: &Server| client.post(server.query_url("/api/purge")).send();
    let spans = rich_trace(700, now_ns() - 10_000_000_000);
    let body = otlp::to_request(&spans).encode_to_vec();

    let dir = tempfile::tempdir().unwrap();
    let without = Server::start(dir.path(), &[]);
    assert_eq!(without.post_otlp(body.clone(), "application/x-protobuf", &[]).await.0, 200);
    let refused = purge(&without).await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("--test-purge-endpoint"));
    assert_eq!(without.get_json("/api/services").await.1["data"], serde_json::json!(["db", "frontend"]));

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--test-purge-endpoint"]);
    for _ in 0..2 {
        assert_eq!(server.post_otlp(body.clone(), "application/x-protobuf", &[]).await.0, 200);
        let path = format!("/api/traces/{}", spans[0].trace_id.to_hex());
        assert_eq!(server.get_json(&path).await.0, 200);
        assert_eq!(purge(&server).await.unwrap().status(), 200);
        assert_eq!(server.get_json(&path).await.0, 404, "purged");
        assert_eq!(server.get_json("/api/services").await.1["data"], serde_json::json!([]));
    }
}
