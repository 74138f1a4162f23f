//! Starts the real `tracekeeper` binary on free loopback ports and talks to it.
#![allow(dead_code)]

pub mod cli_help;
pub mod cluster;
pub mod tls;
pub mod tools;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracekeeper_model::{
    AnyValue, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, Status, StatusCode, TraceId,
};

pub struct Server {
    child: Option<Child>,
    pub data_dir: PathBuf,
    pub otlp_grpc: String,
    pub otlp_http: String,
    pub zipkin: String,
    pub query: String,
    args: Vec<String>,
    /// `Some((brokers, topic))` runs `tracekeeper collector` instead of all-in-one.
    kafka: Option<(String, String)>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Server {
    /// Starts all-in-one on `data_dir` and waits until `/ready` answers 200.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Self {
        let ports = [free_port(), free_port(), free_port(), free_port()];
        let mut server = Self {
            child: None,
            data_dir: data_dir.to_path_buf(),
            otlp_grpc: format!("127.0.0.1:{}", ports[0]),
            otlp_http: format!("127.0.0.1:{}", ports[1]),
            zipkin: format!("127.0.0.1:{}", ports[2]),
            query: format!("127.0.0.1:{}", ports[3]),
            args: extra.iter().map(|s| s.to_string()).collect(),
            kafka: None,
        };
        server.spawn_on_free_ports();
        server
    }

    /// Starts `tracekeeper collector` publishing to `topic` on `brokers`.
    pub fn start_collector(brokers: &str, topic: &str, extra: &[&str]) -> Self {
        let mut server = Self::start_stopped(Path::new("/nonexistent"), extra);
        server.kafka = Some((brokers.to_string(), topic.to_string()));
        server.spawn_on_free_ports();
        server
    }

    fn start_stopped(data_dir: &Path, extra: &[&str]) -> Self {
        Self {
            child: None,
            data_dir: data_dir.to_path_buf(),
            otlp_grpc: format!("127.0.0.1:{}", free_port()),
            otlp_http: format!("127.0.0.1:{}", free_port()),
            zipkin: format!("127.0.0.1:{}", free_port()),
            query: format!("127.0.0.1:{}", free_port()),
            args: extra.iter().map(|s| s.to_string()).collect(),
            kafka: None,
        }
    }

    /// A port found free can be taken by a concurrent test before the server binds it:
    /// then the server exits at once, and is started again on other ports.
    fn spawn_on_free_ports(&mut self) {
        for _ in 0..3 {
            match self.try_spawn() {
                Ok(()) => return,
                Err(status) => {
                    eprintln!("tracekeeper exited before it was ready ({status}); retrying on other ports");
                    self.otlp_grpc = format!("127.0.0.1:{}", free_port());
                    self.otlp_http = format!("127.0.0.1:{}", free_port());
                    self.zipkin = format!("127.0.0.1:{}", free_port());
                    self.query = format!("127.0.0.1:{}", free_port());
                }
            }
        }
        self.spawn();
    }

    fn spawn(&mut self) {
        if let Err(status) = self.try_spawn() {
            panic!("tracekeeper exited before it was ready: {status}");
        }
    }

    fn try_spawn(&mut self) -> Result<(), ExitStatus> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tracekeeper"));
        match &self.kafka {
            None => command.arg("all-in-one").args([
                "--data-dir",
                self.data_dir.to_str().unwrap(),
                "--query-addr",
                &self.query,
            ]),
            Some((brokers, topic)) => {
                command.arg("collector").args(["--kafka-brokers", brokers, "--kafka-topic", topic])
            }
        };
        let child = command
            .args(["--otlp-grpc-addr", &self.otlp_grpc, "--otlp-http-addr", &self.otlp_http])
            .args(["--zipkin-addr", &self.zipkin])
            .args(&self.args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tracekeeper");
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let ready_on = if self.kafka.is_some() { &self.otlp_http } else { &self.query };
        let url = format!("http://{ready_on}/ready");
        loop {
            if let Ok(status) = http_status(&url) {
                // The answer may come from another test's server that took the port
                // first, while this one exits for want of it: make sure it runs.
                std::thread::sleep(Duration::from_millis(100));
                if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                    self.child = None;
                    return Err(status);
                }
                if status == 200 {
                    return Ok(());
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Err(status);
            }
            assert!(Instant::now() < deadline, "tracekeeper was not ready within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9`: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM, then wait for a graceful exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "tracekeeper did not stop within 20 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server first");
        self.spawn();
    }

    pub fn query_url(&self, path: &str) -> String {
        format!("http://{}{}", self.query, path)
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let resp = reqwest::get(self.query_url(path)).await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    /// Sends OTLP protobuf and returns (status, decoded response or error body).
    pub async fn post_otlp(&self, body: Vec<u8>, content_type: &str, extra: &[(&str, &str)]) -> (u16, Vec<u8>) {
        let mut req = reqwest::Client::new()
            .post(format!("http://{}/v1/traces", self.otlp_http))
            .header("content-type", content_type)
            .body(body);
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A tiny blocking GET for readiness polling: the status code, or an error.
fn http_status(url: &str) -> std::io::Result<u16> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_once('/').expect("url with a path");
    let mut stream = std::net::TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(stream, "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| std::io::Error::other("no status line"))
}

pub fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

pub fn trace_id(seed: u64) -> TraceId {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&0x7a7a_0000_0000_0000u64.wrapping_add(seed).to_be_bytes());
    id[8..].copy_from_slice(&seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    TraceId(id)
}

pub fn span_id(seed: u64) -> SpanId {
    SpanId((seed | 1 << 63).to_be_bytes())
}

/// A trace of three spans over two services that uses every field the model has:
/// every attribute type, events, links, status, kinds, trace state, scope.
pub fn rich_trace(seed: u64, start_ns: u64) -> Vec<Span> {
    let frontend = Arc::new(Resource {
        attributes: vec![
            KeyValue::string("service.name", "frontend"),
            KeyValue::string("host.name", "web-1"),
            KeyValue::new("process.pid", AnyValue::Int(4242)),
        ],
        ..Default::default()
    });
    let db = Arc::new(Resource { attributes: vec![KeyValue::string("service.name", "db")], ..Default::default() });
    let scope = Arc::new(Scope { name: "tests".into(), version: "1.2.3".into(), ..Default::default() });
    let base = |id: u64, resource: &Arc<Resource>| Span {
        trace_id: trace_id(seed),
        span_id: span_id(seed * 10 + id),
        parent_span_id: None,
        trace_state: String::new(),
        flags: 1,
        name: String::new(),
        kind: SpanKind::Internal,
        start_ns,
        end_ns: start_ns,
        attributes: vec![],
        dropped_attributes_count: 0,
        events: vec![],
        dropped_events_count: 0,
        links: vec![],
        dropped_links_count: 0,
        status: Status::default(),
        resource: Arc::clone(resource),
        scope: Arc::clone(&scope),
    };
    let mut root = base(1, &frontend);
    root.name = "GET /checkout".into();
    root.kind = SpanKind::Server;
    root.trace_state = "vendor=1".into();
    root.end_ns = start_ns + 25_000_123;
    root.attributes = vec![
        KeyValue::string("http.method", "GET"),
        KeyValue::new("http.status_code", AnyValue::Int(200)),
        KeyValue::new("sampled", AnyValue::Bool(true)),
        KeyValue::new("ratio", AnyValue::Double(0.25)),
        KeyValue::new("blob", AnyValue::Bytes(vec![0, 1, 2, 255])),
        KeyValue::new("list", AnyValue::Array(vec![AnyValue::Int(1), AnyValue::String("two".into())])),
        KeyValue::new("map", AnyValue::KvList(vec![KeyValue::string("k", "v")])),
        KeyValue::string("unicode", "héllo wörld ✓"),
    ];
    root.events = vec![Event {
        time_ns: start_ns + 1_000,
        name: "cache miss".into(),
        attributes: vec![KeyValue::string("key", "cart:1")],
        dropped_attributes_count: 0,
    }];
    let mut child = base(2, &frontend);
    child.name = "SELECT cart".into();
    child.kind = SpanKind::Client;
    child.parent_span_id = Some(root.span_id);
    child.start_ns = start_ns + 2_000_000;
    child.end_ns = start_ns + 12_000_007;
    child.links = vec![Link {
        trace_id: trace_id(seed + 1_000_000),
        span_id: span_id(99),
        trace_state: String::new(),
        attributes: vec![],
        dropped_attributes_count: 0,
        flags: 0,
    }];
    let mut server = base(3, &db);
    server.name = "query".into();
    server.kind = SpanKind::Server;
    server.parent_span_id = Some(child.span_id);
    server.start_ns = start_ns + 3_000_000;
    server.end_ns = start_ns + 11_000_000;
    server.status = Status { code: StatusCode::Error, message: "deadlock".into() };
    vec![root, child, server]
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Runs `tracekeeper check --json` with `args` (the store to scan); fails the test on
/// any invariant violation and returns the report.
pub fn check_store(args: &[&str]) -> serde_json::Value {
    let output =
        Command::new(env!("CARGO_BIN_EXE_tracekeeper")).arg("check").arg("--json").args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "tracekeeper check found violations or failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).expect("a JSON report")
}
