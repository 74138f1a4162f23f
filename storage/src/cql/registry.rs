//! The `bucket_terms` registry: which postings partitions each tenant's hour has, so
//! the retention worker can delete them whole (`purge.rs`, `schemas/v004.cql`).

use std::collections::BTreeSet;

use super::{ttl_secs, CqlStore, HOUR_NS};
use crate::api::{StorageError, WriteBatch};

/// (tenant, term id, hour bucket, shard): one postings partition.
pub(super) type RegisteredPartition = (String, i64, i64, i32);

/// Partitions remembered as listed, per process, before the set is forgotten wholesale.
const REGISTERED_MAX: usize = 1 << 20;

impl CqlStore {
    /// Lists in `bucket_terms` the postings partitions `postings` will write to, before
    /// they are written, so the retention worker can find every one of them.
    pub(super) async fn register_partitions<V>(
        &self,
        batch: &WriteBatch,
        postings: &[((i64, i64, i32), V)],
    ) -> Result<(), StorageError> {
        let tenant = batch.tenant.as_str();
        let fresh: BTreeSet<(i64, i64, i32)> = {
            let registered = self.registered.lock().expect("registry lock");
            postings
                .iter()
                .map(|(key, _)| *key)
                .filter(|&(term, bucket, shard)| !registered.contains(&(tenant.to_string(), term, bucket, shard)))
                .collect()
        };
        let rows: Vec<_> = fresh
            .iter()
            .filter_map(|&(term, bucket, shard)| {
                // Outlives every posting of the bucket.
                let ttl = ttl_secs((bucket as u64 + 1) * HOUR_NS - 1, batch)?;
                Some((bucket, (tenant, bucket, term, shard, ttl, (bucket as u64 * HOUR_NS / 1000) as i64)))
            })
            .collect();
        self.run_all("bucket_terms", &self.statements.insert_bucket_term, rows, 64).await?;
        let mut registered = self.registered.lock().expect("registry lock");
        if registered.len() > REGISTERED_MAX {
            registered.clear();
        }
        registered.extend(fresh.into_iter().map(|(term, bucket, shard)| (tenant.to_string(), term, bucket, shard)));
        Ok(())
    }
}
