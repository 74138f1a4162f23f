//! Fault tests of the distributed shape on the real stack: two collectors, two
//! indexers, six partitions. Each trace's spans are split across both collectors; an
//! indexer is killed, an indexer is frozen until it is a stale owner, the broker goes
//! away. Every acknowledged span must be served exactly once, every trace found.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cluster::{assert_all_served, post_until_acked, Cluster, Process, PARTITIONS};
use support::{now_ns, rich_trace, Server};
use tracekeeper_model::Span;
use tracekeeper_stack::wait_until;

/// Traces sent continuously until stopped; each trace's first span goes to one
/// collector and the rest to the other.
struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<Vec<Span>>>>,
    retried: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    fn start(collectors: [Arc<Server>; 2], seed: u64) -> Self {
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

    /// Stops sending and returns every acknowledged trace and the retries it took.
    async fn finish(self) -> (Vec<Vec<Span>>, usize) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
        let acked = self.acked.lock().unwrap().clone();
        (acked, self.retried.load(Ordering::SeqCst))
    }
}

/// Partition → owner member id, from `/api/status`.
async fn owners(node: &Process) -> Vec<(i64, String, i64)> {
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
async fn member_id(indexer: &Process) -> String {
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
fn assert_checker_clean(cluster: &Cluster, acked: &[Vec<Span>]) {
    let spans: usize = acked.iter().map(Vec::len).sum();
    assert_eq!(cluster.checked_spans(), spans as u64, "spans stored vs acknowledged");
}

/// The spans the ledger counted per tenant must equal what collectors acknowledged
/// (when no request was retried, each acknowledged span was produced exactly once).
async fn assert_counted_once(query: &Process, acked: &[Vec<Span>], retried: usize) {
    let spans: usize = acked.iter().map(Vec::len).sum();
    let status: Value = query.json("/api/status").await;
    let counted = status["tenants"]["single-tenant"]["spans_indexed"].as_i64().unwrap_or(0) as usize;
    if retried == 0 {
        assert_eq!(counted, spans, "spans counted in the ledger vs acknowledged: {status}");
    } else {
        assert!(counted >= spans, "counted {counted} < acknowledged {spans}: {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexer_killed_mid_stream_loses_and_duplicates_nothing() {
    let stack = tracekeeper_stack::require().await;
    let cluster = Cluster::create(&stack.kafka, &stack.cql, "kill9").await;
    let collectors = [Arc::new(cluster.collector()), Arc::new(cluster.collector())];
    let mut doomed = cluster.indexer("6s").await;
    let survivor = cluster.indexer("6s").await;
    let query = cluster.query().await;

    let load = Load::start(collectors.clone(), 10_000);
    wait_until("both indexers to own partitions", Duration::from_secs(60), async || {
        let owners = owners(&query).await;
        let members: BTreeSet<&String> = owners.iter().map(|(_, m, _)| m).collect();
        owners.len() == PARTITIONS as usize && members.len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    doomed.kill9();
    let survivor_id = member_id(&survivor).await;
    wait_until("the survivor to own every partition", Duration::from_secs(60), async || {
        owners(&query).await.iter().all(|(_, m, _)| *m == survivor_id)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (acked, retried) = load.finish().await;

    assert!(acked.len() > 50, "only {} traces were sent", acked.len());
    assert_all_served(&query, &acked, Duration::from_secs(90)).await;
    assert_counted_once(&query, &acked, retried).await;
    assert_checker_clean(&cluster, &acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_indexer_is_fenced_rejoins_and_nothing_is_lost_or_doubled() {
    let stack = tracekeeper_stack::require().await;
    let cluster = Cluster::create(&stack.kafka, &stack.cql, "stale").await;
    let collectors = [Arc::new(cluster.collector()), Arc::new(cluster.collector())];
    let stale = cluster.indexer("6s").await;
    let other = cluster.indexer("6s").await;
    let query = cluster.query().await;
    let load = Load::start(collectors.clone(), 20_000);

    let stale_id = member_id(&stale).await;
    let other_id = member_id(&other).await;
    wait_until("the indexer to be paused to own partitions", Duration::from_secs(60), async || {
        owners(&query).await.iter().any(|(_, m, _)| *m == stale_id)
    })
    .await;
    let before: Vec<(i64, String, i64)> = owners(&query).await;
    stale.pause();
    wait_until("the other indexer to take every partition", Duration::from_secs(60), async || {
        let now = owners(&query).await;
        now.len() == PARTITIONS as usize && now.iter().all(|(_, m, _)| *m == other_id)
    })
    .await;
    let moved: Vec<(i64, String, i64)> = owners(&query).await;
    for (partition, _, generation) in before.iter().filter(|(_, m, _)| *m == stale_id) {
        let (_, _, new_generation) = moved.iter().find(|(p, _, _)| p == partition).unwrap();
        assert!(new_generation > generation, "partition {partition} moved without a newer generation");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stale.resume();

    // Back in the group under a new member id, it is given partitions again.
    wait_until("the resumed indexer to rejoin and own partitions", Duration::from_secs(90), async || {
        let id = member_id(&stale).await;
        id != stale_id && owners(&query).await.iter().any(|(_, m, _)| *m == id)
    })
    .await;
    let refused = stale.metric("tracekeeper_fenced_writes_total").await
        + stale.metric("tracekeeper_kafka_commit_failures_total").await
        + stale.metric("tracekeeper_kafka_rebalances_total{event=\"lost\"}").await;
    assert!(refused >= 1.0, "the stale owner was never refused nor told its partitions were lost");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (acked, retried) = load.finish().await;

    assert_all_served(&query, &acked, Duration::from_secs(90)).await;
    assert_counted_once(&query, &acked, retried).await;
    assert_checker_clean(&cluster, &acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_gives_retryable_errors_and_loses_nothing_acknowledged() {
    let stack = tracekeeper_stack::require().await;
    let mut broker = tracekeeper_stack::broker::PrivateBroker::start().await.expect("a private Kafka broker");
    let cluster = Cluster::create(&broker.bootstrap(), &stack.cql, "outage").await;
    let collectors = [Arc::new(cluster.collector()), Arc::new(cluster.collector())];
    let _indexers = [cluster.indexer("6s").await, cluster.indexer("6s").await];
    let query = cluster.query().await;
    let load = Load::start(collectors.clone(), 30_000);
    tokio::time::sleep(Duration::from_secs(3)).await;

    broker.stop();
    let retried_before = load.retried.load(Ordering::SeqCst);
    wait_until("collectors to answer retryable errors", Duration::from_secs(60), async || {
        load.retried.load(Ordering::SeqCst) > retried_before
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.resume().await.expect("the broker restarts");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (acked, retried) = load.finish().await;

    assert!(retried > 0);
    assert_all_served(&query, &acked, Duration::from_secs(120)).await;
    assert_counted_once(&query, &acked, retried).await;
    assert_checker_clean(&cluster, &acked);
}
