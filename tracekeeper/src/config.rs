//! Layered configuration: defaults < config file < environment < flags.
//!
//! clap reads flags and `TRACEKEEPER_*` variables (a flag wins over its variable);
//! anything neither gives comes from the `--config` TOML file, and then from the
//! defaults documented on each field.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;
use tracekeeper_ingest::tenant_limits::{Rate, TenantRates};
use tracekeeper_ingest::IngestLimits;
use tracekeeper_query::budget::SearchBudget;
use tracekeeper_retention::{RetentionPolicies, DEFAULT_RETENTION};
use tracekeeper_serve::{Limits, ServingConfig, TlsFiles};
use tracekeeper_storage::embedded::Durability;

use crate::cli::{AllInOneArgs, CollectorArgs, ReceiverArgs, SearchArgs, ServingArgs, UiArgs};

/// The config file. Keys are the long flag names; unknown keys are an error, so a
/// typo is caught instead of silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub log_format: Option<crate::cli::LogFormat>,
    pub otlp_grpc_addr: Option<SocketAddr>,
    pub otlp_http_addr: Option<SocketAddr>,
    pub zipkin_addr: Option<SocketAddr>,
    pub query_addr: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub sync: Option<Durability>,
    pub max_body_bytes: Option<usize>,
    pub max_inflight_bytes: Option<usize>,
    pub multi_tenancy: Option<bool>,
    pub retention: Option<String>,
    pub bucket_width: Option<String>,
    pub max_trace_spans: Option<usize>,
    pub max_future_skew: Option<String>,
    pub query_timeout: Option<String>,
    pub max_traces_inspected: Option<usize>,
    pub max_search_window: Option<String>,
    pub max_queries_per_tenant: Option<usize>,
    pub ui: Option<bool>,
    pub ui_base_path: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_client_ca: Option<PathBuf>,
    pub request_timeout: Option<String>,
    pub max_concurrent_requests: Option<usize>,
    pub auth_tokens_file: Option<PathBuf>,
    pub kafka_brokers: Option<String>,
    pub kafka_topic: Option<String>,
    pub kafka_ack_timeout: Option<String>,
    /// Per-tenant retention overrides: tenant id → Go duration.
    #[serde(default)]
    pub tenant_retention: BTreeMap<String, String>,
    pub ingest_rate_spans: Option<f64>,
    pub ingest_burst_spans: Option<f64>,
    pub ingest_rate_bytes: Option<f64>,
    pub ingest_burst_bytes: Option<f64>,
    /// Per-tenant overrides: tenant id → its own ingest allowance and clock skew.
    #[serde(default)]
    pub tenant_ingest_limits: BTreeMap<String, TenantOverrides>,
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

/// Every tenant's ingest allowance (flags, then file) and the file's overrides.
fn tenant_rates(args: &ReceiverArgs, file: &FileConfig) -> anyhow::Result<TenantRates> {
    let default = Rate {
        spans_per_second: args.ingest_rate_spans.or(file.ingest_rate_spans),
        burst_spans: args.ingest_burst_spans.or(file.ingest_burst_spans),
        bytes_per_second: args.ingest_rate_bytes.or(file.ingest_rate_bytes),
        burst_bytes: args.ingest_burst_bytes.or(file.ingest_burst_bytes),
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
fn tenant_future_skews(file: &FileConfig) -> anyhow::Result<BTreeMap<String, Duration>> {
    let mut skews = BTreeMap::new();
    for (tenant, overrides) in &file.tenant_ingest_limits {
        if let Some(text) = &overrides.max_future_skew {
            skews.insert(tenant.clone(), duration(text, &format!("tenant-ingest-limits.{tenant}.max-future-skew"))?);
        }
    }
    Ok(skews)
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }
}

/// The receivers' settings, after layering.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    pub otlp_grpc_addr: SocketAddr,
    pub otlp_http_addr: SocketAddr,
    pub zipkin_addr: SocketAddr,
    pub limits: IngestLimits,
    pub multi_tenancy: bool,
    pub serving: ServingConfig,
}

/// TLS and the serving layer's limits, from flags (or variables), then the file.
pub fn serving_config(args: &ServingArgs, file: &FileConfig, multi_tenant: bool) -> anyhow::Result<ServingConfig> {
    let defaults = ServingConfig::default();
    let cert = args.tls_cert.clone().or_else(|| file.tls_cert.clone());
    let key = args.tls_key.clone().or_else(|| file.tls_key.clone());
    let client_ca = args.tls_client_ca.clone().or_else(|| file.tls_client_ca.clone());
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key, client_ca }),
        (None, None) if client_ca.is_none() => None,
        (None, None) => bail!("tls-client-ca needs tls-cert and tls-key: mutual TLS is TLS first"),
        (Some(_), None) => bail!("tls-cert needs tls-key"),
        (None, Some(_)) => bail!("tls-key needs tls-cert"),
    };
    let request_timeout = match args.request_timeout.as_deref().or(file.request_timeout.as_deref()) {
        Some(text) => duration(text, "request-timeout")?,
        None => defaults.limits.request_timeout,
    };
    let max_concurrent_requests = args
        .max_concurrent_requests
        .or(file.max_concurrent_requests)
        .unwrap_or(defaults.limits.max_concurrent_requests);
    if request_timeout.is_zero() || max_concurrent_requests == 0 {
        bail!("request-timeout and max-concurrent-requests must be positive");
    }
    let auth = match args.auth_tokens_file.as_ref().or(file.auth_tokens_file.as_ref()) {
        Some(path) => Some(std::sync::Arc::new(tracekeeper_serve::Authenticator::load(path, multi_tenant)?)),
        None => None,
    };
    Ok(ServingConfig {
        tls,
        auth,
        limits: Limits {
            request_timeout,
            max_concurrent_requests,
            header_read_timeout: defaults.limits.header_read_timeout,
        },
    })
}

impl ReceiverConfig {
    fn resolve(args: &ReceiverArgs, file: &FileConfig) -> anyhow::Result<Self> {
        let limits = IngestLimits {
            max_body_bytes: args.max_body_bytes.or(file.max_body_bytes).unwrap_or(16 << 20),
            max_inflight_bytes: args.max_inflight_bytes.or(file.max_inflight_bytes).unwrap_or(256 << 20),
            tenant_rates: tenant_rates(args, file)?,
        };
        if limits.max_body_bytes == 0 || limits.max_inflight_bytes < limits.max_body_bytes {
            bail!("max-body-bytes must be positive and max-inflight-bytes at least max-body-bytes");
        }
        let multi_tenancy = args.multi_tenancy.or(file.multi_tenancy).unwrap_or(false);
        Ok(Self {
            otlp_grpc_addr: args.otlp_grpc_addr.or(file.otlp_grpc_addr).unwrap_or_else(|| addr("0.0.0.0:4317")),
            otlp_http_addr: args.otlp_http_addr.or(file.otlp_http_addr).unwrap_or_else(|| addr("0.0.0.0:4318")),
            zipkin_addr: args.zipkin_addr.or(file.zipkin_addr).unwrap_or_else(|| addr("0.0.0.0:9411")),
            limits,
            multi_tenancy,
            serving: serving_config(&args.serving, file, multi_tenancy)?,
        })
    }
}

fn load_file(args: &ReceiverArgs) -> anyhow::Result<FileConfig> {
    match &args.config {
        Some(path) => FileConfig::load(path),
        None => Ok(FileConfig::default()),
    }
}

/// Everything `collector` runs with, after layering.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    pub receivers: ReceiverConfig,
    pub kafka: tracekeeper_ingest::kafka::KafkaSinkConfig,
}

impl CollectorConfig {
    pub fn resolve(args: CollectorArgs) -> anyhow::Result<Self> {
        let file = load_file(&args.receivers)?;
        let ack_timeout = match args.kafka_ack_timeout.as_deref().or(file.kafka_ack_timeout.as_deref()) {
            Some(text) => duration(text, "kafka-ack-timeout")?,
            None => Duration::from_secs(10),
        };
        Ok(Self {
            receivers: ReceiverConfig::resolve(&args.receivers, &file)?,
            kafka: tracekeeper_ingest::kafka::KafkaSinkConfig {
                brokers: args.kafka_brokers.or(file.kafka_brokers).unwrap_or_else(|| "127.0.0.1:9092".into()),
                topic: args.kafka_topic.or(file.kafka_topic).unwrap_or_else(|| "tracekeeper-spans".into()),
                ack_timeout,
            },
        })
    }
}

/// Everything `all-in-one` runs with, after layering.
#[derive(Debug, Clone)]
pub struct AllInOneConfig {
    pub receivers: ReceiverConfig,
    pub query_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub durability: Durability,
    pub retention: RetentionPolicies,
    pub bucket_width: Duration,
    pub max_trace_spans: usize,
    pub max_future_skew: Duration,
    /// Tenants with their own `max-future-skew`.
    pub tenant_future_skews: BTreeMap<String, Duration>,
    pub search: SearchBudget,
    pub max_queries_per_tenant: usize,
    pub ui: tracekeeper_ui::UiConfig,
}

/// Each tenant's share of a query node, from flags (or variables), then the file.
pub fn max_queries_per_tenant(args: &SearchArgs, file: &FileConfig) -> usize {
    args.max_queries_per_tenant
        .or(file.max_queries_per_tenant)
        .unwrap_or(tracekeeper_query::tenant_gate::DEFAULT_MAX_QUERIES_PER_TENANT)
        .max(1)
}

/// What one search may cost, from flags (or variables), then the file.
pub fn search_budget(args: &SearchArgs, file: &FileConfig) -> anyhow::Result<SearchBudget> {
    let defaults = SearchBudget::default();
    let timeout = match args.query_timeout.as_deref().or(file.query_timeout.as_deref()) {
        Some(text) => duration(text, "query-timeout")?,
        None => defaults.timeout,
    };
    let max_traces_inspected =
        args.max_traces_inspected.or(file.max_traces_inspected).unwrap_or(defaults.max_traces_inspected);
    let max_window = match args.max_search_window.as_deref().or(file.max_search_window.as_deref()) {
        Some(text) => duration(text, "max-search-window")?,
        None => defaults.max_window,
    };
    if timeout.is_zero() || max_traces_inspected == 0 || max_window.is_zero() {
        bail!("query-timeout, max-traces-inspected and max-search-window must be positive");
    }
    Ok(SearchBudget { max_traces_inspected, timeout, max_window })
}

/// The web UI's settings, from flags (or variables) first, then the config file.
pub fn ui_config(
    args: &UiArgs,
    file: &FileConfig,
    multi_tenancy: bool,
    auth: bool,
) -> anyhow::Result<tracekeeper_ui::UiConfig> {
    let base = args.ui_base_path.as_deref().or(file.ui_base_path.as_deref()).unwrap_or("");
    Ok(tracekeeper_ui::UiConfig {
        enabled: args.ui.or(file.ui).unwrap_or(true),
        base_path: tracekeeper_ui::normalize_base_path(base)?,
        multi_tenancy,
        auth,
    })
}

fn duration(text: &str, what: &str) -> anyhow::Result<Duration> {
    let ns = tracekeeper_query::duration::parse_go_duration(text).map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    Ok(Duration::from_nanos(ns))
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("default addresses are valid")
}

impl AllInOneConfig {
    pub fn resolve(args: AllInOneArgs) -> anyhow::Result<Self> {
        let file = load_file(&args.receivers)?;
        let mut retention = RetentionPolicies {
            default: match args.retention.as_deref().or(file.retention.as_deref()) {
                Some(text) => duration(text, "retention")?,
                None => DEFAULT_RETENTION,
            },
            per_tenant: BTreeMap::new(),
        };
        for (tenant, text) in &file.tenant_retention {
            add_tenant_retention(&mut retention, tenant, text)?;
        }
        let bucket_width = match args.bucket_width.as_deref().or(file.bucket_width.as_deref()) {
            Some(text) => duration(text, "bucket-width")?,
            None => Duration::from_secs(86_400),
        };
        if bucket_width < Duration::from_secs(60) {
            bail!("bucket-width must be at least 1m, got {bucket_width:?}");
        }
        let receivers = ReceiverConfig::resolve(&args.receivers, &file)?;
        let search = search_budget(&args.search, &file)?;
        let tenant_future_skews = tenant_future_skews(&file)?;
        let max_queries_per_tenant = max_queries_per_tenant(&args.search, &file);
        Ok(Self {
            search,
            max_queries_per_tenant,
            ui: ui_config(&args.ui, &file, receivers.multi_tenancy, receivers.serving.auth.is_some())?,
            receivers,
            query_addr: args.query_addr.or(file.query_addr).unwrap_or_else(|| addr("0.0.0.0:16686")),
            data_dir: args.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("./tracekeeper-data")),
            durability: args.sync.or(file.sync).unwrap_or_default(),
            retention,
            bucket_width,
            max_trace_spans: args.max_trace_spans.or(file.max_trace_spans).unwrap_or(100_000),
            max_future_skew: match args.max_future_skew.as_deref().or(file.max_future_skew.as_deref()) {
                Some(text) => duration(text, "max-future-skew")?,
                None => tracekeeper_indexer::DEFAULT_MAX_FUTURE_SKEW,
            },
            tenant_future_skews,
        })
    }
}

/// One retention for every tenant, from a Go duration: what the distributed roles
/// take until per-tenant policies live in the store (issue 6).
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

/// The CQL store the distributed roles read and write.
pub async fn connect_cql(nodes: &[String], keyspace: &str) -> anyhow::Result<tracekeeper_storage::cql::CqlStore> {
    let config = tracekeeper_storage::cql::CqlConfig {
        nodes: nodes.to_vec(),
        keyspace: keyspace.to_string(),
        consistency: scylla::statement::Consistency::LocalQuorum,
    };
    tracekeeper_storage::cql::CqlStore::connect(&config)
        .await
        .with_context(|| format!("connecting to CQL at {}", nodes.join(",")))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn args(argv: &[&str]) -> AllInOneArgs {
        match Cli::try_parse_from(argv).unwrap().command {
            Command::AllInOne(a) => a,
            other => panic!("not all-in-one: {other:?}"),
        }
    }

    #[test]
    fn flag_beats_file_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "log-format = \"json\"\nquery-addr = \"127.0.0.1:1000\"\nzipkin-addr = \"127.0.0.1:2000\"\nretention = \"24h\"\n[tenant-retention]\nacme = \"1h\"\n").unwrap();
        let config = AllInOneConfig::resolve(args(&[
            "tracekeeper",
            "all-in-one",
            "--config",
            path.to_str().unwrap(),
            "--query-addr",
            "127.0.0.1:3000",
        ]))
        .unwrap();
        assert_eq!(config.query_addr, addr("127.0.0.1:3000"));
        assert_eq!(FileConfig::load(&path).unwrap().log_format, Some(crate::cli::LogFormat::Json));
        assert_eq!(config.receivers.zipkin_addr, addr("127.0.0.1:2000"));
        assert_eq!(config.receivers.otlp_http_addr, addr("0.0.0.0:4318"));
        assert_eq!(config.retention.retention_for("x"), Duration::from_secs(86_400));
        assert_eq!(config.retention.retention_for("acme"), Duration::from_secs(3600));
    }

    #[test]
    fn unknown_file_keys_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "query-adr = \"127.0.0.1:1000\"\n").unwrap();
        let err = AllInOneConfig::resolve(args(&["tracekeeper", "all-in-one", "--config", path.to_str().unwrap()]))
            .unwrap_err();
        assert!(format!("{err:#}").contains("unknown field `query-adr`"), "{err:#}");
    }

    #[test]
    fn a_tenant_table_sets_rates_and_clock_skew() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let file = "[tenant-ingest-limits.satellite]\nrate-spans = 10.0\nmax-future-skew = \"48h\"\n";
        std::fs::write(&path, file).unwrap();
        let config =
            AllInOneConfig::resolve(args(&["tracekeeper", "all-in-one", "--config", path.to_str().unwrap()])).unwrap();
        assert_eq!(config.tenant_future_skews.get("satellite"), Some(&Duration::from_secs(48 * 3600)));
        assert_eq!(config.receivers.limits.tenant_rates.per_tenant["satellite"].spans_per_second, Some(10.0));
        std::fs::write(&path, "[tenant-ingest-limits.satellite]\nmax-future-skew = \"soon\"\n").unwrap();
        let err = AllInOneConfig::resolve(args(&["tracekeeper", "all-in-one", "--config", path.to_str().unwrap()]))
            .unwrap_err();
        assert!(format!("{err:#}").contains("tenant-ingest-limits.satellite.max-future-skew"), "{err:#}");
    }
}
