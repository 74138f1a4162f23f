//! [`Checkable`] on CQL: full paged scans of `spans`, then `packed_postings`.

use std::collections::HashSet;

use async_trait::async_trait;
use futures::TryStreamExt;
use tracekeeper_model::TraceId;

use super::{corrupt, unavailable, CqlStore};
use crate::api::StorageError;
use crate::check::{CheckReport, Checkable, Horizons, Scan};

fn trace_id(bytes: &[u8]) -> Result<TraceId, StorageError> {
    Ok(TraceId(bytes.try_into().map_err(|_| corrupt("trace id of the wrong length"))?))
}

#[async_trait]
impl Checkable for CqlStore {
    async fn check(
        &self,
        horizons: &Horizons<'_>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<CheckReport, StorageError> {
        let ks = &self.keyspace;
        let mut scan = Scan::new(horizons, progress);
        // Rows of one partition arrive together: duplicates are found per partition.
        let mut partition: Option<(String, Vec<u8>)> = None;
        let mut span_ids: HashSet<Vec<u8>> = HashSet::new();
        let query = format!("SELECT tenant, trace_id, start_ns, span_id FROM {ks}.spans");
        let mut stream = self
            .session
            .query_iter(query, ())
            .await
            .map_err(unavailable)?
            .rows_stream::<(String, Vec<u8>, i64, Vec<u8>)>()
            .map_err(corrupt)?;
        while let Some((tenant, trace, start_ns, span_id)) = stream.try_next().await.map_err(unavailable)? {
            if partition.as_ref().is_none_or(|(t, id)| *t != tenant || *id != trace) {
                span_ids.clear();
                partition = Some((tenant.clone(), trace.clone()));
            }
            let duplicate = !span_ids.insert(span_id);
            scan.span(&tenant, trace_id(&trace)?, start_ns as u64, duplicate);
        }
        let query = format!("SELECT tenant, packed FROM {ks}.packed_postings");
        let mut stream = self
            .session
            .query_iter(query, ())
            .await
            .map_err(unavailable)?
            .rows_stream::<(String, Vec<u8>)>()
            .map_err(corrupt)?;
        while let Some((tenant, bytes)) = stream.try_next().await.map_err(unavailable)? {
            for entry in super::packed::decode(&bytes).ok_or_else(|| corrupt("a packed postings row"))? {
                scan.posting(&tenant, entry.time_ns, entry.trace_id);
            }
        }
        Ok(scan.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_checker_finds_what_must_not_be() {
        let stack = tracekeeper_stack::require().await;
        let store = crate::cql::test_store(&stack.cql).await;
        crate::testing::checker_conformance(&store, &store).await;

        // A posting whose trace has no span.
        let entry = super::super::packed::Entry {
            term_id: 1,
            time_ns: 1_700_000_000_000_000_000,
            trace_id: TraceId([9; 16]),
            max_duration_us: 1,
        };
        let [row] = super::super::packed::pack_partition((1, 2, 0), vec![entry]).try_into().unwrap();
        let insert = format!(
            "INSERT INTO {}.packed_postings (tenant, term_id, bucket, shard, newest_ns, group_id, packed) \
             VALUES ('t', 1, 2, 0, ?, ?, ?)",
            store.keyspace
        );
        store.session.query_unpaged(insert, (row.newest_ns as i64, row.group_id, row.entries)).await.unwrap();
        let keep_all = |_: &str| 0;
        let horizons = Horizons { visible_from: &keep_all, gone_before: &keep_all };
        assert_eq!(store.check(&horizons, &|_| {}).await.unwrap().dangling_postings, 1);
    }
}
