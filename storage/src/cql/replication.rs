//! A keyspace's replication as the cluster reports it (`system_schema.keyspaces`), and
//! what is unsafe about it: a datacenter with fewer than three replicas cannot lose a
//! node and still reach `LOCAL_QUORUM` and `LOCAL_SERIAL`.

use std::collections::BTreeMap;

use scylla::client::session::Session;
use serde::Serialize;

use super::errors::{corrupt, unavailable};
use crate::api::StorageError;

/// Replicas per datacenter below which one lost node loses a quorum.
pub const SAFE_REPLICAS: u32 = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replication {
    pub keyspace: String,
    /// The strategy, without its Java package (`NetworkTopologyStrategy`).
    pub class: String,
    /// Replicas per datacenter; `SimpleStrategy`'s one factor is under `"*"`.
    pub replicas: BTreeMap<String, u32>,
}

impl Replication {
    pub async fn read(session: &Session, keyspace: &str) -> Result<Self, StorageError> {
        let rows = session
            .query_unpaged("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?", (keyspace,))
            .await
            .map_err(unavailable)?
            .into_rows_result()
            .map_err(corrupt)?;
        let Some((map,)) = rows.maybe_first_row::<(BTreeMap<String, String>,)>().map_err(corrupt)? else {
            return Err(StorageError::Refused(format!(
                "keyspace {keyspace} does not exist: run tracekeeper schema apply"
            )));
        };
        Ok(Self::from_map(keyspace, &map))
    }

    fn from_map(keyspace: &str, map: &BTreeMap<String, String>) -> Self {
        let class = map.get("class").map_or("", |c| c.rsplit('.').next().unwrap_or(c)).to_string();
        let replicas = map
            .iter()
            .filter(|(k, _)| k.as_str() != "class")
            .filter_map(|(k, v)| {
                let key = if k == "replication_factor" { "*".to_string() } else { k.clone() };
                // Transient replication (`3/1`) counts its full replicas.
                Some((key, v.split('/').next()?.trim().parse().ok()?))
            })
            .collect();
        Self { keyspace: keyspace.to_string(), class, replicas }
    }

    /// What an operator should fix, in words; empty when nothing.
    pub fn warnings(&self) -> Vec<String> {
        if self.replicas.is_empty() {
            return vec![format!("keyspace {} has no replicas in any datacenter ({})", self.keyspace, self.class)];
        }
        self.replicas
            .iter()
            .filter(|(_, n)| **n < SAFE_REPLICAS)
            .map(|(dc, n)| {
                let place = if dc == "*" { "the cluster".to_string() } else { format!("datacenter {dc}") };
                format!(
                    "keyspace {} keeps {n} replica(s) in {place}: with fewer than {SAFE_REPLICAS}, one node down \
                     stops writes at LOCAL_QUORUM and ownership changes at LOCAL_SERIAL (ALTER KEYSPACE {} WITH \
                     replication = {{'class': 'NetworkTopologyStrategy', 'replication_factor': 3}}, then a repair)",
                    self.keyspace, self.keyspace
                )
            })
            .collect()
    }

    /// One line: `NetworkTopologyStrategy dc1=3`.
    pub fn describe(&self) -> String {
        let replicas: Vec<String> = self.replicas.iter().map(|(dc, n)| format!("{dc}={n}")).collect();
        format!("{} {}", self.class, replicas.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(pairs: &[(&str, &str)]) -> Replication {
        let map = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Replication::from_map("tk", &map)
    }

    #[test]
    fn fewer_than_three_replicas_anywhere_is_warned_of() {
        let nts = of(&[("class", "org.apache.cassandra.locator.NetworkTopologyStrategy"), ("dc1", "3"), ("dc2", "2")]);
        assert_eq!(nts.describe(), "NetworkTopologyStrategy dc1=3 dc2=2");
        let warned = nts.warnings();
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(warned[0].contains("2 replica(s) in datacenter dc2"), "{warned:?}");
        let simple = of(&[("class", "org.apache.cassandra.locator.SimpleStrategy"), ("replication_factor", "1")]);
        assert!(simple.warnings()[0].contains("1 replica(s) in the cluster"));
        assert!(of(&[("class", "NetworkTopologyStrategy"), ("dc1", "3/1")]).warnings().is_empty());
        assert_eq!(of(&[("class", "NetworkTopologyStrategy")]).warnings().len(), 1);
    }
}
