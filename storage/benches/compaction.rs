//! Embedded store under compaction: write throughput and per-batch latency while a
//! full (major) compaction of a large bucket runs, against a quiet period, and bytes
//! per span on disk before and after compaction.
//!
//! `cargo bench -p tracekeeper-storage --bench compaction [-- SPANS]` (default 2,000,000
//! spans loaded before the measured phases).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracekeeper_model::{AnyValue, KeyValue, Resource, Scope, Span, SpanId, SpanKind, Status, TraceId};
use tracekeeper_storage::embedded::{EmbeddedConfig, EmbeddedStore};
use tracekeeper_storage::{SpanWriter, WriteBatch};

const BATCH: usize = 200;
const DAY_NS: u64 = 86_400_000_000_000;
const ROUTES: [&str; 6] = ["/cart", "/checkout", "/item/{id}", "/login", "/search", "/user/{id}"];

/// A xorshift generator: the same data on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Traces of 20 spans over 10 services, shaped like `tracekeeper loadgen`'s.
fn batch(rng: &mut Rng, resources: &[Arc<Resource>], scope: &Arc<Scope>, start_ns: u64) -> Vec<Span> {
    let mut spans = Vec::with_capacity(BATCH);
    while spans.len() < BATCH {
        let trace_id = TraceId([rng.next().to_be_bytes(), rng.next().to_be_bytes()].concat().try_into().unwrap());
        let begin = start_ns + rng.next() % 1_000_000_000;
        let root = SpanId((rng.next() | 1).to_be_bytes());
        for i in 0..20u64 {
            let route = ROUTES[(rng.next() % 6) as usize];
            let start = begin + i * 100_000;
            spans.push(Span {
                trace_id,
                span_id: if i == 0 { root } else { SpanId((rng.next() | 1).to_be_bytes()) },
                parent_span_id: (i > 0).then_some(root),
                trace_state: String::new(),
                flags: 0,
                name: format!("GET {route}"),
                kind: if i == 0 { SpanKind::Server } else { SpanKind::Client },
                start_ns: start,
                end_ns: start + 20_000 + rng.next() % 5_000_000,
                attributes: vec![
                    KeyValue::string("http.method", "GET"),
                    KeyValue::string("http.route", route),
                    KeyValue::new(
                        "http.status_code",
                        AnyValue::Int(if rng.next().is_multiple_of(50) { 500 } else { 200 }),
                    ),
                    KeyValue::string("net.peer.name", format!("10.0.{}.{}", rng.next() % 4, rng.next() % 250)),
                    KeyValue::string("user.id", format!("u{}", rng.next() % 100_000)),
                ],
                dropped_attributes_count: 0,
                events: vec![],
                dropped_events_count: 0,
                links: vec![],
                dropped_links_count: 0,
                status: Status::default(),
                resource: Arc::clone(&resources[(rng.next() % 10) as usize]),
                scope: Arc::clone(scope),
            });
        }
    }
    spans
}

struct Phase {
    spans: usize,
    rate: f64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Phase {
    fn report(&mut self, name: &str) {
        self.latencies.sort();
        self.rate = self.spans as f64 / self.elapsed.as_secs_f64();
        let at = |p: f64| self.latencies[((self.latencies.len() - 1) as f64 * p) as usize];
        println!(
            "{name:<22} {:>9.0} spans/s  batch of {BATCH}: p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.2} ms  ({} batches)",
            self.spans as f64 / self.elapsed.as_secs_f64(),
            at(0.50).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            self.latencies.last().unwrap().as_secs_f64() * 1e3,
            self.latencies.len(),
        );
    }
}

/// Writes batches into the bucket of `start_ns` until `until` says stop.
fn write_while(
    runtime: &tokio::runtime::Runtime,
    store: &EmbeddedStore,
    rng: &mut Rng,
    fixtures: &(Vec<Arc<Resource>>, Arc<Scope>),
    start_ns: u64,
    mut until: impl FnMut(usize) -> bool,
) -> Phase {
    let mut phase = Phase { spans: 0, rate: 0.0, elapsed: Duration::ZERO, latencies: Vec::new() };
    let began = Instant::now();
    while !until(phase.spans) {
        let spans = batch(rng, &fixtures.0, &fixtures.1, start_ns);
        let write = WriteBatch { tenant: "bench".into(), spans, retention_ns: 30 * DAY_NS, now_ns: start_ns };
        let t = Instant::now();
        runtime.block_on(store.write(write)).unwrap();
        phase.latencies.push(t.elapsed());
        phase.spans += BATCH;
    }
    phase.elapsed = began.elapsed();
    phase
}

fn main() {
    let loaded: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(2_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let resources = (0..10)
        .map(|i| {
            Arc::new(Resource {
                attributes: vec![
                    KeyValue::string("service.name", format!("service-{i}")),
                    KeyValue::string("host.name", format!("host-{}", i % 3)),
                ],
                ..Default::default()
            })
        })
        .collect();
    let fixtures = (resources, Arc::new(Scope { name: "bench".into(), version: "1".into(), ..Default::default() }));
    let day0 = 20_000 * DAY_NS;

    let mut load = write_while(&runtime, &store, &mut rng, &fixtures, day0, |n| n >= loaded);
    load.report("load (day 0)");
    store.flush_memtables().unwrap();
    let before = store.bucket_disk_space_at(day0);
    println!(
        "day 0 bucket before compaction: {:.1} MiB, {:.1} bytes/span",
        before as f64 / 1048576.0,
        before as f64 / loaded as f64
    );

    // Quiet: new spans go to day 1 while nothing big is being compacted.
    let quiet_for = Duration::from_secs(20);
    let started = Instant::now();
    let mut quiet =
        write_while(&runtime, &store, &mut rng, &fixtures, day0 + DAY_NS, |_| started.elapsed() >= quiet_for);
    quiet.report("quiet");

    // Under compaction: day 0's bucket is compacted whole while day 2 is written.
    let compacting = Arc::new(AtomicBool::new(true));
    let compactor = {
        let (store, compacting) = (store.clone(), Arc::clone(&compacting));
        std::thread::spawn(move || {
            let began = Instant::now();
            store.compact_bucket_at(day0).unwrap();
            compacting.store(false, Ordering::SeqCst);
            began.elapsed()
        })
    };
    let mut busy =
        write_while(&runtime, &store, &mut rng, &fixtures, day0 + 2 * DAY_NS, |_| !compacting.load(Ordering::SeqCst));
    let took = compactor.join().unwrap();
    busy.report("during compaction");
    println!("major compaction of day 0 took {:.1} s", took.as_secs_f64());
    let after = store.bucket_disk_space_at(day0);
    println!(
        "day 0 bucket after compaction: {:.1} MiB, {:.1} bytes/span",
        after as f64 / 1048576.0,
        after as f64 / loaded as f64
    );
    let p99 = |phase: &Phase| phase.latencies[(phase.latencies.len() - 1) * 99 / 100].as_secs_f64() * 1e3;
    println!(
        "SUMMARY bench=compaction loaded_spans={loaded} load_spans_per_sec={:.0} quiet_spans_per_sec={:.0} \
         compacting_spans_per_sec={:.0} quiet_batch_p99_ms={:.2} compacting_batch_p99_ms={:.2} \
         major_compaction_s={:.1} bytes_per_span_before={:.0} bytes_per_span_after={:.0}",
        load.rate,
        quiet.rate,
        busy.rate,
        p99(&quiet),
        p99(&busy),
        took.as_secs_f64(),
        before as f64 / loaded as f64,
        after as f64 / loaded as f64
    );
}
