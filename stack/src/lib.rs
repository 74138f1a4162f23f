//! Real Kafka and a real CQL database for tests and local use.
//!
//! [`endpoints`] finds them in this order:
//! 1. environment variables naming an existing cluster: `TRACEKEEPER_TEST_KAFKA`
//!    (bootstrap servers) and `TRACEKEEPER_TEST_CQL` (contact point `host:port`);
//! 2. testcontainers (apache/kafka, scylladb/scylla), when a Docker daemon answers;
//! 3. local JVM processes: Apache Kafka (KRaft) and Apache Cassandra 5.0 from jars
//!    resolved from Maven Central (`ops/stack/`), on free loopback ports.
//!
//! A test that needs the stack and cannot get it fails with the reason; it is never
//! skipped. The stack is started once per process and shared by its tests;
//! `ops/test.sh` starts one for the whole run and passes it down through (1).

pub mod broker;
pub mod cluster;
mod docker;
pub mod local;
pub mod probe;
pub mod secure;
mod wait;

pub use cluster::{require_cluster, Cluster};
pub use wait::wait_until;

use std::time::Duration;

use tokio::sync::OnceCell;

/// Where the services are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Kafka bootstrap servers, `host:port[,host:port]`.
    pub kafka: String,
    /// A CQL contact point, `host:port`.
    pub cql: String,
    /// The same broker's SASL_SSL listener, when it has one ([`SecuredKafka`]).
    pub kafka_secured: Option<SecuredKafka>,
    /// Where they came from, for messages.
    pub source: &'static str,
}

/// A broker listener that wants TLS and a SASL login (SCRAM-SHA-256, SCRAM-SHA-512,
/// PLAIN), as `ops/stack/kafka.sh` opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecuredKafka {
    /// Bootstrap servers of the SASL_SSL listener.
    pub bootstrap: String,
    /// PEM CA that signed the broker's certificate.
    pub ca: std::path::PathBuf,
}

impl SecuredKafka {
    /// The user every mechanism knows, and its password.
    pub const USER: &'static str = "tracekeeper";
    pub const PASSWORD: &'static str = "tracekeeper-secret";
}

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("{0}")]
    Unavailable(String),
    #[error("{service} did not become ready within {timeout:?}: {detail}")]
    NotReady { service: &'static str, timeout: Duration, detail: String },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

pub const KAFKA_ENV: &str = "TRACEKEEPER_TEST_KAFKA";
pub const CQL_ENV: &str = "TRACEKEEPER_TEST_CQL";
/// The SASL_SSL listener and its CA file, `host:port` and a path.
pub const KAFKA_SASL_SSL_ENV: &str = "TRACEKEEPER_TEST_KAFKA_SASL_SSL";
pub const KAFKA_CA_ENV: &str = "TRACEKEEPER_TEST_KAFKA_CA";

static SHARED: OnceCell<Endpoints> = OnceCell::const_new();

/// The shared stack of this process, started on first use.
pub async fn endpoints() -> Result<&'static Endpoints, StackError> {
    SHARED.get_or_try_init(discover).await
}

/// Like [`endpoints`], but panics with what is missing: for tests, which must fail
/// rather than pass quietly without their infrastructure.
pub async fn require() -> &'static Endpoints {
    match endpoints().await {
        Ok(e) => e,
        Err(e) => {
            panic!("this test needs a Kafka broker and a CQL database and could not get them: {e}")
        }
    }
}

async fn discover() -> Result<Endpoints, StackError> {
    if let (Ok(kafka), Ok(cql)) = (std::env::var(KAFKA_ENV), std::env::var(CQL_ENV)) {
        let kafka_secured = match (std::env::var(KAFKA_SASL_SSL_ENV), std::env::var(KAFKA_CA_ENV)) {
            (Ok(bootstrap), Ok(ca)) => Some(SecuredKafka { bootstrap, ca: ca.into() }),
            _ => None,
        };
        let endpoints = Endpoints { kafka, cql, kafka_secured, source: "environment" };
        probe::wait_ready(&endpoints, Duration::from_secs(30)).await?;
        return Ok(endpoints);
    }
    let mut reasons = Vec::new();
    match docker::start().await {
        Ok(endpoints) => return Ok(endpoints),
        Err(e) => reasons.push(format!("testcontainers: {e}")),
    }
    match local::LocalStack::start_shared().await {
        Ok(endpoints) => return Ok(endpoints),
        Err(e) => reasons.push(format!("local JVMs: {e}")),
    }
    Err(StackError::Unavailable(format!(
        "no Kafka/CQL stack: set {KAFKA_ENV} and {CQL_ENV}, or run a Docker daemon, or install Java 17 and Maven \
         for the local JVM stack. Tried: {}",
        reasons.join("; ")
    )))
}
