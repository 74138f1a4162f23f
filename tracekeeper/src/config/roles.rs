//! One resolver per role and tool: its flags (already layered) and the config file's
//! tables in, its typed configuration out.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::bail;
use tracekeeper_indexer::kafka::dead_letter::ReplayConfig;
use tracekeeper_ingest::kafka::KafkaSinkConfig;
use tracekeeper_retention::RetentionPolicies;

use super::{
    add_tenant_retention, cql, max_queries_per_tenant, receivers, retention_with_overrides, search_budget,
    serving_config, single_retention, tenant_future_skews, topic_encodings, ui_config, FileTables,
};
use crate::cli::{AllInOneArgs, CheckArgs, CollectorArgs, IndexerArgs, QueryArgs, ReplayArgs, RetentionArgs};
use crate::roles;
use crate::tools::check::{self, Target};

pub fn all_in_one(args: AllInOneArgs, file: &FileTables) -> anyhow::Result<roles::all_in_one::Config> {
    let mut retention = RetentionPolicies { default: args.retention, per_tenant: BTreeMap::new() };
    for (tenant, text) in &file.tenant_retention {
        add_tenant_retention(&mut retention, tenant, text)?;
    }
    if args.bucket_width < Duration::from_secs(60) {
        bail!("bucket-width must be at least 1m, got {:?}", args.bucket_width);
    }
    let receivers = receivers(&args.receivers, file)?;
    Ok(roles::all_in_one::Config {
        search: search_budget(&args.search),
        max_queries_per_tenant: max_queries_per_tenant(&args.search),
        ui: ui_config(&args.ui, receivers.multi_tenancy, receivers.serving.auth.is_some())?,
        receivers,
        query_addr: args.query_addr,
        data_dir: args.data_dir,
        durability: args.sync,
        retention,
        bucket_width: args.bucket_width,
        max_trace_spans: args.max_trace_spans,
        max_future_skew: args.max_future_skew,
        red_max_series: args.red_max_series,
        red_flush_interval: args.red_flush_interval,
        tenant_future_skews: tenant_future_skews(file)?,
    })
}

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

pub fn query(args: QueryArgs) -> anyhow::Result<roles::query::Config> {
    Ok(roles::query::Config {
        query_addr: args.query_addr,
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

pub fn check(args: CheckArgs) -> anyhow::Result<check::Config> {
    let target = match args.data_dir {
        Some(dir) => Target::Embedded(dir),
        None if !args.cql_nodes.is_empty() => Target::Cql(cql(&args.cql_security, &args.cql_nodes, &args.keyspace)?),
        None => bail!("give the store to check: --data-dir DIR (embedded) or --cql-nodes HOST:PORT (CQL)"),
    };
    Ok(check::Config {
        target,
        policies: retention_with_overrides(&args.retention, &args.tenant_retention)?,
        grace: args.grace,
        json: args.json,
    })
}

pub fn dlq_replay(args: ReplayArgs) -> anyhow::Result<ReplayConfig> {
    Ok(ReplayConfig {
        client: tracekeeper_indexer::kafka::client_config(&args.kafka_brokers, &args.kafka_security.options()?),
        dead_letter_topic: args.kafka_dlq_topic,
        to_topic: args.to_topic,
        group: args.group,
    })
}
