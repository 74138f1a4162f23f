//! What the fault tests share: a steady load of traces split across two collectors,
//! who owns which partition, and the checks that nothing acknowledged was lost or
//! stored twice.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message;
use serde_json::Value;
use tracekeeper_model::{otlp, Span};

use super::cluster::{Cluster, Process};
use super::{now_ns, rich_trace};

/// Traces sent continuously until stopped, in rounds: a round's traces have their
/// first spans sent to one collector and the rest to the other. A collector that
/// refuses the connection (stopped, restarting) is skipped for the next, as a load
/// balancer would; every request is retried until it is acknowledged.
pub struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<Vec<Span>>>>,
    pub retried: Arc<AtomicUsize>,
    /// Requests sent whose connection closed before an answer (they may be stored).
    pub broken: Arc<AtomicUsize>,
    collectors: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    started: Instant,
}

/// How much a [`Load`] offers.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Traces per round (each round is two requests).
    pub traces_per_round: usize,
    /// Rounds per second, per sender.
    pub rounds_per_second: f64,
    /// Senders at once.
    pub senders: usize,
}

impl Pace {
    /// One trace at a time, about 40 a second: enough to see every fault's effect.
    pub const TRICKLE: Pace = Pace { traces_per_round: 1, rounds_per_second: 40.0, senders: 1 };

    /// About `spans_per_second` of [`rich_trace`]'s three-span traces.
    pub fn spans_per_second(spans_per_second: u32) -> Self {
        let senders = 4;
        let traces_per_round = 10;
        let rounds = f64::from(spans_per_second) / (3.0 * traces_per_round as f64) / senders as f64;
        Pace { traces_per_round, rounds_per_second: rounds.max(0.1), senders }
    }
}

impl Load {
    /// Sends to the collectors' OTLP/HTTP addresses (two or more) at `pace`; trace ids
    /// are drawn from `seed` up.
    pub fn start(collectors: Vec<String>, seed: u64, pace: Pace) -> Self {
        assert!(collectors.len() >= 2, "a load spreads each trace over two collectors");
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let (retried, broken) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let collectors = Arc::new(Mutex::new(collectors));
        let next = Arc::new(AtomicUsize::new(0));
        let tasks = (0..pace.senders)
            .map(|_| {
                let sender = Sender {
                    client: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap(),
                    collectors: collectors.clone(),
                    retried: retried.clone(),
                    broken: broken.clone(),
                };
                let (stop, acked, next) = (stop.clone(), acked.clone(), next.clone());
                tokio::spawn(async move {
                    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / pace.rounds_per_second));
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    while !stop.load(Ordering::SeqCst) {
                        ticks.tick().await;
                        let round = next.fetch_add(1, Ordering::SeqCst);
                        let first = (round * pace.traces_per_round) as u64;
                        let traces: Vec<Vec<Span>> = (0..pace.traces_per_round as u64)
                            .map(|i| rich_trace(seed + first + i, now_ns() - 1_000_000_000))
                            .collect();
                        let heads: Vec<Span> = traces.iter().map(|t| t[0].clone()).collect();
                        let rest: Vec<Span> = traces.iter().flat_map(|t| t[1..].iter().cloned()).collect();
                        sender.send_until_acked(round, &heads).await;
                        sender.send_until_acked(round + 1, &rest).await;
                        acked.lock().unwrap().extend(traces);
                    }
                })
            })
            .collect();
        Self { stop, acked, retried, broken, collectors, tasks, started: Instant::now() }
    }

    /// Spans acknowledged per second since the load started: below what the pace
    /// offers when acknowledgements come slower than the senders ask.
    pub fn achieved_spans_per_second(&self) -> f64 {
        let spans: usize = self.acked.lock().unwrap().iter().map(Vec::len).sum();
        spans as f64 / self.started.elapsed().as_secs_f64()
    }

    /// How many traces have been acknowledged so far.
    pub fn acked_count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Sends to `addr` instead of the `index`th collector from now on (restarted on
    /// another port).
    pub fn replace_collector(&self, index: usize, addr: String) {
        self.collectors.lock().unwrap()[index] = addr;
    }

    /// Stops sending and returns every acknowledged trace and the requests retried
    /// (answered retryable, or unanswered).
    pub async fn finish(self) -> (Vec<Vec<Span>>, usize) {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.unwrap();
        }
        let acked = self.acked.lock().unwrap().clone();
        (acked, self.retried.load(Ordering::SeqCst))
    }
}

/// The OTLP/HTTP addresses of `collectors`, for a [`Load`].
pub fn addresses(collectors: &[super::Server]) -> Vec<String> {
    collectors.iter().map(|c| c.otlp_http.clone()).collect()
}

struct Sender {
    client: reqwest::Client,
    collectors: Arc<Mutex<Vec<String>>>,
    retried: Arc<AtomicUsize>,
    broken: Arc<AtomicUsize>,
}

impl Sender {
    /// Posts `spans` as OTLP protobuf, starting with collector `at` (modulo their
    /// number), until one acknowledges them, or panics after two minutes.
    async fn send_until_acked(&self, mut at: usize, spans: &[Span]) {
        let body = otlp::to_request(spans).encode_to_vec();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let url = {
                let collectors = self.collectors.lock().unwrap();
                format!("http://{}/v1/traces", collectors[at % collectors.len()])
            };
            let sent =
                self.client.post(&url).header("content-type", "application/x-protobuf").body(body.clone()).send().await;
            match sent {
                Ok(reply) if reply.status() == 200 => return,
                Ok(reply) if matches!(reply.status().as_u16(), 429 | 503) => {
                    self.retried.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Ok(reply) => {
                    let status = reply.status();
                    panic!("unexpected status {status}: {}", reply.text().await.unwrap_or_default())
                }
                // Nothing was sent: that collector is down, the next one is tried.
                Err(e) if e.is_connect() => at += 1,
                Err(_) => {
                    self.retried.fetch_add(1, Ordering::SeqCst);
                    self.broken.fetch_add(1, Ordering::SeqCst);
                    at += 1;
                }
            }
            assert!(Instant::now() < deadline, "no collector acknowledged a request within two minutes");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Partition → owner member id, from `/api/status`.
pub async fn owners(node: &Process) -> Vec<(i64, String, i64)> {
    let status = node.json("/api/status").await;
    status["partitions"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let owner = p["owner"].as_str().unwrap_or_default().to_string();
                    (p["partition"].as_i64().unwrap(), owner, p["generation"].as_i64().unwrap())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The indexer's member id once it has one (after its first assignment).
pub async fn member_id(indexer: &Process) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let id = indexer.json("/api/status").await["member"]["member_id"].as_str().unwrap().to_string();
        if !id.is_empty() {
            return id;
        }
        assert!(Instant::now() < deadline, "{} joined no group within 60 s", indexer.addr);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `tracekeeper check` is clean and every acknowledged span is stored exactly once.
pub fn assert_checker_clean(cluster: &Cluster, acked: &[Vec<Span>]) {
    let spans: usize = acked.iter().map(Vec::len).sum();
    assert_eq!(cluster.checked_spans(), spans as u64, "spans stored vs acknowledged");
}

/// The spans the ledger counted per tenant must equal what collectors acknowledged
/// (when no request was retried, each acknowledged span was produced exactly once).
pub async fn assert_counted_once(query: &Process, acked: &[Vec<Span>], retried: usize) {
    let spans: usize = acked.iter().map(Vec::len).sum();
    let status: Value = query.json("/api/status").await;
    let counted = status["tenants"]["single-tenant"]["spans_indexed"].as_i64().unwrap_or(0) as usize;
    if retried == 0 {
        assert_eq!(counted, spans, "spans counted in the ledger vs acknowledged: {status}");
    } else {
        assert!(counted >= spans, "counted {counted} < acknowledged {spans}: {status}");
    }
}
