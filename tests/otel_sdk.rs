//! The official OpenTelemetry Python SDK exports to tracekeeper (OTLP/HTTP protobuf and
//! OTLP/gRPC) and the trace comes back through the Jaeger API. Needs python3 with the
//! packages in tests/requirements.txt; without them the test fails and says so.

mod support;

use std::process::Command;

use serde_json::{json, Value};
use support::Server;

fn emit(protocol: &str, endpoint: &str) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/otel_sdk_emit.py");
    let python = std::env::var("TRACEKEEPER_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let output = Command::new(&python).arg(script).args([protocol, endpoint]).output().unwrap_or_else(|e| {
        panic!("{python} is required for this test ({e}); run the suite with ops/test.sh, which installs it")
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "the OpenTelemetry Python SDK is missing: run the suite with ops/test.sh, or `pip install -r tests/requirements.txt`\n{stderr}"
    );
    assert!(output.status.success(), "the SDK script failed:\n{stderr}");
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

fn tag(span: &Value, key: &str) -> Value {
    span["tags"].as_array().unwrap().iter().find(|t| t["key"] == key).cloned().unwrap_or(Value::Null)
}

#[tokio::test]
async fn the_python_sdk_exports_over_http_and_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    for (protocol, endpoint) in [("http", &server.otlp_http), ("grpc", &server.otlp_grpc)] {
        let trace_id = emit(protocol, endpoint);
        let (status, body) = server.get_json(&format!("/api/traces/{trace_id}")).await;
        assert_eq!(status, 200, "{protocol}: {body}");
        let trace = &body["data"][0];
        let spans = trace["spans"].as_array().unwrap();
        assert_eq!(spans.len(), 2, "{protocol}");
        let root = spans.iter().find(|s| s["operationName"] == "checkout").unwrap();
        let child = spans.iter().find(|s| s["operationName"] == "charge").unwrap();
        assert_eq!(child["references"][0]["spanID"], root["spanID"]);
        assert_eq!(tag(root, "http.status_code")["value"], json!(200));
        assert_eq!(tag(root, "ratio")["value"], json!(0.5));
        assert_eq!(tag(root, "tags")["value"], json!("[\"a\",\"b\"]"));
        assert_eq!(tag(root, "span.kind")["value"], json!("server"));
        assert_eq!(tag(root, "otel.scope.name")["value"], json!("tracekeeper-tests"));
        assert_eq!(root["logs"][0]["fields"][0]["value"], json!("validated"));
        assert_eq!(tag(child, "error")["value"], json!(true));
        assert_eq!(tag(child, "otel.status_description")["value"], json!("card declined"));
        let process = &trace["processes"][root["processID"].as_str().unwrap()];
        assert_eq!(process["serviceName"], json!(format!("py-{protocol}")));
    }
    let (_, services) = server.get_json("/api/services").await;
    assert_eq!(services["data"], json!(["py-grpc", "py-http"]));
}
