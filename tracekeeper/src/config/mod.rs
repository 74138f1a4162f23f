//! From parsed flags to what each role runs with. The flags already hold the layered
//! values (defaults < `--config` file < environment < flags, see [`crate::cli::parse`]);
//! here they are checked against each other, and the config file's per-tenant tables
//! are added. The only module that sees clap's types besides [`crate::cli`] itself.

#[cfg(feature = "distributed")]
mod distributed;
mod roles;

#[cfg(feature = "distributed")]
pub use distributed::{collector, cql, dlq_replay, indexer, query, retention, topic_encodings};
pub use roles::{all_in_one, check};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;
use tracekeeper_ingest::tenant_limits::{Rate, TenantRates};
use tracekeeper_ingest::IngestLimits;
use tracekeeper_query::budget::SearchBudget;
use tracekeeper_retention::RetentionPolicies;
use tracekeeper_serve::{Limits, ServingConfig, TlsFiles};

use crate::cli::{Layered, ReceiverArgs, SearchArgs, ServingArgs, UiArgs};
use crate::roles::ReceiverConfig;

/// The config file's per-tenant tables ([`crate::layering::TABLES`]); its other keys
/// are flags, already layered into the parsed arguments.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct FileTables {
    /// Per-tenant retention overrides: tenant id → Go duration.
    #[serde(default)]
    pub tenant_retention: BTreeMap<String, String>,
    /// Per-tenant overrides: tenant id → its own ingest allowance and clock skew.
    #[serde(default)]
    pub tenant_ingest_limits: BTreeMap<String, TenantOverrides>,
}

impl FileTables {
    /// The tables of the config file the command line was layered with (read once,
    /// by [`crate::cli::parse`]).
    pub fn from_layered(layered: &Layered) -> anyhow::Result<Self> {
        let Some(path) = &layered.config_file else { return Ok(Self::default()) };
        toml::Value::Table(layered.tables.clone())
            .try_into()
            .with_context(|| format!("parsing config file {}", path.display()))
    }
}

/// One tenant's `[tenant-ingest-limits.NAME]` table; a key left out takes the value
/// every tenant has.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TenantOverrides {
    /// Spans per second, refilled continuously.
    pub rate_spans: Option<f64>,
    /// Spans one request may spend at once.
    pub burst_spans: Option<f64>,
    /// Bytes per second, refilled continuously.
    pub rate_bytes: Option<f64>,
    /// Bytes one request may spend at once.
    pub burst_bytes: Option<f64>,
    /// How far ahead of now this tenant's spans may start, as a Go duration.
    pub max_future_skew: Option<String>,
}

impl TenantOverrides {
    fn rate(&self) -> Rate {
        Rate {
            spans_per_second: self.rate_spans,
            burst_spans: self.burst_spans,
            bytes_per_second: self.rate_bytes,
            burst_bytes: self.burst_bytes,
        }
    }
}

/// Every tenant's ingest allowance and the file's overrides.
fn tenant_rates(args: &ReceiverArgs, file: &FileTables) -> anyhow::Result<TenantRates> {
    let default = Rate {
        spans_per_second: args.ingest_rate_spans,
        burst_spans: args.ingest_burst_spans,
        bytes_per_second: args.ingest_rate_bytes,
        burst_bytes: args.ingest_burst_bytes,
    };
    default.validate().map_err(|e| anyhow::anyhow!("ingest limits: {e}"))?;
    let mut per_tenant = BTreeMap::new();
    for (tenant, overrides) in &file.tenant_ingest_limits {
        tracekeeper_model::validate_tenant(tenant)
            .map_err(|e| anyhow::anyhow!("tenant-ingest-limits key {tenant:?}: {e}"))?;
        let rate = overrides.rate();
        rate.validate().map_err(|e| anyhow::anyhow!("tenant-ingest-limits.{tenant}: {e}"))?;
        per_tenant.insert(tenant.clone(), rate);
    }
    Ok(TenantRates { default, per_tenant })
}

/// Tenants whose spans may start further ahead (or less far) than everyone's.
pub fn tenant_future_skews(file: &FileTables) -> anyhow::Result<BTreeMap<String, Duration>> {
    let mut skews = BTreeMap::new();
    for (tenant, overrides) in &file.tenant_ingest_limits {
        if let Some(text) = &overrides.max_future_skew {
            skews.insert(tenant.clone(), duration(text, &format!("tenant-ingest-limits.{tenant}.max-future-skew"))?);
        }
    }
    Ok(skews)
}

/// TLS, auth and the serving layer's limits.
pub fn serving_config(args: &ServingArgs, multi_tenant: bool) -> anyhow::Result<ServingConfig> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(TlsFiles { cert: cert.clone(), key: key.clone(), client_ca: args.tls_client_ca.clone() })
        }
        (None, None) if args.tls_client_ca.is_none() => None,
        (None, None) => bail!("tls-client-ca needs tls-cert and tls-key: mutual TLS is TLS first"),
        (Some(_), None) => bail!("tls-cert needs tls-key"),
        (None, Some(_)) => bail!("tls-key needs tls-cert"),
    };
    let auth = match &args.auth_tokens_file {
        Some(path) => Some(Arc::new(tracekeeper_serve::Authenticator::load(path, multi_tenant)?)),
        None => None,
    };
    Ok(ServingConfig {
        tls,
        auth,
        limits: Limits {
            request_timeout: args.request_timeout,
            max_concurrent_requests: usize::try_from(args.max_concurrent_requests).unwrap_or(usize::MAX),
            header_read_timeout: ServingConfig::default().limits.header_read_timeout,
        },
    })
}

/// The receivers' settings, shared by all-in-one and the collector.
pub fn jaeger_grpc(args: &crate::cli::JaegerGrpcArgs) -> crate::roles::JaegerGrpcConfig {
    crate::roles::JaegerGrpcConfig { query_addr: args.query_grpc_addr, storage_addr: args.jaeger_storage_grpc_addr }
}

fn receivers(args: &ReceiverArgs, file: &FileTables) -> anyhow::Result<ReceiverConfig> {
    let limits = IngestLimits {
        max_body_bytes: args.max_body_bytes,
        max_inflight_bytes: args.max_inflight_bytes,
        tenant_rates: tenant_rates(args, file)?,
    };
    if limits.max_body_bytes == 0 || limits.max_inflight_bytes < limits.max_body_bytes {
        bail!("max-body-bytes must be positive and max-inflight-bytes at least max-body-bytes");
    }
    Ok(ReceiverConfig {
        otlp_grpc_addr: args.otlp_grpc_addr,
        otlp_http_addr: args.otlp_http_addr,
        zipkin_addr: args.zipkin_addr,
        limits,
        multi_tenancy: args.multi_tenancy,
        serving: serving_config(&args.serving, args.multi_tenancy)?,
    })
}

/// Each tenant's share of a query node.
pub fn max_queries_per_tenant(args: &SearchArgs) -> usize {
    usize::try_from(args.max_queries_per_tenant).unwrap_or(usize::MAX)
}

/// What one search may cost.
pub fn search_budget(args: &SearchArgs) -> SearchBudget {
    SearchBudget {
        max_traces_inspected: usize::try_from(args.max_traces_inspected).unwrap_or(usize::MAX),
        timeout: args.query_timeout,
        max_window: args.max_search_window,
    }
}

/// The web UI's settings.
pub fn ui_config(args: &UiArgs, multi_tenancy: bool, auth: bool) -> anyhow::Result<tracekeeper_ui::UiConfig> {
    Ok(tracekeeper_ui::UiConfig {
        enabled: args.ui,
        base_path: tracekeeper_ui::normalize_base_path(args.ui_base_path.as_deref().unwrap_or(""))?,
        multi_tenancy,
        auth,
    })
}

/// A Go duration from the config file's tables, its error naming the key.
fn duration(text: &str, what: &str) -> anyhow::Result<Duration> {
    crate::cli::parse_duration(text).map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

/// One retention for every tenant, from a Go duration: what the distributed roles
/// take until the retention worker has recorded per-tenant policies in the store.
pub fn single_retention(text: &str) -> anyhow::Result<RetentionPolicies> {
    Ok(RetentionPolicies { default: duration(text, "retention")?, ..Default::default() })
}

/// A default retention plus `tenant=duration` overrides, as the retention worker's
/// flags give them.
pub fn retention_with_overrides(default: &str, overrides: &[String]) -> anyhow::Result<RetentionPolicies> {
    let mut policies = single_retention(default)?;
    for entry in overrides {
        let (tenant, text) = entry
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("tenant-retention {entry:?}: expected tenant=duration, e.g. acme=24h"))?;
        add_tenant_retention(&mut policies, tenant, text)?;
    }
    Ok(policies)
}

/// One per-tenant override, from the config file's `[tenant-retention]` table or the
/// `--tenant-retention` flag.
fn add_tenant_retention(policies: &mut RetentionPolicies, tenant: &str, text: &str) -> anyhow::Result<()> {
    tracekeeper_model::validate_tenant(tenant).map_err(|e| anyhow::anyhow!("tenant-retention key {tenant:?}: {e}"))?;
    policies.per_tenant.insert(tenant.to_string(), duration(text, &format!("tenant-retention.{tenant}"))?);
    Ok(())
}

#[cfg(test)]
mod layering_tests;
