//! TLS on every listener of all-in-one, through real clients: curl for OTLP/HTTP,
//! Zipkin, the query API and /metrics; the official OpenTelemetry Python SDK over
//! OTLP/HTTP and OTLP/gRPC with a CA file. Then mutual TLS, and a bad certificate
//! refused at start-up by name. Needs curl and the SDK (ops/test.sh installs it).

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::process::{Spawned, ANY_PORT};
use support::tls::{curl, sdk_emit, Pki};

struct Tls {
    _process: Spawned,
    _data: tempfile::TempDir,
    otlp_http: String,
    otlp_grpc: String,
    zipkin: String,
    query: String,
}

impl Tls {
    fn start(pki: &Pki, extra: &[&str]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut command = Spawned::command(&["all-in-one", "--data-dir", data.path().to_str().unwrap()]);
        command
            .args(["--otlp-grpc-addr", ANY_PORT, "--otlp-http-addr", ANY_PORT])
            .args(["--zipkin-addr", ANY_PORT, "--query-addr", ANY_PORT])
            .args(["--tls-cert", pki.path("server.pem").to_str().unwrap()])
            .args(["--tls-key", pki.path("server.key").to_str().unwrap()])
            .args(extra);
        let mtls = extra.contains(&"--tls-client-ca");
        let ready = |bound: &support::process::Listening| {
            let Some(query) = bound.get("query") else { return false };
            let mut args = Self::client_args(pki, mtls);
            args.extend(["-o".into(), "/dev/null".into(), "-w".into(), "%{http_code}".into()]);
            args.push(format!("https://{query}/ready"));
            let out = curl(&args.iter().map(String::as_str).collect::<Vec<_>>());
            String::from_utf8_lossy(&out.stdout) == "200"
        };
        let process = Spawned::start(command, "all-in-one over TLS", ready);
        let [otlp_http, otlp_grpc, zipkin, query] =
            ["otlp-http", "otlp-grpc", "zipkin", "query"].map(|name| process.listening(name));
        Self { _process: process, _data: data, otlp_http, otlp_grpc, zipkin, query }
    }

    fn client_args(pki: &Pki, with_client_cert: bool) -> Vec<String> {
        let mut args = vec!["--cacert".to_string(), pki.path("ca.pem").display().to_string()];
        if with_client_cert {
            args.extend(["--cert".to_string(), pki.path("client.pem").display().to_string()]);
            args.extend(["--key".to_string(), pki.path("client.key").display().to_string()]);
        }
        args
    }

    fn get_json(&self, pki: &Pki, path: &str) -> Value {
        let mut args = Self::client_args(pki, false);
        args.push(format!("https://{}{}", self.query, path));
        let out = curl(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    fn wait_for_trace(&self, pki: &Pki, trace_id: &str, spans: usize) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let body = self.get_json(pki, &format!("/api/traces/{trace_id}"));
            if body["data"][0]["spans"].as_array().is_some_and(|s| s.len() == spans) {
                return body;
            }
            assert!(Instant::now() < deadline, "trace {trace_id} did not arrive with {spans} spans: {body}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

const OTLP_JSON: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"curl-tls"}}]},
 "scopeSpans":[{"spans":[{"traceId":"5b8aa5a2d2c872e8321cf37308d69df2","spanId":"051581bf3cb55c13","name":"GET /tls",
 "kind":2,"startTimeUnixNano":"NOW","endTimeUnixNano":"END"}]}]}]}"#;

#[test]
fn every_listener_serves_tls_to_real_clients() {
    let pki = Pki::new();
    let server = Tls::start(&pki, &[]);
    let ca = pki.path("ca.pem");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let body = OTLP_JSON.replace("NOW", &now.to_string()).replace("END", &(now + 1_000_000).to_string());

    // OTLP/HTTP and Zipkin with curl, trusting only our CA.
    let post_json = |body: &str, url: String| {
        let out = curl(&[
            "--cacert",
            ca.to_str().unwrap(),
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
            &url,
        ]);
        format!("{} {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    };
    assert_eq!(post_json(&body, format!("https://{}/v1/traces", server.otlp_http)).trim(), "200");
    let zipkin = format!(
        r#"[{{"traceId":"0000000000000000000000000000abcd","id":"000000000000abcd","name":"zipkin-tls","timestamp":{},"duration":5,"localEndpoint":{{"serviceName":"zipkin-tls"}}}}]"#,
        now / 1000
    );
    assert_eq!(post_json(&zipkin, format!("https://{}/api/v2/spans", server.zipkin)).trim(), "202");

    // The official SDK over OTLP/HTTP and OTLP/gRPC, with the CA file.
    let over_http = sdk_emit("http", &server.otlp_http, &ca);
    let over_grpc = sdk_emit("grpc", &server.otlp_grpc, &ca);

    // Everything comes back through the query API, over TLS.
    server.wait_for_trace(&pki, "5b8aa5a2d2c872e8321cf37308d69df2", 1);
    server.wait_for_trace(&pki, "0000000000000000000000000000abcd", 1);
    server.wait_for_trace(&pki, &over_http, 2);
    server.wait_for_trace(&pki, &over_grpc, 2);

    // Without the CA, or in plaintext, nothing is served.
    let untrusted = curl(&[&format!("https://{}/api/services", server.query)]);
    assert!(!untrusted.status.success(), "a client that does not trust the CA must fail the handshake");
    let plain = curl(&["-o", "/dev/null", "-w", "%{http_code}", &format!("http://{}/api/services", server.query)]);
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "200", "plaintext is not served on a TLS port");

    // The serving layer counted the gRPC export under its route.
    let mut args = Tls::client_args(&pki, false);
    args.push(format!("https://{}/metrics", server.otlp_http));
    let metrics = String::from_utf8(curl(&args.iter().map(String::as_str).collect::<Vec<_>>()).stdout).unwrap();
    assert!(
        metrics.contains(r#"listener="otlp-grpc",route="/opentelemetry.proto.collector.trace.v1.TraceService/Export""#),
        "{metrics}"
    );
    assert!(metrics.contains("tracekeeper_http_request_duration_seconds_bucket"));
}

#[test]
fn mutual_tls_requires_a_client_certificate() {
    let pki = Pki::new();
    let ca = pki.path("ca.pem").display().to_string();
    let server = Tls::start(&pki, &["--tls-client-ca", &ca]);
    let url = format!("https://{}/api/services", server.query);
    let anonymous = curl(&["--cacert", &ca, "-o", "/dev/null", "-w", "%{http_code}", &url]);
    assert_ne!(String::from_utf8_lossy(&anonymous.stdout), "200", "no client certificate, no answer");
    let mut args = Tls::client_args(&pki, true);
    args.extend(["-o".into(), "/dev/null".into(), "-w".into(), "%{http_code}".into(), url]);
    let known = curl(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(String::from_utf8_lossy(&known.stdout), "200", "{}", String::from_utf8_lossy(&known.stderr));
}

#[test]
fn a_missing_certificate_stops_start_up_and_names_the_file() {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tracekeeper"))
        .args(["all-in-one", "--data-dir", data.path().to_str().unwrap()])
        .args(["--otlp-grpc-addr", ANY_PORT, "--otlp-http-addr", ANY_PORT])
        .args(["--zipkin-addr", ANY_PORT, "--query-addr", ANY_PORT, "--query-grpc-addr", ANY_PORT])
        .args(["--tls-cert", "/nonexistent/server.pem", "--tls-key", "/nonexistent/server.key"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/server.pem"), "{stderr}");
}
