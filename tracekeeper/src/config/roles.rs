//! One resolver per role and tool every build has: its flags (already layered) and
//! the config file's tables in, its typed configuration out.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::bail;
use tracekeeper_retention::RetentionPolicies;

use super::{
    add_tenant_retention, jaeger_grpc, max_queries_per_tenant, receivers, retention_with_overrides, search_budget,
    tenant_future_skews, ui_config, FileTables,
};
use crate::cli::{AllInOneArgs, CheckArgs};
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
        jaeger_grpc: jaeger_grpc(&args.jaeger_grpc),
        test_purge_endpoint: args.test_purge_endpoint,
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

pub fn check(args: CheckArgs) -> anyhow::Result<check::Config> {
    let target = match args.data_dir {
        Some(dir) => Target::Embedded(dir),
        #[cfg(feature = "distributed")]
        None if !args.cql_nodes.is_empty() => {
            Target::Cql(Box::new(super::cql(&args.cql_security, &args.cql_nodes, &args.keyspace)?))
        }
        #[cfg(feature = "distributed")]
        None => bail!("give the store to check: --data-dir DIR (embedded) or --cql-nodes HOST:PORT (CQL)"),
        #[cfg(not(feature = "distributed"))]
        None => bail!("give the store to check: --data-dir DIR"),
    };
    Ok(check::Config {
        target,
        policies: retention_with_overrides(&args.retention, &args.tenant_retention)?,
        grace: args.grace,
        json: args.json,
    })
}
