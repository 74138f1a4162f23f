//! Command-line interface. Every flag also reads `TRACEKEEPER_<FLAG>` and the
//! `--config` file; see [`layering`] for the precedence. Each default is written
//! here, once, and shown by `--help`.
//!
//! A leaf: it knows no other module of the binary. Only [`crate::config`] turns what
//! it parses into the typed configurations the roles and tools run with.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[cfg(feature = "distributed")]
mod clients;
#[cfg(feature = "distributed")]
mod distributed;
mod layering;
mod tools;

#[cfg(feature = "distributed")]
pub use clients::{CqlSecurityArgs, KafkaSecurityArgs};
#[cfg(feature = "distributed")]
pub use distributed::*;
pub use layering::{is_secret, parse, Layered};
pub use tools::{CheckArgs, CompactArgs};
use tracekeeper_storage::embedded::Durability;

#[derive(Debug, Parser)]
#[command(
    name = "tracekeeper",
    version,
    about = "A distributed tracing backend: OTLP and Zipkin in; Jaeger, Zipkin and Tempo APIs out."
)]
pub struct Cli {
    /// Log format (logs go to stderr; RUST_LOG sets the level).
    #[arg(long, global = true, env = "TRACEKEEPER_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Command {
    /// A long-running role, whose settings are logged at start-up.
    pub fn is_service(&self) -> bool {
        match self {
            Self::AllInOne(_) => true,
            #[cfg(feature = "distributed")]
            Self::Collector(_) | Self::Indexer(_) | Self::Query(_) | Self::Retention(_) => true,
            _ => false,
        }
    }
}

/// The `--config` flag every role has.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// TOML config file; its keys are this command's long flag names (e.g.
    /// query-addr = "0.0.0.0:16686"). Flags and TRACEKEEPER_* variables override it;
    /// unknown keys are an error.
    #[arg(long, env = "TRACEKEEPER_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything in one process on an embedded store: receivers, storage, query
    /// API. No other service is needed.
    AllInOne(Box<AllInOneArgs>),
    /// Receive spans (OTLP, Zipkin) and publish them to Kafka, one message per trace;
    /// a request is answered once Kafka acknowledged all of it.
    #[cfg(feature = "distributed")]
    Collector(CollectorArgs),
    /// Consume spans from Kafka (a consumer group member) and write them to the CQL store.
    #[cfg(feature = "distributed")]
    Indexer(Box<IndexerArgs>),
    /// Serve the query APIs from the CQL store of the distributed shape.
    #[cfg(feature = "distributed")]
    Query(QueryArgs),
    /// Retention worker for the CQL store: advances per-tenant watermarks (hiding
    /// expired data on every query node at once) and removes expired catalog days. A
    /// lease makes one of many act.
    #[cfg(feature = "distributed")]
    Retention(RetentionArgs),
    /// Scan a store (embedded or CQL) for invariant violations: index entries that point
    /// at unstored traces, spans stored twice, data kept past retention. Exits non-zero
    /// on any.
    Check(CheckArgs),
    /// Compact a stopped all-in-one's embedded store: every time bucket is rewritten as
    /// one compressed sorted run, with its size before and after. The store compacts on
    /// its own as it runs; this reclaims the most space at once (after a bulk load, or
    /// before taking a copy). Buckets an older version wrote in an earlier key layout
    /// are first rewritten into today's: the one step an upgraded data directory needs.
    Compact(CompactArgs),
    /// Manage the CQL schema of the distributed shape.
    #[cfg(feature = "distributed")]
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Tokens for --auth-tokens-file: make one, or hash a secret.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// The indexers' dead-letter topic: messages that could never be stored.
    #[cfg(feature = "distributed")]
    #[command(subcommand)]
    Dlq(DlqCommand),
}

/// Jaeger's gRPC APIs, served by every role that serves queries.
#[derive(Debug, Clone, clap::Args)]
pub struct JaegerGrpcArgs {
    /// Jaeger's gRPC query API (jaeger.api_v2 and jaeger.api_v3 QueryService, as Jaeger
    /// serves them on 16685) listen address.
    #[arg(long, env = "TRACEKEEPER_QUERY_GRPC_ADDR", default_value = "0.0.0.0:16685")]
    pub query_grpc_addr: SocketAddr,
    /// Jaeger's remote storage API (jaeger.storage.v2 TraceReader and DependencyReader)
    /// listen address, for Jaeger v2's `grpc` storage backend to read this store; not
    /// served unless given. Jaeger writes its spans here over OTLP.
    #[arg(long, env = "TRACEKEEPER_JAEGER_STORAGE_GRPC_ADDR")]
    pub jaeger_storage_grpc_addr: Option<SocketAddr>,
}

/// Settings every role with span receivers shares.
#[derive(Debug, Clone, clap::Args)]
pub struct ReceiverArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// OTLP/gRPC listen address.
    #[arg(long, env = "TRACEKEEPER_OTLP_GRPC_ADDR", default_value = "0.0.0.0:4317")]
    pub otlp_grpc_addr: SocketAddr,
    /// OTLP/HTTP listen address (POST /v1/traces).
    #[arg(long, env = "TRACEKEEPER_OTLP_HTTP_ADDR", default_value = "0.0.0.0:4318")]
    pub otlp_http_addr: SocketAddr,
    /// Zipkin listen address (POST /api/v2/spans).
    #[arg(long, env = "TRACEKEEPER_ZIPKIN_ADDR", default_value = "0.0.0.0:9411")]
    pub zipkin_addr: SocketAddr,
    /// Largest request body in bytes, checked again after decompression.
    #[arg(long, env = "TRACEKEEPER_MAX_BODY_BYTES", default_value_t = 16 << 20)]
    pub max_body_bytes: usize,
    /// Most request bytes processed at once; beyond it clients get 429 with
    /// Retry-After.
    #[arg(long, env = "TRACEKEEPER_MAX_INFLIGHT_BYTES", default_value_t = 256 << 20)]
    pub max_inflight_bytes: usize,
    /// Require the X-Scope-OrgID header and keep each tenant's data apart. Off: all
    /// data belongs to the tenant "single-tenant".
    #[arg(long, env = "TRACEKEEPER_MULTI_TENANCY", num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    pub multi_tenancy: bool,
    /// Spans per second each tenant may send; beyond it 429 with Retry-After (gRPC
    /// RESOURCE_EXHAUSTED). Per-tenant values go in the config file's
    /// [tenant-ingest-limits.NAME] tables [default: unlimited].
    #[arg(long, env = "TRACEKEEPER_INGEST_RATE_SPANS")]
    pub ingest_rate_spans: Option<f64>,
    /// Spans a tenant may send at once after a quiet spell [default: one second's worth].
    #[arg(long, env = "TRACEKEEPER_INGEST_BURST_SPANS")]
    pub ingest_burst_spans: Option<f64>,
    /// Decoded request bytes per second each tenant may send [default: unlimited].
    #[arg(long, env = "TRACEKEEPER_INGEST_RATE_BYTES")]
    pub ingest_rate_bytes: Option<f64>,
    /// Bytes a tenant may send at once after a quiet spell [default: one second's worth].
    #[arg(long, env = "TRACEKEEPER_INGEST_BURST_BYTES")]
    pub ingest_burst_bytes: Option<f64>,
    #[command(flatten)]
    pub serving: ServingArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct AllInOneArgs {
    #[command(flatten)]
    pub receivers: ReceiverArgs,
    /// Query API and UI listen address.
    #[arg(long, env = "TRACEKEEPER_QUERY_ADDR", default_value = "0.0.0.0:16686")]
    pub query_addr: SocketAddr,
    #[command(flatten)]
    pub jaeger_grpc: JaegerGrpcArgs,
    /// Serve POST /api/purge, which deletes every tenant's data at once: for test
    /// suites that empty the store between cases (Jaeger's storage integration tests)
    /// only, never in production. Needs the admin scope when tokens are on.
    #[arg(long, env = "TRACEKEEPER_TEST_PURGE_ENDPOINT")]
    pub test_purge_endpoint: bool,
    /// Directory of the embedded store.
    #[arg(long, env = "TRACEKEEPER_DATA_DIR", default_value = "./tracekeeper-data")]
    pub data_dir: PathBuf,
    /// When a write is acknowledged: "process" once it survives a crash of the process
    /// (kill -9), "fsync" once it survives power loss (group commit).
    #[arg(long, env = "TRACEKEEPER_SYNC", value_parser = parse_sync, default_value = "process")]
    pub sync: Durability,
    /// How long data is kept, as a Go duration (e.g. 168h). Per-tenant overrides go
    /// in the config file's [tenant-retention] table.
    #[arg(long, env = "TRACEKEEPER_RETENTION", default_value = "168h", value_parser = parse_duration)]
    pub retention: std::time::Duration,
    /// Width of a storage time bucket, the unit in which expired data is deleted.
    /// Fixed when the data directory is created; at least 1m.
    #[arg(long, env = "TRACEKEEPER_BUCKET_WIDTH", default_value = "24h", value_parser = parse_duration)]
    pub bucket_width: std::time::Duration,
    /// Most spans one trace may hold: spans beyond it are refused at ingest (counted
    /// per tenant, reported in partial_success) and a fetch returns at most this many,
    /// with a warning.
    #[arg(long, env = "TRACEKEEPER_MAX_TRACE_SPANS", default_value_t = 100_000)]
    pub max_trace_spans: usize,
    /// Spans starting further ahead of now than this (a sender's clock gone wrong) are
    /// refused and reported in partial_success, as a Go duration.
    #[arg(long, env = "TRACEKEEPER_MAX_FUTURE_SKEW", default_value = "1h", value_parser = parse_duration)]
    pub max_future_skew: std::time::Duration,
    /// Most RED label sets (tenant, service, operation, span kind, status) kept as
    /// their own series in traces_span_metrics_*; later ones are folded into
    /// service_name="__folded__" and counted in tracekeeper_red_folded_spans_total.
    #[arg(long, env = "TRACEKEEPER_RED_MAX_SERIES", default_value_t = 10_000)]
    pub red_max_series: usize,
    /// How often the RED counts are written to the store, where the Monitor tab
    /// (/api/metrics/*) reads them, as a Go duration. A crash loses at most this much.
    #[arg(long, env = "TRACEKEEPER_RED_FLUSH_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub red_flush_interval: std::time::Duration,
    #[command(flatten)]
    pub search: SearchArgs,
    #[command(flatten)]
    pub ui: UiArgs,
}

/// What one search may cost.
#[derive(Debug, Clone, clap::Args)]
pub struct SearchArgs {
    /// Longest one search runs, as a Go duration; then it answers with what it found
    /// and says so in the x-tracekeeper-partial header.
    #[arg(long, env = "TRACEKEEPER_QUERY_TIMEOUT", default_value = "30s", value_parser = parse_positive_duration)]
    pub query_timeout: std::time::Duration,
    /// Most candidate traces one search reads; then it answers with the newest matches
    /// among them and says so in the x-tracekeeper-partial header.
    #[arg(long, env = "TRACEKEEPER_MAX_TRACES_INSPECTED", default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_traces_inspected: u64,
    /// Longest time range one search covers, as a Go duration; a longer one is searched
    /// back from its end this far, and says so in the x-tracekeeper-partial header.
    #[arg(long, env = "TRACEKEEPER_MAX_SEARCH_WINDOW", default_value = "720h", value_parser = parse_positive_duration)]
    pub max_search_window: std::time::Duration,
    /// Most queries one tenant runs at once on this node; beyond it 429 with
    /// Retry-After.
    #[arg(long, env = "TRACEKEEPER_MAX_QUERIES_PER_TENANT", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_queries_per_tenant: u64,
}

/// How every listener of the role serves: TLS, and the limits of the serving layer.
#[derive(Debug, Clone, clap::Args)]
pub struct ServingArgs {
    /// PEM certificate chain: every listener of this process serves TLS with it (needs
    /// --tls-key). The files are re-read when they change [default: plaintext].
    #[arg(long, env = "TRACEKEEPER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "TRACEKEEPER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA bundle: clients must present a certificate it signed (mutual TLS)
    /// [default: no client certificates].
    #[arg(long, env = "TRACEKEEPER_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Longest a request may take before it is answered 503 (gRPC: DEADLINE_EXCEEDED),
    /// as a Go duration.
    #[arg(long, env = "TRACEKEEPER_REQUEST_TIMEOUT", default_value = "60s", value_parser = parse_positive_duration)]
    pub request_timeout: std::time::Duration,
    /// Most requests served at once on one listener; beyond it clients get 503 with
    /// Retry-After (gRPC: UNAVAILABLE).
    #[arg(long, env = "TRACEKEEPER_MAX_CONCURRENT_REQUESTS", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_concurrent_requests: u64,
    /// TOML file of hashed bearer tokens and Basic credentials, each with the tenants it
    /// may act for and its scopes (write, read, admin); reloaded when it changes. See
    /// `tracekeeper auth --help` [default: none, every request is let through].
    #[arg(long, env = "TRACEKEEPER_AUTH_TOKENS_FILE")]
    pub auth_tokens_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Makes a new random bearer token and prints it with its SHA-256, the line that
    /// goes in the tokens file (the token itself is shown once and stored nowhere).
    NewToken,
    /// Reads a secret (token or password) from standard input and prints its SHA-256.
    Hash,
}

/// The web UI on the query listener.
#[derive(Debug, Clone, clap::Args)]
pub struct UiArgs {
    /// Serve the web UI at / on the query port; --ui=false serves the APIs only.
    #[arg(long, env = "TRACEKEEPER_UI", num_args = 0..=1, default_missing_value = "true", default_value = "true")]
    pub ui: bool,
    /// Path prefix for a reverse proxy, e.g. /tracing: the UI and the query APIs move
    /// under it (/tracing/api/...), /ready and /metrics stay at the root [default: none].
    #[arg(long, env = "TRACEKEEPER_UI_BASE_PATH")]
    pub ui_base_path: Option<String>,
}

fn parse_sync(text: &str) -> Result<Durability, String> {
    match text {
        "process" => Ok(Durability::Process),
        "fsync" => Ok(Durability::Fsync),
        other => Err(format!("unknown sync mode {other:?}: use process or fsync")),
    }
}

/// A Go duration flag value such as `10s` or `1m30s`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    tracekeeper_model::duration::parse_go_duration(text).map(std::time::Duration::from_nanos)
}

/// A Go duration that must be longer than zero.
pub fn parse_positive_duration(text: &str) -> Result<std::time::Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err("must be longer than zero".into()),
        d => Ok(d),
    }
}
