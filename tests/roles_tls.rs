//! Every listener of every distributed role serves TLS and checks credentials, through
//! real clients (curl, and the OpenTelemetry Python SDK over OTLP/gRPC): the collector's
//! receivers, the indexer's and the retention worker's admin endpoints, and the query
//! node. A missing, wrong, expired or under-scoped credential is refused on each; the
//! right one works, and spans sent that way are served back over TLS.

mod support;

use std::time::{Duration, Instant};

use support::cluster::Cluster;
use support::process::{Spawned, ANY_PORT};
use support::tls::{curl, sdk_emit_with_headers, Pki};
use tracekeeper_serve::auth::sha256;

fn token(name: &str, secret: &str, scopes: &str, extra: &str) -> String {
    let hash = hex::encode(sha256(secret.as_bytes()));
    format!("[[token]]\nname = \"{name}\"\nsha256 = \"{hash}\"\ntenants = [\"*\"]\nscopes = [{scopes}]\n{extra}")
}

/// Starts `tracekeeper ROLE args` (listeners on [`ANY_PORT`]) with TLS and the tokens
/// file, and waits until its `listener` answers `/ready` with 200 over TLS; stopped on
/// drop.
fn start(pki: &Pki, role: &str, args: &[&str], listener: &str, tokens: &str) -> Spawned {
    let mut command = Spawned::command(&[role]);
    command
        .args(args)
        .args(["--tls-cert", pki.path("server.pem").to_str().unwrap()])
        .args(["--tls-key", pki.path("server.key").to_str().unwrap()])
        .args(["--auth-tokens-file", tokens]);
    let ready = |bound: &support::process::Listening| {
        bound.get(listener).is_some_and(|addr| status(pki, "GET", &format!("https://{addr}/ready"), None, None) == 200)
    };
    Spawned::start(command, role, ready)
}

/// The HTTP status of one request over TLS (trusting only the test CA).
fn status(pki: &Pki, method: &str, url: &str, bearer: Option<&str>, body: Option<(&str, &str)>) -> u16 {
    let ca = pki.path("ca.pem");
    let mut args = vec!["--cacert", ca.to_str().unwrap(), "-o", "/dev/null", "-w", "%{http_code}", "-X", method];
    let auth = bearer.map(|b| format!("Authorization: Bearer {b}"));
    if let Some(auth) = &auth {
        args.extend(["-H", auth]);
    }
    let content_type = body.map(|(ct, _)| format!("Content-Type: {ct}"));
    if let (Some(ct), Some((_, data))) = (&content_type, body) {
        args.extend(["-H", ct, "--data-binary", data]);
    }
    args.push(url);
    let out = curl(&args);
    String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listener_of_every_distributed_role_serves_tls_and_checks_credentials() {
    let stack = tracekeeper_stack::require().await;
    let cluster = Cluster::create(&stack.kafka, &stack.cql, "rolestls").await;
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    let file = [
        token("writer", "w-secret", "\"write\"", ""),
        token("reader", "r-secret", "\"read\"", ""),
        token("ops", "o-secret", "\"admin\"", ""),
        token("old-ops", "x-secret", "\"admin\", \"read\", \"write\"", "expires = 2020-01-01T00:00:00Z\n"),
    ]
    .concat();
    std::fs::write(&tokens, file).unwrap();
    let tokens = tokens.to_str().unwrap();

    let collector = start(
        &pki,
        "collector",
        &["--kafka-brokers", &stack.kafka, "--kafka-topic", &cluster.topic, "--otlp-http-addr", ANY_PORT]
            .into_iter()
            .chain(["--otlp-grpc-addr", ANY_PORT, "--zipkin-addr", ANY_PORT])
            .collect::<Vec<_>>(),
        "otlp-http",
        tokens,
    );
    let [http, grpc, zipkin] = ["otlp-http", "otlp-grpc", "zipkin"].map(|name| collector.listening(name));
    let cql = ["--cql-nodes", &stack.cql, "--keyspace", &cluster.keyspace];
    let indexer_args: Vec<&str> = ["--kafka-brokers", &stack.kafka, "--kafka-topic", &cluster.topic]
        .into_iter()
        .chain(["--group", &cluster.group, "--admin-addr", ANY_PORT])
        .chain(["--kafka-dlq-topic", &cluster.dead_letters])
        .chain(cql)
        .collect();
    let indexer = start(&pki, "indexer", &indexer_args, "admin", tokens);
    let query_args: Vec<&str> = ["--query-addr", ANY_PORT].into_iter().chain(cql).collect();
    let query_node = start(&pki, "query", &query_args, "query", tokens);
    let retention_args: Vec<&str> = ["--admin-addr", ANY_PORT].into_iter().chain(cql).collect();
    let retention = start(&pki, "retention", &retention_args, "admin", tokens);
    let (indexer_admin, query, retention_admin) =
        (indexer.listening("admin"), query_node.listening("query"), retention.listening("admin"));

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let otlp = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"roles-tls"}}}}]}},"scopeSpans":[{{"spans":[{{"traceId":"7b8aa5a2d2c872e8321cf37308d69df2","spanId":"151581bf3cb55c13","name":"GET /roles","kind":2,"startTimeUnixNano":"{now}","endTimeUnixNano":"{}"}}]}}]}}]}}"#,
        now + 1_000_000
    );
    let zipkin_body = format!(
        r#"[{{"traceId":"0000000000000000000000000000abce","id":"000000000000abce","name":"z","timestamp":{},"duration":5,"localEndpoint":{{"serviceName":"zipkin-roles"}}}}]"#,
        now / 1000
    );
    let json = Some(("application/json", otlp.as_str()));
    let zipkin_json = Some(("application/json", zipkin_body.as_str()));
    // (method, url, body, the token that may, its expected answer, a token that may not)
    let routes = [
        ("POST", format!("https://{http}/v1/traces"), json, "w-secret", 200, "r-secret"),
        ("POST", format!("https://{zipkin}/api/v2/spans"), zipkin_json, "w-secret", 202, "o-secret"),
        ("GET", format!("https://{http}/metrics"), None, "o-secret", 200, "w-secret"),
        ("GET", format!("https://{indexer_admin}/metrics"), None, "o-secret", 200, "r-secret"),
        ("GET", format!("https://{indexer_admin}/api/status"), None, "o-secret", 200, "r-secret"),
        ("GET", format!("https://{query}/api/services"), None, "r-secret", 200, "w-secret"),
        ("GET", format!("https://{query}/api/v3/services"), None, "r-secret", 200, "o-secret"),
        ("GET", format!("https://{query}/api/status"), None, "o-secret", 200, "r-secret"),
        ("GET", format!("https://{retention_admin}/api/retention"), None, "o-secret", 200, "r-secret"),
        ("GET", format!("https://{retention_admin}/metrics"), None, "o-secret", 200, "w-secret"),
    ];
    for (method, url, body, allowed, expected, other) in &routes {
        assert_eq!(status(&pki, method, url, None, *body), 401, "{method} {url} without credentials");
        assert_eq!(status(&pki, method, url, Some("guess"), *body), 401, "{method} {url} with a wrong token");
        assert_eq!(status(&pki, method, url, Some("x-secret"), *body), 401, "{method} {url} with an expired token");
        assert_eq!(status(&pki, method, url, Some(other), *body), 403, "{method} {url} with the wrong scope");
        assert_eq!(status(&pki, method, url, Some(allowed), *body), *expected, "{method} {url} with the right token");
    }

    // The SDK over OTLP/gRPC to the collector, over TLS with the writer's token.
    let ca = pki.path("ca.pem");
    let over_grpc = sdk_emit_with_headers("grpc", &grpc, &ca, "authorization=Bearer%20w-secret");
    // Everything sent comes back through the query node, over TLS, to the reader.
    for (trace, spans) in
        [("7b8aa5a2d2c872e8321cf37308d69df2", 1), ("0000000000000000000000000000abce", 1), (over_grpc.as_str(), 2)]
    {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = curl(&[
                "--cacert",
                ca.to_str().unwrap(),
                "-H",
                "Authorization: Bearer r-secret",
                &format!("https://{query}/api/traces/{trace}"),
            ]);
            let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            if body["data"][0]["spans"].as_array().is_some_and(|s| s.len() == spans) {
                break;
            }
            assert!(Instant::now() < deadline, "trace {trace} was not served: {body}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
