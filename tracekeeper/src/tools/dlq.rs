//! `tracekeeper dlq`: the indexers' dead-letter topic.

use anyhow::Context;
use tracekeeper_kafka::dead_letter::{self, ReplayConfig};

/// Sends what waits in the dead-letter topic back, reporting progress on stderr.
pub async fn replay(config: ReplayConfig) -> anyhow::Result<()> {
    let report = dead_letter::replay(&config, |done, waiting| {
        if done % 100 == 0 || done == waiting {
            eprintln!("replayed {done} of {waiting}");
        }
    })
    .await
    .with_context(|| format!("replaying {}", config.dead_letter_topic))?;
    if report.waiting == 0 {
        println!("no messages waiting in {}", config.dead_letter_topic);
    }
    for (topic, count) in &report.republished {
        println!("{count} message(s) sent to {topic}");
    }
    Ok(())
}
