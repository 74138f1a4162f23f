//! Reading postings: the packed rows of `schemas/v006.cql` ([`super::packed`]).

use scylla::response::PagingState;
use scylla::response::PagingStateResponse;

use super::packed::{self, Merge, PartitionKey};
use super::{corrupt, shards, unavailable, CqlStore, DAY_NS, HOUR_NS};
use crate::api::{Posting, StorageError};
use crate::schema::IndexTerm;

/// Packed rows fetched per request: a search wants a handful of postings, and one row
/// of a term's own partition often holds dozens.
pub(super) const PACKED_PAGE_ROWS: i32 = 16;
/// The same for overflow partitions, whose rows hold a few entries of many terms: a
/// rare term's search reads the whole range.
pub(super) const OVERFLOW_PAGE_ROWS: i32 = 256;

impl CqlStore {
    /// [`crate::SpanReader::postings`] on CQL.
    pub(super) async fn read_postings(
        &self,
        tenant: &str,
        term: &IndexTerm,
        newest_ns: u64,
        oldest_ns: u64,
        after: Option<Posting>,
        max: usize,
    ) -> Result<Vec<Posting>, StorageError> {
        let term_ref = term.as_ref();
        let term_id = term_ref.id() as i64;
        // Times are stored as CQL bigint.
        let newest_ns = after.map_or(newest_ns, |a| a.time_ns.min(newest_ns)).min(i64::MAX as u64 - packed::WINDOW_NS);
        if newest_ns < oldest_ns || max == 0 {
            return Ok(Vec::new());
        }
        // Only hours of days that hold data are read: the range may be unbounded.
        let mut out = Vec::new();
        for day in self.days(tenant, oldest_ns / DAY_NS, newest_ns / DAY_NS).await? {
            let first = (day * DAY_NS / HOUR_NS).max(oldest_ns / HOUR_NS);
            let last = ((day + 1) * DAY_NS / HOUR_NS - 1).min(newest_ns / HOUR_NS);
            for bucket in (first..=last).rev() {
                let bucket_after = after.filter(|a| a.time_ns / HOUR_NS == bucket);
                let want = max - out.len();
                let bucket = bucket as i64;
                // The term's own partitions first: an overflow partition is shared by
                // many terms, so it is read only as far back as they leave open.
                let own = (0..i32::from(shards(term_ref))).map(|shard| {
                    let merge = Merge::new(term_id, newest_ns, oldest_ns, bucket_after.as_ref(), want);
                    self.packed_in(tenant, (term_id, bucket, shard), merge, &self.statements.select_packed)
                });
                let found = packed::merge_sources(futures::future::try_join_all(own).await?, want);
                let overflow_oldest =
                    if found.len() == want { found.last().map_or(oldest_ns, |p| p.time_ns) } else { oldest_ns };
                let merge = Merge::new(term_id, newest_ns, overflow_oldest, bucket_after.as_ref(), want);
                let overflow = (packed::overflow_term(term_id), bucket, 0);
                let overflow = self.packed_in(tenant, overflow, merge, &self.statements.select_overflow).await?;
                let lists = vec![found, overflow];
                out.extend(packed::merge_sources(lists, want));
                if out.len() >= max {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    /// One packed partition's postings, read newest row first until `merge` is done.
    async fn packed_in(
        &self,
        tenant: &str,
        key: PartitionKey,
        mut merge: Merge,
        statement: &scylla::statement::prepared::PreparedStatement,
    ) -> Result<Vec<Posting>, StorageError> {
        let (term_id, bucket, shard) = key;
        let values = (tenant, term_id, bucket, shard, merge.rows_newest() as i64, merge.oldest_ns() as i64);
        let mut paging = PagingState::start();
        loop {
            let (result, next) =
                self.session.execute_single_page(statement, values, paging).await.map_err(unavailable)?;
            let rows = result.into_rows_result().map_err(corrupt)?;
            for row in rows.rows::<(i64, Vec<u8>)>().map_err(corrupt)? {
                let (newest, bytes) = row.map_err(corrupt)?;
                let entries = packed::decode(&bytes).ok_or_else(|| corrupt("a packed postings row"))?;
                merge.push(newest as u64, &entries);
                if merge.done() {
                    return Ok(merge.finish());
                }
            }
            match next {
                PagingStateResponse::HasMorePages { state } => paging = state,
                PagingStateResponse::NoMorePages => return Ok(merge.finish()),
            }
        }
    }
}
