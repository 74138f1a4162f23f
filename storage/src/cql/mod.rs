//! The CQL store: ScyllaDB or Apache Cassandra 5, same schema (`schemas/`,
//! `docs/adr/0003-cql-schema.md`).
//!
//! Writes are plain idempotent INSERTs with `USING TTL ? AND TIMESTAMP ?`: the TTL runs
//! from the span's start, the timestamp is the span's start, so a replay rewrites
//! identical cells. Span rows are written and acknowledged before the postings and
//! catalog rows that point at them.

mod catalog;
mod check;
pub mod connect;
mod errors;
pub mod ledger;
pub mod lifecycle;
mod migrate;
mod packed;
mod postings;
mod purge;
mod red;
mod registry;
pub mod replication;
pub mod schema;
pub mod telemetry;
mod traces;

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use scylla::client::session::Session;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::Consistency;
use tracekeeper_model::{Span, SpanKind, TraceId};

pub use self::connect::CqlConnection;
use self::errors::{corrupt, unavailable, write_error};
use crate::api::{Operation, Posting, SpanCursor, SpanReader, SpanWriter, StorageError, WriteBatch};
use crate::schema::{self as logical, IndexTerm, SpanEncoder, TermRef};

pub(crate) const HOUR_NS: u64 = 3_600_000_000_000;
pub(crate) const DAY_NS: u64 = 24 * HOUR_NS;
/// Writes in flight at once per batch.
const WRITE_CONCURRENCY: usize = 64;
/// Span bytes per single-partition batch. Both servers exempt single-partition batches
/// from their batch size limits (50 KiB by default); this stays under them anyway.
const SPAN_BATCH_BYTES: usize = 32 * 1024;

/// Settings for [`CqlStore::connect`].
#[derive(Debug, Clone)]
pub struct CqlConfig {
    pub connection: CqlConnection,
    pub keyspace: String,
    /// Consistency for reads and writes; a write is durable once this many replicas
    /// acknowledged it.
    pub consistency: Consistency,
}

/// How many shard partitions a term's postings are spread over, per hour: the broadest
/// terms (every trace, every trace of a service) would otherwise make hot, large
/// partitions.
pub(crate) fn shards(term: TermRef<'_>) -> u8 {
    match term {
        TermRef::All => 8,
        TermRef::Service(_) => 4,
        _ => 1,
    }
}

fn shard_of(term: TermRef<'_>, trace_id: TraceId) -> i32 {
    i32::from(trace_id.0[15] % shards(term))
}

/// The consistency a statement of the ledger or the lease runs at.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Level {
    /// The session's (`--cql-consistency`, LOCAL_QUORUM by default): plain reads and
    /// writes, and the commit of conditional writes.
    Configured,
    /// The session's serial level (`--cql-serial-consistency`, LOCAL_SERIAL by
    /// default): a read that sees the outcome of every completed Paxos round.
    Serial,
    /// Any one replica: listings where staleness is harmless.
    One,
}

/// Prepares a statement of the ledger or the lease at `level`; its Paxos rounds, if it
/// has any, run at the session's serial consistency.
async fn prepare_lwt(session: &Session, cql: String, level: Level) -> Result<PreparedStatement, StorageError> {
    use scylla::statement::SerialConsistency;
    let profile = session.get_default_execution_profile_handle().to_profile();
    let serial = profile.get_serial_consistency().unwrap_or(SerialConsistency::LocalSerial);
    let mut ps = session.prepare(cql).await.map_err(unavailable)?;
    ps.set_consistency(match level {
        Level::Configured => profile.get_consistency(),
        Level::Serial if serial == SerialConsistency::Serial => Consistency::Serial,
        Level::Serial => Consistency::LocalSerial,
        Level::One => Consistency::One,
    });
    ps.set_serial_consistency(Some(serial));
    Ok(ps)
}

/// `[applied]` of a conditional statement, and the row's other columns as it
/// answered them (the current values when it was not applied).
fn lwt(
    result: scylla::response::query_result::QueryResult,
) -> Result<(bool, Vec<Option<scylla::value::CqlValue>>), StorageError> {
    use scylla::value::CqlValue;
    let rows = result.into_rows_result().map_err(corrupt)?;
    let mut row: scylla::value::Row = rows.first_row().map_err(corrupt)?;
    let applied = match row.columns.first() {
        Some(Some(CqlValue::Boolean(b))) => *b,
        other => return Err(corrupt(format!("LWT answer without [applied]: {other:?}"))),
    };
    row.columns.remove(0);
    Ok((applied, row.columns))
}

struct Statements {
    insert_span: PreparedStatement,
    insert_bucket_term: PreparedStatement,
    insert_packed: PreparedStatement,
    insert_operation: PreparedStatement,
    insert_day: PreparedStatement,
    select_trace: PreparedStatement,
    select_trace_after: PreparedStatement,
    select_span_rows: PreparedStatement,
    select_packed: PreparedStatement,
    select_overflow: PreparedStatement,
    select_days: PreparedStatement,
    select_operations: PreparedStatement,
    select_purged: PreparedStatement,
}

#[derive(Clone)]
pub struct CqlStore {
    session: Arc<Session>,
    keyspace: String,
    consistency: Consistency,
    statements: Arc<Statements>,
    /// Postings partitions already listed in `bucket_terms` by this process, so that
    /// each is listed once rather than with every batch. Forgotten wholesale when it
    /// grows past [`REGISTERED_MAX`]; listing again is harmless.
    registered: Arc<Mutex<HashSet<registry::RegisteredPartition>>>,
    catalog_written: Arc<catalog::Written>,
}

impl CqlStore {
    /// A plaintext, anonymous session to `nodes`.
    pub async fn session(nodes: &[String]) -> Result<Session, StorageError> {
        CqlConnection::plain(nodes).session().await
    }

    /// Connects and prepares every statement. The keyspace must have had the latest
    /// schema applied ([`schema::require_latest`]).
    pub async fn connect(config: &CqlConfig) -> Result<Self, StorageError> {
        let session = config.connection.session().await?;
        Self::with_session(Arc::new(session), &config.keyspace, config.consistency).await
    }

    pub async fn with_session(session: Arc<Session>, ks: &str, consistency: Consistency) -> Result<Self, StorageError> {
        schema::require_latest(&session, ks).await?;
        let prepare = |cql: String| {
            let session = Arc::clone(&session);
            async move {
                let mut ps = session.prepare(cql).await.map_err(unavailable)?;
                ps.set_consistency(consistency);
                // Reads, and writes with a fixed TIMESTAMP, give the same outcome however
                // often they run: the driver may retry them on another replica when a
                // node dies with them in flight.
                ps.set_is_idempotent(true);
                Ok::<_, StorageError>(ps)
            }
        };
        let select_packed = format!(
            "SELECT newest_ns, packed FROM {ks}.packed_postings WHERE tenant = ? AND term_id = ? AND bucket = ? \
             AND shard = ? AND newest_ns <= ? AND newest_ns >= ?"
        );
        let statements = Statements {
            insert_span: prepare(format!(
                "INSERT INTO {ks}.spans (tenant, trace_id, start_ns, span_id, span) VALUES (?, ?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?"
            ))
            .await?,
            insert_bucket_term: prepare(format!(
                "INSERT INTO {ks}.bucket_terms (tenant, bucket, term_id, shard) VALUES (?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?"
            ))
            .await?,
            insert_packed: prepare(format!(
                "INSERT INTO {ks}.packed_postings (tenant, term_id, bucket, shard, newest_ns, group_id, packed) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?"
            ))
            .await?,
            insert_operation: prepare(format!(
                "INSERT INTO {ks}.operations (tenant, day, service, kind, name) VALUES (?, ?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?"
            ))
            .await?,
            insert_day: prepare(format!(
                "INSERT INTO {ks}.catalog_days (tenant, day) VALUES (?, ?) USING TTL ? AND TIMESTAMP ?"
            ))
            .await?,
            select_trace: prepare(format!("SELECT span FROM {ks}.spans WHERE tenant = ? AND trace_id = ? LIMIT ?")).await?,
            select_trace_after: prepare(format!(
                "SELECT span FROM {ks}.spans WHERE tenant = ? AND trace_id = ? AND (start_ns, span_id) > (?, ?) LIMIT ?"
            ))
            .await?,
            select_span_rows: prepare(format!(
                "SELECT span_id FROM {ks}.spans WHERE tenant = ? AND trace_id = ? LIMIT ?"
            ))
            .await?,
            select_packed: {
                let mut ps = prepare(select_packed.clone()).await?;
                ps.set_page_size(postings::PACKED_PAGE_ROWS);
                ps
            },
            select_overflow: {
                let mut ps = prepare(select_packed).await?;
                ps.set_page_size(postings::OVERFLOW_PAGE_ROWS);
                ps
            },
            select_days: prepare(format!("SELECT day FROM {ks}.catalog_days WHERE tenant = ? AND day >= ? AND day <= ?"))
                .await?,
            select_operations: prepare(format!(
                "SELECT service, kind, name FROM {ks}.operations WHERE tenant = ? AND day = ?"
            ))
            .await?,
            select_purged: prepare(format!("SELECT purged_ns FROM {ks}.purges WHERE name = 'data'")).await?,
        };
        Ok(Self {
            session,
            keyspace: ks.to_string(),
            consistency,
            statements: Arc::new(statements),
            registered: Arc::default(),
            catalog_written: Arc::default(),
        })
    }

    /// Whether the data tables were purged whole since this process remembered the
    /// catalog rows it wrote (then it forgets them). Asked only when a batch would skip
    /// catalog rows: one read of one row.
    async fn purged_since_written(&self) -> Result<bool, StorageError> {
        let rows = self
            .session
            .execute_unpaged(&self.statements.select_purged, ())
            .await
            .map_err(unavailable)?
            .into_rows_result()
            .map_err(corrupt)?;
        let purged = rows.maybe_first_row::<(i64,)>().map_err(corrupt)?;
        Ok(purged.is_some_and(|(ns,)| self.catalog_written.purged_at(ns)))
    }

    /// The connection, to share with the ledger and the retention worker.
    pub fn shared_session(&self) -> Arc<Session> {
        Arc::clone(&self.session)
    }

    pub fn keyspace(&self) -> &str {
        &self.keyspace
    }

    /// Writes `rows` with `statement`, counting rows, latency and errors per `table`.
    /// Rows that share a partition key `K` go together in unlogged batches of at most
    /// `per_batch`: one request and one partition update on the server instead of many,
    /// which is where a CQL server spends its CPU. Each batch touches one partition, so
    /// it is as atomic and as cheap as a single write.
    async fn run_all<K, V>(
        &self,
        table: &'static str,
        statement: &PreparedStatement,
        rows: Vec<(K, V)>,
        per_batch: usize,
    ) -> Result<(), StorageError>
    where
        K: Ord,
        V: scylla::serialize::row::SerializeRow + Send + Sync,
    {
        let count = rows.len() as u64;
        let mut partitions: std::collections::BTreeMap<K, Vec<V>> = std::collections::BTreeMap::new();
        for (key, values) in rows {
            partitions.entry(key).or_default().push(values);
        }
        let mut groups: Vec<Vec<V>> = Vec::new();
        for (_, mut values) in partitions {
            while values.len() > per_batch {
                let rest = values.split_off(per_batch);
                groups.push(std::mem::replace(&mut values, rest));
            }
            groups.push(values);
        }
        let started = std::time::Instant::now();
        let written = futures::stream::iter(groups)
            .map(|group| async move {
                if group.len() == 1 {
                    let values = group.into_iter().next().expect("one row");
                    return self.session.execute_unpaged(statement, values).await.map(drop);
                }
                let mut batch = Batch::new(BatchType::Unlogged);
                batch.set_consistency(self.consistency);
                for _ in 0..group.len() {
                    batch.append_statement(statement.clone());
                }
                self.session.batch(&batch, group).await.map(drop)
            })
            .buffer_unordered(WRITE_CONCURRENCY)
            .try_collect::<()>()
            .await;
        metrics::histogram!(crate::cql::telemetry::CQL_WRITE_SECONDS, "table" => table)
            .record(started.elapsed().as_secs_f64());
        match written {
            Ok(()) => {
                metrics::counter!(crate::cql::telemetry::CQL_ROWS_WRITTEN_TOTAL, "table" => table).increment(count);
                Ok(())
            }
            Err(e) => {
                let refused = write_error(e);
                let kind = if refused.is_permanent() { "refused" } else { "transient" };
                metrics::counter!(crate::cql::telemetry::CQL_WRITE_ERRORS_TOTAL, "table" => table, "kind" => kind)
                    .increment(1);
                Err(refused)
            }
        }
    }
}

impl CqlStore {
    /// Days in `[first, last]` with data for `tenant`, newest first.
    async fn days(&self, tenant: &str, first: u64, last: u64) -> Result<Vec<u64>, StorageError> {
        let rows = self
            .session
            .execute_unpaged(&self.statements.select_days, (tenant, first as i64, last.min(i64::MAX as u64) as i64))
            .await
            .map_err(unavailable)?
            .into_rows_result()
            .map_err(corrupt)?;
        rows.rows::<(i64,)>().map_err(corrupt)?.map(|r| r.map(|(d,)| d as u64).map_err(corrupt)).collect()
    }
}

/// Seconds a row written now should live: until its time plus the tenant's retention.
/// `None` when that moment has passed (the row would be expired on arrival).
/// The longest TTL Apache Cassandra and ScyllaDB accept: 20 years. A longer one is
/// refused by the server, and the write would be retried forever.
pub const MAX_TTL_SECS: u64 = 20 * 365 * 24 * 3600;

fn ttl_secs(time_ns: u64, batch: &WriteBatch) -> Option<i32> {
    let expires = time_ns.saturating_add(batch.retention_ns);
    let left = (expires.checked_sub(batch.now_ns)? / 1_000_000_000).min(MAX_TTL_SECS);
    (left > 0).then(|| i32::try_from(left).unwrap_or(i32::MAX))
}

#[async_trait]
impl SpanWriter for CqlStore {
    async fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let tenant = batch.tenant.as_str();
        let mut encoder = SpanEncoder::default();
        // A trace's rows go together in single-partition batches of up to
        // SPAN_BATCH_BYTES: one request and one partition update for many rows.
        let mut batch_of: std::collections::HashMap<TraceId, (u32, usize)> = std::collections::HashMap::new();
        let spans: Vec<_> = batch
            .spans
            .iter()
            .filter_map(|s| {
                let ttl = ttl_secs(s.start_ns, &batch)?;
                let bytes = encoder.encode(s);
                let (number, filled) = batch_of.entry(s.trace_id).or_insert((0, 0));
                if *filled > 0 && *filled + bytes.len() > SPAN_BATCH_BYTES {
                    (*number, *filled) = (*number + 1, 0);
                }
                *filled += bytes.len();
                let row = (
                    tenant,
                    s.trace_id.0.to_vec(),
                    s.start_ns as i64,
                    logical::row_id(s),
                    bytes,
                    ttl,
                    (s.start_ns / 1000) as i64,
                );
                Some(((s.trace_id, *number), row))
            })
            .collect();
        self.run_all("spans", &self.statements.insert_span, spans, usize::MAX).await?;

        let postings: Vec<_> = packed::pack(&logical::postings_of(&batch.spans))
            .into_iter()
            .filter_map(|row| {
                let ttl = ttl_secs(row.newest_ns, &batch)?;
                Some((row.partition, row.insert_values(tenant, ttl)))
            })
            .collect();
        self.register_partitions(&batch, &postings).await?;
        // A packed row may be tens of KiB: one to a request, under the batch size limits.
        self.run_all("packed_postings", &self.statements.insert_packed, postings, 1).await?;

        let (mut operations, days) = catalog::rows_of(&batch);
        let every = operations.clone();
        self.catalog_written.unwritten(tenant, &mut operations);
        if operations.len() < every.len() && self.purged_since_written().await? {
            operations = every;
        }
        let operation_rows: Vec<_> = operations
            .iter()
            .map(|(&(day, svc, kind, name), &(ts, ttl))| (day, (tenant, day, svc, kind, name, ttl, ts)))
            .collect();
        self.run_all("operations", &self.statements.insert_operation, operation_rows, 64).await?;
        let day_rows: Vec<_> = days.iter().map(|(&day, &(ts, ttl))| ((), (tenant, day, ttl, ts))).collect();
        self.run_all("catalog_days", &self.statements.insert_day, day_rows, 64).await?;
        self.catalog_written.record(tenant, &operations);
        Ok(())
    }
}

#[async_trait]
impl SpanReader for CqlStore {
    async fn span_rows(&self, tenant: &str, trace_id: TraceId, max: usize) -> Result<Vec<Vec<u8>>, StorageError> {
        self.span_rows_of(tenant, trace_id, max).await
    }

    async fn trace_page(
        &self,
        tenant: &str,
        trace_id: TraceId,
        after: Option<&SpanCursor>,
        max: usize,
    ) -> Result<Vec<Span>, StorageError> {
        self.spans_after(tenant, trace_id, after, max).await
    }

    async fn postings(
        &self,
        tenant: &str,
        term: &IndexTerm,
        newest_ns: u64,
        oldest_ns: u64,
        after: Option<Posting>,
        max: usize,
    ) -> Result<Vec<Posting>, StorageError> {
        self.read_postings(tenant, term, newest_ns, oldest_ns, after, max).await
    }

    fn catalog_bucket_ns(&self) -> u64 {
        DAY_NS
    }

    async fn services(&self, tenant: &str, since_ns: u64) -> Result<Vec<String>, StorageError> {
        let ops = self.operations(tenant, None, since_ns).await?;
        let services: BTreeSet<String> = ops.into_iter().map(|o| o.service).collect();
        Ok(services.into_iter().collect())
    }

    async fn operations(
        &self,
        tenant: &str,
        service: Option<&str>,
        since_ns: u64,
    ) -> Result<Vec<Operation>, StorageError> {
        let mut out = BTreeSet::new();
        for day in self.days(tenant, since_ns / DAY_NS, u64::MAX).await? {
            let rows = self
                .session
                .execute_unpaged(&self.statements.select_operations, (tenant, day as i64))
                .await
                .map_err(unavailable)?
                .into_rows_result()
                .map_err(corrupt)?;
            for row in rows.rows::<(String, i32, String)>().map_err(corrupt)? {
                let (svc, kind, name) = row.map_err(corrupt)?;
                if service.is_none_or(|want| want == svc) {
                    out.insert(Operation { service: svc, name, kind: SpanKind::from_otlp(kind) });
                }
            }
        }
        Ok(out.into_iter().collect())
    }
}

/// A fresh keyspace with the schema applied, on the test stack's CQL database.
#[cfg(any(test, feature = "testing"))]
pub async fn test_store(cql: &str) -> CqlStore {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    let keyspace = format!("tk_test_{}_{}", std::process::id(), nanos % 1_000_000_000_000);
    let session = Arc::new(CqlStore::session(&[cql.to_string()]).await.expect("connect to CQL"));
    let replication = "{'class': 'SimpleStrategy', 'replication_factor': 1}";
    schema::apply(&session, &keyspace, replication).await.expect("apply the schema");
    CqlStore::with_session(session, &keyspace, Consistency::One).await.expect("prepare statements")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cql_store_passes_the_conformance_suite() {
        let stack = tracekeeper_stack::require().await;
        let store = test_store(&stack.cql).await;
        crate::testing::conformance(&store, &store).await;
        crate::testing::red_conformance(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn schema_apply_is_idempotent() {
        let stack = tracekeeper_stack::require().await;
        let session = CqlStore::session(std::slice::from_ref(&stack.cql)).await.unwrap();
        let replication = "{'class': 'SimpleStrategy', 'replication_factor': 1}";
        let keyspace = format!("tk_schema_{}", std::process::id());
        let first = schema::apply(&session, &keyspace, replication).await.unwrap();
        assert!(first > 0);
        assert_eq!(schema::apply(&session, &keyspace, replication).await.unwrap(), 0, "every version is recorded");
        assert_eq!(schema::applied(&session, &keyspace).await.unwrap().len(), schema::VERSIONS.len());
        session.query_unpaged(format!("DROP KEYSPACE {keyspace}"), ()).await.unwrap();
    }

    #[test]
    fn ttl_runs_from_the_span_start_not_the_write() {
        let batch = |now_ns| WriteBatch { tenant: "t".into(), spans: vec![], retention_ns: 100_000_000_000, now_ns };
        assert_eq!(ttl_secs(1_000_000_000_000, &batch(1_000_000_000_000)), Some(100));
        assert_eq!(ttl_secs(1_000_000_000_000, &batch(1_060_000_000_000)), Some(40), "a replay does not extend life");
        assert_eq!(ttl_secs(1_000_000_000_000, &batch(1_100_000_000_000)), None, "already expired: not written");
    }

    #[test]
    fn ttl_never_exceeds_what_cql_servers_accept() {
        let century = WriteBatch { tenant: "t".into(), spans: vec![], retention_ns: u64::MAX / 2, now_ns: 1_000 };
        assert_eq!(ttl_secs(1_000, &century), Some(MAX_TTL_SECS as i32));
        assert_eq!(ttl_secs(u64::MAX, &century), Some(MAX_TTL_SECS as i32), "no overflow at the end of time");
    }
}
