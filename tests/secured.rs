//! The distributed shape on secured infrastructure, end to end, through the real binary:
//! the collector and the indexer log in to a SASL_SSL broker (SCRAM-SHA-512 and
//! SCRAM-SHA-256, over TLS verified against the broker's CA); `schema apply`, the
//! indexer and the query node log in to a Cassandra that requires a password and TLS.
//! Every acknowledged span is served; wrong credentials are refused on both.

mod support;

use std::process::Command;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use support::cluster::{assert_all_served, post_until_acked, Process};
use support::process::ANY_PORT;
use support::{now_ns, rich_trace, Server};
use tracekeeper_stack::secure::SecureCassandra;
use tracekeeper_stack::SecuredKafka;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_runs_on_a_sasl_ssl_broker_and_an_authenticated_tls_cassandra() {
    let stack = tracekeeper_stack::require().await;
    let kafka = stack.kafka_secured.clone().expect("the test broker has a SASL_SSL listener");
    let cassandra = SecureCassandra::start().await.expect("a Cassandra with PasswordAuthenticator and client TLS");
    let dir = tempfile::tempdir().unwrap();
    let kafka_password = dir.path().join("kafka-password");
    std::fs::write(&kafka_password, format!("{}\n", SecuredKafka::PASSWORD)).unwrap();
    let cql_password = dir.path().join("cql-password");
    std::fs::write(&cql_password, SecureCassandra::PASSWORD).unwrap();

    let run = now_ns() % 1_000_000_000;
    let (topic, keyspace) = (format!("secured_{run}"), format!("tk_secured_{run}"));
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &stack.kafka).create().unwrap();
    let created = admin
        .create_topics(&[NewTopic::new(&topic, 3, TopicReplication::Fixed(1))], &AdminOptions::new())
        .await
        .unwrap();
    assert!(created.iter().all(Result::is_ok), "{created:?}");

    let cql = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> =
            ["--cql-nodes", &cassandra.contact, "--keyspace", &keyspace].iter().map(|s| s.to_string()).collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let ca = cassandra.ca.to_str().unwrap();
    let cql_login = ["--cql-username", SecureCassandra::USER, "--cql-password-file", cql_password.to_str().unwrap()];
    let cql_login_tls: Vec<&str> = cql_login.iter().copied().chain(["--cql-tls-ca", ca]).collect();
    let replication = "{'class': 'SimpleStrategy', 'replication_factor': 1}";
    let schema = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tracekeeper"))
            .args(["schema", "apply", "--replication", replication])
            .args(cql(extra))
            .output()
            .unwrap()
    };
    // Without TLS, or without the password, the cluster refuses.
    assert!(!schema(&cql_login).status.success(), "plaintext is refused");
    let anonymous = schema(&["--cql-tls-ca", ca]);
    assert!(!anonymous.status.success(), "an anonymous login is refused");
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-password").unwrap();
    let bad_login =
        schema(&["--cql-username", "cassandra", "--cql-password-file", wrong.to_str().unwrap(), "--cql-tls-ca", ca]);
    assert!(!bad_login.status.success());
    let applied = schema(&cql_login_tls);
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));

    let broker_ca = kafka.ca.to_str().unwrap();
    let sasl = |mechanism: &'static str, password: &str| -> Vec<String> {
        ["--kafka-security-protocol", "sasl_ssl", "--kafka-sasl-mechanism", mechanism]
            .into_iter()
            .chain(["--kafka-sasl-username", SecuredKafka::USER, "--kafka-sasl-password-file", password])
            .chain(["--kafka-tls-ca", broker_ca])
            .map(String::from)
            .collect()
    };
    let collector_flags = sasl("SCRAM-SHA-512", kafka_password.to_str().unwrap());
    let mut collector_args: Vec<&str> = collector_flags.iter().map(String::as_str).collect();
    collector_args.extend(["--kafka-ack-timeout", "5s"]);
    let collector = Server::start_collector(&kafka.bootstrap, &topic, &collector_args);

    let mut indexer = Command::new(env!("CARGO_BIN_EXE_tracekeeper"));
    indexer.args(["indexer", "--kafka-brokers", &kafka.bootstrap, "--kafka-topic", &topic]);
    indexer.args(["--group", &format!("secured_{run}"), "--admin-addr", ANY_PORT]);
    indexer.args(["--kafka-dlq-topic", &format!("secured_{run}_dlq")]);
    indexer.args(sasl("SCRAM-SHA-256", kafka_password.to_str().unwrap())).args(cql(&cql_login_tls));
    let _indexer = Process::spawn(indexer, "admin").await;

    let mut query = Command::new(env!("CARGO_BIN_EXE_tracekeeper"));
    query.args(["query", "--query-addr", ANY_PORT]).args(cql(&cql_login_tls));
    let query = Process::spawn(query, "query").await;

    let start = now_ns() - 5_000_000_000;
    let traces: Vec<_> = (0..10).map(|i| rich_trace(950 + i, start + i * 1_000_000)).collect();
    let retries = AtomicUsize::new(0);
    for spans in &traces {
        post_until_acked(&collector, spans, Duration::from_secs(60), &retries).await;
    }
    assert_all_served(&query, &traces, Duration::from_secs(90)).await;

    // A collector with the wrong password is never acknowledged: 503, retry later.
    let impostor_flags = sasl("SCRAM-SHA-512", wrong.to_str().unwrap());
    let mut impostor_args: Vec<&str> = impostor_flags.iter().map(String::as_str).collect();
    impostor_args.extend(["--kafka-ack-timeout", "3s"]);
    let impostor = Server::start_collector(&kafka.bootstrap, &topic, &impostor_args);
    let body = prost::Message::encode_to_vec(&tracekeeper_model::otlp::to_request(&rich_trace(990, start)));
    let (status, _) = impostor.post_otlp(body, "application/x-protobuf", &[]).await;
    assert_eq!(status, 503, "spans are never acknowledged on a failed login");
}
