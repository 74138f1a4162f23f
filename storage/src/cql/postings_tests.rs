use std::sync::Arc;

use scylla::statement::Consistency;
use tracekeeper_model::TraceId;

use super::super::{shard_of, CqlStore};
use crate::api::{SpanReader, SpanWriter};
use crate::check::{Checkable, Horizons};
use crate::schema::{self as logical, IndexTerm};
use crate::testing::{batch, span};

/// A keyspace that was written before v006 (one `postings` row per posting) and is
/// then served by this version: its postings stay searchable, merged with new packed
/// ones in newest-first order, and the checker and retention see both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postings_written_before_v006_stay_searchable() {
    let stack = tracekeeper_stack::require().await;
    let store = crate::cql::test_store(&stack.cql).await;
    let ks = store.keyspace().to_string();
    let t0 = 1_700_000_000_000_000_000u64;
    let old = batch("acme", vec![span(1, 1, "api", "GET /", t0), span(2, 1, "api", "GET /", t0 + 2_000_000_000)]);

    // The old version's writes: span rows, then one legacy row per posting.
    store.write(old.clone()).await.unwrap();
    store.session.query_unpaged(format!("TRUNCATE {ks}.packed_postings"), ()).await.unwrap();
    let insert = format!(
        "INSERT INTO {ks}.postings (tenant, term_id, bucket, shard, time_ns, trace_id) VALUES (?, ?, ?, ?, ?, ?)"
    );
    let register = format!("INSERT INTO {ks}.bucket_terms (tenant, bucket, term_id, shard) VALUES (?, ?, ?, ?)");
    for (term, time, trace, _) in logical::postings_of(&old.spans) {
        let bucket = (time / super::HOUR_NS) as i64;
        let (term_id, shard) = (term.id() as i64, shard_of(term, trace));
        store.session.query_unpaged(register.as_str(), ("acme", bucket, term_id, shard)).await.unwrap();
        let values = ("acme", term_id, bucket, shard, time as i64, trace.0.to_vec());
        store.session.query_unpaged(insert.as_str(), values).await.unwrap();
    }
    let before = store.postings("acme", &IndexTerm::Service("api".into()), u64::MAX / 2, 0, None, 10).await.unwrap();
    assert!(before.is_empty(), "a store connected before the legacy rows existed reads packed rows only");

    // The upgraded process connects, and new spans arrive between the old ones.
    let upgraded = CqlStore::with_session(Arc::clone(&store.session), &ks, Consistency::One).await.unwrap();
    upgraded.write(batch("acme", vec![span(3, 1, "api", "GET /", t0 + 1_000_000_000)])).await.unwrap();
    let service = IndexTerm::Service("api".into());
    let found = upgraded.postings("acme", &service, u64::MAX / 2, 0, None, 10).await.unwrap();
    let ids: Vec<u8> = found.iter().map(|p| p.trace_id.0[0]).collect();
    assert_eq!(ids, vec![2, 3, 1], "legacy and packed postings, newest first");
    assert_eq!(found[0].max_duration_ns, None, "a legacy posting has no duration bound");
    assert_eq!(found[1].max_duration_ns, Some(1_000_000));
    // Paging across both tables.
    let first = upgraded.postings("acme", &service, u64::MAX / 2, 0, None, 2).await.unwrap();
    let rest = upgraded.postings("acme", &service, u64::MAX / 2, 0, first.last().copied(), 10).await.unwrap();
    assert_eq!(
        first.iter().chain(&rest).map(|p| p.trace_id).collect::<Vec<_>>(),
        found.iter().map(|p| p.trace_id).collect::<Vec<_>>()
    );

    let keep_all = |_: &str| 0;
    let horizons = Horizons { visible_from: &keep_all, gone_before: &keep_all };
    let report = upgraded.check(&horizons, &|_| {}).await.unwrap();
    assert_eq!(report.dangling_postings, 0);
    let counts = &report.tenants["acme"];
    assert_eq!(counts.traces, 3);
    let legacy_rows = logical::postings_of(&old.spans).len() as u64;
    assert!(counts.postings > legacy_rows, "{} postings counted: legacy ({legacy_rows}) and packed", counts.postings);

    // Retention deletes an hour's partitions in both tables.
    let purger = super::super::purge::Purger::new(Arc::clone(&store.session), &ks).await.unwrap();
    purger
        .purge("acme", t0 / super::HOUR_NS * super::HOUR_NS, (t0 / super::HOUR_NS + 1) * super::HOUR_NS)
        .await
        .unwrap();
    assert!(upgraded.postings("acme", &service, u64::MAX / 2, 0, None, 10).await.unwrap().is_empty());
    for trace in [1u8, 2, 3] {
        assert!(upgraded.trace("acme", TraceId([trace; 16]), 10).await.unwrap().0.is_empty(), "trace {trace} purged");
    }
}
