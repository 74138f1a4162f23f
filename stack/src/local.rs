//! The stack as local JVM processes: `ops/stack/kafka.sh` and `ops/stack/cassandra.sh`.
//!
//! The JVMs must not outlive the process that started them, even when it is killed:
//! each is its own process group with a parent-death signal (SIGKILL), and a detached
//! reaper removes the data directory once the parent is gone.

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::{probe, Endpoints, StackError};

const READY_TIMEOUT: Duration = Duration::from_secs(240);

pub(crate) fn ops_dir() -> PathBuf {
    std::env::var_os("TRACEKEEPER_OPS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops/stack"))
}

pub(crate) fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A parent-death signal fires when the *thread* that forked the child exits, so every
/// JVM is forked from one thread that lives as long as the process.
type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

fn spawner() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("stack-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
                // The channel is never closed; park so the thread never exits.
                loop {
                    std::thread::park();
                }
            })
            .expect("spawner thread");
        Mutex::new(tx)
    })
}

pub(crate) fn spawn_owned(mut command: Command) -> std::io::Result<Child> {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::setpgid(0, 0) != 0 || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel();
    spawner().lock().expect("spawner").send((command, tx)).expect("spawner thread alive");
    rx.recv().expect("spawner reply")
}

/// Removes `dir` (and kills the groups) once `parent` has exited, however it exited.
pub(crate) fn spawn_reaper(parent: u32, groups: &[u32], dir: &Path) -> std::io::Result<()> {
    let kills: String = groups.iter().map(|g| format!(" -{g}")).collect();
    let script = format!(
        "while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill -9{kills} 2>/dev/null; sleep 1; rm -rf '{}'",
        dir.display()
    );
    let mut command = Command::new("sh");
    command.args(["-c", &script]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    command.spawn().map(drop)
}

pub struct LocalStack {
    pub endpoints: Endpoints,
    children: Vec<(&'static str, Child)>,
    dir: PathBuf,
}

pub(crate) fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

impl LocalStack {
    /// Starts Kafka and Cassandra and waits until both answer real requests.
    pub async fn start() -> Result<Self, StackError> {
        let base = std::env::temp_dir().join(format!("tracekeeper-stack-{}", std::process::id()));
        let dir = tempfile::Builder::new().prefix("run-").tempdir_in({
            std::fs::create_dir_all(&base)?;
            &base
        })?;
        let dir = dir.keep();
        let (kafka_port, ctrl_port, cql_port, storage_port, jmx_port) =
            (free_port()?, free_port()?, free_port()?, free_port()?, free_port()?);
        let sasl_port = free_port()?;
        let ops = ops_dir();
        let mut stack = Self {
            endpoints: Endpoints {
                kafka: format!("127.0.0.1:{kafka_port}"),
                cql: format!("127.0.0.1:{cql_port}"),
                kafka_secured: Some(crate::SecuredKafka {
                    bootstrap: format!("127.0.0.1:{sasl_port}"),
                    ca: dir.join("kafka/tls/ca.pem"),
                }),
                source: "local JVM processes",
            },
            children: Vec::new(),
            dir: base.clone(),
        };
        let launch =
            |name: &'static str, script: &str, args: Vec<String>| -> Result<(&'static str, Child), StackError> {
                let log = dir.join(format!("{name}.log"));
                let mut command = Command::new("bash");
                command
                    .arg(ops.join(script))
                    .args(args)
                    .stdin(Stdio::null())
                    .stdout(File::create(&log)?)
                    .stderr(File::create(dir.join(format!("{name}.err")))?);
                Ok((name, spawn_owned(command)?))
            };
        stack.children.push(launch(
            "kafka",
            "kafka.sh",
            vec![
                dir.join("kafka").display().to_string(),
                kafka_port.to_string(),
                ctrl_port.to_string(),
                "512m".to_string(),
                sasl_port.to_string(),
            ],
        )?);
        stack.children.push(launch(
            "cassandra",
            "cassandra.sh",
            vec![
                dir.join("cassandra").display().to_string(),
                cql_port.to_string(),
                storage_port.to_string(),
                jmx_port.to_string(),
            ],
        )?);
        let groups: Vec<u32> = stack.children.iter().map(|(_, c)| c.id()).collect();
        spawn_reaper(std::process::id(), &groups, &base)?;

        let deadline = Instant::now() + READY_TIMEOUT;
        let mut kafka_ok = false;
        loop {
            for (name, child) in &mut stack.children {
                if let Some(status) = child.try_wait()? {
                    let err = tail(&dir.join(format!("{name}.err")));
                    let out = tail(&dir.join(format!("{name}.log")));
                    return Err(StackError::Unavailable(format!(
                        "{name} exited ({status}) before it was ready (needs Java 17 and Maven):\n{err}\n{out}"
                    )));
                }
            }
            if !kafka_ok {
                kafka_ok = probe::kafka_ready(&stack.endpoints.kafka).await.is_ok_and(|n| n > 0);
            }
            if kafka_ok && probe::cql_release_version(&stack.endpoints.cql).await.is_ok() {
                return Ok(stack);
            }
            if Instant::now() > deadline {
                let which = if kafka_ok { "cassandra" } else { "kafka" };
                return Err(StackError::NotReady {
                    service: which,
                    timeout: READY_TIMEOUT,
                    detail: tail(&dir.join(format!("{which}.log"))),
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Starts the stack for the rest of the process's life. A failed start is retried
    /// once on fresh ports: free ports are picked before the JVMs bind them, so another
    /// process may take one in between.
    pub async fn start_shared() -> Result<Endpoints, StackError> {
        let stack = match Self::start().await {
            Ok(stack) => stack,
            Err(first) => {
                eprintln!("the local Kafka/Cassandra stack failed to start, retrying once: {first}");
                Self::start().await?
            }
        };
        let endpoints = stack.endpoints.clone();
        std::mem::forget(stack);
        Ok(endpoints)
    }

    /// Stops both services (SIGTERM, then SIGKILL) and removes their data.
    pub fn stop(mut self) {
        for (_, child) in &self.children {
            // SAFETY: plain syscall on a process group we created.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        for (_, child) in &mut self.children {
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        // Drop kills whatever is left and removes the data.
    }
}

impl Drop for LocalStack {
    /// A stack that failed to start, or is stopped, leaves no process and no data.
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            // SAFETY: plain syscall on a process group we created.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
