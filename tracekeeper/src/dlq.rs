//! `tracekeeper dlq`: the indexers' dead-letter topic.

use anyhow::Context;
use tracekeeper_indexer::kafka::dead_letter::{self, ReplayConfig};

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
    pub config: crate::cli::ConfigArgs,
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
    pub kafka_security: crate::cli::KafkaSecurityArgs,
}

pub async fn run(command: DlqCommand) -> anyhow::Result<()> {
    let DlqCommand::Replay(args) = command;
    let client = tracekeeper_indexer::kafka::client_config(&args.kafka_brokers, &args.kafka_security.options()?);
    let config = ReplayConfig {
        client,
        dead_letter_topic: args.kafka_dlq_topic.clone(),
        to_topic: args.to_topic,
        group: args.group,
    };
    let report = dead_letter::replay(&config, |done, waiting| {
        if done % 100 == 0 || done == waiting {
            eprintln!("replayed {done} of {waiting}");
        }
    })
    .await
    .with_context(|| format!("replaying {}", args.kafka_dlq_topic))?;
    if report.waiting == 0 {
        println!("no messages waiting in {}", args.kafka_dlq_topic);
    }
    for (topic, count) in &report.republished {
        println!("{count} message(s) sent to {topic}");
    }
    Ok(())
}
