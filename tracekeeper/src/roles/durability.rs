//! What `/api/status` says about durability, read once at start: the keyspace's
//! replication and each consumed topic's replicas and `min.insync.replicas`, with a
//! warning (also logged) for each setting that lets one lost node lose or stop data.

use serde_json::{json, Value};
use tracekeeper_kafka::durability::TopicDurability;
use tracekeeper_kafka::ClientConfig;
use tracekeeper_storage::cql::replication::Replication;

pub async fn report(
    session: &scylla::client::session::Session,
    keyspace: &str,
    topics: &[(ClientConfig, String)],
) -> Value {
    let mut warnings = Vec::new();
    let replication = match Replication::read(session, keyspace).await {
        Ok(replication) => {
            warnings.extend(replication.warnings());
            json!(replication)
        }
        Err(e) => {
            warnings.push(format!("the replication of keyspace {keyspace} could not be read: {e}"));
            Value::Null
        }
    };
    let mut described = Vec::new();
    for (client, topic) in topics {
        match TopicDurability::read(client, topic).await {
            Ok(durability) => {
                warnings.extend(durability.warnings());
                described.push(json!(durability));
            }
            Err(e) => warnings.push(format!("topic {topic} could not be described: {e}")),
        }
    }
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    json!({ "keyspace": replication, "topics": described, "warnings": warnings })
}
