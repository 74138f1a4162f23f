//! The distributed shape on the real stack: a topic of six partitions, a keyspace with
//! the schema applied, collectors (in-process), and indexers, query nodes and retention
//! workers as real processes that a test may kill, pause and resume.

use std::process::{Command, Stdio};
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use prost::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use serde_json::Value;
use tracekeeper_model::{otlp, Span};

use super::process::{Spawned, ANY_PORT};
use super::{now_ns, Server};

pub const PARTITIONS: i32 = 6;

/// Every collector of a cluster: a produce Kafka has not acknowledged in 5 s is
/// answered as retryable.
const COLLECTOR_FLAGS: &[&str] = &["--kafka-ack-timeout", "5s"];

pub struct Cluster {
    pub kafka: String,
    pub cql: String,
    pub topic: String,
    pub keyspace: String,
    pub group: String,
    /// The indexers' dead-letter topic.
    pub dead_letters: String,
    /// Three replicas of everything (a cluster), or one (a one-node stack).
    pub replicated: bool,
}

impl Cluster {
    /// A fresh topic (six partitions) and keyspace named after `name` and this run, on
    /// a one-node stack: one replica of each.
    pub async fn create(kafka: &str, cql: &str, name: &str) -> Self {
        Self::create_with(kafka, cql, name, false).await
    }

    /// The same on a cluster (`cql`: every contact point, comma-separated), replicated
    /// as `tracekeeper-stack` and `schema apply` do by default: the brokers'
    /// default.replication.factor and NetworkTopologyStrategy with 3 replicas.
    pub async fn create_replicated(kafka: &str, cql: &str, name: &str) -> Self {
        Self::create_with(kafka, cql, name, true).await
    }

    async fn create_with(kafka: &str, cql: &str, name: &str, replicated: bool) -> Self {
        let run = format!("{}_{}", std::process::id(), now_ns() % 1_000_000_000);
        let cluster = Self {
            kafka: kafka.to_string(),
            cql: cql.to_string(),
            topic: format!("{name}_{run}"),
            keyspace: format!("tk_{name}_{run}"),
            group: format!("{name}_{run}_indexers"),
            dead_letters: format!("{name}_{run}_dlq"),
            replicated,
        };
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", kafka).create().unwrap();
        let created = admin
            .create_topics(
                &[NewTopic::new(&cluster.topic, PARTITIONS, TopicReplication::Fixed(if replicated { -1 } else { 1 }))],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
            )
            .await
            .unwrap();
        assert!(created.iter().all(Result::is_ok), "creating the topic: {created:?}");
        let mut apply = Command::new(env!("CARGO_BIN_EXE_tracekeeper"));
        apply.args(["schema", "apply", "--keyspace", &cluster.keyspace, "--cql-nodes", cql]);
        if !replicated {
            apply.args(["--replication", "{'class': 'SimpleStrategy', 'replication_factor': 1}"]);
        }
        let applied = apply.status().unwrap();
        assert!(applied.success(), "schema apply failed");
        cluster
    }

    /// `tracekeeper check` on this cluster's keyspace: no violation, a warning about
    /// replication exactly when there is one replica, and returns the number of spans
    /// stored for the default tenant.
    pub fn checked_spans(&self) -> u64 {
        let report = super::check_store(&["--cql-nodes", &self.cql, "--keyspace", &self.keyspace]);
        let warnings = report["warnings"].as_array().cloned().unwrap_or_default();
        if self.replicated {
            assert!(warnings.is_empty(), "{report}");
        } else {
            assert!(warnings.iter().any(|w| w.as_str().is_some_and(|w| w.contains("1 replica(s)"))), "{report}");
        }
        report["tenants"]["single-tenant"]["spans"].as_u64().unwrap_or(0)
    }

    pub fn collector(&self) -> Server {
        Server::start_collector(&self.kafka, &self.topic, COLLECTOR_FLAGS)
    }

    /// A collector as a process of its own, for SIGTERM and restarts.
    pub fn collector_process(&self) -> Server {
        Server::start_collector_process(&self.kafka, &self.topic, COLLECTOR_FLAGS)
    }

    /// An indexer of this cluster's group; `session_timeout` sets how fast the group
    /// gives up on it.
    pub async fn indexer(&self, session_timeout: &str) -> Process {
        self.indexer_in_group(&self.group, session_timeout).await
    }

    /// An indexer of another consumer group: it reads the topic from the start.
    pub async fn indexer_in_group(&self, group: &str, session_timeout: &str) -> Process {
        self.indexer_with(group, &self.cql, &["--session-timeout", session_timeout]).await
    }

    /// An indexer of `group` reaching Cassandra at `cql` (contact points), with `extra`
    /// flags.
    pub async fn indexer_with(&self, group: &str, cql: &str, extra: &[&str]) -> Process {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tracekeeper"));
        command.arg("indexer").args(["--kafka-brokers", &self.kafka, "--kafka-topic", &self.topic]);
        command.args(["--group", group, "--cql-nodes", cql, "--keyspace", &self.keyspace]);
        command.args(["--admin-addr", ANY_PORT, "--kafka-dlq-topic", &self.dead_letters]).args(extra);
        Process::spawn(command, "admin").await
    }

    /// `tracekeeper retention` on this cluster's keyspace, with `extra` flags.
    pub async fn retention(&self, extra: &[&str]) -> Process {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tracekeeper"));
        command.arg("retention").args(["--cql-nodes", &self.cql, "--keyspace", &self.keyspace]);
        command.args(["--admin-addr", ANY_PORT]).args(extra);
        Process::spawn(command, "admin").await
    }

    pub async fn query(&self) -> Process {
        self.query_with(&[]).await
    }

    /// `tracekeeper query` with `extra` flags.
    pub async fn query_with(&self, extra: &[&str]) -> Process {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tracekeeper"));
        command.arg("query").args(["--query-addr", ANY_PORT, "--cql-nodes", &self.cql, "--keyspace", &self.keyspace]);
        command.args(extra);
        Process::spawn(command, "query").await
    }
}

/// A `tracekeeper` process with an HTTP address (admin or query).
pub struct Process {
    spawned: Spawned,
    pub addr: String,
}

impl Process {
    /// Starts `command` (its first argument names the role; its listeners on
    /// [`ANY_PORT`]) and waits until its `listener` answers `/ready` with 200.
    pub async fn spawn(mut command: Command, listener: &str) -> Self {
        let role = command.get_args().next().map(|a| a.to_string_lossy().into_owned()).unwrap_or_default();
        command.stdout(Stdio::null());
        let ready = |bound: &super::process::Listening| {
            let url = bound.get(listener).map(|addr| format!("http://{addr}/ready"));
            url.is_some_and(|url| matches!(super::http_status(&url), Ok(200)))
        };
        let spawned = Spawned::start(command, &role, ready);
        let addr = spawned.listening(listener);
        Self { spawned, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.spawned.pid()
    }

    pub fn kill9(&mut self) {
        self.spawned.kill9();
    }

    /// SIGTERM, and waits (up to 20 s) for it to exit; its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.spawned.terminate()
    }

    /// SIGSTOP: the process freezes, heartbeats and all.
    pub fn pause(&self) {
        self.spawned.signal("-STOP");
    }

    pub fn resume(&self) {
        self.spawned.signal("-CONT");
    }

    pub async fn json(&self, path: &str) -> Value {
        reqwest::get(self.url(path)).await.unwrap().json().await.unwrap()
    }

    /// The value of a Prometheus counter or gauge summed over its label sets; 0 when
    /// absent.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::get(self.url("/metrics")).await.unwrap().text().await.unwrap();
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// Posts `spans` as OTLP protobuf until a collector acknowledges them, retrying on the
/// retryable answers (429, 503) as an OTLP exporter does, and counting each in
/// `retries` as it happens.
pub async fn post_until_acked(collector: &Server, spans: &[Span], give_up: Duration, retries: &AtomicUsize) {
    let body = otlp::to_request(spans).encode_to_vec();
    let deadline = Instant::now() + give_up;
    loop {
        let (status, reply) = collector.post_otlp(body.clone(), "application/x-protobuf", &[]).await;
        match status {
            200 => return,
            429 | 503 => {
                retries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                assert!(Instant::now() < deadline, "no acknowledgement within {give_up:?}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            other => panic!("unexpected status {other}: {}", String::from_utf8_lossy(&reply)),
        }
    }
}

/// Waits until the query node serves every trace complete, each span exactly once, and
/// search finds all of them; panics with the first trace that is not. Asks about 16
/// traces at once.
pub async fn assert_all_served(query: &Process, traces: &[Vec<Span>], within: Duration) {
    use futures::StreamExt;
    let deadline = Instant::now() + within;
    let client = reqwest::Client::new();
    let checks = futures::stream::iter(traces).map(|spans| {
        let client = &client;
        async move {
            let url = query.url(&format!("/api/traces/{}", spans[0].trace_id.to_hex()));
            let mut expected: Vec<String> = spans.iter().map(|s| s.span_id.to_hex()).collect();
            expected.sort();
            loop {
                let body: Value = match client.get(&url).send().await {
                    Ok(reply) => reply.json().await.unwrap_or_default(),
                    Err(_) => Value::Null,
                };
                let mut served: Vec<String> = body["data"][0]["spans"]
                    .as_array()
                    .map(|a| a.iter().map(|s| s["spanID"].as_str().unwrap().to_string()).collect())
                    .unwrap_or_default();
                served.sort();
                let mut distinct = served.clone();
                distinct.dedup();
                assert_eq!(distinct.len(), served.len(), "a span is served twice in trace {}", spans[0].trace_id);
                if served == expected {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "trace {} incomplete: {served:?} of {expected:?}",
                    spans[0].trace_id
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
    checks.buffer_unordered(16).collect::<Vec<()>>().await;
    assert_all_searchable(query, traces).await;
}

/// Every trace is found by searching for its `db` span, and nothing else is: Tempo's
/// search, over two seconds from each second the traces start in (a trace's spans may
/// start in the next), each window's traces within one answer's limit.
pub async fn assert_all_searchable(query: &Process, traces: &[Vec<Span>]) {
    use std::collections::BTreeSet;
    let expected: BTreeSet<String> = traces.iter().map(|t| t[0].trace_id.to_hex()).collect();
    let seconds: BTreeSet<u64> = traces.iter().map(|t| t[0].start_ns / 1_000_000_000).collect();
    let mut found = BTreeSet::new();
    for second in seconds {
        let path = format!("/api/search?tags=service.name%3Ddb&start={second}&end={}&limit=10000", second + 2);
        let body = query.json(&path).await;
        let answered = body["traces"].as_array().unwrap_or_else(|| panic!("search {path}: {body}"));
        assert!(answered.len() < 10_000, "a second holds more traces than one answer: {path}");
        found.extend(answered.iter().map(|t| format!("{:0>32}", t["traceID"].as_str().unwrap())));
    }
    let missing: Vec<&String> = expected.difference(&found).take(5).collect();
    let extra: Vec<&String> = found.difference(&expected).take(5).collect();
    assert!(missing.is_empty(), "{} traces not found by search, e.g. {missing:?}", expected.difference(&found).count());
    assert!(extra.is_empty(), "search found traces never acknowledged, e.g. {extra:?}");
}
