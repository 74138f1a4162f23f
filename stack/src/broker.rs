//! A Kafka broker of one test's own, which the test may stop and start again: for
//! broker-outage tests, which must not take down the broker other tests share.
//! Always a local JVM (`ops/stack/kafka.sh`); needs Java 17 and Maven.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::local::{free_port, ops_dir, spawn_owned, spawn_reaper, tail};
use crate::{probe, StackError};

pub struct PrivateBroker {
    dir: PathBuf,
    port: u16,
    controller_port: u16,
    child: Option<Child>,
}

impl PrivateBroker {
    /// Starts a single-node KRaft broker on free loopback ports and waits until it
    /// answers a metadata request. A port found free may be taken by another test before
    /// the JVM binds it, and the broker then exits at once: it is tried again on fresh
    /// ports, up to three times.
    pub async fn start() -> Result<Self, StackError> {
        let mut last = None;
        for _ in 0..3 {
            let dir = tempfile::Builder::new().prefix("tracekeeper-broker-").tempdir()?.keep();
            let mut broker = Self { dir, port: free_port()?, controller_port: free_port()?, child: None };
            match broker.resume().await {
                Ok(()) => {
                    spawn_reaper(std::process::id(), &[broker.child.as_ref().map_or(0, Child::id)], &broker.dir)?;
                    return Ok(broker);
                }
                Err(e) => {
                    eprintln!("a private Kafka broker failed to start, trying other ports: {e}");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| StackError::Unavailable("no attempt to start a private broker".into())))
    }

    /// `host:port` to bootstrap from; stays the same across restarts.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker (SIGKILL to its process group); its data stays for [`resume`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: plain syscall on a process group we created.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same ports and data, and waits for it.
    pub async fn resume(&mut self) -> Result<(), StackError> {
        self.stop();
        let log = self.dir.join("kafka.log");
        let mut command = Command::new("bash");
        command
            .arg(ops_dir().join("kafka.sh"))
            .args([self.dir.join("kafka").display().to_string(), self.port.to_string()])
            .arg(self.controller_port.to_string())
            .arg("384m")
            .stdin(Stdio::null())
            .stdout(File::create(&log)?)
            .stderr(File::create(self.dir.join("kafka.err"))?);
        self.child = Some(spawn_owned(command)?);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(StackError::Unavailable(format!(
                    "private Kafka broker exited ({status}) before it was ready (needs Java 17 and Maven):\n{}\n{}",
                    tail(&self.dir.join("kafka.err")),
                    tail(&log)
                )));
            }
            if probe::kafka_ready(&self.bootstrap()).await.is_ok_and(|n| n > 0) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(StackError::NotReady {
                    service: "kafka",
                    timeout: Duration::from_secs(120),
                    detail: tail(&log),
                });
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
