//! `tracekeeper compact`: rewrites every bucket of a stopped all-in-one's embedded
//! store as one compressed sorted run, reporting each bucket's size before and after.
//! Buckets an older version wrote in an earlier key layout are first rewritten into
//! today's (`EmbeddedStore::upgrade`): the one step an upgraded data directory needs.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use tracekeeper_storage::embedded::{EmbeddedConfig, EmbeddedStore, UpgradeProgress};
use tracekeeper_storage::StorageError;

const MIB: f64 = 1024.0 * 1024.0;

/// Compacts the store in `dir`, which no process may have open.
pub fn run(dir: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(dir.join("version").exists(), "{} holds no tracekeeper store", dir.display());
    let config = EmbeddedConfig { idle_flush: None, ..EmbeddedConfig::new(dir) };
    upgrade(&config)?;
    let store = open_stopped(config)?;
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

/// Rewrites what older versions wrote in earlier key layouts, printing its progress.
fn upgrade(config: &EmbeddedConfig) -> anyhow::Result<()> {
    let began = Instant::now();
    let mut printed = 0u64;
    let mut progress = |p: UpgradeProgress| {
        if p.rows == 0 || p.rows >= printed + 1_000_000 {
            let day = day_of(p.bucket_start_ns);
            eprintln!(
                "[{}/{}] bucket from {day}: rewriting into today's key layout, {} rows so far",
                p.bucket, p.buckets, p.rows
            );
            printed = p.rows;
        }
    };
    let upgraded = EmbeddedStore::upgrade(config, &mut progress)
        .with_context(|| format!("opening {} (is all-in-one still running?)", config.path.display()))?;
    if upgraded.rewritten_buckets + upgraded.marked_parts > 0 {
        println!(
            "upgraded {} buckets written by older versions to today's key layout ({} rows, {} parts given trace marks) in {:.1} s",
            upgraded.rewritten_buckets,
            upgraded.rows,
            upgraded.marked_parts,
            began.elapsed().as_secs_f64(),
        );
    }
    Ok(())
}

/// Opens the store of a stopped all-in-one, saying what to do when it cannot.
pub fn open_stopped(config: EmbeddedConfig) -> anyhow::Result<EmbeddedStore> {
    let dir = config.path.clone();
    match EmbeddedStore::open(config) {
        Ok(store) => Ok(store),
        Err(StorageError::NeedsUpgrade(why)) => anyhow::bail!("{}: {why}", dir.display()),
        Err(e) => Err(e).with_context(|| format!("opening {} (is all-in-one still running?)", dir.display())),
    }
}

/// A bucket start as an RFC 3339 time, for people.
fn day_of(start_ns: u64) -> String {
    let secs = i64::try_from(start_ns / 1_000_000_000).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp(secs, 0).map_or_else(|| format!("{start_ns} ns"), |t| t.to_rfc3339())
}
