//! Every span encoding on Kafka, written by a real OpenTelemetry Collector (the contrib
//! Kafka exporter, built by `ops/tools.sh`): the OpenTelemetry Python SDK exports one
//! trace to the Collector, which writes it to six topics, one per encoding, each with
//! its own tenant header. One indexer group consumes all six with `--kafka-encoding`,
//! and every copy is read back through the query API and compared field by field.
//! Zipkin reporters' own Kafka format (a JSON or proto3 list of spans in one message)
//! is published too.

mod support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prost::Message as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::Value;
use support::cluster::{Cluster, Process};
use support::process::ANY_PORT;
use support::tools::tool;
use tracekeeper_model::zipkin::ZipkinSpan;
use tracekeeper_model::zipkin_proto::{ListOfSpans, ProtoAnnotation, ProtoEndpoint, ProtoSpan};

const ENCODINGS: [&str; 6] = ["otlp_proto", "otlp_json", "jaeger_proto", "jaeger_json", "zipkin_proto", "zipkin_json"];

/// The Collector, stopped when dropped.
struct Collector(Child);

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn collector_config(brokers: &str, otlp_http: &str, topic: &dyn Fn(&str) -> String) -> String {
    let mut config =
        format!("receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: {otlp_http}\nexporters:\n");
    for encoding in ENCODINGS {
        config.push_str(&format!(
            "  kafka/{encoding}:\n    brokers: [{brokers}]\n    traces:\n      topic: {}\n      encoding: {encoding}\n    \
             record_headers:\n      - {{name: X-Scope-OrgID, value: {encoding}}}\n",
            topic(encoding)
        ));
    }
    let exporters: Vec<String> = ENCODINGS.iter().map(|e| format!("kafka/{e}")).collect();
    config.push_str(&format!(
        "service:\n  telemetry:\n    metrics:\n      level: none\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [{}]\n",
        exporters.join(", ")
    ));
    config
}

fn start_collector(config: &str, dir: &std::path::Path, otlp_http: &str) -> Collector {
    let path = dir.join("otelcol.yaml");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(tool("otelcol-tracekeeper"))
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("otelcol.log")).unwrap())
        .spawn()
        .expect("start the Collector");
    let mut collector = Collector(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(otlp_http).is_err() {
        if let Some(status) = collector.0.try_wait().unwrap() {
            let log = std::fs::read_to_string(dir.join("otelcol.log")).unwrap_or_default();
            panic!("the Collector exited ({status}):\n{log}");
        }
        assert!(Instant::now() < deadline, "the Collector did not listen within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    collector
}

async fn trace_of(query: &Process, tenant: &str, trace_id: &str) -> Option<Value> {
    let response = reqwest::Client::new()
        .get(query.url(&format!("/api/traces/{trace_id}")))
        .header("X-Scope-OrgID", tenant)
        .send()
        .await
        .unwrap();
    if response.status() != 200 {
        return None;
    }
    let body: Value = response.json().await.unwrap();
    Some(body["data"][0].clone())
}

/// Waits until `tenant` serves `spans` spans of the trace.
async fn served(query: &Process, tenant: &str, trace_id: &str, spans: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(trace) = trace_of(query, tenant, trace_id).await {
            if trace["spans"].as_array().map(Vec::len) == Some(spans) {
                return trace;
            }
        }
        assert!(Instant::now() < deadline, "{tenant}: trace {trace_id} not served with {spans} spans within 90 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A Jaeger trace with spans in a stable order and process ids resolved, so two answers
/// compare field by field.
fn normalized(trace: &Value) -> Value {
    let processes = trace["processes"].as_object().unwrap();
    let mut spans: Vec<Value> = trace["spans"].as_array().unwrap().clone();
    for span in &mut spans {
        let id = span["processID"].as_str().unwrap().to_string();
        span["process"] = processes[&id].clone();
        span.as_object_mut().unwrap().remove("processID");
    }
    spans.sort_by_key(|s| s["spanID"].as_str().unwrap().to_string());
    Value::Array(spans)
}

fn by_name<'a>(spans: &'a Value, name: &str) -> &'a Value {
    spans
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["operationName"] == name)
        .unwrap_or_else(|| panic!("no {name} in {spans}"))
}

fn tag<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["tags"].as_array().unwrap().iter().find(|t| t["key"] == key).map(|t| &t["value"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_collector_writes_every_encoding_and_the_indexer_reads_each() {
    let stack = tracekeeper_stack::require().await;
    let cluster = Cluster::create(&stack.kafka, &stack.cql, "otelcol").await;
    let topic = |encoding: &str| format!("{}_{encoding}", cluster.topic);
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &stack.kafka).create().unwrap();
    let topics: Vec<String> = ENCODINGS.iter().map(|e| topic(e)).collect();
    let new: Vec<NewTopic> = topics.iter().map(|t| NewTopic::new(t, 2, TopicReplication::Fixed(1))).collect();
    let created = admin.create_topics(&new, &AdminOptions::new()).await.unwrap();
    assert!(created.iter().all(Result::is_ok), "{created:?}");

    // One indexer group, six topics, an encoding each.
    let encodings: Vec<String> = ENCODINGS.iter().map(|e| format!("{}={e}", topic(e))).collect();
    let mut indexer = Command::new(env!("CARGO_BIN_EXE_tracekeeper"));
    indexer.arg("indexer").args(["--kafka-brokers", &stack.kafka, "--kafka-topic", &topics.join(",")]);
    indexer.args(["--kafka-encoding", &encodings.join(","), "--group", &cluster.group]);
    indexer.args(["--cql-nodes", &stack.cql, "--keyspace", &cluster.keyspace, "--admin-addr", ANY_PORT]);
    indexer.args(["--kafka-dlq-topic", &cluster.dead_letters]);
    let indexer = Process::spawn(indexer, "admin").await;
    let query = cluster.query_with(&["--multi-tenancy"]).await;

    let dir = tempfile::tempdir().unwrap();
    // The OpenTelemetry Collector's own receiver: a port found free here.
    let otlp_http =
        format!("127.0.0.1:{}", std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port());
    let _collector = start_collector(&collector_config(&stack.kafka, &otlp_http, &topic), dir.path(), &otlp_http);
    let python = std::env::var("TRACEKEEPER_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let emitted = Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/otel_sdk_emit.py"))
        .args(["http", &otlp_http])
        .output()
        .unwrap();
    assert!(emitted.status.success(), "the SDK failed: {}", String::from_utf8_lossy(&emitted.stderr));
    let trace_id = String::from_utf8(emitted.stdout).unwrap().trim().to_string();

    let mut answers = BTreeMap::new();
    for encoding in ENCODINGS {
        answers.insert(encoding, normalized(&served(&query, encoding, &trace_id, 2).await));
    }

    // OTLP in protobuf: everything the SDK set.
    let otlp = &answers["otlp_proto"];
    let checkout = by_name(otlp, "checkout");
    let charge = by_name(otlp, "charge");
    assert_eq!(charge["references"][0]["spanID"], checkout["spanID"], "charge is a child of checkout");
    assert_eq!(checkout["process"]["serviceName"], "py-http");
    assert_eq!(tag(checkout, "span.kind"), Some(&Value::from("server")));
    assert_eq!(tag(checkout, "ratio"), Some(&Value::from(0.5)));
    assert_eq!(tag(checkout, "otel.scope.name"), Some(&Value::from("tracekeeper-tests")));
    assert_eq!(checkout["logs"][0]["fields"][0]["value"], "validated");
    assert_eq!(tag(charge, "otel.status_description"), Some(&Value::from("card declined")));
    assert_eq!(tag(charge, "error"), Some(&Value::from(true)));

    // OTLP JSON carries the same, field for field.
    assert_eq!(answers["otlp_json"], *otlp, "otlp_json differs from otlp_proto");

    // Jaeger's two encodings agree with each other, and with OTLP except where the
    // Collector's translation to Jaeger changes the span itself: it renames
    // `http.status_code` to `http.response.status_code`, and Jaeger has no place for
    // span flags.
    assert_eq!(answers["jaeger_json"], answers["jaeger_proto"], "jaeger_json differs from jaeger_proto");
    let mut expected = otlp.clone();
    for span in expected.as_array_mut().unwrap() {
        span["flags"] = answers["jaeger_proto"][0]["flags"].clone();
        for tag in span["tags"].as_array_mut().unwrap() {
            if tag["key"] == "http.status_code" {
                tag["key"] = "http.response.status_code".into();
            }
        }
    }
    assert_eq!(answers["jaeger_proto"], expected, "jaeger_proto differs from otlp_proto beyond the translation");

    // Zipkin's two encodings agree with each other, but for the Collector's encoders
    // rounding microseconds differently (JSON rounds, proto3 truncates).
    // Zipkin keeps names, times, the tree, the kind, the error and every attribute (as
    // text), the resource's among them; a span reads as if a Zipkin tracer had sent it.
    let (mut from_json, from_proto) = (answers["zipkin_json"].clone(), answers["zipkin_proto"].clone());
    within_a_microsecond(&mut from_json, &from_proto);
    assert_eq!(from_json, from_proto, "zipkin_json differs from zipkin_proto");
    let zipkin = &answers["zipkin_proto"];
    for name in ["checkout", "charge"] {
        let (z, o) = (by_name(zipkin, name), by_name(otlp, name));
        assert_eq!(z["spanID"], o["spanID"]);
        assert_eq!(z["traceID"], o["traceID"]);
        assert_eq!(z["references"], o["references"]);
        assert_eq!(z["process"]["serviceName"], "py-http");
        // Zipkin keeps microseconds, rounded one way or the other.
        let (zt, ot) = (z["startTime"].as_u64().unwrap(), o["startTime"].as_u64().unwrap());
        assert!(zt.abs_diff(ot) <= 1, "{name}: {zt} and {ot}");
        assert_eq!(tag(z, "span.kind"), tag(o, "span.kind"));
        assert_eq!(tag(z, "deployment.environment"), Some(&Value::from("test")));
    }
    assert_eq!(tag(by_name(zipkin, "checkout"), "ratio"), Some(&Value::from("0.5")));
    // The status the OpenTelemetry way, as on OTLP.
    let charge = by_name(zipkin, "charge");
    for key in ["error", "otel.status_code", "otel.status_description"] {
        assert_eq!(tag(charge, key), tag(by_name(otlp, "charge"), key), "{key}");
    }
    let event = &by_name(zipkin, "checkout")["logs"][0];
    assert_eq!(
        event["fields"][0]["value"], "validated|{\"items\":3}|0",
        "Zipkin's annotation, as the Collector wrote it"
    );

    // Zipkin reporters' own format: a list of spans per message, JSON or proto3.
    let fixture = zipkin_fixture();
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &stack.kafka).create().unwrap();
    let json = serde_json::to_vec(&fixture).unwrap();
    let proto = ListOfSpans { spans: fixture.iter().map(to_proto).collect() }.encode_to_vec();
    for (topic, tenant, payload) in
        [(topic("zipkin_json"), "reporter-json", json), (topic("zipkin_proto"), "reporter-proto", proto)]
    {
        let headers = OwnedHeaders::new().insert(Header { key: "X-Scope-OrgID", value: Some(tenant) });
        let record = FutureRecord::<(), _>::to(&topic).payload(&payload).headers(headers);
        producer.send(record, Duration::from_secs(10)).await.unwrap();
    }
    let trace_id = &fixture[0].trace_id;
    let in_trace = fixture.iter().filter(|s| &s.trace_id == trace_id).count();
    let from_json = normalized(&served(&query, "reporter-json", trace_id, in_trace).await);
    let from_proto = normalized(&served(&query, "reporter-proto", trace_id, in_trace).await);
    assert_eq!(from_json, from_proto, "the same list in JSON and proto3");
    let select = by_name(&from_json, "select orders");
    assert_eq!(select["process"]["serviceName"], "frontend");
    assert_eq!(tag(select, "peer.service"), Some(&Value::from("postgres")));

    // Nothing was poison.
    assert_eq!(indexer.metric("tracekeeper_kafka_poison_messages_total").await, 0.0);
    let status = indexer.json("/api/status").await;
    let members = status["members"].as_array().unwrap();
    assert_eq!(members.len(), ENCODINGS.len(), "one group member per topic: {status}");
}

/// Copies `to`'s times (`startTime`, `duration`, `timestamp`) into `from` where they
/// differ by at most one microsecond, and panics where they differ by more.
fn within_a_microsecond(from: &mut Value, to: &Value) {
    match (from, to) {
        (Value::Object(f), Value::Object(t)) => {
            for (key, value) in f.iter_mut() {
                let Some(other) = t.get(key) else { continue };
                if matches!(key.as_str(), "startTime" | "duration" | "timestamp") {
                    let (a, b) = (value.as_u64().unwrap(), other.as_u64().unwrap());
                    assert!(a.abs_diff(b) <= 1, "{key}: {a} and {b}");
                    *value = other.clone();
                } else {
                    within_a_microsecond(value, other);
                }
            }
        }
        (Value::Array(f), Value::Array(t)) => f.iter_mut().zip(t).for_each(|(f, t)| within_a_microsecond(f, t)),
        _ => {}
    }
}

/// The spans py_zipkin reported (tests/fixtures), moved to now.
fn zipkin_fixture() -> Vec<ZipkinSpan> {
    let text = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/zipkin-py.json")).unwrap();
    let mut spans: Vec<ZipkinSpan> = serde_json::from_slice(&text).unwrap();
    let first = spans.iter().filter_map(|s| s.timestamp).min().unwrap();
    let shift = support::now_ns() / 1000 - 60_000_000 - first;
    for span in &mut spans {
        span.timestamp = span.timestamp.map(|t| t + shift);
        for annotation in &mut span.annotations {
            annotation.timestamp += shift;
        }
    }
    spans
}

/// A v2 JSON span as a Zipkin reporter encodes it in proto3.
fn to_proto(span: &ZipkinSpan) -> ProtoSpan {
    let endpoint = |e: &Option<tracekeeper_model::zipkin::Endpoint>| {
        e.as_ref().map(|e| ProtoEndpoint {
            service_name: e.service_name.clone().unwrap_or_default(),
            ipv4: e
                .ipv4
                .as_deref()
                .map(|ip| ip.parse::<std::net::Ipv4Addr>().unwrap().octets().to_vec())
                .unwrap_or_default(),
            ipv6: e
                .ipv6
                .as_deref()
                .map(|ip| ip.parse::<std::net::Ipv6Addr>().unwrap().octets().to_vec())
                .unwrap_or_default(),
            port: e.port.map(i32::from).unwrap_or_default(),
        })
    };
    let kind = match span.kind.as_deref() {
        Some("CLIENT") => 1,
        Some("SERVER") => 2,
        Some("PRODUCER") => 3,
        Some("CONSUMER") => 4,
        _ => 0,
    };
    ProtoSpan {
        trace_id: hex::decode(&span.trace_id).unwrap(),
        parent_id: span.parent_id.as_deref().map(|p| hex::decode(p).unwrap()).unwrap_or_default(),
        id: hex::decode(&span.id).unwrap(),
        kind,
        name: span.name.clone().unwrap_or_default(),
        timestamp: span.timestamp.unwrap_or_default(),
        duration: span.duration.unwrap_or_default(),
        local_endpoint: endpoint(&span.local_endpoint),
        remote_endpoint: endpoint(&span.remote_endpoint),
        annotations: span
            .annotations
            .iter()
            .map(|a| ProtoAnnotation { timestamp: a.timestamp, value: a.value.clone() })
            .collect(),
        tags: span.tags.clone(),
        debug: span.debug.unwrap_or_default(),
        shared: span.shared.unwrap_or_default(),
    }
}
