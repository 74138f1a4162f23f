//! Applying the versioned CQL schema in `schemas/`.

use std::collections::BTreeSet;

use scylla::client::session::Session;

use crate::api::StorageError;

/// A schema version: its name and its statements.
pub(crate) type Version = (&'static str, &'static str);

/// Every schema version, in order. Each statement is idempotent (IF NOT EXISTS, IF
/// EXISTS).
pub(crate) const VERSIONS: [Version; 10] = [
    ("v001", include_str!("../../../schemas/v001.cql")),
    ("v002", include_str!("../../../schemas/v002.cql")),
    ("v003", include_str!("../../../schemas/v003.cql")),
    ("v004", include_str!("../../../schemas/v004.cql")),
    ("v005", include_str!("../../../schemas/v005.cql")),
    ("v006", include_str!("../../../schemas/v006.cql")),
    ("v007", include_str!("../../../schemas/v007.cql")),
    ("v008", include_str!("../../../schemas/v008.cql")),
    ("v009", include_str!("../../../schemas/v009.cql")),
    ("v010", include_str!("../../../schemas/v010.cql")),
];

/// The version every role needs the keyspace to have had applied.
pub const LATEST: &str = VERSIONS[VERSIONS.len() - 1].0;

/// Versions that only add a column (version, table, column). `ALTER TABLE ... ADD` has
/// no `IF NOT EXISTS` on every flavour, so a run that finds the column skips them.
const ADDED_COLUMNS: &[(&str, &str, &str)] =
    &[("v009", "red_minutes", "root"), ("v010", "red_minutes", "fine_buckets")];

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

/// The statements of `versions` for `keyspace`, with `replication` (a CQL map literal
/// such as `{'class': 'SimpleStrategy', 'replication_factor': 1}`).
fn statements_of(
    versions: &[Version],
    keyspace: &str,
    replication: &str,
    flavor: Flavor,
) -> Result<Vec<String>, StorageError> {
    check_keyspace_name(keyspace)?;
    let mut out = Vec::new();
    for (_, text) in versions {
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

/// The statements of every schema version for `keyspace`.
pub fn statements(keyspace: &str, replication: &str, flavor: Flavor) -> Result<Vec<String>, StorageError> {
    statements_of(&VERSIONS, keyspace, replication, flavor)
}

fn check_keyspace_name(keyspace: &str) -> Result<(), StorageError> {
    if keyspace.is_empty() || keyspace.len() > 48 || !keyspace.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StorageError::Io(format!(
            "invalid keyspace name {keyspace:?}: use 1 to 48 letters, digits or underscores"
        )));
    }
    Ok(())
}

/// The versions recorded as applied to `keyspace`: none for a keyspace created before
/// v007 (or not at all), whose versions up to v006 are applied again, harmlessly.
pub async fn applied(session: &Session, keyspace: &str) -> Result<BTreeSet<String>, StorageError> {
    check_keyspace_name(keyspace)?;
    let unavailable =
        |e: &dyn std::fmt::Display| StorageError::Unavailable(format!("reading the schema versions: {e}"));
    let corrupt = |e: &dyn std::fmt::Display| StorageError::Corrupt(format!("the schema versions: {e}"));
    let exists = session
        .query_unpaged(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ? AND table_name = 'schema_versions'",
            (keyspace,),
        )
        .await
        .map_err(|e| unavailable(&e))?
        .into_rows_result()
        .map_err(|e| corrupt(&e))?
        .rows_num()
        > 0;
    if !exists {
        return Ok(BTreeSet::new());
    }
    let result = session
        .query_unpaged(format!("SELECT version FROM {keyspace}.schema_versions"), ())
        .await
        .map_err(|e| unavailable(&e))?;
    let rows = result.into_rows_result().map_err(|e| corrupt(&e))?;
    let versions = rows.rows::<(String,)>().map_err(|e| corrupt(&e))?;
    versions.map(|row| row.map(|(v,)| v).map_err(|e| corrupt(&e))).collect()
}

/// Applies every version not yet recorded; safe to run any number of times, from any
/// number of nodes. Returns the number of statements run.
pub async fn apply(session: &Session, keyspace: &str, replication: &str) -> Result<usize, StorageError> {
    apply_versions(session, keyspace, replication, &VERSIONS).await
}

/// [`apply`] for the first versions only: how tests make a keyspace as an older version
/// left it.
pub(crate) async fn apply_versions(
    session: &Session,
    keyspace: &str,
    replication: &str,
    versions: &[Version],
) -> Result<usize, StorageError> {
    let flavor = Flavor::detect(session).await;
    let done = applied(session, keyspace).await?;
    let mut count = 0;
    let mut recorded = Vec::new();
    for version @ (name, _) in versions {
        if done.contains(*name) {
            continue;
        }
        if *name == "v007" {
            let moved = super::migrate::move_legacy_postings(session, keyspace).await?;
            if moved > 0 {
                tracing::info!(moved, keyspace, "moved the pre-v006 postings into packed rows");
            }
        }
        // A column an interrupted run already added is not added again.
        let added = match ADDED_COLUMNS.iter().find(|(version, ..)| version == name) {
            Some((_, table, column)) => has_column(session, keyspace, table, column).await?,
            None => false,
        };
        for statement in statements_of(std::slice::from_ref(version), keyspace, replication, flavor)? {
            if !added {
                run(session, &statement).await?;
                count += 1;
            }
        }
        recorded.push(*name);
    }
    session.await_schema_agreement().await.map_err(|e| StorageError::Unavailable(format!("schema agreement: {e}")))?;
    if versions.iter().any(|(name, _)| *name >= "v007") {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
        for name in recorded {
            let record = format!("INSERT INTO {keyspace}.schema_versions (version, applied_ns) VALUES (?, ?)");
            session
                .query_unpaged(record, (name, now))
                .await
                .map_err(|e| StorageError::Unavailable(format!("recording schema {name}: {e}")))?;
        }
    }
    Ok(count)
}

async fn has_column(session: &Session, keyspace: &str, table: &str, column: &str) -> Result<bool, StorageError> {
    let query =
        "SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ? AND column_name = ?";
    let result = session
        .query_unpaged(query, (keyspace, table, column))
        .await
        .map_err(|e| StorageError::Unavailable(format!("reading the schema of {keyspace}.{table}: {e}")))?;
    let rows = result.into_rows_result().map_err(|e| StorageError::Unavailable(format!("schema of {table}: {e}")))?;
    Ok(rows.rows_num() > 0)
}

async fn run(session: &Session, statement: &str) -> Result<(), StorageError> {
    session
        .query_unpaged(statement, ())
        .await
        .map(|_| ())
        .map_err(|e| StorageError::Unavailable(format!("applying the schema: {e}")))
}

/// Refuses a keyspace that lacks [`LATEST`]: a role of this version would read it
/// wrongly (pre-v006 postings unseen, say).
pub async fn require_latest(session: &Session, keyspace: &str) -> Result<(), StorageError> {
    if applied(session, keyspace).await?.contains(LATEST) {
        return Ok(());
    }
    Err(StorageError::NeedsUpgrade(format!(
        "keyspace {keyspace} lacks schema {LATEST}, which this version needs: run `tracekeeper schema apply` with \
         this version first (README, \"Upgrading\")"
    )))
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
        // Every statement may run again; an ALTER ... ADD is skipped when its column exists.
        assert!(statements.iter().skip(1).all(|s| s.contains("IF NOT EXISTS tk_test.")
            || s.contains("IF EXISTS tk_test.")
            || s == "ALTER TABLE tk_test.red_minutes ADD root boolean"
            || s == "ALTER TABLE tk_test.red_minutes ADD fine_buckets map<smallint, bigint>"));
        assert!(statements.iter().any(|s| s == "DROP TABLE IF EXISTS tk_test.postings"), "v007");
        assert!(super::statements("bad-name", "{}", Flavor::Cassandra).is_err());
    }
}
