//! Applying the versioned CQL schema in `schemas/`.

use scylla::client::session::Session;

use crate::api::StorageError;

/// Every schema version, in order. Each statement is idempotent (IF NOT EXISTS).
const VERSIONS: [(&str, &str); 1] = [("v001", include_str!("../../../schemas/v001.cql"))];

/// The statements of every schema version for `keyspace`, with `replication` (a CQL
/// map literal such as `{'class': 'SimpleStrategy', 'replication_factor': 1}`).
pub fn statements(keyspace: &str, replication: &str) -> Result<Vec<String>, StorageError> {
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
            out.push(statement.replace("${keyspace}", keyspace).replace("${replication}", replication));
        }
    }
    Ok(out)
}

/// Applies every version; safe to run any number of times, from any number of nodes.
pub async fn apply(session: &Session, keyspace: &str, replication: &str) -> Result<usize, StorageError> {
    let statements = statements(keyspace, replication)?;
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
        let statements = statements("tk_test", "{'class': 'SimpleStrategy', 'replication_factor': 1}").unwrap();
        assert!(statements[0].starts_with("CREATE KEYSPACE IF NOT EXISTS tk_test"));
        assert!(statements.iter().all(|s| !s.contains("${")));
        assert!(statements.iter().skip(1).all(|s| s.contains("IF NOT EXISTS tk_test.")));
        assert!(super::statements("bad-name", "{}").is_err());
    }
}
