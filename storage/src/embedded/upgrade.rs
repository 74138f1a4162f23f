//! The one-time rewrite of buckets that older versions wrote in earlier key layouts
//! into today's ([`super::keys`]; the history is in docs/adr/0002-key-layout.md).
//! `tracekeeper compact` runs it first; [`super::EmbeddedStore::open`] refuses a
//! directory that still needs it, so no other code reads an older layout.
//!
//! What older versions left, per bucket index:
//! - `b…` parts: span keys `S`, tenant, trace id, row id (no start time: it is read
//!   from the span), and posting keys `P`, tenant, term id, inverted time, trace id
//!   (no duration bound);
//! - `c…` parts: the same with the tenant first, span keys with the start time and
//!   posting keys with the duration bound, as today;
//! - `d…` parts written before parts had trace marks: no `t…` keyspace.
//!
//! Catalog and RED keys are the same in every layout. A bucket's older parts are
//! copied into part 0 of its `d` bucket and then deleted. Every key written is a
//! function of the row it comes from, and the older parts are deleted only once the
//! copy is on disk, so a rewrite cut short (a crash, a full disk) is run again from the
//! start and ends the same.

use std::collections::{BTreeMap, BTreeSet};

use fjall::{Database, Keyspace, PersistMode};
use tracekeeper_model::TraceId;

use super::parts::{self, Holds};
use super::{bucket_options, io, keys, open_database, EmbeddedConfig, EmbeddedStore};
use crate::api::StorageError;
use crate::schema::SpanDecoder;

/// Rows per write batch while copying.
const BATCH_ROWS: usize = 10_000;

/// What a run of [`EmbeddedStore::upgrade`] rewrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Upgraded {
    /// Buckets whose older parts were copied into today's layout.
    pub rewritten_buckets: usize,
    /// Parts that were given trace marks.
    pub marked_parts: usize,
    /// Rows copied or marked.
    pub rows: u64,
}

/// Where a running upgrade is, for a progress line.
#[derive(Debug, Clone, Copy)]
pub struct UpgradeProgress {
    /// The bucket being worked on, by its start time.
    pub bucket_start_ns: u64,
    /// Its place among the buckets to upgrade (from 1), and their number.
    pub bucket: usize,
    pub buckets: usize,
    /// Rows of this bucket done so far.
    pub rows: u64,
}

/// The keyspaces of one bucket index that need work.
#[derive(Default)]
struct Pending {
    /// Older parts: (part number, name).
    older: Vec<(usize, String)>,
    /// `d` parts without trace marks.
    unmarked: Vec<usize>,
}

impl EmbeddedStore {
    /// Rewrites every bucket of the store in `config.path` that an older version wrote
    /// in an earlier key layout, and gives trace marks to parts without them; a store
    /// already in today's layout is left as it is. No process may have the store open.
    pub fn upgrade(
        config: &EmbeddedConfig,
        progress: &mut dyn FnMut(UpgradeProgress),
    ) -> Result<Upgraded, StorageError> {
        let db = open_database(config)?;
        let width = bucket_width_ns(&db, config)?;
        let pending = pending(&db);
        let mut upgraded = Upgraded::default();
        let buckets = pending.len();
        for (n, (index, work)) in pending.into_iter().enumerate() {
            let mut report =
                |rows| progress(UpgradeProgress { bucket_start_ns: index * width, bucket: n + 1, buckets, rows });
            report(0);
            let mut rows = 0;
            if !work.older.is_empty() {
                rows += rewrite_bucket(&db, index, &work.older, &mut report)?;
                upgraded.rewritten_buckets += 1;
            }
            for part in work.unmarked {
                rows += mark_part(&db, index, part, &mut report)?;
                upgraded.marked_parts += 1;
            }
            upgraded.rows += rows;
        }
        db.persist(PersistMode::SyncAll).map_err(io)?;
        Ok(upgraded)
    }
}

/// The store's bucket width, fixed when it was created; the configured one for a store
/// that has none yet.
fn bucket_width_ns(db: &Database, config: &EmbeddedConfig) -> Result<u64, StorageError> {
    let meta = db.keyspace(super::META_KEYSPACE, fjall::KeyspaceCreateOptions::default).map_err(io)?;
    match meta.get(super::BUCKET_WIDTH_KEY).map_err(io)? {
        Some(stored) => Ok(u64::from_be_bytes(
            stored.as_ref().try_into().map_err(|_| StorageError::Corrupt("bucket width".into()))?,
        )),
        None => Ok(u64::try_from(config.bucket_width.as_nanos()).unwrap_or(u64::MAX).max(1)),
    }
}

/// Every bucket index with keyspaces to upgrade.
fn pending(db: &Database) -> BTreeMap<u64, Pending> {
    let mut rows = BTreeSet::new();
    let mut marks = BTreeSet::new();
    let mut pending: BTreeMap<u64, Pending> = BTreeMap::new();
    for name in db.list_keyspace_names() {
        match parts::parse_part_name(name.as_ref()) {
            Some((index, Holds::OlderRows(_), part)) => {
                pending.entry(index).or_default().older.push((part, name.as_ref().to_string()));
            }
            Some((index, Holds::Rows, part)) => {
                rows.insert((index, part));
            }
            Some((index, Holds::Traces, part)) => {
                marks.insert((index, part));
            }
            None => {}
        }
    }
    for (index, part) in rows.difference(&marks) {
        pending.entry(*index).or_default().unmarked.push(*part);
    }
    pending
}

/// Copies the older parts of bucket `index` into its `d` part 0, then deletes them and
/// the trace marks no `d` part owns; returns the rows copied.
fn rewrite_bucket(
    db: &Database,
    index: u64,
    older: &[(usize, String)],
    report: &mut dyn FnMut(u64),
) -> Result<u64, StorageError> {
    let target = parts::create_part(db, index, 0)?;
    let mut copied = 0u64;
    for (_, name) in older {
        let letter = name.chars().next().unwrap_or_default();
        let source = db.keyspace(name, bucket_options).map_err(io)?;
        let mut batch = Batch::new(db);
        let mut decoder = SpanDecoder::default();
        for item in source.iter() {
            let (key, value) = item.into_inner().map_err(io)?;
            match key.first() {
                Some(&keys::SPAN) => {
                    let (tenant, trace, rest) = split_tenant_first(&key, 16)?;
                    let trace_id = TraceId(trace.try_into().map_err(|_| corrupt(name))?);
                    let (start_ns, row_id) = if letter == 'b' {
                        (decoder.decode(&value)?.start_ns, rest)
                    } else {
                        let start = rest.get(..8).ok_or_else(|| corrupt(name))?;
                        (u64::from_be_bytes(start.try_into().map_err(|_| corrupt(name))?), &rest[8..])
                    };
                    batch.insert(&target.rows, keys::span_key(tenant, trace_id, start_ns, row_id), &value);
                    batch.insert(&target.traces, keys::trace_mark(tenant, trace_id), &[]);
                }
                Some(&keys::POSTING) => {
                    let (tenant, term, rest) = split_tenant_first(&key, 8)?;
                    let term_id = u64::from_be_bytes(term.try_into().map_err(|_| corrupt(name))?);
                    let mut new = keys::term_id_prefix(tenant, term_id);
                    new.extend_from_slice(rest);
                    // `b` postings bound no duration: the largest bound reads as none.
                    if rest.len() == 24 {
                        new.extend_from_slice(&keys::duration_suffix(u64::MAX));
                    }
                    if keys::parse_posting(&new, keys::term_prefix_len(tenant)).is_none() {
                        return Err(corrupt(name));
                    }
                    batch.insert(&target.rows, new, &[]);
                }
                Some(&keys::CATALOG | &keys::RED) => batch.insert(&target.rows, key.to_vec(), &value),
                // The marker row of a settled part (`parts::settle`).
                Some(0) if key.len() == 1 => continue,
                _ => return Err(corrupt(name)),
            }
            copied += 1;
            if batch.len() >= BATCH_ROWS {
                batch.commit()?;
                report(copied);
            }
        }
        batch.commit()?;
        report(copied);
    }
    db.persist(PersistMode::SyncAll).map_err(io)?;
    let d_parts: BTreeSet<usize> = db
        .list_keyspace_names()
        .iter()
        .filter_map(|name| match parts::parse_part_name(name.as_ref()) {
            Some((i, Holds::Rows, part)) if i == index => Some(part),
            _ => None,
        })
        .collect();
    for (part, name) in older {
        db.delete_keyspace(db.keyspace(name, bucket_options).map_err(io)?).map_err(io)?;
        if !d_parts.contains(part) {
            let marks = parts::part_name(index, Holds::Traces, *part);
            if db.keyspace_exists(&marks) {
                db.delete_keyspace(db.keyspace(&marks, parts::traces_options).map_err(io)?).map_err(io)?;
            }
        }
    }
    Ok(copied)
}

/// Gives `d` part `part` of bucket `index` its trace marks; returns the spans read.
fn mark_part(db: &Database, index: u64, part: usize, report: &mut dyn FnMut(u64)) -> Result<u64, StorageError> {
    let name = parts::part_name(index, Holds::Rows, part);
    let rows = db.keyspace(&name, bucket_options).map_err(io)?;
    // Marks are written before anything can read them as complete: the keyspace exists
    // only once this returns, so a crash part-way leaves the part unmarked, and the
    // next run starts over.
    let staging = format!("upgrade-marks-{index}-{part}");
    if db.keyspace_exists(&staging) {
        db.delete_keyspace(db.keyspace(&staging, parts::traces_options).map_err(io)?).map_err(io)?;
    }
    let marks = db.keyspace(&staging, parts::traces_options).map_err(io)?;
    let mut batch = Batch::new(db);
    let mut spans = 0u64;
    let mut last: Option<Vec<u8>> = None;
    for item in rows.prefix([keys::SPAN]) {
        let key = item.key().map_err(io)?;
        let (tenant, trace, _) = keys::split_owner(&key, 16).ok_or_else(|| corrupt(&name))?;
        let trace_id = TraceId(trace.try_into().map_err(|_| corrupt(&name))?);
        let mark = keys::trace_mark(tenant, trace_id);
        if last.as_ref() != Some(&mark) {
            batch.insert(&marks, mark.clone(), &[]);
            last = Some(mark);
        }
        spans += 1;
        if batch.len() >= BATCH_ROWS {
            batch.commit()?;
            report(spans);
        }
    }
    batch.commit()?;
    db.persist(PersistMode::SyncAll).map_err(io)?;
    drop(marks);
    let final_name = parts::part_name(index, Holds::Traces, part);
    copy_keyspace(db, &staging, &final_name)?;
    report(spans);
    Ok(spans)
}

/// Copies keyspace `from` into a new keyspace `to` and deletes `from`. fjall cannot
/// rename a keyspace; marks are small (one short key per trace and part).
fn copy_keyspace(db: &Database, from: &str, to: &str) -> Result<(), StorageError> {
    let source = db.keyspace(from, parts::traces_options).map_err(io)?;
    let target = db.keyspace(to, parts::traces_options).map_err(io)?;
    let mut batch = Batch::new(db);
    for item in source.iter() {
        let key = item.key().map_err(io)?;
        batch.insert(&target, key.to_vec(), &[]);
        if batch.len() >= BATCH_ROWS {
            batch.commit()?;
        }
    }
    batch.commit()?;
    db.persist(PersistMode::SyncAll).map_err(io)?;
    db.delete_keyspace(source).map_err(io)
}

/// A write batch that knows its size.
struct Batch<'a> {
    db: &'a Database,
    batch: fjall::OwnedWriteBatch,
    len: usize,
}

impl<'a> Batch<'a> {
    fn new(db: &'a Database) -> Self {
        Self { db, batch: db.batch(), len: 0 }
    }

    fn insert(&mut self, keyspace: &Keyspace, key: Vec<u8>, value: &[u8]) {
        self.batch.insert(keyspace, key, value);
        self.len += 1;
    }

    fn len(&self) -> usize {
        self.len
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        if self.len > 0 {
            std::mem::replace(&mut self.batch, self.db.batch()).commit().map_err(io)?;
            self.len = 0;
        }
        Ok(())
    }
}

/// The tenant, the id (`id_len` bytes) and the rest of a span or posting key of the
/// older, tenant-first layouts.
fn split_tenant_first(key: &[u8], id_len: usize) -> Result<(&str, &[u8], &[u8]), StorageError> {
    let split = || {
        let len = usize::from(*key.get(1)?);
        let tenant = std::str::from_utf8(key.get(2..2 + len)?).ok()?;
        let rest = key.get(2 + len..)?;
        Some((tenant, rest.get(..id_len)?, &rest[id_len..]))
    };
    split().ok_or_else(|| StorageError::Corrupt("a key of an older layout without its tenant and id".into()))
}

fn corrupt(keyspace: &str) -> StorageError {
    StorageError::Corrupt(format!("a key in {keyspace} that no older layout wrote"))
}
