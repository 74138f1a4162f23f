//! The stack from testcontainers, when a Docker daemon answers.

use std::sync::Mutex;
use std::time::Duration;

use testcontainers_modules::kafka::apache::{Kafka, KAFKA_PORT};
use testcontainers_modules::scylladb::ScyllaDB;
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use testcontainers_modules::testcontainers::ContainerAsync;

use crate::{probe, Endpoints, StackError};

/// Containers stay up for the life of the process.
static KEEP: Mutex<Vec<Box<dyn std::any::Any + Send>>> = Mutex::new(Vec::new());

fn docker_answers() -> bool {
    std::process::Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn keep<T: testcontainers_modules::testcontainers::Image + 'static>(c: ContainerAsync<T>)
where
    ContainerAsync<T>: Send,
{
    KEEP.lock().expect("container list").push(Box::new(c));
}

pub async fn start() -> Result<Endpoints, StackError> {
    if !docker_answers() {
        return Err(StackError::Unavailable("no Docker daemon answers `docker info`".into()));
    }
    let fail = |what: &str, e: &dyn std::fmt::Display| StackError::Unavailable(format!("starting {what}: {e}"));
    let kafka = Kafka::default().with_jvm_image().start().await.map_err(|e| fail("apache/kafka", &e))?;
    let kafka_port = kafka.get_host_port_ipv4(KAFKA_PORT).await.map_err(|e| fail("apache/kafka", &e))?;
    let scylla = ScyllaDB::default().start().await.map_err(|e| fail("scylladb/scylla", &e))?;
    let cql_port = scylla.get_host_port_ipv4(9042).await.map_err(|e| fail("scylladb/scylla", &e))?;
    keep(kafka);
    keep(scylla);
    let endpoints = Endpoints {
        kafka_secured: None,
        kafka: format!("127.0.0.1:{kafka_port}"),
        cql: format!("127.0.0.1:{cql_port}"),
        source: "testcontainers",
    };
    probe::wait_ready(&endpoints, Duration::from_secs(120)).await?;
    Ok(endpoints)
}
