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
mod docker;
pub mod local;
pub mod probe;

use std::time::Duration;

use tokio::sync::OnceCell;

/// Where the services are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Kafka bootstrap servers, `host:port[,host:port]`.
    pub kafka: String,
    /// A CQL contact point, `host:port`.
    pub cql: String,
    /// Where they came from, for messages.
    pub source: &'static str,
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
        let endpoints = Endpoints { kafka, cql, source: "environment" };
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
