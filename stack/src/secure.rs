//! A Cassandra that wants a login and TLS, as production clusters run, started by the
//! test that needs one (`ops/stack/cassandra.sh` with `TRACEKEEPER_CASSANDRA_SECURE=1`):
//! the shared stack stays open so the other tests need no credentials.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use scylla::client::session_builder::SessionBuilder;

use crate::local::{free_port, ops_dir, spawn_owned, spawn_reaper, tail};
use crate::StackError;

const READY_TIMEOUT: Duration = Duration::from_secs(240);

pub struct SecureCassandra {
    /// CQL contact point, `host:port`; TLS only.
    pub contact: String,
    /// PEM CA that signed the node's certificate.
    pub ca: PathBuf,
    child: Child,
    dir: PathBuf,
}

impl SecureCassandra {
    /// The default superuser.
    pub const USER: &'static str = "cassandra";
    pub const PASSWORD: &'static str = "cassandra";

    /// Starts it and waits until a TLS session logged in as [`Self::USER`] answers.
    pub async fn start() -> Result<Self, StackError> {
        let dir = tempfile::Builder::new().prefix("tracekeeper-secure-cql-").tempdir()?.keep();
        let (port, storage_port, jmx_port) = (free_port()?, free_port()?, free_port()?);
        let mut command = Command::new("bash");
        command
            .arg(ops_dir().join("cassandra.sh"))
            .args([dir.join("cassandra").display().to_string(), port.to_string()])
            .args([storage_port.to_string(), jmx_port.to_string()])
            .env("TRACEKEEPER_CASSANDRA_SECURE", "1")
            .stdin(Stdio::null())
            .stdout(File::create(dir.join("cassandra.log"))?)
            .stderr(File::create(dir.join("cassandra.err"))?);
        let child = spawn_owned(command)?;
        spawn_reaper(std::process::id(), &[child.id()], &dir)?;
        let mut node = Self {
            contact: format!("127.0.0.1:{port}"),
            ca: dir.join("cassandra/tls/ca.pem"),
            child,
            dir: dir.clone(),
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = node.child.try_wait()? {
                return Err(StackError::Unavailable(format!(
                    "the secured Cassandra exited ({status}) before it was ready:\n{}\n{}",
                    tail(&dir.join("cassandra.err")),
                    tail(&dir.join("cassandra.log"))
                )));
            }
            let last = match node.release_version().await {
                Ok(_) => return Ok(node),
                Err(e) => e,
            };
            if Instant::now() > deadline {
                return Err(StackError::NotReady {
                    service: "secured Cassandra",
                    timeout: READY_TIMEOUT,
                    detail: last,
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// `release_version` over TLS, logged in.
    async fn release_version(&self) -> Result<String, String> {
        if !self.ca.exists() {
            return Err("no certificate yet".into());
        }
        let roots = tracekeeper_model::pem::root_store(&self.ca).map_err(|e| e.to_string())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let builder = SessionBuilder::new()
            .known_node(&self.contact)
            .user(Self::USER, Self::PASSWORD)
            .tls_context(Some(Arc::new(tls)));
        crate::probe::release_version(builder).await
    }
}

impl Drop for SecureCassandra {
    fn drop(&mut self) {
        // SAFETY: plain syscall on a process group we created.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
