//! `tracekeeper query` serves the Jaeger API from a real CQL database: spans written
//! through the CQL store come back exactly as all-in-one would show them.

mod support;

use std::process::Command;

use serde_json::{json, Value};
use support::cluster::Process;
use support::process::ANY_PORT;
use support::{now_ns, rich_trace};
use tracekeeper_model::{jaeger, DEFAULT_TENANT};
use tracekeeper_storage::cql::{CqlConfig, CqlStore};
use tracekeeper_storage::{SpanWriter, WriteBatch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_service_reads_the_cql_store() {
    let stack = tracekeeper_stack::require().await;
    let bin = env!("CARGO_BIN_EXE_tracekeeper");
    let keyspace = format!("tk_query_{}", std::process::id());
    let status = Command::new(bin)
        .args(["schema", "apply", "--keyspace", &keyspace, "--cql-nodes", &stack.cql])
        .args(["--replication", "{'class': 'SimpleStrategy', 'replication_factor': 1}"])
        .status()
        .unwrap();
    assert!(status.success());

    let store = CqlStore::connect(&CqlConfig {
        connection: tracekeeper_storage::cql::CqlConnection::plain(std::slice::from_ref(&stack.cql)),
        keyspace: keyspace.clone(),
        consistency: scylla::statement::Consistency::One,
    })
    .await
    .unwrap();
    let now = now_ns();
    let traces: Vec<_> = (0..3).map(|i| rich_trace(700 + i, now - (10 - i) * 1_000_000_000)).collect();
    for spans in &traces {
        let batch = WriteBatch {
            tenant: DEFAULT_TENANT.into(),
            spans: spans.clone(),
            retention_ns: 86_400_000_000_000,
            now_ns: now,
        };
        store.write(batch).await.unwrap();
    }

    let mut command = Command::new(bin);
    command.args(["query", "--query-addr", ANY_PORT, "--cql-nodes", &stack.cql, "--keyspace", &keyspace]);
    let query = Process::spawn(command, "query").await;
    let addr = query.addr.clone();
    let get = |path: String| {
        let url = format!("http://{addr}{path}");
        async move {
            let resp = reqwest::get(url).await?;
            let status = resp.status().as_u16();
            Ok::<_, reqwest::Error>((status, resp.json::<Value>().await.unwrap_or(Value::Null)))
        }
    };
    for spans in &traces {
        let (status, body) = get(format!("/api/traces/{}", spans[0].trace_id.to_hex())).await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"][0], serde_json::to_value(jaeger::to_trace(spans, vec![])).unwrap());
    }
    let (_, body) = get("/api/services".into()).await.unwrap();
    assert_eq!(body["data"], json!(["db", "frontend"]));
    let (_, body) = get("/api/traces?service=db&limit=2".into()).await.unwrap();
    let ids: Vec<&str> = body["data"].as_array().unwrap().iter().map(|t| t["traceID"].as_str().unwrap()).collect();
    assert_eq!(ids, [traces[2][0].trace_id.to_hex(), traces[1][0].trace_id.to_hex()], "newest first, limit 2");
    let (status, _) = get(format!("/api/traces/{}", support::trace_id(999).to_hex())).await.unwrap();
    assert_eq!(status, 404);
}
