//! Packed postings (`schemas/v006.cql`): one CQL row holds every posting a batch writes
//! to one postings partition, instead of one row per posting.
//!
//! A batch writes a row per (term, hour, shard) it touches. A term with a single
//! posting in the batch (a user id, a request id: values nearly unique per span) would
//! still make one row per span, so such postings go to one of [`OVERFLOW_GROUPS`]
//! shared overflow partitions of the hour instead, chosen by the term's id. Every entry
//! carries its term id, and a reader of a term reads its own partitions and its
//! overflow partition, keeping only its own entries.
//!
//! A row's entries all lie within [`WINDOW_NS`] below its `newest_ns` clustering key,
//! so rows read newest first can be merged into exact newest-first order: once a row
//! with `newest_ns = n` is read, no later row holds an entry newer than `n`.
//!
//! A row's `group_id` is a hash of its bytes: a replay of the same batch rewrites the
//! same rows. A replay batched differently writes the same entries again in other
//! rows; readers merge equal entries, and the query engine reads each trace once.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};

use tracekeeper_model::TraceId;

use super::{shard_of, HOUR_NS};
use crate::api::Posting;
use crate::schema::{PostingRow, TermRef};

/// The most a row's entries spread below its newest entry.
pub(crate) const WINDOW_NS: u64 = 10_000_000_000;
/// Shared partitions per hour for postings that are alone in their batch.
pub(crate) const OVERFLOW_GROUPS: u64 = 1024;
/// Entries per row at most: keeps a row (36 bytes an entry) well under 64 KiB.
const MAX_ENTRIES: usize = 1024;
const FORMAT: u8 = 1;
const ENTRY_LEN: usize = 8 + 8 + 16 + 4;
/// The high bits of an overflow partition's term id. A term whose hash has them too
/// only shares a partition with an overflow group; entries are filtered by term id.
const OVERFLOW_TAG: u64 = 0x4f56_4552_464c_0000;

/// One posting in a packed row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub term_id: i64,
    pub time_ns: u64,
    pub trace_id: TraceId,
    /// The longest span duration, in µs rounded up; `u32::MAX` means "at least that".
    pub max_duration_us: u32,
}

impl Entry {
    pub fn posting(&self) -> Posting {
        let max_duration_ns = match self.max_duration_us {
            u32::MAX => u64::MAX,
            micros => u64::from(micros) * 1000,
        };
        Posting { time_ns: self.time_ns, trace_id: self.trace_id, max_duration_ns: Some(max_duration_ns) }
    }
}

/// A postings partition: (term id, hour bucket, shard).
pub(crate) type PartitionKey = (i64, i64, i32);

/// One row to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PackedRow {
    pub partition: PartitionKey,
    pub newest_ns: u64,
    pub group_id: i64,
    pub entries: Vec<u8>,
}

/// The values of a `packed_postings` insert: the partition, clustering and bytes, then
/// `USING TTL ? AND TIMESTAMP ?` (the newest entry's time, µs).
pub(crate) type InsertValues<'a> = (&'a str, i64, i64, i32, i64, i64, Vec<u8>, i32, i64);

impl PackedRow {
    /// The values that insert this row for `tenant`, living `ttl_secs` (0: for ever).
    pub fn insert_values(self, tenant: &str, ttl_secs: i32) -> InsertValues<'_> {
        let (term_id, bucket, shard) = self.partition;
        let timestamp_us = (self.newest_ns / 1000) as i64;
        (tenant, term_id, bucket, shard, self.newest_ns as i64, self.group_id, self.entries, ttl_secs, timestamp_us)
    }
}

/// The overflow partition's term id for postings of `term_id`.
pub(crate) fn overflow_term(term_id: i64) -> i64 {
    (OVERFLOW_TAG | (term_id as u64 % OVERFLOW_GROUPS)) as i64
}

/// The rows a batch's postings make, as described in the module docs.
pub(crate) fn pack(postings: &[PostingRow<'_>]) -> Vec<PackedRow> {
    let mut partitions: HashMap<PartitionKey, Vec<Entry>> = HashMap::new();
    for &(term, time_ns, trace_id, duration_ns) in postings {
        let term_id = term.id() as i64;
        let entry = Entry {
            term_id,
            time_ns,
            trace_id,
            max_duration_us: u32::try_from(duration_ns.div_ceil(1000)).unwrap_or(u32::MAX),
        };
        let key = (term_id, (time_ns / HOUR_NS) as i64, shard_of(term, trace_id));
        partitions.entry(key).or_default().push(entry);
    }
    // The "every trace" term always keeps its own partitions: the retention worker lists
    // an hour's traces from them (`purge.rs`).
    let every_trace = TermRef::All.id() as i64;
    let mut rows: BTreeMap<PartitionKey, Vec<Entry>> = BTreeMap::new();
    for (key @ (term_id, bucket, _), entries) in partitions {
        let key = if entries.len() == 1 && term_id != every_trace { (overflow_term(term_id), bucket, 0) } else { key };
        rows.entry(key).or_default().extend(entries);
    }
    rows.into_iter().flat_map(|(partition, entries)| pack_partition(partition, entries)).collect()
}

/// The rows that hold `entries` in `partition`: newest first, each within
/// [`WINDOW_NS`] of its newest entry and at most [`MAX_ENTRIES`] long.
pub(crate) fn pack_partition(partition: PartitionKey, mut entries: Vec<Entry>) -> Vec<PackedRow> {
    let mut out = Vec::new();
    entries.sort_by_key(|e| (Reverse(e.time_ns), e.trace_id, e.term_id));
    entries.dedup_by(|b, a| {
        let same = (a.term_id, a.time_ns, a.trace_id) == (b.term_id, b.time_ns, b.trace_id);
        if same {
            a.max_duration_us = a.max_duration_us.max(b.max_duration_us);
        }
        same
    });
    let mut rest = entries.as_slice();
    while let Some(first) = rest.first() {
        let len = rest.iter().take(MAX_ENTRIES).take_while(|e| first.time_ns - e.time_ns < WINDOW_NS).count();
        let (row, tail) = rest.split_at(len);
        let bytes = encode(row);
        out.push(PackedRow { partition, newest_ns: first.time_ns, group_id: fnv(&bytes), entries: bytes });
        rest = tail;
    }
    out
}

fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + entries.len() * ENTRY_LEN);
    out.push(FORMAT);
    for e in entries {
        out.extend_from_slice(&e.term_id.to_be_bytes());
        out.extend_from_slice(&e.time_ns.to_be_bytes());
        out.extend_from_slice(&e.trace_id.0);
        out.extend_from_slice(&e.max_duration_us.to_be_bytes());
    }
    out
}

/// The entries of a row, or `None` when the bytes are not a packed row.
pub(crate) fn decode(bytes: &[u8]) -> Option<Vec<Entry>> {
    let (&format, body) = bytes.split_first()?;
    if format != FORMAT || body.len() % ENTRY_LEN != 0 {
        return None;
    }
    let entries = body
        .chunks_exact(ENTRY_LEN)
        .map(|c| Entry {
            term_id: i64::from_be_bytes(c[..8].try_into().expect("8 bytes")),
            time_ns: u64::from_be_bytes(c[8..16].try_into().expect("8 bytes")),
            trace_id: TraceId(c[16..32].try_into().expect("16 bytes")),
            max_duration_us: u32::from_be_bytes(c[32..].try_into().expect("4 bytes")),
        })
        .collect();
    Some(entries)
}

fn fnv(bytes: &[u8]) -> i64 {
    tracekeeper_model::hash::fnv1a64(bytes) as i64
}

/// Merges rows read newest first into the postings of one term, newest first, within
/// `[oldest_ns, newest_ns]` and after `after`, at most `max` of them.
pub(crate) struct Merge {
    term_id: i64,
    newest_ns: u64,
    oldest_ns: u64,
    after: Option<(u64, TraceId)>,
    max: usize,
    /// Read but not yet certain to be next: a later row may hold newer entries.
    pending: BTreeMap<(Reverse<u64>, TraceId), u32>,
    out: Vec<Posting>,
}

impl Merge {
    pub fn new(term_id: i64, newest_ns: u64, oldest_ns: u64, after: Option<&Posting>, max: usize) -> Self {
        Self {
            term_id,
            newest_ns,
            oldest_ns,
            after: after.map(|a| (a.time_ns, a.trace_id)),
            max,
            pending: BTreeMap::new(),
            out: Vec::new(),
        }
    }

    /// Rows older than this hold no entry in range.
    pub fn oldest_ns(&self) -> u64 {
        self.oldest_ns
    }

    /// The `newest_ns` bound of the rows to read: rows newer than this hold no entry in
    /// range.
    pub fn rows_newest(&self) -> u64 {
        let newest = self.after.map_or(self.newest_ns, |(time, _)| time.min(self.newest_ns));
        newest.saturating_add(WINDOW_NS - 1)
    }

    /// Adds a row; rows must come in `newest_ns` descending order.
    pub fn push(&mut self, row_newest_ns: u64, entries: &[Entry]) {
        self.release(row_newest_ns);
        for e in entries {
            let in_range = e.term_id == self.term_id && e.time_ns <= self.newest_ns && e.time_ns >= self.oldest_ns;
            let after_cursor = self.after.is_none_or(|(t, id)| e.time_ns < t || (e.time_ns == t && e.trace_id > id));
            if in_range && after_cursor {
                let slot = self.pending.entry((Reverse(e.time_ns), e.trace_id)).or_insert(0);
                *slot = (*slot).max(e.max_duration_us);
            }
        }
    }

    /// Whether `max` postings are certain.
    pub fn done(&self) -> bool {
        self.out.len() >= self.max
    }

    /// Everything pending is final: there are no more rows.
    pub fn finish(mut self) -> Vec<Posting> {
        self.release(0);
        let mut rest = std::mem::take(&mut self.pending).into_iter();
        while self.out.len() < self.max {
            let Some(((Reverse(time_ns), trace_id), max_duration_us)) = rest.next() else { break };
            self.out.push(Entry { term_id: self.term_id, time_ns, trace_id, max_duration_us }.posting());
        }
        self.out
    }

    /// Moves to the output the pending entries newer than `bound`.
    fn release(&mut self, bound: u64) {
        while self.out.len() < self.max {
            let Some(entry) = self.pending.first_entry() else { return };
            let (Reverse(time_ns), trace_id) = *entry.key();
            if time_ns <= bound {
                return;
            }
            let max_duration_us = entry.remove();
            self.out.push(Entry { term_id: self.term_id, time_ns, trace_id, max_duration_us }.posting());
        }
    }
}

/// Merges the newest-first postings of several partitions into the first `max`, newest
/// first. A trace at the same time in two lists is one posting; its duration bound is
/// the larger, and unknown (`None`, a legacy row) when either is.
pub(crate) fn merge_sources(lists: Vec<Vec<Posting>>, max: usize) -> Vec<Posting> {
    let mut all: Vec<Posting> = lists.into_iter().flatten().collect();
    all.sort_by_key(|p| (Reverse(p.time_ns), p.trace_id));
    all.dedup_by(|b, a| {
        let same = (a.time_ns, a.trace_id) == (b.time_ns, b.trace_id);
        if same {
            a.max_duration_ns = a.max_duration_ns.zip(b.max_duration_ns).map(|(x, y)| x.max(y));
        }
        same
    });
    all.truncate(max);
    all
}

#[cfg(test)]
#[path = "packed_tests.rs"]
mod tests;
