//! `tracekeeper-bench loadgen`: sustained OTLP/HTTP protobuf load with realistic spans, and
//! trace-fetch latency. A benchmark tool, not a test: it prints what it measured.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

#[derive(Debug, Clone, clap::Args)]
pub struct LoadgenArgs {
    /// OTLP/HTTP endpoint to send to.
    #[arg(long, default_value = "http://127.0.0.1:4318/v1/traces")]
    pub endpoint: String,
    /// Query API base URL, for --fetch-trace-spans.
    #[arg(long, default_value = "http://127.0.0.1:16686")]
    pub query: String,
    /// How long to send for, in seconds.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Spans per request (whole traces are packed until this is reached).
    #[arg(long, default_value_t = 500)]
    pub batch_spans: usize,
    /// Spans generated up front; requests cycle through them once, so this bounds the
    /// run: size it as rate × seconds.
    #[arg(long, default_value_t = 1_500_000)]
    pub total_spans: usize,
    /// Instead of load: store one trace of this many spans, then fetch it --fetches
    /// times and report latency.
    #[arg(long)]
    pub fetch_trace_spans: Option<usize>,
    #[arg(long, default_value_t = 200)]
    pub fetches: usize,
    /// With --fetch-trace-spans: fetch this already stored trace (of that many spans)
    /// instead of storing a new one, e.g. to measure the server's memory while it only
    /// answers reads.
    #[arg(long)]
    pub trace_id: Option<String>,
    /// Seed of the generated traces: runs with different seeds send different trace
    /// ids, so a store can be preloaded in several runs.
    #[arg(long, default_value_t = 0x5eed_1234_abcd_ef01)]
    pub seed: u64,
    /// Most spans per second to send; 0 sends as fast as the server answers.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Instead of load: send this many one-span probe traces, one per
    /// --probe-interval-ms, and report how long each took from acknowledgement to
    /// being findable by search at --query.
    #[arg(long)]
    pub freshness_probes: Option<usize>,
    #[arg(long, default_value_t = 250)]
    pub probe_interval_ms: u64,
    /// Instead of load: store a 1,000-span trace, then time the common queries
    /// (trace by id, search by service, tag, duration, TraceQL) this many times each
    /// against --query, and print p50 and p99 per query.
    #[arg(long)]
    pub query_bench: Option<usize>,
    /// Events (logs) on each generated span, each with a name and two attributes, to
    /// measure what indexing event attributes costs (the default shape has none).
    #[arg(long, default_value_t = 0)]
    pub events_per_span: usize,
}

/// xorshift64*: deterministic and dependency-free; quality is irrelevant here.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn s(text: impl Into<String>) -> any_value::Value {
    any_value::Value::StringValue(text.into())
}

const ROUTES: [&str; 6] = ["/api/cart", "/api/checkout", "/api/items/{id}", "/login", "/api/search", "/health"];
const METHODS: [&str; 3] = ["GET", "POST", "PUT"];

/// One trace of `spans` spans across the 10 services, ~250 bytes a span without events.
fn trace(rng: &mut Rng, now_ns: u64, spans: usize, events_per_span: usize) -> Vec<(usize, Span)> {
    let trace_id: Vec<u8> = [rng.next().to_be_bytes(), rng.next().to_be_bytes()].concat();
    let start = now_ns - rng.below(5_000_000_000);
    let mut out: Vec<(usize, Span)> = Vec::with_capacity(spans);
    for i in 0..spans {
        let service = if i == 0 { 0 } else { rng.below(10) as usize };
        let parent = if i == 0 { Vec::new() } else { out[rng.below(i as u64) as usize].1.span_id.clone() };
        let begin = start + i as u64 * 100_000 + rng.below(50_000);
        let route = ROUTES[rng.below(ROUTES.len() as u64) as usize];
        // 1 span in 50 failed: HTTP 500 and, as OTel's HTTP conventions say, an error.
        let failed = rng.below(50) == 0;
        out.push((
            service,
            Span {
                trace_id: trace_id.clone(),
                span_id: (rng.next() | 1).to_be_bytes().to_vec(),
                parent_span_id: parent,
                name: format!("{} {route}", METHODS[i % 3]),
                kind: if i == 0 { 2 } else { 3 },
                start_time_unix_nano: begin,
                end_time_unix_nano: begin + 20_000 + rng.below(5_000_000),
                attributes: vec![
                    kv("http.method", s(METHODS[i % 3])),
                    kv("http.route", s(route)),
                    kv("http.status_code", any_value::Value::IntValue(if failed { 500 } else { 200 })),
                    kv("net.peer.name", s(format!("10.0.{}.{}", rng.below(4), rng.below(250)))),
                    kv("user.id", s(format!("u{}", rng.below(100_000)))),
                ],
                events: (0..events_per_span).map(|e| event(rng, begin + e as u64 * 1_000)).collect(),
                status: failed.then(|| Status { code: 2, ..Default::default() }),
                ..Default::default()
            },
        ));
    }
    out
}

/// A log line as OTel SDKs record one: mostly plain messages, sometimes an exception.
fn event(rng: &mut Rng, time_unix_nano: u64) -> Event {
    let (name, attributes) = if rng.below(20) == 0 {
        (
            "exception",
            vec![
                kv("exception.type", s("TimeoutError")),
                kv("exception.message", s(format!("upstream {} timed out", rng.below(40)))),
            ],
        )
    } else {
        (
            "log",
            vec![
                kv("level", s(["info", "debug", "warn"][rng.below(3) as usize])),
                kv("cache.key", s(format!("k{}", rng.below(10_000)))),
            ],
        )
    };
    Event { time_unix_nano, name: name.into(), attributes, ..Default::default() }
}

fn request(spans: Vec<(usize, Span)>) -> Vec<u8> {
    request_named(spans, |i| format!("service-{i}"))
}

/// One OTLP request, the spans grouped by service index, `name_of` naming each.
fn request_named(spans: Vec<(usize, Span)>, name_of: impl Fn(usize) -> String) -> Vec<u8> {
    let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); 10];
    for (service, span) in spans {
        by_service[service].push(span);
    }
    let resource_spans = by_service
        .into_iter()
        .enumerate()
        .filter(|(_, spans)| !spans.is_empty())
        .map(|(i, spans)| ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", s(name_of(i))), kv("host.name", s(format!("host-{}", i % 3)))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope { name: "loadgen".into(), version: "1".into(), ..Default::default() }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }.encode_to_vec()
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub async fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    if let Some(n) = args.fetch_trace_spans {
        return fetch_latency(&args, n).await;
    }
    if let Some(iterations) = args.query_bench {
        let id = store_trace(&args, 1000).await?;
        let url = format!("{}/api/traces/{id}", args.query);
        wait_until_whole(&reqwest::Client::new(), &url, 1000).await?;
        // An all-in-one writes its memtables out 3 s after writes pause; measure after.
        tokio::time::sleep(Duration::from_secs(5)).await;
        return crate::query_bench::measure(&args.query, &id, iterations).await;
    }
    if let Some(n) = args.freshness_probes {
        let interval = Duration::from_millis(args.probe_interval_ms);
        return crate::freshness::measure(&args.endpoint, &args.query, n, interval).await;
    }
    let mut rng = Rng(args.seed.max(1));
    let now = now_ns();
    let mut bodies = Vec::new();
    let mut total = 0usize;
    let mut body_bytes = 0usize;
    eprintln!("generating {} spans...", args.total_spans);
    while total < args.total_spans {
        let mut batch = Vec::new();
        while batch.len() < args.batch_spans {
            let len = 10 + rng.below(91) as usize;
            batch.extend(trace(&mut rng, now, len, args.events_per_span));
        }
        total += batch.len();
        let n = batch.len();
        let body = request(batch);
        body_bytes += body.len();
        bodies.push((n, body));
    }
    eprintln!(
        "{} requests, {:.0} bytes per span on the wire; sending for {} s",
        bodies.len(),
        body_bytes as f64 / total as f64,
        args.seconds
    );
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let (rate, batch) = (args.rate, args.batch_spans);
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (bodies, next, sent, failed, client, endpoint) =
            (bodies.clone(), next.clone(), sent.clone(), failed.clone(), client.clone(), args.endpoint.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((spans, body)) = bodies.get(i) else {
                    break;
                };
                if rate > 0 {
                    // Request i may leave once the spans before it fit the rate.
                    let due = started + Duration::from_secs_f64((i * batch) as f64 / rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                let t = Instant::now();
                let resp = client
                    .post(&endpoint)
                    .header("content-type", "application/x-protobuf")
                    .body(body.clone())
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status().is_success() => {
                        sent.fetch_add(*spans as u64, Ordering::Relaxed);
                        latencies.push(t.elapsed());
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await?);
    }
    let elapsed = started.elapsed();
    if next.load(Ordering::Relaxed) >= bodies.len() {
        eprintln!("warning: ran out of generated spans before the deadline; raise --total-spans");
    }
    latencies.sort();
    if latencies.is_empty() {
        bail!("no request succeeded");
    }
    let spans = sent.load(Ordering::Relaxed);
    println!(
        "spans={spans} seconds={:.2} spans_per_sec={:.0} requests={} failed={} req_p50_ms={:.2} req_p99_ms={:.2}",
        elapsed.as_secs_f64(),
        spans as f64 / elapsed.as_secs_f64(),
        latencies.len(),
        failed.load(Ordering::Relaxed),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
    Ok(())
}

/// Sends one trace of `spans` spans, all of service `fetch-probe` (so that the
/// searches of `--query-bench` never have to read it); returns its id.
async fn store_trace(args: &LoadgenArgs, spans: usize) -> anyhow::Result<String> {
    let mut rng = Rng(now_ns() | 1);
    let trace = trace(&mut rng, now_ns(), spans, 0);
    let id = hex_of(&trace[0].1.trace_id);
    let client = reqwest::Client::new();
    for chunk in trace.chunks(1000) {
        let resp = client
            .post(&args.endpoint)
            .header("content-type", "application/x-protobuf")
            .body(request_named(chunk.iter().map(|(_, span)| (0, span.clone())).collect(), |_| "fetch-probe".into()))
            .send()
            .await
            .context("sending the trace")?;
        if !resp.status().is_success() {
            bail!("storing the trace failed: {}", resp.status());
        }
    }
    Ok(id)
}

async fn fetch_latency(args: &LoadgenArgs, spans: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let id = match &args.trace_id {
        Some(id) => id.clone(),
        None => store_trace(args, spans).await?,
    };
    let url = format!("{}/api/traces/{id}", args.query);
    if args.trace_id.is_none() {
        wait_until_whole(&client, &url, spans).await?;
    }
    let mut latencies = Vec::with_capacity(args.fetches);
    for _ in 0..args.fetches {
        let t = Instant::now();
        let response = client.get(&url).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        latencies.push(t.elapsed());
        if !status.is_success() {
            bail!("fetching trace {id}: {status}");
        }
        if body.len() < spans * 100 {
            bail!("the fetched trace is too small ({} bytes)", body.len());
        }
    }
    latencies.sort();
    println!(
        "trace_id={id} trace_spans={spans} fetches={} fetch_p50_ms={:.2} fetch_p99_ms={:.2}",
        args.fetches,
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    Ok(())
}

/// Waits (up to two minutes) until all `spans` spans of the trace at `url` can be read:
/// a distributed pipeline indexes a large trace over a few seconds.
async fn wait_until_whole(client: &reqwest::Client, url: &str, spans: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let response = client.get(url).send().await?;
        if response.status().is_success() {
            let body: serde_json::Value = serde_json::from_slice(&response.bytes().await?)?;
            if body["data"][0]["spans"].as_array().map_or(0, Vec::len) >= spans {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("{url} did not have all {spans} spans within two minutes");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
