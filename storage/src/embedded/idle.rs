//! Tidying the store once ingest pauses.
//!
//! Until a memtable is written out as a table, its rows live in the journal too,
//! uncompressed; a journal file is deleted only when every keyspace with rows in it
//! has been written out. Under steady load memtables fill and rotate on their own, but
//! after a burst the last rows (and the rarely written `meta` keyspace) would keep the
//! journal on disk indefinitely. So once no write has arrived for a while, every
//! memtable is written out.
//!
//! fjall also deletes the tables a compaction replaced only when a later memtable
//! rotation collects old versions; with no writes, none comes, and the replaced
//! tables would stay on disk beside their replacements. So once the compactions that
//! follow the flush have finished, the store is asked to collect them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Counts writes, for the idle flusher to notice a pause.
#[derive(Default)]
pub struct WriteCounter(AtomicU64);

impl WriteCounter {
    pub fn wrote(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What the idle flusher needs of the store.
pub trait Tidy: Send + Sync + 'static {
    fn flush_all_memtables(&self);
    /// Whether a compaction is running.
    fn compacting(&self) -> bool;
    /// Deletes tables that compactions replaced.
    fn release_replaced_tables(&self);
    fn disk_space(&self) -> u64;
}

enum State {
    /// Written to since the last flush.
    Dirty,
    /// Flushed; compactions may follow.
    Settling,
    /// Replaced tables released when the store took this many bytes.
    Tidy(u64),
}

/// Starts a thread that tidies the store once `idle` has passed without a write. It
/// holds the store only while acting (`Weak`), so a dropped store releases its
/// directory lock at once, and the thread then ends.
pub fn spawn<T: Tidy>(writes: Arc<WriteCounter>, store: Weak<T>, idle: Duration) {
    let tick = (idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let spawned = std::thread::Builder::new().name("tracekeeper-idle-flush".into()).spawn(move || {
        let mut seen = writes.count();
        let mut changed_at = Instant::now();
        let mut state = State::Tidy(0);
        loop {
            std::thread::sleep(tick);
            if store.strong_count() == 0 {
                return;
            }
            let now = writes.count();
            if now != seen {
                (seen, changed_at, state) = (now, Instant::now(), State::Dirty);
                continue;
            }
            if changed_at.elapsed() < idle {
                continue;
            }
            let Some(store) = store.upgrade() else { return };
            state = match state {
                State::Dirty => {
                    store.flush_all_memtables();
                    State::Settling
                }
                State::Settling if store.compacting() => State::Settling,
                State::Settling => {
                    store.release_replaced_tables();
                    State::Tidy(store.disk_space())
                }
                State::Tidy(bytes) if store.compacting() || store.disk_space() != bytes => State::Settling,
                tidy @ State::Tidy(_) => tidy,
            };
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the idle flusher; the journal is trimmed only as memtables fill");
    }
}
