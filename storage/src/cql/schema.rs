//! Applying the versioned CQL schema in `schemas/`.

use scylla::client::session::Session;

use crate::api::StorageError;

/// Every schema version, in order. Each statement is idempotent (IF NOT EXISTS).
const VERSIONS: [(&str, &str); 6] = [
    ("v001", include_str!("../../../schemas/v001.cql")),
    ("v002", include_str!("../../../schemas/v002.cql")),
    ("v003", include_str!("../../../schemas/v003.cql")),
    ("v004", include_str!("../../../schemas/v004.cql")),
    ("v005", include_str!("../../../schemas/v005.cql")),
    ("v006", include_str!("../../../schemas/v006.cql")),
];

/// Which CQL database the schema goes to; they differ in keyspace options only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Cassandra,
    /// ScyllaDB: its tablet keyspaces refuse lightweight transactions, so tablets are
    /// turned off for ours.
    Scylla,
}

impl Flavor {
    fn keyspace_options(self) -> &'static str {
        match self {
            Flavor::Cassandra => "",
            Flavor::Scylla => " AND tablets = {'enabled': false}",
        }
    }

    /// ScyllaDB has a `system.scylla_local` table; Cassandra does not.
    pub async fn detect(session: &Session) -> Self {
        match session.query_unpaged("SELECT key FROM system.scylla_local LIMIT 1", ()).await {
            Ok(_) => Flavor::Scylla,
            Err(_) => Flavor::Cassandra,
        }
    }
}

/// The statements of every schema version for `keyspace`, with `replication` (a CQL
/// map literal such as `{'class': 'SimpleStrategy', 'replication_factor': 1}`).
pub fn statements(keyspace: &str, replication: &str, flavor: Flavor) -> Result<Vec<String>, StorageError> {
    if keyspace.is_empty() || keyspace.len() > 48 || !keyspace.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StorageError::Io(format!(
            "invalid keyspace name {keyspace:?}: use 1 to 48 letters, digits or underscores"
        )));
    }
    let mut out = Vec::new();
    for (_, text) in VERSIONS {
        let without_comments: String =
            text.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n");
        for statement in without_comments.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            out.push(
                statement
                    .replace("${keyspace_options}", flavor.keyspace_options())
                    .replace("${keyspace}", keyspace)
                    .replace("${replication}", replication),
            );
        }
    }
    Ok(out)
}

/// Applies every version; safe to run any number of times, from any number of nodes.
pub async fn apply(session: &Session, keyspace: &str, replication: &str) -> Result<usize, StorageError> {
    let statements = statements(keyspace, replication, Flavor::detect(session).await)?;
    for statement in &statements {
        session
            .query_unpaged(statement.as_str(), ())
            .await
            .map_err(|e| StorageError::Unavailable(format!("applying the schema: {e}")))?;
    }
    session.await_schema_agreement().await.map_err(|e| StorageError::Unavailable(format!("schema agreement: {e}")))?;
    Ok(statements.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_filled_in_and_keyspace_names_checked() {
        let replication = "{'class': 'SimpleStrategy', 'replication_factor': 1}";
        let statements = statements("tk_test", replication, Flavor::Cassandra).unwrap();
        assert!(statements[0].starts_with("CREATE KEYSPACE IF NOT EXISTS tk_test"));
        assert!(statements[0].ends_with("'replication_factor': 1}"), "{}", statements[0]);
        let scylla = super::statements("tk_test", replication, Flavor::Scylla).unwrap();
        assert!(scylla[0].ends_with("AND tablets = {'enabled': false}"), "{}", scylla[0]);
        assert!(statements.iter().any(|s| s.contains("tk_test.partition_owners")));
        assert!(statements.iter().all(|s| !s.contains("${")));
        assert!(statements.iter().skip(1).all(|s| s.contains("IF NOT EXISTS tk_test.")));
        assert!(super::statements("bad-name", "{}", Flavor::Cassandra).is_err());
    }
}
