//! `tracekeeper-stack up`: starts Kafka and a CQL database for local use or for a
//! whole test run, prints where they are, and stops them (removing their data) on
//! SIGINT or SIGTERM.

use std::io::Write;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracekeeper_stack::{local::LocalStack, CQL_ENV, KAFKA_CA_ENV, KAFKA_ENV, KAFKA_SASL_SSL_ENV};

#[derive(Parser)]
#[command(about = "Real Kafka (KRaft) and Cassandra 5.0 as local JVM processes, for tests and local use")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start both services; print `TRACEKEEPER_TEST_KAFKA=...` and `TRACEKEEPER_TEST_CQL=...`.
    Up {
        /// Also write those lines to this file once both services are ready.
        #[arg(long)]
        env_file: Option<std::path::PathBuf>,
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
    let results = admin.create_topics(&[NewTopic::new(name, partitions, TopicReplication::Fixed(1))], &options).await?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("creating topic {topic}: {code}"),
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env_file = match Cli::parse().command {
        Cmd::Up { env_file } => env_file,
        Cmd::Topic { brokers, name, partitions } => return create_topic(&brokers, &name, partitions).await,
    };
    eprintln!("starting Kafka and Cassandra (first run resolves the jars from Maven Central)...");
    let started = std::time::Instant::now();
    let stack = LocalStack::start().await.context("starting the stack")?;
    let mut lines = format!("{KAFKA_ENV}={}\n{CQL_ENV}={}\n", stack.endpoints.kafka, stack.endpoints.cql);
    if let Some(secured) = &stack.endpoints.kafka_secured {
        lines.push_str(&format!(
            "{KAFKA_SASL_SSL_ENV}={}\n{KAFKA_CA_ENV}={}\n",
            secured.bootstrap,
            secured.ca.display()
        ));
    }
    print!("{lines}");
    std::io::stdout().flush()?;
    if let Some(path) = env_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &lines)?;
        std::fs::rename(&tmp, &path)?;
    }
    eprintln!("ready in {:.1} s; Ctrl-C stops both and removes their data", started.elapsed().as_secs_f64());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("stopping...");
    tokio::task::spawn_blocking(move || stack.stop()).await?;
    Ok(())
}
