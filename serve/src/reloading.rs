//! A value built from files (a TLS configuration, a tokens table), rebuilt when any of
//! them changes: their modification times and sizes are checked every
//! [`RELOAD_CHECK`]. A new set of files that does not build is logged and refused, and
//! the previous value stays in force.

use std::fmt::Display;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;

/// How often the files are checked for changes.
pub const RELOAD_CHECK: Duration = Duration::from_secs(2);

type Stamp = Vec<Option<(SystemTime, u64)>>;

pub struct Reloading<T, E> {
    paths: Vec<PathBuf>,
    build: Box<dyn Fn() -> Result<T, E> + Send + Sync>,
    /// Read on every request (credentials, TLS handshakes): without a lock.
    current: arc_swap::ArcSwap<T>,
    stamp: Mutex<Stamp>,
}

fn stamp_of(paths: &[PathBuf]) -> Stamp {
    paths.iter().map(|p| std::fs::metadata(p).ok().and_then(|m| Some((m.modified().ok()?, m.len())))).collect()
}

impl<T, E: Display> Reloading<T, E> {
    /// Builds the value now from `paths` with `build`.
    pub fn load(paths: Vec<PathBuf>, build: impl Fn() -> Result<T, E> + Send + Sync + 'static) -> Result<Self, E> {
        let stamp = stamp_of(&paths);
        let value = build()?;
        Ok(Self {
            paths,
            build: Box::new(build),
            current: arc_swap::ArcSwap::from_pointee(value),
            stamp: Mutex::new(stamp),
        })
    }

    pub fn current(&self) -> Arc<T> {
        self.current.load_full()
    }

    /// Rebuilds the value if any file changed; `Ok(true)` when it did.
    pub fn reload_if_changed(&self) -> Result<bool, E> {
        let now = stamp_of(&self.paths);
        let mut last = self.stamp.lock().unwrap_or_else(PoisonError::into_inner);
        if *last == now {
            return Ok(false);
        }
        let value = (self.build)()?;
        *last = now;
        self.current.store(Arc::new(value));
        Ok(true)
    }
}

impl<T: Send + Sync + 'static, E: Display + 'static> Reloading<T, E> {
    /// Checks the files every [`RELOAD_CHECK`], until the value is dropped; `what`
    /// names it in the logs.
    pub fn watch(self: &Arc<Self>, what: &'static str) -> JoinHandle<()> {
        let reloading = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_CHECK);
            loop {
                tick.tick().await;
                let Some(reloading) = reloading.upgrade() else { return };
                match reloading.reload_if_changed() {
                    Ok(true) => tracing::info!(what, files = ?reloading.paths, "reloaded"),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(what, error = %e, "files changed but cannot be used; keeping the previous ones")
                    }
                }
            }
        })
    }
}
