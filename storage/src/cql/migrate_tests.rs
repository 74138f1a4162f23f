use std::sync::Arc;

use scylla::statement::Consistency;
use tracekeeper_model::TraceId;

use super::super::schema::{self, VERSIONS};
use super::super::{shard_of, CqlStore};
use crate::api::{SpanReader, SpanWriter, StorageError};
use crate::check::{Checkable, Horizons};
use crate::schema::{self as logical, IndexTerm};
use crate::testing::{batch, span};

const REPLICATION: &str = "{'class': 'SimpleStrategy', 'replication_factor': 1}";
/// What `testing::batch` leaves of a span's life at `t0`: 7 days' retention, written a
/// day later.
const SPAN_TTL_SECS: i32 = 6 * 86_400;

/// A keyspace an older version left at v006, holding postings one row each in the
/// pre-v006 `postings` table: this version refuses it until `schema apply` has moved
/// them into packed rows and dropped the table, and then serves them, merged with new
/// ones in newest-first order, to search, the checker and retention.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_v007_moves_the_pre_v006_postings_into_packed_rows_and_drops_their_table() {
    let stack = tracekeeper_stack::require().await;
    let session = Arc::new(CqlStore::session(std::slice::from_ref(&stack.cql)).await.unwrap());
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let ks = format!("tk_v006_{}_{}", std::process::id(), nanos % 1_000_000_000_000);
    schema::apply_versions(&session, &ks, REPLICATION, &VERSIONS[..6]).await.unwrap();
    let t0 = 1_700_000_000_000_000_000u64;
    let old = batch("acme", vec![span(1, 1, "api", "GET /", t0), span(2, 1, "api", "GET /", t0 + 2_000_000_000)]);

    // The old version's writes: span rows, then one row per posting, each partition
    // listed in `bucket_terms`; and a posting whose trace's spans are gone.
    let insert_span = format!(
        "INSERT INTO {ks}.spans (tenant, trace_id, start_ns, span_id, span) VALUES (?, ?, ?, ?, ?) USING TTL ?"
    );
    for s in &old.spans {
        let values = ("acme", s.trace_id.0.to_vec(), s.start_ns as i64, logical::row_id(s), logical::encode_span(s));
        let values = (values.0, values.1, values.2, values.3, values.4, SPAN_TTL_SECS);
        session.query_unpaged(insert_span.as_str(), values).await.unwrap();
    }
    let insert = format!(
        "INSERT INTO {ks}.postings (tenant, term_id, bucket, shard, time_ns, trace_id) VALUES (?, ?, ?, ?, ?, ?)"
    );
    let register = format!("INSERT INTO {ks}.bucket_terms (tenant, bucket, term_id, shard) VALUES (?, ?, ?, ?)");
    let gone = span(4, 1, "api", "GET /", t0 + 3_000_000_000);
    let mut legacy = logical::postings_of(&old.spans);
    legacy.extend(logical::postings_of(std::slice::from_ref(&gone)));
    for &(term, time, trace, _) in &legacy {
        let bucket = (time / super::super::HOUR_NS) as i64;
        let (term_id, shard) = (term.id() as i64, shard_of(term, trace));
        session.query_unpaged(register.as_str(), ("acme", bucket, term_id, shard)).await.unwrap();
        let values = ("acme", term_id, bucket, shard, time as i64, trace.0.to_vec());
        session.query_unpaged(insert.as_str(), values).await.unwrap();
    }

    let refused = CqlStore::with_session(Arc::clone(&session), &ks, Consistency::One).await.err().expect("refused");
    let StorageError::NeedsUpgrade(message) = &refused else { panic!("{refused}") };
    assert!(message.contains(schema::LATEST) && message.contains("tracekeeper schema apply"), "{message}");

    schema::apply(&session, &ks, REPLICATION).await.unwrap();
    assert_eq!(schema::applied(&session, &ks).await.unwrap().len(), VERSIONS.len());
    let tables = session
        .query_unpaged("SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?", (ks.as_str(),))
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let tables: Vec<String> = tables.rows::<(String,)>().unwrap().map(|r| r.unwrap().0).collect();
    assert!(tables.contains(&"packed_postings".to_string()) && !tables.contains(&"postings".to_string()), "{tables:?}");
    assert_eq!(schema::apply(&session, &ks, REPLICATION).await.unwrap(), 0, "every version is recorded");
    let ttls = session.query_unpaged(format!("SELECT TTL(packed) FROM {ks}.packed_postings"), ()).await.unwrap();
    let ttls: Vec<Option<i32>> =
        ttls.into_rows_result().unwrap().rows::<(Option<i32>,)>().unwrap().map(|r| r.unwrap().0).collect();
    assert!(!ttls.is_empty(), "the postings were moved");
    assert!(ttls.iter().all(|t| t.is_some_and(|t| t > 0 && t <= SPAN_TTL_SECS)), "they end with their spans: {ttls:?}");

    // The upgraded version connects, and new spans arrive between the old ones.
    let upgraded = CqlStore::with_session(Arc::clone(&session), &ks, Consistency::One).await.unwrap();
    upgraded.write(batch("acme", vec![span(3, 1, "api", "GET /", t0 + 1_000_000_000)])).await.unwrap();
    let service = IndexTerm::Service("api".into());
    let found = upgraded.postings("acme", &service, u64::MAX / 2, 0, None, 10).await.unwrap();
    let ids: Vec<u8> = found.iter().map(|p| p.trace_id.0[0]).collect();
    assert_eq!(ids, vec![2, 3, 1], "moved and new postings, newest first; trace 4's spans are gone, and its posting");
    assert_eq!(found[0].max_duration_ns, Some(u64::MAX), "a moved posting bounds no duration");
    assert_eq!(found[1].max_duration_ns, Some(1_000_000));
    let first = upgraded.postings("acme", &service, u64::MAX / 2, 0, None, 2).await.unwrap();
    let rest = upgraded.postings("acme", &service, u64::MAX / 2, 0, first.last().copied(), 10).await.unwrap();
    assert_eq!(
        first.iter().chain(&rest).map(|p| p.trace_id).collect::<Vec<_>>(),
        found.iter().map(|p| p.trace_id).collect::<Vec<_>>()
    );

    let keep_all = |_: &str| 0;
    let horizons = Horizons { visible_from: &keep_all, gone_before: &keep_all };
    let report = upgraded.check(&horizons, &|_| {}).await.unwrap();
    assert_eq!(report.violations(), 0, "{report:?}");
    assert_eq!(report.tenants["acme"].traces, 3);

    // Retention deletes an hour's partitions.
    let purger = super::super::purge::Purger::new(Arc::clone(&session), &ks).await.unwrap();
    purger
        .purge(
            "acme",
            t0 / super::super::HOUR_NS * super::super::HOUR_NS,
            (t0 / super::super::HOUR_NS + 1) * super::super::HOUR_NS,
        )
        .await
        .unwrap();
    assert!(upgraded.postings("acme", &service, u64::MAX / 2, 0, None, 10).await.unwrap().is_empty());
    for trace in [1u8, 2, 3] {
        assert!(upgraded.trace("acme", TraceId([trace; 16]), 10).await.unwrap().0.is_empty(), "trace {trace} purged");
    }
    session.query_unpaged(format!("DROP KEYSPACE {ks}"), ()).await.unwrap();
}
