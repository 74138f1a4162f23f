//! The flags of the distributed shape's roles and tools (the `distributed` feature):
//! the collector, indexer, query and retention roles, `schema apply` and `dlq`.

use clap::Subcommand;
use std::net::SocketAddr;

use tracekeeper_kafka::dead_letter;

use super::{parse_duration, parse_positive_duration, ConfigArgs, CqlSecurityArgs, KafkaSecurityArgs, ReceiverArgs};
use super::{SearchArgs, ServingArgs, UiArgs};

#[derive(Debug, Clone, clap::Args)]
pub struct CollectorArgs {
    #[command(flatten)]
    pub receivers: ReceiverArgs,
    /// Kafka bootstrap servers, comma-separated host:port.
    #[arg(long, env = "TRACEKEEPER_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,
    /// Topic the spans are written to.
    #[arg(long, env = "TRACEKEEPER_KAFKA_TOPIC", default_value = "tracekeeper-spans")]
    pub kafka_topic: String,
    /// How long to wait for Kafka to acknowledge a request's messages before telling
    /// the client to retry (503 / UNAVAILABLE), as a Go duration.
    #[arg(long, env = "TRACEKEEPER_KAFKA_ACK_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration)]
    pub kafka_ack_timeout: std::time::Duration,
    #[command(flatten)]
    pub kafka_security: KafkaSecurityArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct IndexerArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Kafka bootstrap servers, comma-separated host:port.
    #[arg(long, env = "TRACEKEEPER_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,
    /// Topics to index, comma-separated or repeated: the collectors' topic, and any a
    /// Collector's kafka exporter or a Zipkin reporter writes (see --kafka-encoding).
    #[arg(long, env = "TRACEKEEPER_KAFKA_TOPIC", value_delimiter = ',', default_value = "tracekeeper-spans")]
    pub kafka_topic: Vec<String>,
    /// How the topics' messages are encoded: one encoding for every topic, or
    /// `topic=encoding` per topic (others take otlp_proto). otlp_proto, otlp_json,
    /// jaeger_proto, jaeger_json, zipkin_proto or zipkin_json, as the OpenTelemetry
    /// Collector's kafka exporter names them; zipkin_* also read Zipkin reporters' topics.
    #[arg(long, env = "TRACEKEEPER_KAFKA_ENCODING", value_delimiter = ',', default_value = "otlp_proto")]
    pub kafka_encoding: Vec<String>,
    /// Consumer group; every indexer of one deployment uses the same.
    #[arg(long, env = "TRACEKEEPER_GROUP", default_value = "tracekeeper-indexer")]
    pub group: String,
    /// CQL contact points, comma-separated host:port.
    #[arg(long, env = "TRACEKEEPER_CQL_NODES", value_delimiter = ',', default_value = "127.0.0.1:9042")]
    pub cql_nodes: Vec<String>,
    /// Keyspace to write (created by `tracekeeper schema apply`).
    #[arg(long, env = "TRACEKEEPER_KEYSPACE", default_value = "tracekeeper")]
    pub keyspace: String,
    /// How long data is kept, as a Go duration, until the retention worker has recorded
    /// its policies in the store; from then on each tenant's own policy is read from
    /// there (every 5 s). Rows get TTL = span start + the tenant's retention − now.
    #[arg(long, env = "TRACEKEEPER_RETENTION", default_value = "168h")]
    pub retention: String,
    /// Listen address for /ready, /metrics and /api/status.
    #[arg(long, env = "TRACEKEEPER_ADMIN_ADDR", default_value = "0.0.0.0:14270")]
    pub admin_addr: SocketAddr,
    /// How long the group waits for a silent indexer before moving its partitions to
    /// the others, as a Go duration. Shorter fails over faster; too short evicts
    /// indexers that are merely slow.
    #[arg(long, env = "TRACEKEEPER_SESSION_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub session_timeout: std::time::Duration,
    /// How long a batch may take to be stored before this indexer gives its partitions
    /// up to the group, as a Go duration: an indexer that cannot reach the store (a
    /// network partition, a hung node) still heartbeats to Kafka, so without it its
    /// partitions would wait for it. It rejoins once the store answers. At least
    /// --session-timeout.
    #[arg(long, env = "TRACEKEEPER_STALL_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub stall_timeout: std::time::Duration,
    /// Most spans one trace may store; spans beyond it are refused and counted per
    /// tenant.
    #[arg(long, env = "TRACEKEEPER_MAX_TRACE_SPANS", default_value_t = 100_000)]
    pub max_trace_spans: usize,
    /// Spans starting further ahead of now than this are refused and counted
    /// (reason "future"), as a Go duration. A tenant's own goes in the config file:
    /// [tenant-ingest-limits.NAME] max-future-skew = "5m".
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
    /// Topic for messages that can never be stored (they do not decode, or the store
    /// refuses their rows): each is published there with its original headers plus a
    /// reason, and its partition moves on. `tracekeeper dlq replay` sends them back.
    #[arg(long, env = "TRACEKEEPER_KAFKA_DLQ_TOPIC", default_value = tracekeeper_kafka::dead_letter::DEFAULT_TOPIC)]
    pub kafka_dlq_topic: String,
    #[command(flatten)]
    pub serving: ServingArgs,
    #[command(flatten)]
    pub kafka_security: KafkaSecurityArgs,
    #[command(flatten)]
    pub cql_security: CqlSecurityArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RetentionArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// CQL contact points, comma-separated host:port.
    #[arg(long, env = "TRACEKEEPER_CQL_NODES", value_delimiter = ',', default_value = "127.0.0.1:9042")]
    pub cql_nodes: Vec<String>,
    /// Keyspace holding the data (created by `tracekeeper schema apply`).
    #[arg(long, env = "TRACEKEEPER_KEYSPACE", default_value = "tracekeeper")]
    pub keyspace: String,
    /// Default retention, as a Go duration.
    #[arg(long, env = "TRACEKEEPER_RETENTION", default_value = "168h")]
    pub retention: String,
    /// Per-tenant retention, `tenant=duration`, comma-separated or repeated
    /// (e.g. `acme=24h,beta=72h`). Shortening one hides that tenant's older data at once.
    #[arg(long, env = "TRACEKEEPER_TENANT_RETENTION", value_delimiter = ',')]
    pub tenant_retention: Vec<String>,
    /// Time between runs, as a Go duration.
    #[arg(long, env = "TRACEKEEPER_RETENTION_INTERVAL", default_value = "1m", value_parser = parse_duration)]
    pub interval: std::time::Duration,
    /// How long the lease lasts without renewal; a paused worker loses it after this.
    #[arg(long, env = "TRACEKEEPER_LEASE_TTL", default_value = "3m", value_parser = parse_duration)]
    pub lease_ttl: std::time::Duration,
    /// Listen address for /ready, /metrics and /api/retention.
    #[arg(long, env = "TRACEKEEPER_ADMIN_ADDR", default_value = "0.0.0.0:14271")]
    pub admin_addr: SocketAddr,
    #[command(flatten)]
    pub serving: ServingArgs,
    #[command(flatten)]
    pub cql_security: CqlSecurityArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Query API listen address.
    #[arg(long, env = "TRACEKEEPER_QUERY_ADDR", default_value = "0.0.0.0:16686")]
    pub query_addr: SocketAddr,
    #[command(flatten)]
    pub jaeger_grpc: super::JaegerGrpcArgs,
    /// Serve POST /api/purge, which truncates the keyspace's data tables: for test
    /// suites that empty the store between cases (Jaeger's storage integration tests)
    /// only, never in production. Needs the admin scope when tokens are on.
    #[arg(long, env = "TRACEKEEPER_TEST_PURGE_ENDPOINT")]
    pub test_purge_endpoint: bool,
    /// CQL contact points, comma-separated host:port.
    #[arg(long, env = "TRACEKEEPER_CQL_NODES", value_delimiter = ',', default_value = "127.0.0.1:9042")]
    pub cql_nodes: Vec<String>,
    /// Keyspace holding the data (created by `tracekeeper schema apply`).
    #[arg(long, env = "TRACEKEEPER_KEYSPACE", default_value = "tracekeeper")]
    pub keyspace: String,
    /// Require the X-Scope-OrgID header and keep each tenant's data apart.
    #[arg(long, env = "TRACEKEEPER_MULTI_TENANCY", num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    pub multi_tenancy: bool,
    /// How long data is visible, as a Go duration, until the retention worker has
    /// recorded its policies in the store; then each tenant's own policy (every 5 s).
    #[arg(long, env = "TRACEKEEPER_RETENTION", default_value = "168h")]
    pub retention: String,
    /// Most spans returned for one trace; larger traces are cut with a warning.
    #[arg(long, env = "TRACEKEEPER_MAX_TRACE_SPANS", default_value_t = 100_000)]
    pub max_trace_spans: usize,
    #[command(flatten)]
    pub search: SearchArgs,
    #[command(flatten)]
    pub ui: UiArgs,
    #[command(flatten)]
    pub serving: ServingArgs,
    #[command(flatten)]
    pub cql_security: CqlSecurityArgs,
}

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Create or upgrade the keyspace and tables (schemas/*.cql). Idempotent: safe to
    /// run on every deploy, from any number of nodes.
    Apply(SchemaApplyArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct SchemaApplyArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// CQL contact points, comma-separated host:port.
    #[arg(long, env = "TRACEKEEPER_CQL_NODES", value_delimiter = ',', default_value = "127.0.0.1:9042")]
    pub cql_nodes: Vec<String>,
    /// Keyspace to create or upgrade.
    #[arg(long, env = "TRACEKEEPER_KEYSPACE", default_value = "tracekeeper")]
    pub keyspace: String,
    /// Replication of the keyspace, as a CQL map; used only when the keyspace is created.
    #[arg(
        long,
        env = "TRACEKEEPER_REPLICATION",
        default_value = "{'class': 'NetworkTopologyStrategy', 'replication_factor': 3}"
    )]
    pub replication: String,
    #[command(flatten)]
    pub cql_security: CqlSecurityArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum DlqCommand {
    /// Send the messages waiting in the dead-letter topic back to the topic each came
    /// from (or to --to-topic), without the headers the indexer added, once the cause is
    /// fixed. Progress is kept in a consumer group, so a second run sends only what
    /// arrived since. Stops when it has sent what was waiting when it started.
    Replay(ReplayArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Kafka bootstrap servers, comma-separated host:port.
    #[arg(long, env = "TRACEKEEPER_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,
    /// The dead-letter topic to read.
    #[arg(long, env = "TRACEKEEPER_KAFKA_DLQ_TOPIC", default_value = dead_letter::DEFAULT_TOPIC)]
    pub kafka_dlq_topic: String,
    /// Send every message here instead of back to the topic it came from.
    #[arg(long)]
    pub to_topic: Option<String>,
    /// Consumer group that remembers how far replays have gone.
    #[arg(long, default_value = "tracekeeper-dlq-replay")]
    pub group: String,
    #[command(flatten)]
    pub kafka_security: KafkaSecurityArgs,
}
