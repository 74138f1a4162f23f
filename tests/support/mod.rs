//! Starts the real `tracekeeper` binary on free loopback ports and talks to it.
#![allow(dead_code)]

pub mod cli_help;
pub mod cluster;
pub mod cut;
pub mod load;
pub mod process;
pub mod tls;
pub mod tools;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracekeeper_model::{
    AnyValue, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, Status, StatusCode, TraceId,
};

/// A running tracekeeper: all-in-one (or a collector), in this test's process on
/// sockets bound to port 0, or as the real binary for what needs a process of its own.
pub struct Server {
    running: Option<Running>,
    mode: Mode,
    pub data_dir: PathBuf,
    pub otlp_grpc: String,
    pub otlp_http: String,
    pub zipkin: String,
    pub query: String,
    /// Jaeger's gRPC query API (all-in-one).
    pub query_grpc: String,
    /// Jaeger's remote storage API, when the flags ask for it.
    pub jaeger_storage: Option<String>,
    args: Vec<String>,
    /// `Some((brokers, topic))` runs `tracekeeper collector` instead of all-in-one.
    kafka: Option<(String, String)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    InProcess,
    Process,
}

enum Running {
    /// The role on a thread and runtime of its own: `stop` is its shutdown signal,
    /// `abort` drops it where it stands (as a kill would).
    InProcess {
        stop: Signal,
        abort: Signal,
        thread: std::thread::JoinHandle<anyhow::Result<()>>,
    },
    Process(process::Spawned),
}

/// How a server stopped: its exit status, or the error its role returned.
#[derive(Debug)]
pub struct Stopped(Result<(), String>);

impl Stopped {
    pub fn success(&self) -> bool {
        self.0.is_ok()
    }
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Ok(()) => write!(f, "stopped cleanly"),
            Err(why) => write!(f, "{why}"),
        }
    }
}

use process::ANY_PORT;

type Signal = tokio::sync::oneshot::Sender<()>;

impl Server {
    /// Starts all-in-one on `data_dir`, in this process, and waits until it is ready.
    /// `extra` are its command-line flags.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Self {
        let mut server = Self::stopped(Mode::InProcess, data_dir, extra);
        server.spawn();
        server
    }

    /// Starts the `tracekeeper` binary's all-in-one: for signals, `kill -9` and what
    /// counts over the whole process (its metrics).
    pub fn start_process(data_dir: &Path, extra: &[&str]) -> Self {
        let mut server = Self::stopped(Mode::Process, data_dir, extra);
        server.spawn();
        server
    }

    /// Starts a collector publishing to `topic` on `brokers`, in this process.
    pub fn start_collector(brokers: &str, topic: &str, extra: &[&str]) -> Self {
        Self::collector_in(Mode::InProcess, brokers, topic, extra)
    }

    /// Starts the `tracekeeper collector` binary publishing to `topic` on `brokers`: for
    /// SIGTERM and restarts under load.
    pub fn start_collector_process(brokers: &str, topic: &str, extra: &[&str]) -> Self {
        Self::collector_in(Mode::Process, brokers, topic, extra)
    }

    fn collector_in(mode: Mode, brokers: &str, topic: &str, extra: &[&str]) -> Self {
        let mut server = Self::stopped(mode, Path::new("/nonexistent"), extra);
        server.kafka = Some((brokers.to_string(), topic.to_string()));
        server.spawn();
        server
    }

    fn stopped(mode: Mode, data_dir: &Path, extra: &[&str]) -> Self {
        let addr = || ANY_PORT.to_string();
        Self {
            running: None,
            mode,
            data_dir: data_dir.to_path_buf(),
            otlp_grpc: addr(),
            otlp_http: addr(),
            zipkin: addr(),
            query: addr(),
            query_grpc: addr(),
            jaeger_storage: None,
            args: extra.iter().map(|s| s.to_string()).collect(),
            kafka: None,
        }
    }

    /// The command line this server runs with, without the program name.
    fn command_line(&self) -> Vec<String> {
        let mut argv: Vec<String> = match &self.kafka {
            None => ["all-in-one", "--data-dir", self.data_dir.to_str().unwrap(), "--query-addr", &self.query]
                .into_iter()
                .chain(["--query-grpc-addr", &self.query_grpc])
                .map(String::from)
                .collect(),
            Some((brokers, topic)) => {
                ["collector", "--kafka-brokers", brokers, "--kafka-topic", topic].map(String::from).to_vec()
            }
        };
        argv.extend(["--otlp-grpc-addr", &self.otlp_grpc, "--otlp-http-addr", &self.otlp_http].map(String::from));
        argv.extend(["--zipkin-addr".to_string(), self.zipkin.clone()]);
        argv.extend(self.args.iter().cloned());
        argv
    }

    fn spawn(&mut self) {
        match self.mode {
            Mode::InProcess => self.spawn_in_process(),
            Mode::Process => {
                if let Err(status) = self.try_spawn_process() {
                    panic!("tracekeeper exited before it was ready: {status}");
                }
            }
        }
    }

    /// Resolves the command line as the binary does and runs the role on listeners
    /// bound here, so the test knows their ports before the role starts.
    fn spawn_in_process(&mut self) {
        use tracekeeper::cli::Command as Role;
        use tracekeeper::roles;
        let argv = std::iter::once("tracekeeper".to_string()).chain(self.command_line()).map(Into::into).collect();
        let layered = tracekeeper::cli::parse(argv).unwrap_or_else(|e| panic!("the flags are refused: {e}"));
        let file = tracekeeper::config::FileTables::from_layered(&layered).unwrap();
        let bind = |addr: &mut String| {
            let socket = TcpListener::bind(addr.as_str()).unwrap_or_else(|e| panic!("binding {addr}: {e}"));
            socket.set_nonblocking(true).unwrap();
            *addr = socket.local_addr().unwrap().to_string();
            socket
        };
        let receivers = [bind(&mut self.otlp_grpc), bind(&mut self.otlp_http), bind(&mut self.zipkin)];
        let query = self.kafka.is_none().then(|| bind(&mut self.query));
        let query_grpc = self.kafka.is_none().then(|| bind(&mut self.query_grpc));
        let storage = self.args.iter().any(|a| a == "--jaeger-storage-grpc-addr").then(|| {
            let mut addr = ANY_PORT.to_string();
            let socket = bind(&mut addr);
            self.jaeger_storage = Some(addr);
            socket
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let (abort, aborted) = tokio::sync::oneshot::channel::<()>();
        let thread = match layered.cli.command {
            Role::AllInOne(args) => {
                let config = tracekeeper::config::all_in_one(*args, &file).expect("a valid all-in-one configuration");
                in_own_runtime(aborted, move || async move {
                    let tokio_listener = |socket| tokio::net::TcpListener::from_std(socket).unwrap();
                    let listeners = roles::all_in_one::Listeners {
                        receivers: receiver_listeners(receivers),
                        query: tokio_listener(query.unwrap()),
                        jaeger_grpc: roles::JaegerGrpcListeners {
                            query: tokio_listener(query_grpc.unwrap()),
                            storage: storage.map(tokio_listener),
                        },
                    };
                    roles::all_in_one::run(config, listeners, shutdown).await
                })
            }
            Role::Collector(args) => {
                let config = tracekeeper::config::collector(args, &file).expect("a valid collector configuration");
                in_own_runtime(aborted, move || async move {
                    roles::collector::run(config, receiver_listeners(receivers), shutdown).await
                })
            }
            _ => unreachable!("the command line names all-in-one or collector"),
        };
        self.running = Some(Running::InProcess { stop, abort, thread });
        if let Err(stopped) = self.wait_ready() {
            panic!("tracekeeper stopped before it was ready: {stopped}");
        }
    }

    /// Runs all-in-one as a process on port 0 everywhere (again on a restart), and
    /// takes the ports it bound from its log.
    fn try_spawn_process(&mut self) -> Result<(), Stopped> {
        for addr in [&mut self.otlp_grpc, &mut self.otlp_http, &mut self.zipkin, &mut self.query, &mut self.query_grpc]
        {
            *addr = ANY_PORT.to_string();
        }
        let args = self.command_line();
        let command = process::Spawned::command(&args.iter().map(String::as_str).collect::<Vec<_>>());
        // A collector has no query listener: its receivers answer /ready.
        let ready_on = if self.kafka.is_some() { "otlp-http" } else { "query" };
        let ready = |bound: &process::Listening| {
            bound.get(ready_on).is_some_and(|addr| matches!(http_status(&format!("http://{addr}/ready")), Ok(200)))
        };
        let spawned = process::Spawned::try_start(command, &args[0], ready).map_err(exit_status)?;
        self.otlp_grpc = spawned.listening("otlp-grpc");
        self.otlp_http = spawned.listening("otlp-http");
        self.zipkin = spawned.listening("zipkin");
        if self.kafka.is_none() {
            self.query = spawned.listening("query");
            self.query_grpc = spawned.listening("query-grpc");
        }
        self.jaeger_storage =
            self.args.iter().any(|a| a == "--jaeger-storage-grpc-addr").then(|| spawned.listening("jaeger-storage"));
        self.running = Some(Running::Process(spawned));
        Ok(())
    }

    fn ready_url(&self) -> String {
        format!("http://{}/ready", if self.kafka.is_some() { &self.otlp_http } else { &self.query })
    }

    /// `Err` when the in-process server stopped before it was ready.
    fn wait_ready(&mut self) -> Result<(), Stopped> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = self.ready_url();
        loop {
            if matches!(http_status(&url), Ok(200)) {
                return Ok(());
            }
            if let Some(stopped) = self.stopped_by_itself() {
                return Err(stopped);
            }
            assert!(Instant::now() < deadline, "tracekeeper was not ready within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// How the server stopped, if it stopped without being asked to.
    fn stopped_by_itself(&mut self) -> Option<Stopped> {
        match self.running.as_mut()? {
            Running::Process(spawned) => {
                let status = spawned.exited()?;
                self.running = None;
                Some(exit_status(status))
            }
            Running::InProcess { thread, .. } if thread.is_finished() => match self.running.take()? {
                Running::InProcess { thread, .. } => Some(joined(thread)),
                Running::Process(_) => unreachable!("matched in-process"),
            },
            Running::InProcess { .. } => None,
        }
    }

    /// Sends `signal` (`-TERM`, `-STOP`, ...) to the server's process, and returns at
    /// once.
    pub fn signal(&self, signal: &str) {
        match &self.running {
            Some(Running::Process(spawned)) => spawned.signal(signal),
            _ => panic!("signals need the server's own process: use start_process"),
        }
    }

    /// Whether the server's process has exited (checked once: a process found exited
    /// can be neither signalled nor terminated after).
    pub fn has_exited(&mut self) -> bool {
        match &mut self.running {
            Some(Running::Process(spawned)) => spawned.exited().is_some(),
            _ => false,
        }
    }

    /// `kill -9`: no chance to flush anything. Only a process can be killed so.
    pub fn kill9(&mut self) {
        match self.running.take() {
            Some(Running::Process(mut spawned)) => spawned.kill9(),
            Some(Running::InProcess { .. }) => panic!("kill -9 needs the server's own process: use start_process"),
            None => {}
        }
    }

    /// SIGTERM (the in-process role: its shutdown), then wait for it to stop cleanly.
    pub fn terminate(&mut self) -> Stopped {
        match self.running.take().expect("running") {
            Running::InProcess { stop, abort, thread } => {
                let _ = stop.send(());
                let deadline = Instant::now() + Duration::from_secs(20);
                while !thread.is_finished() {
                    assert!(Instant::now() < deadline, "tracekeeper did not stop within 20 s of its shutdown");
                    std::thread::sleep(Duration::from_millis(50));
                }
                drop(abort);
                joined(thread)
            }
            Running::Process(mut spawned) => exit_status(spawned.terminate()),
        }
    }

    /// Starts the server again, on the same ports and data.
    pub fn restart(&mut self) {
        assert!(self.running.is_none(), "stop the server first");
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
        match self.running.take() {
            Some(Running::Process(spawned)) => drop(spawned),
            Some(Running::InProcess { abort, thread, .. }) => {
                // At once, as the process was killed before: a graceful stop waits for
                // the test's own connections, which this thread may be the one to drive.
                let _ = abort.send(());
                let _ = thread.join();
            }
            None => {}
        }
    }
}

/// Runs `role` on a thread with a runtime of its own, which ends with it: whatever the
/// role still holds (the store's directory lock) is released when the thread is joined.
/// `aborted` drops the role where it stands.
fn in_own_runtime<F, Fut>(
    aborted: tokio::sync::oneshot::Receiver<()>,
    role: F,
) -> std::thread::JoinHandle<anyhow::Result<()>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let result = runtime.block_on(async {
            tokio::select! {
                result = role() => result,
                Ok(()) = aborted => Err(anyhow::anyhow!("aborted")),
            }
        });
        runtime.shutdown_timeout(Duration::from_secs(5));
        result
    })
}

fn receiver_listeners(sockets: [TcpListener; 3]) -> tracekeeper::roles::ReceiverListeners {
    let [otlp_grpc, otlp_http, zipkin] = sockets.map(|s| tokio::net::TcpListener::from_std(s).unwrap());
    tracekeeper::roles::ReceiverListeners { otlp_grpc, otlp_http, zipkin }
}

fn joined(thread: std::thread::JoinHandle<anyhow::Result<()>>) -> Stopped {
    match thread.join() {
        Ok(result) => Stopped(result.map_err(|e| format!("{e:#}"))),
        Err(_) => Stopped(Err("the role panicked".into())),
    }
}

fn exit_status(status: ExitStatus) -> Stopped {
    Stopped(if status.success() { Ok(()) } else { Err(format!("exit status {status}")) })
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

/// `text` percent-encoded for a URL's query.
pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
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
