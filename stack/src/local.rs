//! The stack as local JVM processes: `ops/stack/kafka.sh` and `ops/stack/cassandra.sh`.
//!
//! The JVMs must not outlive the process that started them, even when it is killed:
//! each is its own process group with a parent-death signal (SIGKILL), and a detached
//! reaper removes the data directory once the parent is gone.

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

/// How many of each service to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub cassandra_nodes: usize,
    pub kafka_brokers: usize,
}

impl Default for Shape {
    fn default() -> Self {
        Self { cassandra_nodes: 1, kafka_brokers: 1 }
    }
}

impl Shape {
    /// Most nodes of each: they live on 127.0.0.1 up to 127.0.0.9.
    pub const MAX_NODES: usize = 9;

    fn is_cluster(&self) -> bool {
        self.cassandra_nodes > 1 || self.kafka_brokers > 1
    }
}

/// One JVM of the stack, and how to start it again.
struct Node {
    name: String,
    script: &'static str,
    args: Vec<String>,
    env: Vec<(String, String)>,
    child: Child,
    /// Stopped by [`LocalStack::kill`] and not started again.
    down: bool,
}

pub struct LocalStack {
    pub endpoints: Endpoints,
    /// Every CQL node's contact point, in node order (`cassandra-1` first).
    pub cql_nodes: Vec<String>,
    /// Every broker's address, in node-id order (`kafka-1` first).
    pub kafka_brokers: Vec<String>,
    nodes: Vec<Node>,
    /// Where each node's data and logs are (`<name>/`, `<name>.log`, `<name>.err`).
    run_dir: PathBuf,
    dir: PathBuf,
}

pub(crate) fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// A port free on every one of `addresses` (nodes of a cluster share their ports, each
/// on its own loopback address).
fn port_free_on(addresses: &[String]) -> std::io::Result<u16> {
    for _ in 0..50 {
        let port = free_port()?;
        if addresses.iter().all(|a| TcpListener::bind((a.as_str(), port)).is_ok()) {
            return Ok(port);
        }
    }
    Err(std::io::Error::other("no port free on every loopback address of the cluster"))
}

/// Node `n`'s loopback address (1-based): 127.0.0.n.
fn address(n: usize) -> String {
    format!("127.0.0.{n}")
}

/// The `i`th of `n` tokens spread evenly over Murmur3's range.
fn token(i: usize, n: usize) -> i128 {
    i128::from(i64::MIN) + (1i128 << 64) / n as i128 * i as i128
}

impl LocalStack {
    /// Starts one Kafka broker and one Cassandra node and waits until both answer real
    /// requests.
    pub async fn start() -> Result<Self, StackError> {
        Self::start_shape(Shape::default()).await
    }

    /// Starts `shape`'s brokers (a KRaft quorum of them all) and Cassandra nodes (one
    /// datacenter, a rack each), and waits until every node answers and knows the
    /// others, and every broker is in the ISR of a topic replicated to all.
    pub async fn start_shape(shape: Shape) -> Result<Self, StackError> {
        for n in [shape.cassandra_nodes, shape.kafka_brokers] {
            if n == 0 || n > Shape::MAX_NODES {
                return Err(StackError::Unavailable(format!("a stack has 1 to {} of each node", Shape::MAX_NODES)));
            }
        }
        let base = std::env::temp_dir().join(format!("tracekeeper-stack-{}", std::process::id()));
        let run_dir = tempfile::Builder::new().prefix("run-").tempdir_in({
            std::fs::create_dir_all(&base)?;
            &base
        })?;
        let run_dir = run_dir.keep();
        let kafka_addresses: Vec<String> = (1..=shape.kafka_brokers).map(address).collect();
        let cql_addresses: Vec<String> = (1..=shape.cassandra_nodes).map(address).collect();
        let (kafka_port, ctrl_port) = (port_free_on(&kafka_addresses)?, port_free_on(&kafka_addresses)?);
        let (cql_port, storage_port) = (port_free_on(&cql_addresses)?, port_free_on(&cql_addresses)?);
        // The SASL_SSL listener is the one-broker stack's (tests of secured clients).
        let sasl_port = if shape.is_cluster() { None } else { Some(free_port()?) };
        let kafka_brokers: Vec<String> = kafka_addresses.iter().map(|a| format!("{a}:{kafka_port}")).collect();
        let cql_nodes: Vec<String> = cql_addresses.iter().map(|a| format!("{a}:{cql_port}")).collect();
        let mut stack = Self {
            endpoints: Endpoints {
                kafka: kafka_brokers.join(","),
                cql: cql_nodes[0].clone(),
                kafka_secured: sasl_port.map(|port| crate::SecuredKafka {
                    bootstrap: format!("127.0.0.1:{port}"),
                    ca: run_dir.join("kafka/tls/ca.pem"),
                }),
                source: "local JVM processes",
            },
            cql_nodes,
            kafka_brokers,
            nodes: Vec::new(),
            run_dir: run_dir.clone(),
            dir: base.clone(),
        };
        let name =
            |service: &str, n: usize, of: usize| if of == 1 { service.to_string() } else { format!("{service}-{n}") };
        let voters: Vec<String> =
            kafka_addresses.iter().enumerate().map(|(i, a)| format!("{}@{a}:{ctrl_port}", i + 1)).collect();
        for (i, a) in kafka_addresses.iter().enumerate() {
            let node = name("kafka", i + 1, shape.kafka_brokers);
            let mut args = vec![
                run_dir.join(&node).display().to_string(),
                kafka_port.to_string(),
                ctrl_port.to_string(),
                "512m".to_string(),
            ];
            args.extend(sasl_port.map(|p| p.to_string()));
            let env = vec![
                ("TRACEKEEPER_KAFKA_ADDRESS".to_string(), a.clone()),
                ("TRACEKEEPER_KAFKA_NODE_ID".to_string(), (i + 1).to_string()),
                ("TRACEKEEPER_KAFKA_VOTERS".to_string(), voters.join(",")),
                ("TRACEKEEPER_KAFKA_REPLICATION".to_string(), shape.kafka_brokers.min(3).to_string()),
            ];
            stack.launch(node, "kafka.sh", args, env)?;
        }
        let seeds: Vec<String> = cql_addresses.iter().map(|a| format!("{a}:{storage_port}")).collect();
        for (i, a) in cql_addresses.iter().enumerate() {
            let node = name("cassandra", i + 1, shape.cassandra_nodes);
            let args = vec![
                run_dir.join(&node).display().to_string(),
                cql_port.to_string(),
                storage_port.to_string(),
                free_port()?.to_string(),
            ];
            let token = if shape.cassandra_nodes == 1 { 0 } else { token(i, shape.cassandra_nodes) };
            let env = vec![
                ("TRACEKEEPER_CASSANDRA_ADDRESS".to_string(), a.clone()),
                ("TRACEKEEPER_CASSANDRA_SEEDS".to_string(), seeds.join(",")),
                ("TRACEKEEPER_CASSANDRA_TOKEN".to_string(), token.to_string()),
                ("TRACEKEEPER_CASSANDRA_RACK".to_string(), format!("rack{}", i + 1)),
            ];
            stack.launch(node, "cassandra.sh", args, env)?;
        }
        let groups: Vec<u32> = stack.nodes.iter().map(|n| n.child.id()).collect();
        spawn_reaper(std::process::id(), &groups, &base)?;
        stack.wait_ready().await?;
        Ok(stack)
    }

    fn launch(
        &mut self,
        name: String,
        script: &'static str,
        args: Vec<String>,
        env: Vec<(String, String)>,
    ) -> Result<(), StackError> {
        let child = self.spawn(&name, script, &args, &env)?;
        self.nodes.push(Node { name, script, args, env, child, down: false });
        Ok(())
    }

    fn spawn(&self, name: &str, script: &str, args: &[String], env: &[(String, String)]) -> Result<Child, StackError> {
        let open = |suffix: &str| {
            std::fs::OpenOptions::new().create(true).append(true).open(self.run_dir.join(format!("{name}.{suffix}")))
        };
        let mut command = Command::new("bash");
        command
            .arg(ops_dir().join(script))
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(open("log")?)
            .stderr(open("err")?);
        Ok(spawn_owned(command)?)
    }

    async fn wait_ready(&mut self) -> Result<(), StackError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut kafka_ok = false;
        loop {
            for node in &mut self.nodes {
                if let Some(status) = node.child.try_wait()? {
                    let err = tail(&self.run_dir.join(format!("{}.err", node.name)));
                    let out = tail(&self.run_dir.join(format!("{}.log", node.name)));
                    return Err(StackError::Unavailable(format!(
                        "{} exited ({status}) before it was ready (needs Java 17 and Maven):\n{err}\n{out}",
                        node.name
                    )));
                }
            }
            if !kafka_ok {
                kafka_ok = probe::kafka_cluster_ready(&self.endpoints.kafka, self.kafka_brokers.len()).await.is_ok();
            }
            let cql = if kafka_ok { probe::cql_cluster_ready(&self.cql_nodes).await } else { Err(String::new()) };
            if cql.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let which = if kafka_ok { "cassandra" } else { "kafka" };
                let first = self.nodes.iter().find(|n| n.name.starts_with(which)).map_or(which, |n| n.name.as_str());
                return Err(StackError::NotReady {
                    service: which,
                    timeout: READY_TIMEOUT,
                    detail: format!(
                        "{}\n{}",
                        cql.err().unwrap_or_default(),
                        tail(&self.run_dir.join(format!("{first}.log")))
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The names of the stack's JVMs (`kafka-1`, `cassandra-2`, ...; `kafka` and
    /// `cassandra` in a one-node stack), and whether each is running.
    pub fn nodes(&mut self) -> Vec<(String, Option<u32>)> {
        self.nodes
            .iter_mut()
            .map(|n| {
                let running = !n.down && n.child.try_wait().ok().flatten().is_none();
                (n.name.clone(), running.then(|| n.child.id()))
            })
            .collect()
    }

    fn node(&mut self, name: &str) -> Result<&mut Node, StackError> {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .ok_or_else(|| StackError::Unavailable(format!("the stack has no node {name:?}")))
    }

    /// Sends `signal` to node `name`'s process group: SIGKILL (then reaps it), SIGTERM
    /// (then waits up to a minute for it to exit, and kills it if it has not), SIGSTOP
    /// or SIGCONT. Its data stays, for [`Self::restart`].
    pub fn signal(&mut self, name: &str, signal: i32) -> Result<(), StackError> {
        let node = self.node(name)?;
        let group = -(node.child.id() as i32);
        // SAFETY: plain syscalls on a process group we created.
        unsafe { libc::kill(group, signal) };
        if signal == libc::SIGTERM {
            let deadline = Instant::now() + Duration::from_secs(60);
            while node.child.try_wait()?.is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            // SAFETY: as above.
            unsafe { libc::kill(group, libc::SIGKILL) };
        }
        if signal == libc::SIGKILL || signal == libc::SIGTERM {
            node.down = true;
            node.child.wait()?;
        }
        Ok(())
    }

    /// Starts node `name` again on its data, if it is not running; returns at once
    /// (readiness is the caller's to wait for).
    pub fn restart(&mut self, name: &str) -> Result<(), StackError> {
        let index = self.nodes.iter().position(|n| n.name == name);
        let index = index.ok_or_else(|| StackError::Unavailable(format!("the stack has no node {name:?}")))?;
        if !self.nodes[index].down && self.nodes[index].child.try_wait()?.is_none() {
            return Ok(());
        }
        let node = &self.nodes[index];
        let child = self.spawn(&node.name, node.script, &node.args, &node.env)?;
        let node = &mut self.nodes[index];
        node.child = child;
        node.down = false;
        Ok(())
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

    /// Stops every node (SIGTERM, then SIGKILL) and removes their data.
    pub fn stop(mut self) {
        self.terminate();
        // Drop kills whatever is left and removes the data.
    }

    /// SIGTERM to every node, and up to 20 s for them to exit.
    pub fn terminate(&mut self) {
        for node in &self.nodes {
            // SAFETY: plain syscall on a process group we created.
            unsafe {
                libc::kill(-(node.child.id() as i32), libc::SIGCONT);
                libc::kill(-(node.child.id() as i32), libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        for node in &mut self.nodes {
            while node.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

impl Drop for LocalStack {
    /// A stack that failed to start, or is stopped, leaves no process and no data.
    fn drop(&mut self) {
        for node in &mut self.nodes {
            // SAFETY: plain syscall on a process group we created.
            unsafe { libc::kill(-(node.child.id() as i32), libc::SIGKILL) };
            let _ = node.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::token;

    #[test]
    fn tokens_spread_evenly_from_the_lowest() {
        assert_eq!(token(0, 3), i128::from(i64::MIN));
        assert_eq!(token(1, 3), -3_074_457_345_618_258_603);
        assert_eq!(token(2, 3), 3_074_457_345_618_258_602);
        assert!((0..9).all(|i| token(i, 9) <= i128::from(i64::MAX)));
    }
}
