//! The flags of the tools that are not roles: `check`, `compact` and `dlq`.

use std::path::PathBuf;
use std::time::Duration;

use tracekeeper_indexer::kafka::dead_letter;

use super::{parse_duration, ConfigArgs, CqlSecurityArgs, KafkaSecurityArgs};

#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Embedded store to check. Stop all-in-one first: it locks its directory.
    #[arg(long, conflicts_with = "cql_nodes")]
    pub data_dir: Option<PathBuf>,
    /// CQL store to check: contact points, comma-separated host:port.
    #[arg(long, value_delimiter = ',')]
    pub cql_nodes: Vec<String>,
    /// Keyspace of the CQL store.
    #[arg(long, default_value = "tracekeeper")]
    pub keyspace: String,
    /// Default retention the data is held to, as a Go duration.
    #[arg(long, default_value = "168h")]
    pub retention: String,
    /// Per-tenant retention, `tenant=duration`, comma-separated or repeated.
    #[arg(long, value_delimiter = ',')]
    pub tenant_retention: Vec<String>,
    /// Slack past retention before data that still exists counts as a violation
    /// (the worker runs periodically; one bucket width is added: the embedded store's, or
    /// an hour on CQL).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub grace: Duration,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cql_security: CqlSecurityArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct CompactArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Data directory of the embedded store. Stop all-in-one first: it locks its
    /// directory, and this command says so if it is still running.
    #[arg(long, env = "TRACEKEEPER_DATA_DIR")]
    pub data_dir: PathBuf,
}

#[derive(Debug, clap::Subcommand)]
pub enum DlqCommand {
    /// Send the messages waiting in the dead-letter topic back to the topic each came
    /// from (or to --to-topic), without the headers the indexer added, once the cause is
    /// fixed. Progress is kept in a consumer group, so a second run sends only what
    /// arrived since. Stops when it has sent what was waiting when it started.
    Replay(ReplayArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Kafka bootstrap servers, comma-separated host:port.
    #[arg(long, env = "TRACEKEEPER_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,
    /// The dead-letter topic to read.
    #[arg(long, env = "TRACEKEEPER_KAFKA_DLQ_TOPIC", default_value = dead_letter::DEFAULT_TOPIC)]
    pub kafka_dlq_topic: String,
    /// Send every message here instead of back to the topic it came from.
    #[arg(long)]
    pub to_topic: Option<String>,
    /// Consumer group that remembers how far replays have gone.
    #[arg(long, default_value = "tracekeeper-dlq-replay")]
    pub group: String,
    #[command(flatten)]
    pub kafka_security: KafkaSecurityArgs,
}
