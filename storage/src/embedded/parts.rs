//! A bucket's parts: the keyspaces one time bucket is stored in.
//!
//! A bucket starts as one keyspace. Once that keyspace holds
//! [`EmbeddedConfig::part_bytes`](super::EmbeddedConfig::part_bytes) on disk, new span
//! and posting rows go to a new keyspace of the same bucket, and the full one is only
//! compacted once more and then left alone. Span and posting keys arrive in random
//! order (by trace id, by term), so in one keyspace every compaction into a level
//! rewrites that whole level: the more a keyspace holds, the more each new row costs
//! to write, and ingest slowed by a quarter from 1M to 7M spans in one bucket. Parts of
//! bounded size keep that cost what it is in a small store. Reads merge the parts in
//! key order; a key written to two parts (a span sent again later) is read once.
//!
//! The first part also holds the bucket's catalog and RED rows, which are small and
//! are read by prefix: they stay there. Retention drops a bucket with all its parts.
//!
//! Reading one trace would cost a seek in every part, and the trace limiter looks up
//! every trace it has not seen (on the write path, mostly traces stored nowhere): with
//! tens of parts that became a sixth of ingest's CPU. So each part has a second, small
//! keyspace holding one key per (trace, tenant) with spans in the part, written in the
//! same batch as the spans, with bloom filters: a trace is read only from the parts
//! whose filter or memtable may hold it. Parts written before these existed are given
//! theirs by `super::upgrade`.

use std::collections::BTreeMap;
use std::ops::RangeBounds;
use std::sync::Arc;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, KvPair};

use super::{bucket_options, io};
use crate::api::StorageError;

/// One part of a bucket.
#[derive(Clone)]
pub(super) struct Part {
    /// Span, posting, catalog and RED rows.
    pub rows: Keyspace,
    /// A key ([`super::keys::trace_mark`]) for each trace with spans in `rows`.
    pub traces: Keyspace,
}

impl Part {
    /// Its rows' keyspace and its trace marks'.
    pub fn keyspaces(&self) -> impl Iterator<Item = &Keyspace> {
        [&self.rows, &self.traces].into_iter()
    }

    /// Whether `rows` may hold spans of the trace of `mark`.
    pub(super) fn may_hold(&self, mark: &[u8]) -> Result<bool, StorageError> {
        self.traces.contains_key(mark).map_err(io)
    }
}

/// One time bucket's parts, oldest first (never empty).
#[derive(Clone)]
pub(super) struct Bucket {
    parts: Arc<[Part]>,
}

impl Bucket {
    pub fn new(parts: Vec<Part>) -> Self {
        assert!(!parts.is_empty(), "a bucket has at least one part");
        Self { parts: parts.into() }
    }

    /// The same bucket with `part` added as its newest.
    pub fn with_part(&self, part: Part) -> Self {
        let parts: Vec<Part> = self.parts.iter().cloned().chain([part]).collect();
        Self { parts: parts.into() }
    }

    /// The rows of the part that holds the catalog and RED rows.
    pub fn first(&self) -> &Keyspace {
        &self.parts[0].rows
    }

    /// The part new span and posting rows go to.
    pub fn newest(&self) -> &Part {
        &self.parts[self.parts.len() - 1]
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    pub fn disk_space(&self) -> u64 {
        self.keyspaces().map(Keyspace::disk_space).sum()
    }

    /// Every keyspace of every part.
    pub fn keyspaces(&self) -> impl Iterator<Item = &Keyspace> {
        self.parts.iter().flat_map(Part::keyspaces)
    }

    /// Rows in every part, counted as the engine estimates them.
    pub fn approximate_len(&self) -> u64 {
        self.parts.iter().map(|p| p.rows.approximate_len() as u64).sum()
    }

    /// The rows whose keys fall in `range`, from every part, in key order.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K> + Clone>(&self, range: R) -> Merged {
        Merged::new(self.parts.iter().map(|p| p.rows.range(range.clone())))
    }

    /// The rows whose keys start with `prefix`, from every part, in key order.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Merged {
        Merged::new(self.parts.iter().map(|p| p.rows.prefix(prefix.as_ref())))
    }

    /// [`Bucket::range`] over the parts that may hold spans of the trace of `mark`
    /// ([`super::keys::trace_mark`]), for reads of one trace.
    pub fn trace_range<K: AsRef<[u8]>, R: RangeBounds<K> + Clone>(
        &self,
        mark: &[u8],
        range: R,
    ) -> Result<Merged, StorageError> {
        self.holding(mark, |rows| rows.range(range.clone()))
    }

    /// [`Bucket::prefix`] over the parts that may hold spans of the trace of `mark`.
    pub fn trace_prefix(&self, mark: &[u8], prefix: &[u8]) -> Result<Merged, StorageError> {
        self.holding(mark, |rows| rows.prefix(prefix))
    }

    fn holding(&self, mark: &[u8], read: impl Fn(&Keyspace) -> fjall::Iter) -> Result<Merged, StorageError> {
        let mut iters = Vec::new();
        for part in self.parts.iter() {
            if part.may_hold(mark)? {
                iters.push(read(&part.rows));
            }
        }
        Ok(Merged::new(iters.into_iter()))
    }
}

/// What a keyspace of a bucket holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Holds {
    /// A part's rows (`d…`).
    Rows,
    /// A part's trace marks (`t…`).
    Traces,
    /// A part's rows in a key layout older than [`super::keys`]'s: `b…` (span keys
    /// without the start time, postings without a duration bound) or `c…` (tenant
    /// before the id). `super::upgrade` rewrites them.
    OlderRows(char),
}

/// The name of a keyspace of part `part` of bucket `index`: the first letter tells
/// what it holds ([`Holds`]), then the index; parts after the first add `.<part>`.
pub(super) fn part_name(index: u64, holds: Holds, part: usize) -> String {
    let letter = match holds {
        Holds::Rows => 'd',
        Holds::Traces => 't',
        Holds::OlderRows(letter) => letter,
    };
    match part {
        0 => format!("{letter}{index:012}"),
        n => format!("{letter}{index:012}.{n}"),
    }
}

/// The bucket index, contents and part number of a part keyspace's name.
pub(super) fn parse_part_name(name: &str) -> Option<(u64, Holds, usize)> {
    let (holds, rest) = match name.split_at_checked(1)? {
        ("b", rest) => (Holds::OlderRows('b'), rest),
        ("c", rest) => (Holds::OlderRows('c'), rest),
        ("d", rest) => (Holds::Rows, rest),
        ("t", rest) => (Holds::Traces, rest),
        _ => return None,
    };
    let (digits, part) = match rest.split_once('.') {
        Some((digits, part)) if part.bytes().all(|b| b.is_ascii_digit()) && !part.starts_with('0') => {
            (digits, part.parse().ok()?)
        }
        Some(_) => return None,
        None => (rest, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, holds, part))
}

/// Written to a full part once its last flush is long done (see [`settle`]): sorts
/// before every table's keys (`keys::SPAN` and the others), so no read meets it.
const SETTLE_KEY: &[u8] = &[0];

/// Lets fjall free the memtables a full part's older versions still hold. fjall keeps
/// a keyspace's superseded versions, each holding the memtables it was made with,
/// until a later flush or compaction of that keyspace finds no snapshot needing them;
/// the flush that closes a part usually runs while reads hold snapshots, and nothing
/// is written to the part after it, so up to a memtable (32 MiB) per full part stayed
/// in memory: RSS grew by that much with every part. One small row and one more flush
/// of each of the part's keyspaces, some time after it filled, lets fjall drop them.
pub(super) fn settle(part: &Part) -> Result<(), StorageError> {
    for keyspace in part.keyspaces() {
        keyspace.insert(SETTLE_KEY, []).map_err(io)?;
        keyspace.rotate_memtable().map_err(io)?;
    }
    Ok(())
}

/// Compacts a part's rows into one sorted run, now, on this thread. fjall deletes the
/// replaced tables only once no version of the keyspace refers to them, and it drops
/// superseded versions only at the keyspace's next flush or compaction: so the part
/// is settled (see [`settle`]) and flushed once more, or a whole bucket's compaction
/// would keep every replaced table on disk until the process exits.
pub(super) fn compact(part: &Part) -> Result<(), StorageError> {
    part.rows.rotate_memtable_and_wait().map_err(io)?;
    part.rows.major_compact().map_err(io)?;
    part.rows.insert(SETTLE_KEY, []).map_err(io)?;
    part.rows.rotate_memtable_and_wait().map_err(io)
}

/// Opens every bucket whose keyspaces are in `db`; refuses a directory with buckets
/// that `super::upgrade` must rewrite first.
pub(super) fn open_buckets(db: &Database) -> Result<BTreeMap<u64, Bucket>, StorageError> {
    /// A bucket's parts' rows and trace marks.
    type Found = (BTreeMap<usize, Keyspace>, BTreeMap<usize, Keyspace>);
    let mut found: BTreeMap<u64, Found> = BTreeMap::new();
    let mut outdated = Vec::new();
    for name in db.list_keyspace_names() {
        let name: &str = name.as_ref();
        let Some((index, holds, part)) = parse_part_name(name) else { continue };
        let (rows, traces) = found.entry(index).or_default();
        match holds {
            Holds::Rows => {
                rows.insert(part, db.keyspace(name, bucket_options).map_err(io)?);
            }
            Holds::Traces => {
                traces.insert(part, db.keyspace(name, traces_options).map_err(io)?);
            }
            Holds::OlderRows(_) => outdated.push(name.to_string()),
        }
    }
    let mut buckets = BTreeMap::new();
    for (index, (rows, mut traces)) in found {
        let mut parts = Vec::new();
        for (n, rows) in rows {
            match traces.remove(&n) {
                Some(traces) => parts.push(Part { rows, traces }),
                None => outdated.push(part_name(index, Holds::Rows, n)),
            }
        }
        // Trace marks without rows are left by a crash while a part was being created.
        if !parts.is_empty() {
            buckets.insert(index, Bucket::new(parts));
        }
    }
    if !outdated.is_empty() {
        outdated.sort();
        return Err(StorageError::NeedsUpgrade(format!(
            "{} bucket part(s) of this data directory were written by an older version in a key \
             layout this one no longer reads ({}); run `tracekeeper compact --data-dir <dir>` once, \
             with the server stopped, to rewrite them",
            outdated.len(),
            outdated.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
                + if outdated.len() > 3 { ", …" } else { "" },
        )));
    }
    Ok(buckets)
}

/// Creates part `n` of bucket `index`, or opens it: its trace marks first, so that a
/// crash in between leaves marks without rows (ignored) rather than rows without marks.
pub(super) fn create_part(db: &Database, index: u64, n: usize) -> Result<Part, StorageError> {
    let traces = db.keyspace(&part_name(index, Holds::Traces, n), traces_options).map_err(io)?;
    let rows = db.keyspace(&part_name(index, Holds::Rows, n), bucket_options).map_err(io)?;
    Ok(Part { rows, traces })
}

/// A part's trace marks: one short key per trace and part, read by point lookups, so
/// with fjall's bloom filters (its default), a small memtable, and LZ4.
pub(super) fn traces_options() -> KeyspaceCreateOptions {
    use fjall::config::CompressionPolicy;
    KeyspaceCreateOptions::default()
        .max_memtable_size(8 << 20)
        .data_block_compression_policy(CompressionPolicy::all(fjall::CompressionType::Lz4))
}

/// What the engine holds in memory for a set of buckets, logged (at debug) whenever a
/// part fills: memory that grows with the number of parts shows here.
#[derive(Debug, Default)]
pub(super) struct EngineMemory {
    pub keyspaces: usize,
    pub tables: usize,
    /// Bytes of memtables still referenced, sealed ones waiting for a flush and those
    /// superseded versions hold.
    pub memtable_bytes: u64,
    /// Superseded versions kept for snapshots that may still read them.
    pub superseded_versions: usize,
    pub pinned_filter_bytes: usize,
    pub pinned_index_bytes: usize,
}

impl EngineMemory {
    pub fn of<'a>(buckets: impl IntoIterator<Item = &'a Bucket>) -> Self {
        use fjall::AbstractTree;
        let mut memory = Self::default();
        for keyspace in buckets.into_iter().flat_map(Bucket::keyspaces) {
            memory.keyspaces += 1;
            memory.tables += keyspace.tree.table_count();
            memory.memtable_bytes += keyspace.tree.version_memtable_size_sum();
            memory.superseded_versions += keyspace.tree.version_free_list_len();
            memory.pinned_filter_bytes += keyspace.tree.pinned_filter_size();
            memory.pinned_index_bytes += keyspace.tree.pinned_block_index_size();
        }
        memory
    }
}

/// Several parts' iterators read as one, in key order; a key found in more than one
/// part is yielded once, with the newest part's value.
pub(super) struct Merged {
    /// Oldest part first, each with the row it has read but not yet yielded.
    sources: Vec<(fjall::Iter, Option<KvPair>, bool)>,
}

impl Merged {
    fn new(iters: impl Iterator<Item = fjall::Iter>) -> Self {
        Self { sources: iters.map(|iter| (iter, None, false)).collect() }
    }
}

impl Iterator for Merged {
    type Item = Result<KvPair, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let [(iter, _, _)] = self.sources.as_mut_slice() {
            return iter.next().map(|guard| guard.into_inner().map_err(io));
        }
        for (iter, head, done) in &mut self.sources {
            if head.is_none() && !*done {
                match iter.next() {
                    None => *done = true,
                    Some(guard) => match guard.into_inner() {
                        Ok(row) => *head = Some(row),
                        Err(e) => return Some(Err(io(e))),
                    },
                }
            }
        }
        let least = self.sources.iter().filter_map(|(_, head, _)| head.as_ref().map(|(key, _)| key)).min()?.clone();
        let mut out = None;
        for (_, head, _) in self.sources.iter_mut().rev() {
            if head.as_ref().is_some_and(|(key, _)| *key == least) {
                let row = head.take();
                out = out.or(row);
            }
        }
        out.map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full part flushed while a snapshot was open keeps its memtable in fjall's
    /// version history; settling it releases it.
    #[test]
    fn settling_a_full_part_frees_the_memtables_it_still_holds() {
        use fjall::AbstractTree;
        let dir = tempfile::tempdir().unwrap();
        let (db, part) = new_part(dir.path());
        fill(&part, 0, 20_000);
        let snapshot = db.snapshot();
        part.rows.rotate_memtable_and_wait().unwrap();
        drop(snapshot);
        let held = part.rows.tree.version_memtable_size_sum();
        assert!(held > 1_000_000, "the flushed memtable is still held: {held} bytes");
        settle(&part).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while part.rows.tree.version_memtable_size_sum() > 1_000 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(part.rows.tree.version_memtable_size_sum() <= 1_000, "{}", part.rows.tree.version_memtable_size_sum());
        assert_eq!(rows_read(part), 20_000, "the settle row is not read as a span");
    }

    fn new_part(dir: &std::path::Path) -> (fjall::Database, Part) {
        let db = fjall::Database::builder(dir).open().unwrap();
        let part = create_part(&db, 1, 0).unwrap();
        (db, part)
    }

    /// Writes `rows` span-like rows of 100 bytes, keys `S`, `batch`, then a counter.
    fn fill(part: &Part, batch: u8, rows: u32) {
        for i in 0..rows {
            part.rows.insert([b"S".as_slice(), &[batch], &i.to_be_bytes()].concat(), [batch; 100]).unwrap();
        }
    }

    fn rows_read(part: Part) -> usize {
        Bucket::new(vec![part]).prefix("S").map(Result::unwrap).count()
    }

    /// Bytes of every file under `dir`.
    fn bytes_under(dir: &std::path::Path) -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let meta = entry.metadata().unwrap();
                if meta.is_dir() {
                    bytes_under(&entry.path())
                } else {
                    meta.len()
                }
            })
            .sum()
    }

    /// Compacting a part leaves on disk only the tables it wrote, not the ones it
    /// replaced: `tracekeeper compact` must not need twice a bucket's size free.
    #[test]
    fn compacting_a_part_deletes_the_tables_it_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, part) = new_part(dir.path());
        for batch in 0..4 {
            fill(&part, batch, 5_000);
            part.rows.rotate_memtable_and_wait().unwrap();
        }
        let before = part.rows.disk_space();
        compact(&part).unwrap();
        let on_disk = bytes_under(&dir.path().join("keyspaces"));
        assert!(on_disk < before + before / 2, "{on_disk} bytes on disk after compacting {before}");
        assert_eq!(rows_read(part), 20_000);
    }

    #[test]
    fn part_names_round_trip_and_reject_what_is_not_one() {
        for holds in [Holds::Rows, Holds::Traces, Holds::OlderRows('b'), Holds::OlderRows('c')] {
            for (index, part) in [(0, 0), (19_700, 0), (19_700, 1), (u64::from(u32::MAX), 12)] {
                assert_eq!(parse_part_name(&part_name(index, holds, part)), Some((index, holds, part)));
            }
        }
        assert_eq!(part_name(19_700, Holds::Rows, 3), "d000000019700.3");
        assert_eq!(part_name(19_700, Holds::Traces, 0), "t000000019700");
        for bad in ["meta", "d", "d.1", "d000000019700.", "d000000019700.01", "d000000019700.x", "x000000019700"] {
            assert_eq!(parse_part_name(bad), None, "{bad}");
        }
    }

    /// Rows from several parts come out once each, in key order, the newest part's
    /// value winning when a key is in two.
    #[test]
    fn merged_parts_read_in_key_order_without_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let db = fjall::Database::builder(dir.path()).open().unwrap();
        let part = |name: &str, rows: &[(&str, &str)]| {
            let ks = db.keyspace(name, fjall::KeyspaceCreateOptions::default).unwrap();
            for (k, v) in rows {
                ks.insert(*k, *v).unwrap();
            }
            let traces = db.keyspace(&format!("{name}-marks"), fjall::KeyspaceCreateOptions::default).unwrap();
            Part { rows: ks, traces }
        };
        let bucket = Bucket::new(vec![
            part("p0", &[("a", "0"), ("c", "old"), ("e", "0")]),
            part("p1", &[("b", "1"), ("c", "new"), ("f", "1")]),
            part("p2", &[]),
            part("p3", &[("c", "newest"), ("d", "3")]),
        ]);
        let read = |merged: Merged| -> Vec<(String, String)> {
            merged
                .map(|row| {
                    let (k, v) = row.unwrap();
                    (String::from_utf8(k.to_vec()).unwrap(), String::from_utf8(v.to_vec()).unwrap())
                })
                .collect()
        };
        let pairs = |rows: &[(&str, &str)]| -> Vec<(String, String)> {
            rows.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert_eq!(
            read(bucket.prefix("")),
            pairs(&[("a", "0"), ("b", "1"), ("c", "newest"), ("d", "3"), ("e", "0"), ("f", "1")])
        );
        assert_eq!(read(bucket.range("b".."e")), pairs(&[("b", "1"), ("c", "newest"), ("d", "3")]));
        assert_eq!(read(bucket.prefix("z")), pairs(&[]));
        let one = Bucket::new(vec![bucket.parts()[0].clone()]);
        assert_eq!(read(one.prefix("")), pairs(&[("a", "0"), ("c", "old"), ("e", "0")]));
    }
}
