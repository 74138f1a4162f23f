//! `tracekeeper compact`: rewrites every bucket of a stopped all-in-one's embedded
//! store as one compressed sorted run, reporting each bucket's size before and after.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use tracekeeper_storage::embedded::{EmbeddedConfig, EmbeddedStore};

const MIB: f64 = 1024.0 * 1024.0;

/// Compacts the store in `dir`, which no process may have open.
pub fn run(dir: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(dir.join("version").exists(), "{} holds no tracekeeper store", dir.display());
    let config = EmbeddedConfig { idle_flush: None, ..EmbeddedConfig::new(dir) };
    let store = EmbeddedStore::open(config)
        .with_context(|| format!("opening {} (is all-in-one still running?)", dir.display()))?;
    store.flush_memtables().context("writing memtables out")?;
    let starts = store.bucket_starts();
    let began = Instant::now();
    let (mut total_before, mut total_after) = (0u64, 0u64);
    for (i, &start) in starts.iter().enumerate() {
        let before = store.bucket_disk_space_at(start);
        let t = Instant::now();
        eprint!("[{}/{}] bucket from {}: {:.1} MiB ...", i + 1, starts.len(), day_of(start), before as f64 / MIB);
        store.compact_bucket_at(start).with_context(|| format!("compacting the bucket from {}", day_of(start)))?;
        let after = store.bucket_disk_space_at(start);
        eprintln!(" {:.1} MiB in {:.1} s", after as f64 / MIB, t.elapsed().as_secs_f64());
        (total_before, total_after) = (total_before + before, total_after + after);
    }
    store.flush().context("flushing the store")?;
    println!(
        "compacted {} buckets in {:.1} s: {:.1} MiB -> {:.1} MiB; the store now takes {:.1} MiB",
        starts.len(),
        began.elapsed().as_secs_f64(),
        total_before as f64 / MIB,
        total_after as f64 / MIB,
        store.disk_space() as f64 / MIB,
    );
    Ok(())
}

/// A bucket start as an RFC 3339 time, for people.
fn day_of(start_ns: u64) -> String {
    let secs = i64::try_from(start_ns / 1_000_000_000).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp(secs, 0).map_or_else(|| format!("{start_ns} ns"), |t| t.to_rfc3339())
}
