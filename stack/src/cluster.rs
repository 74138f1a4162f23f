//! A cluster stack for the fault suite: several Cassandra nodes and Kafka brokers
//! (`tracekeeper-stack up --cassandra-nodes 3 --kafka-brokers 3`), and a control
//! channel through which tests kill, pause, resume and restart single nodes.
//!
//! Nodes are named `cassandra-N` and `kafka-N`; node N listens on 127.0.0.N, and broker
//! `kafka-N` has node id N. The control channel is a line protocol on a loopback TCP
//! port: a request is `VERB NODE` (`kill`: SIGKILL; `stop`: SIGTERM and wait for it
//! to exit; `pause`: SIGSTOP; `resume`: SIGCONT; `start`: start a stopped or killed
//! node again on its data) or `nodes`, the answer a line `ok ...` or `error ...`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OnceCell;

use crate::local::{LocalStack, Shape};
use crate::StackError;

pub const CLUSTER_KAFKA_ENV: &str = "TRACEKEEPER_TEST_CLUSTER_KAFKA";
/// The CQL nodes' contact points, comma-separated.
pub const CLUSTER_CQL_ENV: &str = "TRACEKEEPER_TEST_CLUSTER_CQL";
/// The control channel, `host:port`.
pub const CLUSTER_CONTROL_ENV: &str = "TRACEKEEPER_TEST_CLUSTER_CONTROL";

/// Where a cluster is, and how to break it.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Bootstrap servers: every broker.
    pub kafka: String,
    /// Every CQL node's contact point, `cassandra-1` first.
    pub cql: Vec<String>,
    pub control: Control,
}

/// The client side of the control channel.
#[derive(Debug, Clone)]
pub struct Control {
    pub addr: String,
}

impl Control {
    async fn ask(&self, request: &str) -> Result<String, StackError> {
        let stream = TcpStream::connect(&self.addr).await?;
        let (read, mut write) = stream.into_split();
        write.write_all(format!("{request}\n").as_bytes()).await?;
        let mut line = String::new();
        BufReader::new(read).read_line(&mut line).await?;
        match line.trim_end().split_once(' ').unwrap_or((line.trim_end(), "")) {
            ("ok", rest) => Ok(rest.to_string()),
            (_, rest) => Err(StackError::Unavailable(format!("{request}: {rest}"))),
        }
    }

    /// SIGKILL of the node's JVM; its data stays for [`Self::start`].
    pub async fn kill(&self, node: &str) -> Result<(), StackError> {
        self.ask(&format!("kill {node}")).await.map(drop)
    }

    /// SIGTERM, and returns once the node has exited (a clean shutdown, at most a
    /// minute; then SIGKILL).
    pub async fn stop(&self, node: &str) -> Result<(), StackError> {
        self.ask(&format!("stop {node}")).await.map(drop)
    }

    /// SIGSTOP: the node holds its sockets open and answers nothing (a grey failure).
    pub async fn pause(&self, node: &str) -> Result<(), StackError> {
        self.ask(&format!("pause {node}")).await.map(drop)
    }

    pub async fn resume(&self, node: &str) -> Result<(), StackError> {
        self.ask(&format!("resume {node}")).await.map(drop)
    }

    /// Starts a killed node again; returns before it is ready.
    pub async fn start(&self, node: &str) -> Result<(), StackError> {
        self.ask(&format!("start {node}")).await.map(drop)
    }

    /// Each node's name and, when it runs, its pid.
    pub async fn nodes(&self) -> Result<Vec<(String, Option<u32>)>, StackError> {
        let listed = self.ask("nodes").await?;
        Ok(listed
            .split_whitespace()
            .filter_map(|entry| entry.split_once('='))
            .map(|(name, pid)| (name.to_string(), pid.parse().ok()))
            .collect())
    }
}

/// Serves the control channel of `stack` on `listener` until the process ends.
pub async fn serve_control(stack: Arc<Mutex<LocalStack>>, listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let stack = Arc::clone(&stack);
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let answer = match handle(&stack, &line) {
                    Ok(text) => format!("ok {text}\n"),
                    Err(e) => format!("error {}\n", e.to_string().replace('\n', " ")),
                };
                if write.write_all(answer.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
    }
}

fn handle(stack: &Mutex<LocalStack>, line: &str) -> Result<String, StackError> {
    let mut stack = stack.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (verb, node) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
    match verb {
        "kill" => stack.signal(node, libc::SIGKILL).map(|()| String::new()),
        "stop" => stack.signal(node, libc::SIGTERM).map(|()| String::new()),
        "pause" => stack.signal(node, libc::SIGSTOP).map(|()| String::new()),
        "resume" => stack.signal(node, libc::SIGCONT).map(|()| String::new()),
        "start" => stack.restart(node).map(|()| String::new()),
        "nodes" => Ok(stack
            .nodes()
            .into_iter()
            .map(|(name, pid)| format!("{name}={}", pid.map_or_else(|| "down".to_string(), |p| p.to_string())))
            .collect::<Vec<_>>()
            .join(" ")),
        other => Err(StackError::Unavailable(format!(
            "unknown request {other:?}: kill, stop, pause, resume or start NODE, or nodes"
        ))),
    }
}

static CLUSTER: OnceCell<Cluster> = OnceCell::const_new();

/// The three-node cluster of this test process: the one named by the environment
/// ([`CLUSTER_KAFKA_ENV`], [`CLUSTER_CQL_ENV`], [`CLUSTER_CONTROL_ENV`], which
/// `ops/test.sh` sets), else one started here, three Cassandra nodes and three
/// brokers, for the life of the process. Panics with the reason when there is none.
pub async fn require_cluster() -> &'static Cluster {
    match CLUSTER.get_or_try_init(discover).await {
        Ok(cluster) => cluster,
        Err(e) => {
            panic!("this test needs a cluster of three Cassandra nodes and three brokers and could not get one: {e}")
        }
    }
}

async fn discover() -> Result<Cluster, StackError> {
    if let (Ok(kafka), Ok(cql), Ok(control)) =
        (std::env::var(CLUSTER_KAFKA_ENV), std::env::var(CLUSTER_CQL_ENV), std::env::var(CLUSTER_CONTROL_ENV))
    {
        let cluster =
            Cluster { kafka, cql: cql.split(',').map(str::to_string).collect(), control: Control { addr: control } };
        cluster.control.nodes().await?;
        return Ok(cluster);
    }
    // The stack and its control channel outlive every test's runtime: their own thread.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name("cluster-stack".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(e) => return drop(tx.send(Err(StackError::Io(e)))),
        };
        runtime.block_on(async move {
            let shape = Shape { cassandra_nodes: 3, kafka_brokers: 3 };
            let started = async {
                let stack = LocalStack::start_shape(shape).await?;
                let listener = TcpListener::bind("127.0.0.1:0").await?;
                Ok::<_, StackError>((stack, listener))
            };
            match started.await {
                Ok((stack, listener)) => {
                    let cluster = Cluster {
                        kafka: stack.endpoints.kafka.clone(),
                        cql: stack.cql_nodes.clone(),
                        control: Control { addr: listener.local_addr().map(|a| a.to_string()).unwrap_or_default() },
                    };
                    let _ = tx.send(Ok(cluster));
                    serve_control(Arc::new(Mutex::new(stack)), listener).await;
                }
                Err(e) => drop(tx.send(Err(e))),
            }
        });
    })?;
    let waited = tokio::time::timeout(Duration::from_secs(600), rx).await;
    waited
        .map_err(|_| StackError::Unavailable("the cluster did not start within 10 minutes".into()))?
        .map_err(|_| StackError::Unavailable("the cluster's thread ended".into()))?
}
