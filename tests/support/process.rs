//! The one launcher of `tracekeeper` processes, for what needs a process of its own:
//! signals (SIGTERM, SIGSTOP, kill -9), a role's own TLS and credentials, and the
//! distributed roles a test kills or pauses. Everything else runs in-process
//! ([`super::Server::start`]).

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `tracekeeper` process; killed (and resumed first, if paused) on drop.
pub struct Spawned {
    child: Option<Child>,
    what: String,
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

    /// Starts `command` and waits until `ready` holds; panics, naming `what`, if the
    /// process exits first or is not ready within a minute.
    pub fn start(command: Command, what: &str, ready: impl FnMut() -> bool) -> Self {
        Self::try_start(command, what, ready)
            .unwrap_or_else(|status| panic!("tracekeeper {what} exited before it was ready: {status}"))
    }

    /// As [`Self::start`], but an exit before it was ready is returned, not a panic.
    pub fn try_start(mut command: Command, what: &str, mut ready: impl FnMut() -> bool) -> Result<Self, ExitStatus> {
        let child = command.spawn().unwrap_or_else(|e| panic!("starting tracekeeper {what}: {e}"));
        let mut spawned = Self { child: Some(child), what: what.to_string() };
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = spawned.exited() {
                return Err(status);
            }
            if ready() {
                // The answer may come from another test's process that took the port
                // first, while this one exits for want of it: make sure it runs.
                std::thread::sleep(Duration::from_millis(100));
                return match spawned.exited() {
                    Some(status) => Err(status),
                    None => Ok(spawned),
                };
            }
            assert!(Instant::now() < deadline, "tracekeeper {what} was not ready within {READY_WITHIN:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
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
