//! The embedded store: fjall, keyspaces per time bucket.
//!
//! Each bucket (keyspace `d<index>`, then `d<index>.<part>` as it grows; see [`parts`])
//! holds the span rows, postings and catalog entries whose time falls in that bucket
//! (see [`keys`] for the layout). A write is one fjall batch across keyspaces, so a
//! span and the postings that point to it become visible together. Expiry drops a
//! bucket's keyspaces whole. Why fjall and why this layout:
//! `docs/adr/0001-embedded-engine.md` and `docs/adr/0002-key-layout.md`.

mod check;
mod durability;
mod idle;
mod keys;
mod lifecycle;
mod parts;
#[cfg(test)]
mod parts_tests;
mod red;
#[cfg(test)]
mod tests;
mod traces;
mod upgrade;
#[cfg(test)]
mod upgrade_fixture;
#[cfg(test)]
mod upgrade_tests;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use tracekeeper_model::{Span, TraceId};

pub use durability::Durability;
use durability::GroupCommit;
pub use upgrade::{UpgradeProgress, Upgraded};

use crate::api::{Operation, Posting, SpanCursor, SpanReader, SpanWriter, StorageError, WriteBatch};
use crate::schema::{self, IndexTerm};
use parts::Bucket;

const META_KEYSPACE: &str = "meta";
const BUCKET_WIDTH_KEY: &[u8] = b"bucket_width_ns";
/// Rewritten by the idle flusher (see `idle`); holds nothing.
const IDLE_MARKER_KEY: &[u8] = b"idle_marker";

/// Settings for [`EmbeddedStore::open`].
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    pub path: PathBuf,
    pub durability: Durability,
    /// Width of a time bucket. Fixed when the store is created; a different value on
    /// a later open is ignored with a warning.
    pub bucket_width: Duration,
    /// Block cache size in bytes.
    pub cache_bytes: u64,
    /// How long writes must pause before every memtable is written out and the journal
    /// dropped (see `idle`); `None` leaves it to memtables filling up.
    pub idle_flush: Option<Duration>,
    /// Bytes on disk at which a bucket's newest part is closed to new spans and a new
    /// part started (see [`parts`]): bounds how much each write's compactions rewrite.
    pub part_bytes: u64,
}

impl EmbeddedConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            durability: Durability::default(),
            bucket_width: Duration::from_secs(24 * 3600),
            cache_bytes: 256 << 20,
            idle_flush: Some(Duration::from_secs(3)),
            part_bytes: 256 << 20,
        }
    }
}

#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    meta: Keyspace,
    /// Serializes the compare-and-set operations on `meta` (lease, watermarks).
    meta_lock: std::sync::Mutex<()>,
    /// Tenants with stored data; a new one is registered in `meta` with its first write.
    tenants: RwLock<BTreeSet<String>>,
    /// Each bucket's keyspaces (see [`parts::part_name`]).
    buckets: RwLock<BTreeMap<u64, Bucket>>,
    /// [`EmbeddedConfig::part_bytes`].
    part_bytes: u64,
    /// Writes hold it shared while they build and commit a batch; dropping a bucket
    /// that other tenants may still write to holds it exclusively, so no acknowledged
    /// write lands in a keyspace being deleted.
    drop_gate: RwLock<()>,
    bucket_width_ns: u64,
    durability: Durability,
    group_commit: GroupCommit,
    writes: Arc<idle::WriteCounter>,
}

/// What an operator is told once the engine has stopped after a fatal write failure.
const POISONED: &str = "the embedded store stopped accepting writes after a fatal write error \
     (is the disk full?); fix the cause, then restart tracekeeper";

fn io<E: std::fmt::Display + 'static>(e: E) -> StorageError {
    // After a failed flush or compaction (a full disk, a failing device) fjall refuses
    // every write until the process restarts, with an error that does not say why.
    if let Some(fjall::Error::Poisoned) = (&e as &dyn std::any::Any).downcast_ref::<fjall::Error>() {
        return StorageError::Io(POISONED.to_string());
    }
    StorageError::Io(e.to_string())
}

/// Most bytes the journal may hold before fjall writes out the memtables holding its
/// oldest file. Rows sit uncompressed in the journal, so it is kept to two memtables'
/// worth rather than fjall's 512 MiB default.
const MAX_JOURNAL_BYTES: u64 = 128 << 20;

/// A bucket's memtable size. Up to four sealed memtables wait for the background
/// worker, so this bounds memtable memory at five times it; 32 MiB (fjall's default is
/// 64) cut peak RSS by 40 MiB and ingested as fast or faster at 2-7M spans stored.
const MEMTABLE_BYTES: u64 = 32 << 20;

/// Flushed tables a bucket keyspace collects before they are merged into the next
/// level (see [`bucket_options`]). fjall slows writes down at 20 and stops them at 30.
const L0_TABLES: u8 = 16;

/// How a bucket keyspace stores its tables: every level LZ4-compressed. fjall leaves
/// the first two levels uncompressed, which is where a day's data sits until it is
/// compacted further, so the store was twice its compressed size. Data blocks stay at
/// 4 KiB: 16 KiB blocks saved another 15% of disk but raised peak RSS under ingest by
/// 150 MiB. Fixed when a bucket is created, so buckets written by an older version
/// keep theirs. Index blocks are not pinned in memory: fjall pins those of the first
/// two levels, which is where all of a bounded part sits ([`parts`]), so pinned index
/// memory would grow with everything stored; unpinned, they share the block cache.
///
/// Flushed tables are merged into the next level only once [`L0_TABLES`] have
/// accumulated, not fjall's four: span and posting keys are random, so every such merge
/// rewrites the whole next level of the part, and with four it ran once per four
/// flushes. A part then fills with about one merge, its reads see a dozen tables
/// instead of two or three (search at 10M stored was no slower), and with writes in
/// key order (`write_sync`) the server's CPU per span fell by a quarter: 153% of a core
/// at 82k spans/s became 143% at 104k.
fn bucket_options() -> KeyspaceCreateOptions {
    use fjall::config::{BlockSizePolicy, CompressionPolicy, FilterPolicy, FilterPolicyEntry, PinningPolicy};
    KeyspaceCreateOptions::default()
        .max_memtable_size(MEMTABLE_BYTES)
        .compaction_strategy(std::sync::Arc::new(fjall::compaction::Leveled::default().with_l0_threshold(L0_TABLES)))
        .index_block_pinning_policy(PinningPolicy::all(false))
        .filter_policy(FilterPolicy::new([FilterPolicyEntry::None]))
        .data_block_size_policy(BlockSizePolicy::all(4 * 1024))
        .data_block_compression_policy(CompressionPolicy::all(fjall::CompressionType::Lz4))
}

/// The fjall database in `config.path`, created if need be.
fn open_database(config: &EmbeddedConfig) -> Result<Database, StorageError> {
    std::fs::create_dir_all(&config.path).map_err(io)?;
    Database::builder(&config.path)
        .cache_size(config.cache_bytes)
        .max_journaling_size(MAX_JOURNAL_BYTES)
        // One background worker flushes and compacts. With more, fjall's first
        // worker hands every compaction request back to the queue while the others
        // are busy; on two cores that re-queueing took 16% of the server's CPU
        // (perf) under sustained ingest, and one worker ingested 20-25% more at
        // 2-6M spans stored.
        .worker_threads(1)
        .open()
        .map_err(io)
}

impl EmbeddedStore {
    /// Opens the store in `config.path`, creating it if need be. A directory holding
    /// buckets of an older key layout is refused ([`StorageError::NeedsUpgrade`]) until
    /// [`Self::upgrade`] has rewritten them.
    pub fn open(config: EmbeddedConfig) -> Result<Self, StorageError> {
        let db = open_database(&config)?;
        let meta = db.keyspace(META_KEYSPACE, KeyspaceCreateOptions::default).map_err(io)?;
        let requested = u64::try_from(config.bucket_width.as_nanos()).unwrap_or(u64::MAX).max(1);
        let bucket_width_ns = match meta.get(BUCKET_WIDTH_KEY).map_err(io)? {
            Some(stored) => {
                let stored = u64::from_be_bytes(
                    stored.as_ref().try_into().map_err(|_| StorageError::Corrupt("bucket width".into()))?,
                );
                if stored != requested {
                    tracing::warn!(
                        stored,
                        requested,
                        "bucket width is fixed when the store is created; keeping the stored one"
                    );
                }
                stored
            }
            None => {
                meta.insert(BUCKET_WIDTH_KEY, requested.to_be_bytes()).map_err(io)?;
                requested
            }
        };
        let buckets = parts::open_buckets(&db)?;
        let mut tenants = BTreeSet::new();
        for entry in meta.prefix(lifecycle::TENANT) {
            let key = entry.key().map_err(io)?;
            tenants.insert(String::from_utf8_lossy(&key[lifecycle::TENANT.len()..]).into_owned());
        }
        let store = Self {
            inner: Arc::new(Inner {
                db,
                meta,
                meta_lock: std::sync::Mutex::new(()),
                tenants: RwLock::new(tenants),
                buckets: RwLock::new(buckets),
                part_bytes: config.part_bytes,
                drop_gate: RwLock::new(()),
                bucket_width_ns,
                durability: config.durability,
                group_commit: GroupCommit::default(),
                writes: Arc::default(),
            }),
        };
        if let Some(idle) = config.idle_flush {
            idle::spawn(Arc::clone(&store.inner.writes), Arc::downgrade(&store.inner), idle);
        }
        Ok(store)
    }

    pub fn bucket_width_ns(&self) -> u64 {
        self.inner.bucket_width_ns
    }

    /// Bytes the store occupies on disk (tables and journal).
    pub fn disk_space(&self) -> u64 {
        self.inner.db.disk_space().unwrap_or(0)
    }

    /// Writes every memtable out as a table and waits for it, so that disk usage
    /// reflects tables rather than the journal.
    pub fn flush_memtables(&self) -> Result<(), StorageError> {
        self.inner.flush_memtables()
    }

    /// The start (ns) of every bucket, oldest first.
    pub fn bucket_starts(&self) -> Vec<u64> {
        let width = self.inner.bucket_width_ns;
        self.inner.buckets.read().expect("bucket map lock").keys().map(|index| index * width).collect()
    }

    /// Compacts the bucket holding `time_ns` into one sorted run, now, on this thread;
    /// ingest into other buckets (and this one) carries on meanwhile.
    pub fn compact_bucket_at(&self, time_ns: u64) -> Result<(), StorageError> {
        let bucket = self.inner.bucket(time_ns / self.inner.bucket_width_ns)?;
        bucket.parts().iter().try_for_each(parts::compact)
    }

    /// Bytes on disk of the bucket holding `time_ns` (0 if it does not exist).
    pub fn bucket_disk_space_at(&self, time_ns: u64) -> u64 {
        let index = time_ns / self.inner.bucket_width_ns;
        self.inner.buckets.read().expect("bucket map lock").get(&index).map_or(0, Bucket::disk_space)
    }

    /// Whether the engine still accepts writes: an error once a fatal write failure has
    /// stopped it. Cheap enough for every readiness probe (it hands the journal's
    /// buffer to the OS, which every write does anyway).
    pub fn health(&self) -> Result<(), StorageError> {
        self.inner.db.persist(fjall::PersistMode::Buffer).map_err(io)
    }

    /// Flushes everything to disk; called on graceful shutdown.
    pub fn flush(&self) -> Result<(), StorageError> {
        self.inner.db.persist(fjall::PersistMode::SyncAll).map_err(io)
    }
}

impl idle::Tidy for Inner {
    fn flush_all_memtables(&self) {
        if let Err(e) = self.flush_memtables() {
            tracing::warn!(error = %e, "writing memtables out after ingest paused failed");
        }
    }

    fn compacting(&self) -> bool {
        self.db.active_compactions() > 0
    }

    /// fjall collects replaced versions (and so deletes their tables) when a memtable
    /// rotates: a marker row gives `meta` one to rotate.
    fn release_replaced_tables(&self) {
        let released = self.meta.insert(IDLE_MARKER_KEY, []).and_then(|()| self.meta.rotate_memtable_and_wait());
        if let Err(e) = released {
            tracing::warn!(error = %e, "releasing replaced tables after ingest paused failed");
        }
    }

    fn disk_space(&self) -> u64 {
        self.db.disk_space().unwrap_or(0)
    }
}

impl Inner {
    fn flush_memtables(&self) -> Result<(), StorageError> {
        let buckets: Vec<Bucket> = self.buckets.read().expect("bucket map lock").values().cloned().collect();
        for keyspace in buckets.iter().flat_map(Bucket::keyspaces).chain([&self.meta]) {
            keyspace.rotate_memtable_and_wait().map_err(io)?;
        }
        Ok(())
    }

    /// The bucket of `index`, created in the current layout if it does not exist.
    fn bucket(&self, index: u64) -> Result<Bucket, StorageError> {
        if let Some(bucket) = self.buckets.read().expect("bucket map lock").get(&index) {
            return Ok(bucket.clone());
        }
        let mut buckets = self.buckets.write().expect("bucket map lock");
        if let Some(bucket) = buckets.get(&index) {
            return Ok(bucket.clone());
        }
        let bucket = Bucket::new(vec![parts::create_part(&self.db, index, 0)?]);
        buckets.insert(index, bucket.clone());
        Ok(bucket)
    }

    /// Starts a new part of bucket `index` if `written` (the bucket as a write saw it)
    /// has a newest part holding [`Inner::part_bytes`] or more. Writes that still hold
    /// the full part may add to it meanwhile; reads merge every part, so that is only
    /// a little more in it.
    fn start_part_if_full(&self, index: u64, written: &Bucket) -> Result<(), StorageError> {
        let full = written.newest();
        if full.rows.disk_space() < self.part_bytes {
            return Ok(());
        }
        let mut buckets = self.buckets.write().expect("bucket map lock");
        let Some(current) = buckets.get(&index) else { return Ok(()) };
        if current.parts().len() != written.parts().len() {
            return Ok(());
        }
        let part = current.parts().len();
        let next = current.with_part(parts::create_part(&self.db, index, part)?);
        // The part that filled before this one has long been written out.
        let settled = part.checked_sub(2).map(|n| current.parts()[n].clone());
        buckets.insert(index, next);
        drop(buckets);
        if let Some(settled) = settled {
            parts::settle(&settled)?;
        }
        if tracing::enabled!(tracing::Level::DEBUG) {
            let buckets = self.buckets_oldest_first();
            let memory = parts::EngineMemory::of(buckets.iter().map(|(_, bucket)| bucket));
            tracing::debug!(
                bucket = index,
                part,
                ?memory,
                cache_bytes = self.db.cache_size(),
                write_buffer_bytes = self.db.write_buffer_size(),
                "bucket part full; new spans go to a new part"
            );
        }
        // Its last rows and marks go out to tables now rather than when the journal
        // fills, and their memtables' memory is freed.
        for keyspace in full.keyspaces() {
            keyspace.rotate_memtable().map_err(io)?;
        }
        Ok(())
    }

    /// Existing buckets whose time range overlaps `[oldest_ns, newest_ns]`, newest first.
    fn buckets_between(&self, oldest_ns: u64, newest_ns: u64) -> Vec<Bucket> {
        let (lo, hi) = (oldest_ns / self.bucket_width_ns, newest_ns / self.bucket_width_ns);
        self.buckets.read().expect("bucket map lock").range(lo..=hi).rev().map(|(_, bucket)| bucket.clone()).collect()
    }

    fn write_sync(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        let gate = self.drop_gate.read().expect("drop gate");
        let mut tx = self.db.batch();
        let new_tenant = !self.tenants.read().expect("tenant lock").contains(&batch.tenant);
        if new_tenant {
            tx.insert(&self.meta, [lifecycle::TENANT, batch.tenant.as_bytes()].concat(), []);
        }
        let mut encoder = schema::SpanEncoder::default();
        // The buckets this batch writes to, as it found them: usually one.
        let mut written: BTreeMap<u64, Bucket> = BTreeMap::new();
        let mut bucket_of = |time_ns: u64| -> Result<Bucket, StorageError> {
            let index = time_ns / self.bucket_width_ns;
            if let Some(bucket) = written.get(&index) {
                return Ok(bucket.clone());
            }
            let bucket = self.bucket(index)?;
            written.insert(index, bucket.clone());
            Ok(bucket)
        };
        // Inserted into the memtables in key order: each insert then walks the memtable's
        // skip list along nearly the same path as the one before, in cache. Measured, it
        // paid off only together with `L0_TABLES`. A stable sort, so that of two equal
        // keys in one batch the later still wins, as it did in arrival order.
        let mut rows: Vec<(Keyspace, Vec<u8>, Vec<u8>)> = Vec::with_capacity(batch.spans.len() * 6);
        let mut marked = BTreeSet::new();
        for span in &batch.spans {
            let bucket = bucket_of(span.start_ns)?;
            let part = bucket.newest();
            let key = keys::span_key(&batch.tenant, span.trace_id, span.start_ns, &schema::row_id(span));
            rows.push((part.rows.clone(), key, encoder.encode(span)));
            if marked.insert((span.start_ns / self.bucket_width_ns, span.trace_id)) {
                rows.push((part.traces.clone(), keys::trace_mark(&batch.tenant, span.trace_id), Vec::new()));
            }
        }
        for (term, time_ns, trace_id, max_duration_ns) in schema::postings_of(&batch.spans) {
            let bucket = bucket_of(time_ns)?;
            let prefix = keys::term_prefix(&batch.tenant, term);
            let key = keys::posting_key(&prefix, time_ns, trace_id, Some(max_duration_ns));
            rows.push((bucket.newest().rows.clone(), key, Vec::new()));
        }
        let mut catalog_seen = BTreeSet::new();
        for span in &batch.spans {
            if catalog_seen.insert((span.start_ns / self.bucket_width_ns, span.service_name(), span.kind, &span.name)) {
                let bucket = bucket_of(span.start_ns)?;
                let key = keys::catalog_key(&batch.tenant, span.service_name(), span.kind, &span.name);
                rows.push((bucket.first().clone(), key, Vec::new()));
            }
        }
        rows.sort_by(|a, b| a.1.cmp(&b.1));
        for (keyspace, key, value) in rows {
            tx.insert(&keyspace, key, value);
        }
        tx.commit().map_err(io)?;
        drop(gate);
        // The batch is committed: a failure to start a new part only leaves the full
        // one growing, and must not turn this write into an error or skip what follows.
        for (index, bucket) in &written {
            if let Err(e) = self.start_part_if_full(*index, bucket) {
                tracing::warn!(bucket = index, error = %e, "starting a new bucket part failed; the full one keeps growing");
            }
        }
        self.writes.wrote();
        if new_tenant {
            self.tenants.write().expect("tenant lock").insert(batch.tenant.clone());
        }
        if self.durability == Durability::Fsync {
            let ticket = self.group_commit.committed();
            self.group_commit.wait_synced(&self.db, ticket).map_err(io)?;
        }
        Ok(())
    }

    fn postings_sync(
        &self,
        tenant: &str,
        term: &IndexTerm,
        newest_ns: u64,
        oldest_ns: u64,
        after: Option<Posting>,
        max: usize,
    ) -> Result<Vec<Posting>, StorageError> {
        let newest_ns = after.map_or(newest_ns, |a| a.time_ns.min(newest_ns));
        if newest_ns < oldest_ns || max == 0 {
            return Ok(Vec::new());
        }
        let prefix_len = keys::term_prefix_len(tenant);
        let mut out = Vec::new();
        for bucket in self.buckets_between(oldest_ns, newest_ns) {
            let prefix = keys::term_prefix(tenant, term.as_ref());
            let start = match after {
                Some(a) => Bound::Excluded(keys::posting_key(&prefix, a.time_ns, a.trace_id, a.max_duration_ns)),
                None => Bound::Included(keys::posting_key(&prefix, newest_ns, TraceId([0; 16]), None)),
            };
            let end = Bound::Included(keys::posting_key(&prefix, oldest_ns, TraceId([0xff; 16]), Some(u64::MAX)));
            for item in bucket.range::<Vec<u8>, _>((start, end)) {
                let (key, _) = item?;
                let (time_ns, trace_id, max_duration_ns) =
                    keys::parse_posting(&key, prefix_len).ok_or_else(|| StorageError::Corrupt("posting key".into()))?;
                out.push(Posting { time_ns, trace_id, max_duration_ns: Some(max_duration_ns) });
                if out.len() == max {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    fn catalog_sync(
        &self,
        tenant: &str,
        since_ns: u64,
    ) -> Result<BTreeSet<(String, tracekeeper_model::SpanKind, String)>, StorageError> {
        let prefix = keys::tenant_prefix(keys::CATALOG, tenant);
        let mut out = BTreeSet::new();
        for bucket in self.buckets_between(since_ns, u64::MAX) {
            for item in bucket.first().prefix(&prefix) {
                let key = item.key().map_err(io)?;
                out.insert(
                    keys::parse_catalog_key(&key, prefix.len())
                        .ok_or_else(|| StorageError::Corrupt("catalog key".into()))?,
                );
            }
        }
        Ok(out)
    }
}

/// Runs blocking engine work off the async runtime.
async fn blocking<T: Send + 'static>(
    inner: &Arc<Inner>,
    f: impl FnOnce(&Inner) -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    let inner = Arc::clone(inner);
    tokio::task::spawn_blocking(move || f(&inner))
        .await
        .map_err(|e| StorageError::Io(format!("storage task failed: {e}")))?
}

#[async_trait]
impl SpanWriter for EmbeddedStore {
    async fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        if batch.spans.is_empty() {
            return Ok(());
        }
        blocking(&self.inner, move |inner| inner.write_sync(&batch)).await
    }
}

#[async_trait]
impl SpanReader for EmbeddedStore {
    async fn postings(
        &self,
        tenant: &str,
        term: &IndexTerm,
        newest_ns: u64,
        oldest_ns: u64,
        after: Option<Posting>,
        max: usize,
    ) -> Result<Vec<Posting>, StorageError> {
        let (tenant, term) = (tenant.to_string(), term.clone());
        blocking(&self.inner, move |inner| inner.postings_sync(&tenant, &term, newest_ns, oldest_ns, after, max)).await
    }

    async fn trace_page(
        &self,
        tenant: &str,
        trace_id: TraceId,
        after: Option<&SpanCursor>,
        max: usize,
    ) -> Result<Vec<Span>, StorageError> {
        let (tenant, after) = (tenant.to_string(), after.cloned());
        blocking(&self.inner, move |inner| inner.trace_page_sync(&tenant, trace_id, after.as_ref(), max)).await
    }

    async fn span_rows(&self, tenant: &str, trace_id: TraceId, max: usize) -> Result<Vec<Vec<u8>>, StorageError> {
        let tenant = tenant.to_string();
        blocking(&self.inner, move |inner| inner.span_rows_sync(&tenant, trace_id, max)).await
    }

    fn catalog_bucket_ns(&self) -> u64 {
        self.inner.bucket_width_ns
    }

    async fn services(&self, tenant: &str, since_ns: u64) -> Result<Vec<String>, StorageError> {
        let tenant = tenant.to_string();
        let catalog = blocking(&self.inner, move |inner| inner.catalog_sync(&tenant, since_ns)).await?;
        let services: BTreeSet<String> = catalog.into_iter().map(|(s, _, _)| s).collect();
        Ok(services.into_iter().collect())
    }

    async fn operations(
        &self,
        tenant: &str,
        service: Option<&str>,
        since_ns: u64,
    ) -> Result<Vec<Operation>, StorageError> {
        let tenant = tenant.to_string();
        let catalog = blocking(&self.inner, move |inner| inner.catalog_sync(&tenant, since_ns)).await?;
        let mut operations: Vec<Operation> = catalog
            .into_iter()
            .filter(|(s, _, _)| service.is_none_or(|want| want == s))
            .map(|(service, kind, name)| Operation { service, name, kind })
            .collect();
        operations.sort();
        Ok(operations)
    }
}
