//! The resolvers of the distributed shape's roles and tools (the `distributed`
//! feature).

use std::collections::BTreeMap;
use std::time::Duration;

use tracekeeper_kafka::dead_letter::ReplayConfig;
use tracekeeper_kafka::producer::KafkaSinkConfig;
use tracekeeper_kafka::Encoding;
use tracekeeper_storage::cql::CqlConfig;

use super::{
    max_queries_per_tenant, receivers, retention_with_overrides, search_budget, serving_config, single_retention,
    tenant_future_skews, ui_config, FileTables,
};
use crate::cli::{CollectorArgs, CqlSecurityArgs, IndexerArgs, QueryArgs, ReplayArgs, RetentionArgs};
use crate::roles;

pub fn collector(args: CollectorArgs, file: &FileTables) -> anyhow::Result<roles::collector::Config> {
    Ok(roles::collector::Config {
        receivers: receivers(&args.receivers, file)?,
        kafka: KafkaSinkConfig {
            options: args.kafka_security.options()?,
            brokers: args.kafka_brokers,
            topic: args.kafka_topic,
            ack_timeout: args.kafka_ack_timeout,
        },
    })
}

pub fn indexer(args: IndexerArgs, file: &FileTables) -> anyhow::Result<roles::indexer::Config> {
    Ok(roles::indexer::Config {
        admin_addr: args.admin_addr,
        cql: cql(&args.cql_security, &args.cql_nodes, &args.keyspace)?,
        kafka_options: args.kafka_security.options()?,
        topics: topic_encodings(&args.kafka_topic, &args.kafka_encoding)?,
        kafka_brokers: args.kafka_brokers,
        group: args.group,
        session_timeout: args.session_timeout,
        stall_timeout: stall_timeout(args.stall_timeout, args.session_timeout)?,
        dead_letter_topic: args.kafka_dlq_topic,
        retention: single_retention(&args.retention)?,
        max_trace_spans: args.max_trace_spans,
        max_future_skew: args.max_future_skew,
        tenant_future_skews: tenant_future_skews(file)?,
        red_max_series: args.red_max_series,
        red_flush_interval: args.red_flush_interval,
        serving: serving_config(&args.serving, false)?,
    })
}

/// The stall timeout, refused when shorter than the session timeout: a member would
/// then leave the group over a pause shorter than the group itself tolerates.
fn stall_timeout(stall: Duration, session: Duration) -> anyhow::Result<Duration> {
    anyhow::ensure!(
        stall >= session,
        "--stall-timeout {stall:?} is shorter than --session-timeout {session:?}; it must be at least as long"
    );
    Ok(stall)
}

pub fn query(args: QueryArgs) -> anyhow::Result<roles::query::Config> {
    Ok(roles::query::Config {
        query_addr: args.query_addr,
        jaeger_grpc: super::jaeger_grpc(&args.jaeger_grpc),
        test_purge_endpoint: args.test_purge_endpoint,
        cql: cql(&args.cql_security, &args.cql_nodes, &args.keyspace)?,
        multi_tenancy: args.multi_tenancy,
        retention: single_retention(&args.retention)?,
        max_trace_spans: args.max_trace_spans,
        search: search_budget(&args.search),
        max_queries_per_tenant: max_queries_per_tenant(&args.search),
        ui: ui_config(&args.ui, args.multi_tenancy, args.serving.auth_tokens_file.is_some())?,
        serving: serving_config(&args.serving, args.multi_tenancy)?,
    })
}

pub fn retention(args: RetentionArgs) -> anyhow::Result<roles::retention::Config> {
    Ok(roles::retention::Config {
        admin_addr: args.admin_addr,
        cql: cql(&args.cql_security, &args.cql_nodes, &args.keyspace)?,
        policies: retention_with_overrides(&args.retention, &args.tenant_retention)?,
        interval: args.interval,
        lease_ttl: args.lease_ttl,
        serving: serving_config(&args.serving, false)?,
    })
}

pub fn dlq_replay(args: ReplayArgs) -> anyhow::Result<ReplayConfig> {
    Ok(ReplayConfig {
        client: tracekeeper_kafka::client_config(&args.kafka_brokers, &args.kafka_security.options()?),
        dead_letter_topic: args.kafka_dlq_topic,
        to_topic: args.to_topic,
        group: args.group,
    })
}

/// The CQL store a distributed role or tool connects to.
pub fn cql(security: &CqlSecurityArgs, nodes: &[String], keyspace: &str) -> anyhow::Result<CqlConfig> {
    Ok(CqlConfig {
        connection: security.connection(nodes)?,
        keyspace: keyspace.to_string(),
        consistency: security.cql_consistency,
    })
}

/// Each topic the indexer consumes, with its encoding: `encodings` holds at most one bare
/// encoding (every topic's) and any number of `topic=encoding` overrides.
pub fn topic_encodings(topics: &[String], encodings: &[String]) -> anyhow::Result<Vec<(String, Encoding)>> {
    let mut default = Encoding::default();
    let mut defaults = 0;
    let mut chosen: BTreeMap<&str, Encoding> = BTreeMap::new();
    for entry in encodings.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        match entry.split_once('=') {
            None => {
                defaults += 1;
                anyhow::ensure!(defaults == 1, "--kafka-encoding: more than one encoding for every topic");
                default = entry.parse().map_err(|e| anyhow::anyhow!("--kafka-encoding: {e}"))?;
            }
            Some((topic, name)) => {
                let topic = topic.trim();
                anyhow::ensure!(
                    topics.iter().any(|t| t == topic),
                    "--kafka-encoding names topic {topic:?}, which is not in --kafka-topic ({})",
                    topics.join(", ")
                );
                let encoding = name.trim().parse().map_err(|e| anyhow::anyhow!("--kafka-encoding {topic}: {e}"))?;
                anyhow::ensure!(chosen.insert(topic, encoding).is_none(), "--kafka-encoding: topic {topic:?} twice");
            }
        }
    }
    let mut out: Vec<(String, Encoding)> = Vec::new();
    for topic in topics.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        anyhow::ensure!(!out.iter().any(|(t, _)| t == topic), "--kafka-topic: {topic:?} is given twice");
        out.push((topic.to_string(), chosen.get(topic).copied().unwrap_or(default)));
    }
    anyhow::ensure!(!out.is_empty(), "--kafka-topic: at least one topic is needed");
    Ok(out)
}

#[cfg(test)]
mod topic_encoding_tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn each_topic_takes_its_own_encoding_or_the_common_one() {
        let topics = strings(&["spans", "zipkin", "jaeger"]);
        let chosen = topic_encodings(&topics, &strings(&["zipkin=zipkin_json", "jaeger = jaeger_proto"])).unwrap();
        assert_eq!(
            chosen,
            vec![
                ("spans".to_string(), Encoding::OtlpProto),
                ("zipkin".to_string(), Encoding::ZipkinJson),
                ("jaeger".to_string(), Encoding::JaegerProto),
            ]
        );
        let common = topic_encodings(&topics, &strings(&["otlp_json", "jaeger=jaeger_json"])).unwrap();
        assert_eq!(common[0].1, Encoding::OtlpJson);
        assert_eq!(common[2].1, Encoding::JaegerJson);
    }

    #[test]
    fn mistakes_are_named() {
        let topics = strings(&["spans"]);
        for (encodings, says) in [
            (vec!["thrift"], "unknown Kafka encoding \"thrift\""),
            (vec!["other=otlp_json"], "names topic \"other\", which is not in --kafka-topic (spans)"),
            (vec!["otlp_json", "zipkin_json"], "more than one encoding for every topic"),
            (vec!["spans=otlp_json", "spans=zipkin_json"], "topic \"spans\" twice"),
        ] {
            let error = topic_encodings(&topics, &strings(&encodings)).unwrap_err().to_string();
            assert!(error.contains(says), "{encodings:?}: {error}");
        }
        let twice = topic_encodings(&strings(&["a", "a"]), &[]).unwrap_err().to_string();
        assert!(twice.contains("\"a\" is given twice"), "{twice}");
        assert!(topic_encodings(&[], &[]).is_err());
    }
}

#[cfg(test)]
mod stall_timeout_tests {
    use super::*;

    #[test]
    fn a_stall_timeout_shorter_than_the_session_timeout_is_refused_by_name() {
        let (ten, thirty) = (Duration::from_secs(10), Duration::from_secs(30));
        assert_eq!(stall_timeout(thirty, ten).unwrap(), thirty);
        assert_eq!(stall_timeout(ten, ten).unwrap(), ten);
        let refused = stall_timeout(Duration::from_secs(5), ten).unwrap_err().to_string();
        assert!(refused.contains("--stall-timeout 5s is shorter than --session-timeout 10s"), "{refused}");
    }
}
