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

use std::ops::RangeBounds;
use std::sync::Arc;

use fjall::{Keyspace, KvPair};

use super::io;
use super::keys::Layout;
use crate::api::StorageError;

/// One time bucket's keyspaces, oldest first (never empty), and its key layout.
#[derive(Clone)]
pub(super) struct Bucket {
    pub layout: Layout,
    parts: Arc<[Keyspace]>,
}

impl Bucket {
    pub fn new(layout: Layout, parts: Vec<Keyspace>) -> Self {
        assert!(!parts.is_empty(), "a bucket has at least one part");
        Self { layout, parts: parts.into() }
    }

    /// The same bucket with `part` added as its newest.
    pub fn with_part(&self, part: Keyspace) -> Self {
        let parts: Vec<Keyspace> = self.parts.iter().cloned().chain([part]).collect();
        Self { layout: self.layout, parts: parts.into() }
    }

    /// The part that holds the catalog and RED rows.
    pub fn first(&self) -> &Keyspace {
        &self.parts[0]
    }

    /// The part new span and posting rows go to.
    pub fn newest(&self) -> &Keyspace {
        &self.parts[self.parts.len() - 1]
    }

    pub fn parts(&self) -> &[Keyspace] {
        &self.parts
    }

    pub fn disk_space(&self) -> u64 {
        self.parts.iter().map(Keyspace::disk_space).sum()
    }

    /// Rows in every part, counted as the engine estimates them.
    pub fn approximate_len(&self) -> u64 {
        self.parts.iter().map(|p| p.approximate_len() as u64).sum()
    }

    /// The rows whose keys fall in `range`, from every part, in key order.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K> + Clone>(&self, range: R) -> Merged {
        Merged::new(self.parts.iter().map(|p| p.range(range.clone())))
    }

    /// The rows whose keys start with `prefix`, from every part, in key order.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Merged {
        Merged::new(self.parts.iter().map(|p| p.prefix(prefix.as_ref())))
    }
}

/// The name of part `part` of bucket `index`: the first letter tells the layout
/// (`b…`, `c…`, `d…`; see [`Layout`]), then the index; parts after the first add
/// `.<part>`.
pub(super) fn part_name(index: u64, layout: Layout, part: usize) -> String {
    let letter = match layout {
        Layout::NoStartTime => 'b',
        Layout::TenantFirst => 'c',
        Layout::IdFirst => 'd',
    };
    match part {
        0 => format!("{letter}{index:012}"),
        n => format!("{letter}{index:012}.{n}"),
    }
}

/// The bucket index, layout and part number of a part's keyspace name.
pub(super) fn parse_part_name(name: &str) -> Option<(u64, Layout, usize)> {
    let (layout, rest) = match name.split_at_checked(1)? {
        ("b", rest) => (Layout::NoStartTime, rest),
        ("c", rest) => (Layout::TenantFirst, rest),
        ("d", rest) => (Layout::IdFirst, rest),
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
    Some((digits.parse().ok()?, layout, part))
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

    #[test]
    fn part_names_round_trip_and_reject_what_is_not_one() {
        for layout in [Layout::NoStartTime, Layout::TenantFirst, Layout::IdFirst] {
            for (index, part) in [(0, 0), (19_700, 0), (19_700, 1), (u64::from(u32::MAX), 12)] {
                assert_eq!(parse_part_name(&part_name(index, layout, part)), Some((index, layout, part)));
            }
        }
        assert_eq!(part_name(19_700, Layout::IdFirst, 3), "d000000019700.3");
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
            ks
        };
        let bucket = Bucket::new(
            Layout::IdFirst,
            vec![
                part("p0", &[("a", "0"), ("c", "old"), ("e", "0")]),
                part("p1", &[("b", "1"), ("c", "new"), ("f", "1")]),
                part("p2", &[]),
                part("p3", &[("c", "newest"), ("d", "3")]),
            ],
        );
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
        let one = Bucket::new(Layout::IdFirst, vec![bucket.first().clone()]);
        assert_eq!(read(one.prefix("")), pairs(&[("a", "0"), ("c", "old"), ("e", "0")]));
    }
}
