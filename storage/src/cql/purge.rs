//! Early deletion of one tenant's data on CQL, for a shortened policy: its rows still
//! carry the old policy's TTL. Everything is deleted a partition (or one trace's time
//! range) at a time, hour bucket by hour bucket, oldest first:
//!
//! 1. the traces with spans in the hour, from the "every trace" postings;
//! 2. those traces' span rows within the hour (one range tombstone per trace);
//! 3. every postings partition the hour has, from `bucket_terms`, the "every trace"
//!    ones last since they are the list of step 1;
//! 4. the hour's `bucket_terms` partition.
//!
//! Then the catalog partitions of whole days. A purge killed anywhere leaves only
//! index entries below the watermark (never shown) and is finished by the next one.

use std::collections::HashSet;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::Consistency;

use super::{corrupt, packed, shards, unavailable, DAY_NS, HOUR_NS};
use crate::api::StorageError;
use crate::lifecycle::Expired;
use crate::schema::TermRef;

const DELETE_CONCURRENCY: usize = 32;

pub(super) struct Purger {
    session: Arc<Session>,
    select_packed_traces: PreparedStatement,
    delete_spans: PreparedStatement,
    select_bucket_terms: PreparedStatement,
    delete_packed: PreparedStatement,
    delete_bucket_terms: PreparedStatement,
    select_days: PreparedStatement,
    delete_operations: PreparedStatement,
    delete_day: PreparedStatement,
}

impl Purger {
    pub async fn new(session: Arc<Session>, ks: &str) -> Result<Self, StorageError> {
        let prepare = |cql: String| {
            let session = Arc::clone(&session);
            async move {
                let mut ps = session.prepare(cql).await.map_err(unavailable)?;
                ps.set_consistency(Consistency::Quorum);
                ps.set_page_size(5000);
                Ok::<_, StorageError>(ps)
            }
        };
        Ok(Self {
            select_packed_traces: prepare(format!(
                "SELECT packed FROM {ks}.packed_postings WHERE tenant = ? AND term_id = ? AND bucket = ? AND shard = ?"
            ))
            .await?,
            delete_spans: prepare(format!(
                "DELETE FROM {ks}.spans WHERE tenant = ? AND trace_id = ? AND start_ns >= ? AND start_ns < ?"
            ))
            .await?,
            select_bucket_terms: prepare(format!(
                "SELECT term_id, shard FROM {ks}.bucket_terms WHERE tenant = ? AND bucket = ?"
            ))
            .await?,
            delete_packed: prepare(format!(
                "DELETE FROM {ks}.packed_postings WHERE tenant = ? AND term_id = ? AND bucket = ? AND shard = ?"
            ))
            .await?,
            delete_bucket_terms: prepare(format!("DELETE FROM {ks}.bucket_terms WHERE tenant = ? AND bucket = ?"))
                .await?,
            select_days: prepare(format!(
                "SELECT day FROM {ks}.catalog_days WHERE tenant = ? AND day >= ? AND day < ?"
            ))
            .await?,
            delete_operations: prepare(format!("DELETE FROM {ks}.operations WHERE tenant = ? AND day = ?")).await?,
            delete_day: prepare(format!("DELETE FROM {ks}.catalog_days WHERE tenant = ? AND day = ?")).await?,
            session,
        })
    }

    async fn rows<T>(
        &self,
        statement: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
    ) -> Result<Vec<T>, StorageError>
    where
        T: for<'f, 'm> scylla::deserialize::row::DeserializeRow<'f, 'm> + 'static,
    {
        self.session
            .execute_iter(statement.clone(), values)
            .await
            .map_err(unavailable)?
            .rows_stream::<T>()
            .map_err(corrupt)?
            .try_collect()
            .await
            .map_err(unavailable)
    }

    async fn each<V>(&self, statement: &PreparedStatement, values: Vec<V>) -> Result<u64, StorageError>
    where
        V: scylla::serialize::row::SerializeRow + Send + Sync,
    {
        let count = values.len() as u64;
        futures::stream::iter(values)
            .map(|v| async move { self.session.execute_unpaged(statement, v).await.map(drop) })
            .buffer_unordered(DELETE_CONCURRENCY)
            .try_collect::<()>()
            .await
            .map_err(unavailable)?;
        Ok(count)
    }

    /// One hour: returns the partitions (and trace ranges) deleted.
    async fn purge_hour(&self, tenant: &str, bucket: i64) -> Result<u64, StorageError> {
        let all = TermRef::All.id() as i64;
        let mut traces = HashSet::new();
        for shard in 0..i32::from(shards(TermRef::All)) {
            let rows: Vec<(Vec<u8>,)> = self.rows(&self.select_packed_traces, (tenant, all, bucket, shard)).await?;
            for (bytes,) in rows {
                let entries = packed::decode(&bytes).ok_or_else(|| corrupt("a packed postings row"))?;
                traces.extend(entries.into_iter().filter(|e| e.term_id == all).map(|e| e.trace_id.0.to_vec()));
            }
        }
        let (from, to) = (bucket * HOUR_NS as i64, (bucket + 1) * HOUR_NS as i64);
        let spans = traces.into_iter().map(|trace| (tenant, trace, from, to)).collect();
        let mut removed = self.each(&self.delete_spans, spans).await?;

        let partitions: Vec<(i64, i32)> = self.rows(&self.select_bucket_terms, (tenant, bucket)).await?;
        // The "every trace" partitions list what step 1 read: delete them last.
        let (others, every): (Vec<_>, Vec<_>) = partitions.into_iter().partition(|(term, _)| *term != all);
        for group in [others, every] {
            let deletes: Vec<_> = group.into_iter().map(|(term, shard)| (tenant, term, bucket, shard)).collect();
            removed += self.each(&self.delete_packed, deletes).await?;
        }
        self.session.execute_unpaged(&self.delete_bucket_terms, (tenant, bucket)).await.map_err(unavailable)?;
        Ok(removed)
    }

    /// Purges `tenant` in the whole hours of `[from_ns, before_ns)`, oldest first, and
    /// the catalogs of the whole days in it.
    pub async fn purge(&self, tenant: &str, from_ns: u64, before_ns: u64) -> Result<(Expired, u64), StorageError> {
        let first = from_ns.div_ceil(HOUR_NS);
        let end = before_ns / HOUR_NS;
        let mut expired = Expired::default();
        for bucket in first..end {
            let removed = self.purge_hour(tenant, bucket as i64).await?;
            if removed > 0 {
                expired.buckets += 1;
                expired.rows += removed;
            }
        }
        let covered_until = end.max(first) * HOUR_NS;
        let (first_day, end_day) = (from_ns.div_ceil(DAY_NS) as i64, (covered_until / DAY_NS) as i64);
        if first_day < end_day {
            let days: Vec<(i64,)> = self.rows(&self.select_days, (tenant, first_day, end_day)).await?;
            for (day,) in days {
                self.session.execute_unpaged(&self.delete_operations, (tenant, day)).await.map_err(unavailable)?;
                self.session.execute_unpaged(&self.delete_day, (tenant, day)).await.map_err(unavailable)?;
                expired.rows += 1;
            }
        }
        if expired.rows > 0 {
            tracing::info!(tenant, buckets = expired.buckets, partitions = expired.rows, "purged a shortened tenant");
        }
        Ok((expired, covered_until))
    }
}
