//! [`Checkable`] on the embedded store: two passes over every bucket, spans first,
//! then postings.

use std::collections::HashSet;

use async_trait::async_trait;
use tracekeeper_model::TraceId;

use super::{io, keys, EmbeddedStore};
use crate::api::StorageError;
use crate::check::{CheckReport, Checkable, Horizons, Scan};

#[async_trait]
impl Checkable for EmbeddedStore {
    async fn check(
        &self,
        horizons: &Horizons<'_>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<CheckReport, StorageError> {
        let buckets = self.inner.buckets_oldest_first();
        let mut scan = Scan::new(horizons, progress);
        // The same span id twice in a trace, in one bucket or two, is a duplicate.
        let mut seen: HashSet<(String, TraceId, Vec<u8>)> = HashSet::new();
        for (_, bucket) in &buckets {
            for entry in bucket.prefix([keys::SPAN]) {
                let (key, value) = entry?;
                let (tenant, trace, rest) = keys::split_owner(&key, 16).ok_or_else(|| io("span key"))?;
                let trace = TraceId(trace.try_into().map_err(|_| io("span key"))?);
                let span_id = keys::row_id_of(rest).ok_or_else(|| io("span key"))?.to_vec();
                let start_ns = crate::schema::decode_span(&value)?.start_ns;
                let duplicate = !seen.insert((tenant.to_string(), trace, span_id));
                scan.span(tenant, trace, start_ns, duplicate);
            }
        }
        drop(seen);
        for (_, bucket) in &buckets {
            for entry in bucket.prefix([keys::POSTING]) {
                let (key, _) = entry?;
                let (tenant, _, _) = keys::split_owner(&key, 8).ok_or_else(|| io("posting key"))?;
                let (time_ns, trace, _) =
                    keys::parse_posting(&key, keys::term_prefix_len(tenant)).ok_or_else(|| io("posting key"))?;
                scan.posting(tenant, time_ns, trace);
            }
        }
        Ok(scan.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::EmbeddedConfig;
    use crate::schema::TermRef;

    #[tokio::test]
    async fn the_checker_finds_what_must_not_be() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap();
        crate::testing::checker_conformance(&store, &store).await;

        // An index entry pointing at a trace that was never stored.
        let time = 1_700_000_000_000_000_000u64;
        let bucket = store.inner.bucket(time / store.inner.bucket_width_ns).unwrap();
        let prefix = keys::term_prefix("t", TermRef::All);
        let key = keys::posting_key(&prefix, time, TraceId([9; 16]), Some(1000));
        bucket.newest().rows.insert(key, []).unwrap();
        let keep_all = |_: &str| 0;
        let horizons = Horizons { visible_from: &keep_all, gone_before: &keep_all };
        assert_eq!(store.check(&horizons, &|_| {}).await.unwrap().dangling_postings, 1);
        let hidden = |_: &str| time + 1;
        let horizons = Horizons { visible_from: &hidden, gone_before: &keep_all };
        assert_eq!(
            store.check(&horizons, &|_| {}).await.unwrap().dangling_postings,
            0,
            "below the horizon it is hidden"
        );
    }
}
