//! The one launcher of `tracekeeper` processes, for what needs a process of its own:
//! signals (SIGTERM, SIGSTOP, kill -9), a role's own TLS and credentials, and the
//! distributed roles a test kills or pauses. Everything else runs in-process
//! ([`super::Server::start`]).
//!
//! Processes are given port 0 for every listener ([`ANY_PORT`]) and tell the ports
//! they got in their `listening` log lines, which the launcher reads: no test picks a
//! port another process may take first.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What to give a listener's address flag: the process binds a free port itself.
pub const ANY_PORT: &str = "127.0.0.1:0";

/// The addresses a process's listeners are bound to, by listener name (`query`,
/// `otlp-http`, `otlp-grpc`, `zipkin`, `admin`).
pub type Listening = BTreeMap<String, String>;

/// A running `tracekeeper` process; killed (and resumed first, if paused) on drop.
pub struct Spawned {
    child: Option<Child>,
    what: String,
    listening: Arc<Mutex<Listening>>,
}

/// How long a process has to become ready.
const READY_WITHIN: Duration = Duration::from_secs(60);

impl Spawned {
    /// `tracekeeper` with `args`, logging warnings to stderr.
    pub fn command(args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tracekeeper"));
        command.args(args).env("RUST_LOG", "warn").stdout(Stdio::null());
        command
    }

    /// Starts `command` and waits until `ready` holds of the listeners it has bound so
    /// far; panics, naming `what`, if the process exits first or is not ready within a
    /// minute.
    pub fn start(command: Command, what: &str, ready: impl FnMut(&Listening) -> bool) -> Self {
        Self::try_start(command, what, ready)
            .unwrap_or_else(|status| panic!("tracekeeper {what} exited before it was ready: {status}"))
    }

    /// As [`Self::start`], but an exit before it was ready is returned, not a panic.
    pub fn try_start(
        mut command: Command,
        what: &str,
        mut ready: impl FnMut(&Listening) -> bool,
    ) -> Result<Self, ExitStatus> {
        // Logs as JSON lines on stderr, the `listening` ones among them at info.
        command.env("TRACEKEEPER_LOG_FORMAT", "json").env("RUST_LOG", "warn,tracekeeper::serve=info");
        // A listener on a default port that no test names (Jaeger's gRPC query API on
        // 16685) would be taken by the first process only.
        command.env("TRACEKEEPER_QUERY_GRPC_ADDR", ANY_PORT);
        let mut child =
            command.stderr(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("starting tracekeeper {what}: {e}"));
        let listening = Arc::new(Mutex::new(Listening::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let (log_to, log_what) = (Arc::clone(&listening), what.to_string());
        std::thread::spawn(move || read_log(stderr, &log_to, &log_what));
        let mut spawned = Self { child: Some(child), what: what.to_string(), listening };
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = spawned.exited() {
                return Err(status);
            }
            let bound = spawned.listening.lock().unwrap().clone();
            if !bound.is_empty() && ready(&bound) {
                return Ok(spawned);
            }
            assert!(Instant::now() < deadline, "tracekeeper {what} was not ready within {READY_WITHIN:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The address the listener `name` is bound to; panics if it has none.
    pub fn listening(&self, name: &str) -> String {
        let bound = self.listening.lock().unwrap();
        bound
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("tracekeeper {} has no {name} listener: {bound:?}", self.what))
    }

    /// The exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().unwrap()?;
        self.child = None;
        Some(status)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap_or_else(|| panic!("tracekeeper {} is not running", self.what)).id()
    }

    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill").args([signal, &self.pid().to_string()]).status().unwrap().success();
        assert!(ok, "kill {signal} failed");
    }

    /// `kill -9`: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM, then its exit status once it stopped (within 20 s).
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(Instant::now() < deadline, "tracekeeper {} did not stop within 20 s of SIGTERM", self.what);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-CONT", &child.id().to_string()]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Reads a process's JSON log lines until it exits: records each `listening` line's
/// listener and address, and passes every other line on to this process's stderr.
fn read_log(stderr: ChildStderr, listening: &Mutex<Listening>, what: &str) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { return };
        let parsed: Option<serde_json::Value> = serde_json::from_str(&line).ok();
        let fields = parsed.as_ref().map(|v| &v["fields"]);
        match fields.and_then(|f| Some((f["message"].as_str()?, f["listener"].as_str()?, f["addr"].as_str()?))) {
            Some(("listening", name, addr)) => {
                listening.lock().unwrap().insert(name.to_string(), addr.to_string());
            }
            _ => eprintln!("[tracekeeper {what}] {line}"),
        }
    }
}
