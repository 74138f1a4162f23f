//! What the fault tests share: a steady load of traces split across two collectors,
//! who owns which partition, and the checks that nothing acknowledged was lost or
//! stored twice.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tracekeeper_model::Span;

use super::cluster::{post_until_acked, Cluster, Process};
use super::{now_ns, rich_trace, Server};

/// Traces sent continuously until stopped; each trace's first span goes to one
/// collector and the rest to the other.
pub struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<Vec<Span>>>>,
    pub retried: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    pub fn start(collectors: [Arc<Server>; 2], seed: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let retried = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let (stop, acked, retried) = (stop.clone(), acked.clone(), retried.clone());
            async move {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let spans = rich_trace(seed + n, now_ns() - 1_000_000_000);
                    n += 1;
                    let (a, b) = (n as usize % 2, (n as usize + 1) % 2);
                    post_until_acked(&collectors[a], &spans[..1], Duration::from_secs(120), &retried).await;
                    post_until_acked(&collectors[b], &spans[1..], Duration::from_secs(120), &retried).await;
                    acked.lock().unwrap().push(spans);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        });
        Self { stop, acked, retried, task }
    }

    /// How many traces have been acknowledged so far.
    pub fn acked_count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Stops sending and returns every acknowledged trace and the retries it took.
    pub async fn finish(self) -> (Vec<Vec<Span>>, usize) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
        let acked = self.acked.lock().unwrap().clone();
        (acked, self.retried.load(Ordering::SeqCst))
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
