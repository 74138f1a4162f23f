//! Authenticated tenants through the real binary: a missing, wrong or under-scoped
//! credential is refused on every listener (OTLP/HTTP, OTLP/gRPC, Zipkin, the query
//! APIs, the admin endpoints), the right one works, one tenant's reader cannot reach
//! another tenant's traces on any query path, and a changed tokens file takes effect
//! without a restart.

mod support;

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use support::{now_ns, rich_trace, Server};
use tracekeeper_model::otlp;
use tracekeeper_serve::auth::sha256;

fn entry(kind: &str, name: &str, secret: &str, tenants: &str, scopes: &str) -> String {
    match kind {
        "token" => format!(
            "[[token]]\nname = \"{name}\"\nsha256 = \"{}\"\ntenants = [{tenants}]\nscopes = [{scopes}]\n",
            hex::encode(sha256(secret.as_bytes()))
        ),
        _ => format!(
            "[[basic]]\nname = \"{name}\"\nusername = \"{name}\"\npassword_sha256 = \"{}\"\ntenants = [{tenants}]\nscopes = [{scopes}]\n",
            hex::encode(sha256(secret.as_bytes()))
        ),
    }
}

fn tokens_file() -> String {
    [
        entry("token", "acme-writer", "w-acme", "\"acme\"", "\"write\""),
        entry("token", "acme-reader", "r-acme", "\"acme\"", "\"read\""),
        entry("token", "globex-reader", "r-globex", "\"globex\"", "\"read\""),
        entry("token", "ops", "ops-secret", "\"*\"", "\"admin\""),
        entry("basic", "reporter", "zipkin-pw", "\"acme\"", "\"write\""),
        entry("token", "expired-reader", "r-expired", "\"acme\"", "\"read\"") + "expires = 2020-01-01T00:00:00Z\n",
    ]
    .concat()
}

async fn get(server: &Server, path: &str, headers: &[(&str, &str)]) -> u16 {
    let mut request = reqwest::Client::new().get(server.query_url(path));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listener_checks_credentials_scopes_and_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(&tokens, tokens_file()).unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--multi-tenancy", "--auth-tokens-file", tokens.to_str().unwrap()]);
    let spans = rich_trace(42, now_ns() - 1_000_000_000);
    let trace = spans[0].trace_id.to_hex();
    let body = otlp::to_request(&spans).encode_to_vec();
    let proto = "application/x-protobuf";

    // OTLP/HTTP: no credentials, wrong ones, the wrong scope, the wrong tenant.
    assert_eq!(server.post_otlp(body.clone(), proto, &[]).await.0, 401);
    assert_eq!(server.post_otlp(body.clone(), proto, &[("Authorization", "Bearer guess")]).await.0, 401);
    assert_eq!(server.post_otlp(body.clone(), proto, &[("Authorization", "Bearer r-acme")]).await.0, 403);
    let other_tenant = [("Authorization", "Bearer w-acme"), ("X-Scope-OrgID", "globex")];
    assert_eq!(server.post_otlp(body.clone(), proto, &other_tenant).await.0, 403);
    // The right token: its one tenant is filled in.
    assert_eq!(server.post_otlp(body.clone(), proto, &[("Authorization", "Bearer w-acme")]).await.0, 200);
    // Refusals come in OTLP's own encoding: a google.rpc.Status like the request's.
    let (_, refusal) = server.post_otlp(body.clone(), proto, &[]).await;
    let status = tracekeeper_serve::shapes::RpcStatus::decode(refusal.as_slice()).expect("a protobuf Status");
    assert_eq!(status.code, 16, "UNAUTHENTICATED: {status:?}");
    let json = tracekeeper_model::otlp_json::encode_request(&spans);
    let (code, refusal) = server.post_otlp(json, "application/json", &[("Authorization", "Bearer r-acme")]).await;
    let refusal: serde_json::Value = serde_json::from_slice(&refusal).expect("a JSON Status");
    assert_eq!((code, refusal["code"].as_i64()), (403, Some(7)), "PERMISSION_DENIED: {refusal}");
    assert!(refusal["message"].as_str().unwrap().contains("write scope"), "{refusal}");

    // OTLP/gRPC: UNAUTHENTICATED, PERMISSION_DENIED, then accepted.
    let mut client = TraceServiceClient::connect(format!("http://{}", server.otlp_grpc)).await.unwrap();
    let request = |auth: Option<&str>| {
        let mut r = tonic::Request::new(otlp::to_request(&rich_trace(43, now_ns() - 1_000_000_000)));
        if let Some(auth) = auth {
            r.metadata_mut().insert("authorization", auth.parse().unwrap());
        }
        r
    };
    assert_eq!(client.export(request(None)).await.unwrap_err().code(), tonic::Code::Unauthenticated);
    assert_eq!(client.export(request(Some("Bearer r-acme"))).await.unwrap_err().code(), tonic::Code::PermissionDenied);
    client.export(request(Some("Bearer w-acme"))).await.unwrap();

    // Zipkin with Basic credentials, as reporters send them.
    let zipkin = format!(
        r#"[{{"traceId":"0000000000000000000000000000beef","id":"000000000000beef","name":"z","timestamp":{},"duration":5,"localEndpoint":{{"serviceName":"zipkin-auth"}}}}]"#,
        now_ns() / 1000 - 1_000_000
    );
    let post_zipkin = |auth: Option<(&'static str, &'static str)>| {
        let mut r = reqwest::Client::new()
            .post(format!("http://{}/api/v2/spans", server.zipkin))
            .header("content-type", "application/json")
            .body(zipkin.clone());
        if let Some((user, pw)) = auth {
            r = r.basic_auth(user, Some(pw));
        }
        async move { r.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(post_zipkin(None).await, 401);
    assert_eq!(post_zipkin(Some(("reporter", "wrong"))).await, 401);
    assert_eq!(post_zipkin(Some(("reporter", "zipkin-pw"))).await, 202);

    // Query: the reader of acme sees acme's trace; globex's reader sees nothing of it
    // on any path, and cannot claim acme in the header.
    let acme = [("Authorization", "Bearer r-acme")];
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&server, &format!("/api/traces/{trace}"), &acme).await != 200 {
        assert!(Instant::now() < deadline, "acme's trace never became readable");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Each query API refuses in its own error shape; an expired token is refused.
    let refusal = |path: &'static str, auth: &'static str| {
        let request = reqwest::Client::new().get(server.query_url(path)).header("Authorization", auth);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let (code, jaeger) = refusal("/api/services", "Bearer r-expired").await;
    let jaeger: serde_json::Value = serde_json::from_str(&jaeger).unwrap();
    assert_eq!((code, &jaeger["errors"][0]["code"]), (401, &serde_json::json!(401)), "{jaeger}");
    assert_eq!(jaeger["errors"][0]["msg"], "these credentials have expired");
    let (code, v3) = refusal("/api/v3/services", "Bearer guess").await;
    let v3: serde_json::Value = serde_json::from_str(&v3).unwrap();
    assert_eq!((code, &v3["error"]["httpCode"]), (401, &serde_json::json!(401)), "{v3}");
    let (code, tempo) = refusal("/api/search", "Bearer w-acme").await;
    assert_eq!(code, 403);
    assert!(tempo.starts_with("these credentials (acme-writer) lack the read scope"), "{tempo}");

    let globex = [("Authorization", "Bearer r-globex")];
    let claiming = [("Authorization", "Bearer r-globex"), ("X-Scope-OrgID", "acme")];
    let start_us = (now_ns() - 3_600_000_000_000) / 1000;
    let (begin, end) = ("2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z");
    let paths = [
        format!("/api/traces/{trace}"),
        format!("/api/traces?service=frontend&start={start_us}"),
        "/api/services".to_string(),
        format!("/api/v3/traces/{trace}"),
        format!(
            "/api/v3/trace-summaries?query.serviceName=frontend&query.startTimeMin={begin}&query.startTimeMax={end}"
        ),
        format!("/api/v2/trace/{trace}"),
        "/api/v2/services".to_string(),
        format!("/api/v2/traces/{trace}"),
        "/api/search?tags=service.name%3Dfrontend".to_string(),
        "/api/dependencies".to_string(),
    ];
    for path in &paths {
        assert_eq!(get(&server, path, &[]).await, 401, "{path} without credentials");
        assert_eq!(get(&server, path, &claiming).await, 403, "{path} claiming another tenant");
        assert_eq!(
            get(&server, path, &[("Authorization", "Bearer w-acme")]).await,
            403,
            "{path} with a write-only token"
        );
        let status = get(&server, path, &acme).await;
        assert!(status == 200 || status == 404, "{path} as acme's reader: {status}");
    }
    let reply = reqwest::Client::new()
        .get(server.query_url("/api/services"))
        .header("Authorization", "Bearer r-globex")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!reply.contains("frontend"), "globex sees none of acme's services: {reply}");
    assert_eq!(get(&server, &format!("/api/traces/{trace}"), &globex).await, 404);

    // Admin endpoints need admin; probes and the UI's page need nothing.
    for path in ["/api/retention", "/metrics"] {
        assert_eq!(get(&server, path, &acme).await, 403, "{path}");
        assert_eq!(get(&server, path, &[("Authorization", "Bearer ops-secret")]).await, 200, "{path}");
    }
    assert_eq!(get(&server, "/ready", &[]).await, 200);
    assert_eq!(get(&server, "/search", &[]).await, 200);

    // A token removed from the file stops working without a restart.
    let without_reader: String = tokens_file()
        .split("[[")
        .filter(|e| !e.is_empty() && !e.contains("acme-reader"))
        .map(|e| format!("[[{e}"))
        .collect();
    std::fs::write(&tokens, without_reader).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while get(&server, "/api/services", &acme).await != 401 {
        assert!(Instant::now() < deadline, "the removed token still works");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        get(&server, "/api/services", &[("Authorization", "Bearer ops-secret")]).await,
        403,
        "ops has no read scope"
    );
}

/// Jaeger's gRPC query API sits behind the same credentials: `read` is needed, and a
/// reader sees its granted tenant's traces only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jaeger_grpc_needs_a_reader_of_the_tenant() {
    use tracekeeper_jaeger_proto::api_v2::query_service_client::QueryServiceClient;
    use tracekeeper_jaeger_proto::api_v2::GetServicesRequest;
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(&tokens, tokens_file()).unwrap();
    let server =
        Server::start(&dir.path().join("data"), &["--multi-tenancy", "--auth-tokens-file", tokens.to_str().unwrap()]);
    let body = otlp::to_request(&rich_trace(43, now_ns() - 1_000_000_000)).encode_to_vec();
    let written = server.post_otlp(body, "application/x-protobuf", &[("Authorization", "Bearer w-acme")]).await;
    assert_eq!(written.0, 200);
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", server.query_grpc)).unwrap();
    let mut client = QueryServiceClient::new(channel.connect().await.unwrap());
    let services = |bearer: Option<&str>| {
        let mut request = tonic::Request::new(GetServicesRequest {});
        if let Some(token) = bearer {
            request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        request
    };
    let code = |r: Result<tonic::Response<_>, tonic::Status>| r.map(|_: tonic::Response<_>| ()).unwrap_err().code();
    assert_eq!(code(client.get_services(services(None)).await), tonic::Code::Unauthenticated);
    assert_eq!(code(client.get_services(services(Some("guess"))).await), tonic::Code::Unauthenticated);
    assert_eq!(code(client.get_services(services(Some("w-acme"))).await), tonic::Code::PermissionDenied);
    let acme = client.get_services(services(Some("r-acme"))).await.unwrap().into_inner().services;
    assert_eq!(acme, ["db", "frontend"]);
    let globex = client.get_services(services(Some("r-globex"))).await.unwrap().into_inner().services;
    assert!(globex.is_empty(), "another tenant's reader sees none of acme's services: {globex:?}");
}
