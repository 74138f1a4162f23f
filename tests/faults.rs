//! Fault tests of the distributed shape on the real stack: two collectors, two
//! indexers, six partitions. Each trace's spans are split across both collectors; an
//! indexer is killed, an indexer is frozen until it is a stale owner, the broker goes
//! away. Every acknowledged span must be served exactly once, every trace found.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use support::cluster::{assert_all_served, Cluster, PARTITIONS};
use support::load::{addresses, assert_checker_clean, assert_counted_once, member_id, owners, Load, Pace};
use tracekeeper_stack::wait_until;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexer_killed_mid_stream_loses_and_duplicates_nothing() {
    let stack = tracekeeper_stack::require().await;
    let cluster = Cluster::create(&stack.kafka, &stack.cql, "kill9").await;
    let collectors = [cluster.collector(), cluster.collector()];
    let mut doomed = cluster.indexer("6s").await;
    let survivor = cluster.indexer("6s").await;
    let query = cluster.query().await;

    let load = Load::start(addresses(&collectors), 10_000, Pace::TRICKLE);
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
    let collectors = [cluster.collector(), cluster.collector()];
    let stale = cluster.indexer("6s").await;
    let other = cluster.indexer("6s").await;
    let query = cluster.query().await;
    let load = Load::start(addresses(&collectors), 20_000, Pace::TRICKLE);

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
    let collectors = [cluster.collector(), cluster.collector()];
    let _indexers = [cluster.indexer("6s").await, cluster.indexer("6s").await];
    let query = cluster.query().await;
    let load = Load::start(addresses(&collectors), 30_000, Pace::TRICKLE);
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
