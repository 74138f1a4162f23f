//! All-in-one end to end: every receiver in, the Jaeger API out, over real sockets
//! against the real binary.

mod support;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use serde_json::{json, Value};
use support::{gzip, now_ns, rich_trace, trace_id, urlencode, Server};
use tracekeeper_model::{jaeger, otlp, otlp_json, Span};

/// What the Jaeger API must return for these spans: the same conversion the server
/// applies, so any field the store changed shows up as a difference.
fn expected(spans: &[Span]) -> Value {
    serde_json::to_value(jaeger::to_trace(spans, vec![])).unwrap()
}

async fn fetch(server: &Server, spans: &[Span]) -> Value {
    let (status, body) = server.get_json(&format!("/api/traces/{}", spans[0].trace_id.to_hex())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["errors"], Value::Null);
    body["data"][0].clone()
}

#[tokio::test]
async fn every_otlp_encoding_round_trips_through_the_jaeger_api() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let start = now_ns() - 60_000_000_000;

    let protobuf = rich_trace(1, start);
    let (status, body) =
        server.post_otlp(otlp::to_request(&protobuf).encode_to_vec(), "application/x-protobuf", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(ExportTraceServiceResponse::decode(body.as_slice()).unwrap().partial_success, None);

    let protobuf_gz = rich_trace(2, start);
    let (status, _) = server
        .post_otlp(
            gzip(&otlp::to_request(&protobuf_gz).encode_to_vec()),
            "application/x-protobuf",
            &[("content-encoding", "gzip")],
        )
        .await;
    assert_eq!(status, 200);

    let json_plain = rich_trace(3, start);
    let (status, body) = server.post_otlp(otlp_json::encode_request(&json_plain), "application/json", &[]).await;
    assert_eq!((status, String::from_utf8(body).unwrap()), (200, "{}".to_string()));

    let json_gz = rich_trace(4, start);
    let (status, _) = server
        .post_otlp(
            gzip(&otlp_json::encode_request(&json_gz)),
            "application/json; charset=utf-8",
            &[("content-encoding", "gzip")],
        )
        .await;
    assert_eq!(status, 200);

    let grpc = rich_trace(5, start);
    let mut client = TraceServiceClient::connect(format!("http://{}", server.otlp_grpc))
        .await
        .unwrap()
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let response = client.export(otlp::to_request(&grpc)).await.unwrap().into_inner();
    assert_eq!(response.partial_success, None);

    for spans in [&protobuf, &protobuf_gz, &json_plain, &json_gz, &grpc] {
        assert_eq!(fetch(&server, spans).await, expected(spans));
    }
    // Spot-check the conversion itself on the fetched JSON.
    let trace = fetch(&server, &grpc).await;
    assert_eq!(trace["spans"].as_array().unwrap().len(), 3);
    assert_eq!(trace["processes"].as_object().unwrap().len(), 2);
    let root = &trace["spans"][0];
    assert_eq!(root["startTime"], json!(grpc[0].start_ns / 1000));
    assert_eq!(root["duration"], json!(25_000));
    let tag = |span: &Value, key: &str| span["tags"].as_array().unwrap().iter().find(|t| t["key"] == key).cloned();
    assert_eq!(
        tag(root, "http.status_code").unwrap(),
        json!({"key": "http.status_code", "type": "int64", "value": 200})
    );
    assert_eq!(tag(root, "unicode").unwrap()["value"], "héllo wörld ✓");
    assert_eq!(tag(&trace["spans"][2], "error").unwrap()["value"], true);
    assert_eq!(trace["spans"][1]["references"][1]["refType"], "FOLLOWS_FROM");
}

#[tokio::test]
async fn zipkin_spans_are_stored_and_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let ts = now_ns() / 1000 - 5_000_000;
    let body = json!([{
        "traceId": "463ac35c9f6413ad", "id": "a2fb4a1d1a96d312", "parentId": "0020000000000001",
        "name": "get /api", "kind": "SERVER", "timestamp": ts, "duration": 1500,
        "localEndpoint": {"serviceName": "backend", "ipv4": "192.168.99.1", "port": 3306},
        "remoteEndpoint": {"serviceName": "frontend", "ipv4": "172.19.0.2", "port": 58648},
        "annotations": [{"timestamp": ts + 10, "value": "wr"}],
        "tags": {"http.path": "/api", "error": "timeout"}
    }]);
    let resp =
        reqwest::Client::new().post(format!("http://{}/api/v2/spans", server.zipkin)).json(&body).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let (status, body) = server.get_json("/api/traces/463ac35c9f6413ad").await;
    assert_eq!(status, 200, "{body}");
    let trace = &body["data"][0];
    let span = &trace["spans"][0];
    assert_eq!(trace["traceID"], "463ac35c9f6413ad");
    assert_eq!(span["spanID"], "a2fb4a1d1a96d312");
    assert_eq!(span["operationName"], "get /api");
    assert_eq!(span["startTime"], json!(ts));
    assert_eq!(span["duration"], json!(1500));
    assert_eq!(span["references"][0]["spanID"], "0020000000000001");
    assert_eq!(
        span["logs"][0],
        json!({"timestamp": ts + 10, "fields": [{"key": "event", "type": "string", "value": "wr"}]})
    );
    assert_eq!(trace["processes"][span["processID"].as_str().unwrap()]["serviceName"], "backend");
    let tags: Vec<(String, Value)> = span["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["key"].as_str().unwrap().to_string(), t["value"].clone()))
        .collect();
    for (k, v) in [
        ("http.path", json!("/api")),
        ("peer.service", json!("frontend")),
        ("net.peer.ip", json!("172.19.0.2")),
        ("net.peer.port", json!(58648)),
        ("net.host.ip", json!("192.168.99.1")),
        ("span.kind", json!("server")),
        ("error", json!(true)),
        ("otel.status_description", json!("timeout")),
    ] {
        assert!(tags.contains(&(k.to_string(), v.clone())), "missing tag {k}={v} in {tags:?}");
    }
}

#[tokio::test]
async fn a_duplicated_batch_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let spans = rich_trace(7, now_ns() - 1_000_000_000);
    let body = otlp::to_request(&spans).encode_to_vec();
    for _ in 0..3 {
        assert_eq!(server.post_otlp(body.clone(), "application/x-protobuf", &[]).await.0, 200);
    }
    // And once more split differently, as a retrying client might.
    assert_eq!(server.post_otlp(otlp_json::encode_request(&spans[1..]), "application/json", &[]).await.0, 200);
    let trace = fetch(&server, &spans).await;
    assert_eq!(trace["spans"].as_array().unwrap().len(), 3);
    let (_, found) = server.get_json("/api/traces?service=db&limit=10").await;
    assert_eq!(found["data"].as_array().unwrap().len(), 1);
}

async fn post_at(server: &Server, seed: u64, start: u64, mutate: impl Fn(&mut Vec<Span>)) -> Vec<Span> {
    let mut spans = rich_trace(seed, start);
    mutate(&mut spans);
    assert_eq!(server.post_otlp(otlp::to_request(&spans).encode_to_vec(), "application/x-protobuf", &[]).await.0, 200);
    spans
}

fn trace_ids(body: &Value) -> Vec<String> {
    body["data"].as_array().unwrap().iter().map(|t| t["traceID"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn search_is_newest_first_exact_and_combines_filters() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let base = now_ns() - 600_000_000_000;
    for seed in 0..30u64 {
        post_at(&server, 100 + seed, base + seed * 1_000_000_000, |spans| {
            if seed == 4 {
                spans[0].attributes.push(tracekeeper_model::KeyValue::string("customer", "vip"));
            }
        })
        .await;
    }
    let id = |seed: u64| trace_id(seed).to_hex();
    let (status, body) = server.get_json("/api/traces?service=frontend&limit=3").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(trace_ids(&body), vec![id(129), id(128), id(127)]);

    // Operation + tags (typed and string) + duration, all on one span, on the 26th newest.
    let url = format!(
        "/api/traces?service=frontend&operation={}&tags={}&tag=http.method:GET&minDuration=20ms&maxDuration=1s&limit=5",
        "GET%20%2Fcheckout", "%7B%22customer%22%3A%22vip%22%2C%22http.status_code%22%3A%22200%22%7D"
    );
    let (_, body) = server.get_json(&url).await;
    assert_eq!(trace_ids(&body), vec![id(104)]);
    // The same conditions with a duration no span has: nothing.
    let (_, body) = server.get_json(&url.replace("minDuration=20ms", "minDuration=26ms")).await;
    assert!(trace_ids(&body).is_empty());
    // Without a service, by the error status Jaeger shows as the tag error=true.
    let (_, body) = server.get_json("/api/traces?tag=error:true&limit=2").await;
    assert_eq!(trace_ids(&body), vec![id(129), id(128)]);
    // A time window in microseconds.
    let (s, e) = ((base + 10_000_000_000) / 1000, (base + 12_000_000_000) / 1000);
    let (_, body) = server.get_json(&format!("/api/traces?service=db&start={s}&end={e}")).await;
    assert_eq!(trace_ids(&body), vec![id(111), id(110)]);

    // Catalogs.
    let (_, body) = server.get_json("/api/services").await;
    assert_eq!(body["data"], json!(["db", "frontend"]));
    let (_, body) = server.get_json("/api/services/frontend/operations").await;
    assert_eq!(body["data"], json!(["GET /checkout", "SELECT cart"]));
    let (_, body) = server.get_json("/api/operations?service=frontend&spanKind=client").await;
    assert_eq!(body["data"], json!([{"name": "SELECT cart", "spanKind": "client"}]));
}

/// A tag held only by an event (a Jaeger log field), by the event's name (its `event`
/// field) or by the instrumentation scope finds its trace on every API, from the index.
#[tokio::test]
async fn tags_in_events_and_scopes_are_searchable_on_every_api() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let base = now_ns() - 60_000_000_000;
    let marked = post_at(&server, 300, base, |spans| {
        spans[0].events[0].attributes = vec![tracekeeper_model::KeyValue::string("key", "cart:vip")];
        spans[0].events[0].name = "cache stampede".into();
        let mut scope = (*spans[1].scope).clone();
        scope.attributes.push(tracekeeper_model::KeyValue::string("lib.flavor", "grpc"));
        spans[1].scope = std::sync::Arc::new(scope);
    })
    .await;
    post_at(&server, 301, base + 1_000_000_000, |_| {}).await;
    let want = vec![marked[0].trace_id.to_hex()];
    let jaeger = [
        "/api/traces?service=frontend&tags=%7B%22key%22%3A%22cart%3Avip%22%7D",
        "/api/traces?tags=%7B%22event%22%3A%22cache%20stampede%22%7D",
        "/api/traces?service=frontend&tag=lib.flavor:grpc",
    ];
    for url in jaeger {
        let (status, body) = server.get_json(url).await;
        assert_eq!((status, trace_ids(&body)), (200, want.clone()), "{url}: {body}");
    }
    let (_, body) = server.get_json("/api/v2/traces?serviceName=frontend&annotationQuery=key%3Dcart%3Avip").await;
    let zipkin: Vec<String> =
        body.as_array().unwrap().iter().map(|t| t[0]["traceId"].as_str().unwrap().into()).collect();
    assert_eq!(zipkin, want, "zipkin: {body}");
    let tempo = |q: &str| {
        let url = format!("/api/search?q={}", urlencode(q));
        let server = &server;
        async move {
            let (status, body) = server.get_json(&url).await;
            assert_eq!(status, 200, "{body}");
            let found = body["traces"].as_array().unwrap().iter();
            found.map(|t| t["traceID"].as_str().unwrap().to_string()).collect::<Vec<_>>()
        }
    };
    for q in ["{ event.key = \"cart:vip\" }", "{ instrumentation.lib.flavor = \"grpc\" }"] {
        assert_eq!(tempo(q).await, want, "{q}");
    }
    // An unscoped attribute that only resources hold, and that is indexed as the
    // service rather than as a tag.
    let both = tempo("{ .service.name = \"frontend\" }").await;
    assert_eq!(both.len(), 2, "{both:?}");
}

#[tokio::test]
async fn query_errors_use_the_jaeger_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let (status, body) = server.get_json("/api/traces/00000000000000000000000000000abc").await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"data": null, "total": 0, "limit": 0, "offset": 0, "errors": [{"code": 404, "msg": "trace not found"}]})
    );
    for (url, message) in [
        ("/api/traces/not-hex", "invalid trace id"),
        ("/api/traces?minDuration=fast", "parameter 'minDuration'"),
        ("/api/traces?limit=x", "parameter 'limit' must be a number"),
        ("/api/traces?tag=novalue", "must be key:value"),
        ("/api/traces?start=10&end=5", "'start' must not be after 'end'"),
        ("/api/operations", "parameter 'service' is required"),
    ] {
        let (status, body) = server.get_json(url).await;
        assert_eq!(status, 400, "{url}: {body}");
        let msg = body["errors"][0]["msg"].as_str().unwrap();
        assert!(msg.contains(message), "{url}: {msg:?} does not mention {message:?}");
    }
    // Multi-get reports missing ids in errors and returns the rest.
    let spans = post_at(&server, 900, now_ns() - 1_000_000_000, |_| {}).await;
    let missing = trace_id(901).to_hex();
    let (status, body) =
        server.get_json(&format!("/api/traces?traceID={}&traceID={missing}", spans[0].trace_id.to_hex())).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(body["errors"][0]["code"], 404);
    assert_eq!(body["errors"][0]["traceID"], missing);
}

#[tokio::test]
async fn tenants_never_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--multi-tenancy"]);
    let spans = rich_trace(50, now_ns() - 1_000_000_000);
    let body = otlp::to_request(&spans).encode_to_vec();
    let (status, _) = server.post_otlp(body.clone(), "application/x-protobuf", &[]).await;
    assert_eq!(status, 401, "a tenant is required when multi-tenancy is on");
    let (status, _) = server.post_otlp(body, "application/x-protobuf", &[("x-scope-orgid", "acme")]).await;
    assert_eq!(status, 200);
    let client = reqwest::Client::new();
    let get = |tenant: &'static str, path: String| {
        let req = client.get(server.query_url(&path)).header("x-scope-orgid", tenant);
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let path = format!("/api/traces/{}", spans[0].trace_id.to_hex());
    assert_eq!(get("acme", path.clone()).await.0, 200);
    assert_eq!(get("globex", path).await.0, 404);
    assert_eq!(get("globex", "/api/services".into()).await.1["data"], json!([]));
    assert_eq!(get("acme", "/api/services".into()).await.1["data"], json!(["db", "frontend"]));
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully_and_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    // The binary itself: SIGTERM, and the process's own counts in /metrics.
    let mut server = Server::start_process(dir.path(), &["--sync", "fsync"]);
    let spans = post_at(&server, 60, now_ns() - 1_000_000_000, |_| {}).await;
    let status = server.terminate();
    assert!(status.success(), "exit status {status}");
    server.restart();
    assert_eq!(fetch(&server, &spans).await, expected(&spans));
    post_at(&server, 61, now_ns() - 1_000_000_000, |_| {}).await;
    let metrics = reqwest::get(format!("http://{}/metrics", server.otlp_http)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("tracekeeper_spans_received_total{protocol=\"otlp_http\"} 3"), "{metrics}");
    // Every histogram has buckets, so it aggregates across replicas; none is a summary.
    assert!(metrics.contains("tracekeeper_storage_write_seconds_bucket{le=\"0.005\"}"), "{metrics}");
    assert!(metrics.contains("tracekeeper_http_request_duration_seconds_bucket"), "{metrics}");
    assert!(!metrics.contains("quantile="), "a summary is exported: {metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_policies_are_versioned_and_served() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &["--retention", "48h"]);
    let poll = async |server: &Server, versions: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let (status, body) = server.get_json("/api/retention").await;
            assert_eq!(status, 200, "{body}");
            if body["versions"].as_array().is_some_and(|v| v.len() == versions) {
                return body;
            }
            assert!(std::time::Instant::now() < deadline, "expected {versions} versions: {body}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    let body = poll(&server, 1).await;
    assert_eq!(body["policies"]["*"]["retention_secs"], 48 * 3600);
    assert_eq!(body["policies"]["*"]["version"], 1);

    // The same policy again makes no new version; a changed one does.
    server.terminate();
    server.restart();
    assert_eq!(poll(&server, 1).await["policies"]["*"]["version"], 1);
    server.terminate();
    let mut server = Server::start(dir.path(), &["--retention", "24h"]);
    let body = poll(&server, 2).await;
    assert_eq!(body["policies"]["*"]["retention_secs"], 24 * 3600);
    assert_eq!(body["policies"]["*"]["version"], 2);
    assert!(body["versions"][1]["made_ns"].as_u64() >= body["versions"][0]["made_ns"].as_u64());
    server.terminate();
}

/// The dependency graph reads at most the newest 10,000 traces of its window, and an
/// answer built from fewer traces than the window holds says so in a header; below
/// the cap there is no such header and every call counts.
#[tokio::test]
async fn dependencies_are_bounded_and_say_when_they_are_partial() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let now = now_ns() - 60_000_000_000;
    let first = rich_trace(1, now);
    let (status, _) = server.post_otlp(otlp::to_request(&first).encode_to_vec(), "application/x-protobuf", &[]).await;
    assert_eq!(status, 200);
    let deps = |path: String| {
        let url = server.query_url(&path);
        async move {
            let response = reqwest::get(url).await.unwrap();
            let partial = response.headers().get("x-tracekeeper-partial").map(|v| v.to_str().unwrap().to_string());
            let body: Value = response.json().await.unwrap();
            // Jaeger wraps the links in its envelope; Zipkin answers the bare list.
            let links = body.as_array().or_else(|| body["data"].as_array()).unwrap();
            let calls: u64 = links.iter().map(|d| d["callCount"].as_u64().unwrap()).sum();
            (calls, partial)
        }
    };
    let (per_trace, partial) = deps("/api/dependencies".to_string()).await;
    assert!(per_trace > 0, "a rich trace crosses services");
    assert_eq!(partial, None);

    for batch in 0..20u64 {
        let spans: Vec<Span> =
            (0..500u64).flat_map(|i| rich_trace(10 + batch * 500 + i, now + 1 + batch * 500 + i)).collect();
        let (status, _) =
            server.post_otlp(otlp::to_request(&spans).encode_to_vec(), "application/x-protobuf", &[]).await;
        assert_eq!(status, 200);
    }
    let zipkin = format!("/api/v2/dependencies?endTs={}&lookback=86400000", now_ns() / 1_000_000 + 60_000);
    for path in ["/api/dependencies".to_string(), zipkin] {
        let (calls, partial) = deps(path.clone()).await;
        assert_eq!(calls, 10_000 * per_trace, "{path}: exactly the newest 10,000 traces count");
        assert!(partial.as_deref().is_some_and(|p| p.contains("newest 10000 traces")), "{path}: {partial:?}");
    }
}

/// A tenant over its own ingest rate (from the config file's per-tenant table) gets 429
/// with the seconds to wait, over HTTP, and RESOURCE_EXHAUSTED over gRPC, while another
/// tenant is not slowed down at all.
#[tokio::test]
async fn a_noisy_tenant_is_slowed_down_and_the_others_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tracekeeper.toml");
    std::fs::write(&config, "[tenant-ingest-limits.noisy]\nrate-spans = 20\nburst-spans = 20\n").unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--multi-tenancy", "--config", config.to_str().unwrap()]);
    let post = |tenant: &'static str, seed: u64| {
        let body = otlp::to_request(&rich_trace(seed, now_ns() - 1_000_000_000)).encode_to_vec();
        let server = &server;
        async move { server.post_otlp(body, "application/x-protobuf", &[("X-Scope-OrgID", tenant)]).await }
    };
    let mut refused = None;
    for seed in 0..30 {
        let (status, body) = post("noisy", 100 + seed).await;
        if status == 429 {
            refused = Some(body);
            break;
        }
        assert_eq!(status, 200);
    }
    let body = refused.expect("the noisy tenant is slowed down within its burst");
    // The body is OTLP's error Status, whose message is readable in the bytes.
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("tenant \"noisy\" is over its ingest rate of 20 spans per second"), "{text}");
    for seed in 0..30 {
        assert_eq!(post("quiet", 200 + seed).await.0, 200, "another tenant is not slowed down");
    }
    // Over gRPC too; the bucket refilled while the quiet tenant sent, so spend it first.
    let mut client = TraceServiceClient::connect(format!("http://{}", server.otlp_grpc)).await.unwrap();
    let mut refused = None;
    for seed in 0..30 {
        let mut request = tonic::Request::new(otlp::to_request(&rich_trace(300 + seed, now_ns() - 1_000_000_000)));
        request.metadata_mut().insert("x-scope-orgid", "noisy".parse().unwrap());
        if let Err(status) = client.export(request).await {
            refused = Some(status);
            break;
        }
    }
    assert_eq!(refused.expect("refused within its burst").code(), tonic::Code::ResourceExhausted);
}

/// A search that reaches --max-traces-inspected answers with what it found and says so
/// in a header, on every search API; the same search within budget has no such header.
#[tokio::test]
async fn a_search_over_its_budget_says_so_on_every_api() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--max-traces-inspected", "3"]);
    let now = now_ns() - 60_000_000_000;
    let spans: Vec<Span> = (0..10u64).flat_map(|i| rich_trace(500 + i, now + i * 1_000_000)).collect();
    assert_eq!(server.post_otlp(otlp::to_request(&spans).encode_to_vec(), "application/x-protobuf", &[]).await.0, 200);
    let start_us = (now - 3_600_000_000_000) / 1000;
    let paths = [
        format!("/api/traces?service=frontend&limit=20&start={start_us}"),
        "/api/v3/trace-summaries?query.serviceName=frontend&query.startTimeMin=2000-01-01T00:00:00Z&query.startTimeMax=2100-01-01T00:00:00Z&query.searchDepth=20".to_string(),
        "/api/v2/traces?serviceName=frontend&limit=20&lookback=86400000".to_string(),
        "/api/search?tags=service.name%3Dfrontend&limit=20".to_string(),
    ];
    for path in &paths {
        let response = reqwest::get(server.query_url(path)).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let note = response.headers().get("x-tracekeeper-partial").map(|v| v.to_str().unwrap().to_string());
        assert!(note.as_deref().is_some_and(|n| n.contains("--max-traces-inspected")), "{path}: {note:?}");
        let body: Value = response.json().await.unwrap();
        let count = [&body["data"], &body["summaries"], &body["traces"], &body]
            .into_iter()
            .find_map(|v| v.as_array())
            .map(Vec::len)
            .unwrap();
        assert_eq!(count, 3, "{path}: the three newest traces read, all matching");
    }
    let within_dir = tempfile::tempdir().unwrap();
    let within = Server::start(within_dir.path(), &[]);
    assert_eq!(within.post_otlp(otlp::to_request(&spans).encode_to_vec(), "application/x-protobuf", &[]).await.0, 200);
    let response = reqwest::get(within.query_url(&paths[0])).await.unwrap();
    assert!(response.headers().get("x-tracekeeper-partial").is_none());
    assert_eq!(response.json::<Value>().await.unwrap()["data"].as_array().unwrap().len(), 10);
}
