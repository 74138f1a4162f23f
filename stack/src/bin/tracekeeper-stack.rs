//! `tracekeeper-stack up`: starts Kafka and a CQL database (one node each, or a
//! cluster) for local use or for a whole test run, prints where they are, and stops
//! them (removing their data) on SIGINT or SIGTERM. `tracekeeper-stack node` breaks
//! single nodes of a running cluster.

use std::io::Write;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracekeeper_stack::cluster::{Control, CLUSTER_CONTROL_ENV, CLUSTER_CQL_ENV, CLUSTER_KAFKA_ENV};
use tracekeeper_stack::local::{LocalStack, Shape};
use tracekeeper_stack::{CQL_ENV, KAFKA_CA_ENV, KAFKA_ENV, KAFKA_SASL_SSL_ENV};

#[derive(Parser)]
#[command(about = "Real Kafka (KRaft) and Cassandra 5.0 as local JVM processes, for tests and local use")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start both services; print `TRACEKEEPER_TEST_KAFKA=...` and `TRACEKEEPER_TEST_CQL=...`
    /// (for a cluster: `TRACEKEEPER_TEST_CLUSTER_KAFKA`, `_CQL` and `_CONTROL`).
    Up {
        /// Also write those lines to this file once every node is ready.
        #[arg(long)]
        env_file: Option<std::path::PathBuf>,
        /// Cassandra nodes, on 127.0.0.1, 127.0.0.2, ... (same ports, one datacenter,
        /// a rack each). About 1.7 GiB of memory each.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=9))]
        cassandra_nodes: u8,
        /// Kafka brokers, on 127.0.0.1, 127.0.0.2, ..., all KRaft controllers; with more
        /// than one, topics default to replication factor min(3, N) and
        /// min.insync.replicas 2. About 0.7 GiB each.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=9))]
        kafka_brokers: u8,
    },
    /// Break or mend one node of a running cluster, through its control channel.
    Node {
        /// The channel, as `up` printed it (`TRACEKEEPER_TEST_CLUSTER_CONTROL`).
        #[arg(long, env = CLUSTER_CONTROL_ENV)]
        control: String,
        /// kill (SIGKILL), stop (SIGTERM, waiting for the exit), pause (SIGSTOP),
        /// resume (SIGCONT), start (a stopped or killed node, on its data) or list.
        #[arg(value_parser = ["kill", "stop", "pause", "resume", "start", "list"])]
        action: String,
        /// The node: cassandra-N or kafka-N.
        #[arg(required_if_eq_any = [("action", "kill"), ("action", "stop"), ("action", "pause"), ("action", "resume"), ("action", "start")])]
        node: Option<String>,
    },
    /// Create a topic (no-op if it exists), e.g. the span topic before a benchmark.
    Topic {
        /// Kafka bootstrap servers.
        #[arg(long)]
        brokers: String,
        /// Topic name.
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 6)]
        partitions: i32,
    },
}

async fn create_topic(brokers: &str, name: &str, partitions: i32) -> anyhow::Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::types::RDKafkaErrorCode;
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", brokers).create()?;
    let options = AdminOptions::new().operation_timeout(Some(std::time::Duration::from_secs(30)));
    // -1: the broker's default.replication.factor.
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(-1));
    let results = admin.create_topics(&[topic], &options).await?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("creating topic {topic}: {code}"),
        }
    }
    Ok(())
}

async fn node(control: String, action: &str, node: Option<String>) -> anyhow::Result<()> {
    let control = Control { addr: control };
    let node = node.unwrap_or_default();
    match action {
        "kill" => control.kill(&node).await?,
        "stop" => control.stop(&node).await?,
        "pause" => control.pause(&node).await?,
        "resume" => control.resume(&node).await?,
        "start" => control.start(&node).await?,
        _ => {
            for (name, pid) in control.nodes().await? {
                println!("{name}\t{}", pid.map_or_else(|| "down".to_string(), |p| format!("running (pid {p})")));
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (env_file, shape) = match Cli::parse().command {
        Cmd::Up { env_file, cassandra_nodes, kafka_brokers } => {
            (env_file, Shape { cassandra_nodes: cassandra_nodes.into(), kafka_brokers: kafka_brokers.into() })
        }
        Cmd::Topic { brokers, name, partitions } => return create_topic(&brokers, &name, partitions).await,
        Cmd::Node { control, action, node: name } => return node(control, &action, name).await,
    };
    eprintln!(
        "starting {} Kafka broker(s) and {} Cassandra node(s) (first run resolves the jars from Maven Central)...",
        shape.kafka_brokers, shape.cassandra_nodes
    );
    let started = std::time::Instant::now();
    let stack = LocalStack::start_shape(shape).await.context("starting the stack")?;
    let cluster = shape.cassandra_nodes > 1 || shape.kafka_brokers > 1;
    let mut lines = String::new();
    let mut control = None;
    if cluster {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        lines = format!(
            "{CLUSTER_KAFKA_ENV}={}\n{CLUSTER_CQL_ENV}={}\n{CLUSTER_CONTROL_ENV}={}\n",
            stack.endpoints.kafka,
            stack.cql_nodes.join(","),
            listener.local_addr()?
        );
        control = Some(listener);
    } else {
        lines.push_str(&format!("{KAFKA_ENV}={}\n{CQL_ENV}={}\n", stack.endpoints.kafka, stack.endpoints.cql));
        if let Some(secured) = &stack.endpoints.kafka_secured {
            lines.push_str(&format!(
                "{KAFKA_SASL_SSL_ENV}={}\n{KAFKA_CA_ENV}={}\n",
                secured.bootstrap,
                secured.ca.display()
            ));
        }
    }
    print!("{lines}");
    std::io::stdout().flush()?;
    if let Some(path) = env_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &lines)?;
        std::fs::rename(&tmp, &path)?;
    }
    eprintln!("ready in {:.1} s; Ctrl-C stops every node and removes their data", started.elapsed().as_secs_f64());
    let stack = std::sync::Arc::new(std::sync::Mutex::new(stack));
    if let Some(listener) = control {
        tokio::spawn(tracekeeper_stack::cluster::serve_control(std::sync::Arc::clone(&stack), listener));
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("stopping...");
    // Every node is sent SIGTERM; the stack's drop, as the runtime ends, kills what is
    // left and removes the data.
    tokio::task::spawn_blocking(move || stack.lock().unwrap_or_else(std::sync::PoisonError::into_inner).terminate())
        .await?;
    Ok(())
}
