//! `tracekeeper schema apply` against a real CQL database: creates every table, and a
//! second run, which finds every version recorded, runs nothing and succeeds.

use std::process::Command;

use scylla::client::session_builder::SessionBuilder;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_apply_creates_the_tables_and_is_idempotent() {
    let stack = tracekeeper_stack::require().await;
    let keyspace = format!("tk_apply_{}", std::process::id());
    let apply = || {
        Command::new(env!("CARGO_BIN_EXE_tracekeeper"))
            .args(["schema", "apply", "--keyspace", &keyspace])
            .args(["--replication", "{'class': 'SimpleStrategy', 'replication_factor': 1}"])
            .env("TRACEKEEPER_CQL_NODES", &stack.cql)
            .output()
            .unwrap()
    };
    for run in 1..=2 {
        let output = apply();
        assert!(output.status.success(), "run {run}: {}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.starts_with(&format!("keyspace {keyspace} is at schema v010")), "run {run}: {stdout}");
        assert_eq!(stdout.contains("(0 statements run)"), run == 2, "run {run}: {stdout}");
    }
    let session = SessionBuilder::new().known_node(&stack.cql).build().await.unwrap();
    let rows = session
        .query_unpaged("SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?", (&keyspace,))
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let mut tables: Vec<String> = rows.rows::<(String,)>().unwrap().map(|r| r.unwrap().0).collect();
    tables.sort();
    // v001 created `postings`; v007 moved what it held into `packed_postings` and dropped it.
    let expected = ["bucket_terms", "catalog_days", "operations", "packed_postings", "partition_owners"];
    let expected = [
        &expected[..],
        &["purges", "red_minutes", "retention_lease", "retention_policies", "retention_watermarks"],
        &["schema_versions", "spans"],
    ]
    .concat();
    assert_eq!(tables, expected);
    let added_columns = "SELECT column_name FROM system_schema.columns \
                         WHERE keyspace_name = ? AND table_name = 'red_minutes' AND column_name IN ('root', 'fine_buckets')";
    let found = session.query_unpaged(added_columns, (&keyspace,)).await.unwrap().into_rows_result().unwrap();
    assert_eq!(found.rows_num(), 2, "v009 adds red_minutes.root, v010 red_minutes.fine_buckets");
    // A run cut short after the ALTERs of v009 and v010 but before recording them: the
    // next run does not add the columns twice, and finishes.
    let forget = format!("DELETE FROM {keyspace}.schema_versions WHERE version IN ('v009', 'v010')");
    session.query_unpaged(forget, ()).await.unwrap();
    let again = apply();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert!(String::from_utf8_lossy(&again.stdout).contains("is at schema v010"));
    session.query_unpaged(format!("DROP KEYSPACE {keyspace}"), ()).await.unwrap();

    let bad = Command::new(env!("CARGO_BIN_EXE_tracekeeper"))
        .args(["schema", "apply", "--keyspace", "no-dashes", "--cql-nodes", &stack.cql])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("invalid keyspace name"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
