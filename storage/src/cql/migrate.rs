//! The data step of schema v007 (`schemas/v007.cql`): the postings that keyspaces
//! created before v006 hold one row each in `postings` are moved into packed rows
//! ([`super::packed`]) before v007 drops that table, so that no version after it reads
//! two postings tables.
//!
//! A moved entry keeps its partition (term, hour, shard) and time, and bounds no
//! duration: those rows recorded none. Its row lives as long as the spans of its
//! trace still do (`postings` has no regular column whose TTL could be read); an
//! entry whose trace has no spans left points at nothing and is not moved. The
//! writes are the packed rows' usual idempotent ones, so a step cut short is run
//! again from the start by the next `schema apply`.

use std::collections::HashMap;

use futures::TryStreamExt;
use scylla::client::session::Session;
use tracekeeper_model::TraceId;

use super::packed::{self, Entry, PartitionKey};
use super::{corrupt, unavailable};
use crate::api::StorageError;

/// A legacy partition: tenant, then (term, hour, shard).
type Partition = (String, PartitionKey);

/// Moves every row of `keyspace.postings` into `packed_postings`; returns how many
/// entries were moved. Nothing to do when the table does not exist.
pub(super) async fn move_legacy_postings(session: &Session, keyspace: &str) -> Result<u64, StorageError> {
    let exists = session
        .query_unpaged(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ? AND table_name = 'postings'",
            (keyspace,),
        )
        .await
        .map_err(unavailable)?
        .into_rows_result()
        .map_err(corrupt)?
        .rows_num()
        > 0;
    if !exists {
        return Ok(0);
    }
    let mut mover = Mover::new(session, keyspace).await?;
    let query = format!("SELECT tenant, term_id, bucket, shard, time_ns, trace_id FROM {keyspace}.postings");
    let mut rows = session
        .query_iter(query, ())
        .await
        .map_err(unavailable)?
        .rows_stream::<(String, i64, i64, i32, i64, Vec<u8>)>()
        .map_err(corrupt)?;
    // A partition's rows arrive together, so one is held at a time.
    let mut current: Option<(Partition, Vec<Entry>)> = None;
    while let Some((tenant, term_id, bucket, shard, time_ns, trace)) = rows.try_next().await.map_err(unavailable)? {
        let trace_id = TraceId(trace.as_slice().try_into().map_err(|_| corrupt("posting trace id"))?);
        let entry = Entry { term_id, time_ns: time_ns as u64, trace_id, max_duration_us: u32::MAX };
        let partition = (tenant, (term_id, bucket, shard));
        match &mut current {
            Some((held, entries)) if *held == partition => entries.push(entry),
            _ => {
                if let Some((held, entries)) = current.replace((partition, vec![entry])) {
                    mover.write(held, entries).await?;
                }
            }
        }
    }
    if let Some((held, entries)) = current {
        mover.write(held, entries).await?;
    }
    Ok(mover.moved)
}

struct Mover<'a> {
    session: &'a Session,
    span_ttls: scylla::statement::prepared::PreparedStatement,
    insert: scylla::statement::prepared::PreparedStatement,
    /// The longest TTL (s) of each trace's spans; `None` when it has none left.
    ttls: HashMap<(String, TraceId), Option<i32>>,
    moved: u64,
}

impl<'a> Mover<'a> {
    async fn new(session: &'a Session, ks: &str) -> Result<Self, StorageError> {
        let prepare = |cql: String| async move { session.prepare(cql).await.map_err(unavailable) };
        Ok(Self {
            session,
            span_ttls: prepare(format!("SELECT TTL(span) FROM {ks}.spans WHERE tenant = ? AND trace_id = ?")).await?,
            insert: prepare(format!(
                "INSERT INTO {ks}.packed_postings (tenant, term_id, bucket, shard, newest_ns, group_id, packed) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?"
            ))
            .await?,
            ttls: HashMap::new(),
            moved: 0,
        })
    }

    /// How long the spans of `trace_id` live on, in seconds (0: for ever).
    async fn ttl_of(&mut self, tenant: &str, trace_id: TraceId) -> Result<Option<i32>, StorageError> {
        let key = (tenant.to_string(), trace_id);
        if let Some(ttl) = self.ttls.get(&key) {
            return Ok(*ttl);
        }
        let rows = self
            .session
            .execute_unpaged(&self.span_ttls, (tenant, trace_id.0.to_vec()))
            .await
            .map_err(unavailable)?
            .into_rows_result()
            .map_err(corrupt)?;
        let mut longest = None;
        for row in rows.rows::<(Option<i32>,)>().map_err(corrupt)? {
            // A span without a TTL never expires: neither may its postings.
            let ttl = row.map_err(corrupt)?.0.unwrap_or(i32::MAX);
            longest = longest.max(Some(ttl));
        }
        let ttl = longest.map(|t| if t == i32::MAX { 0 } else { t });
        self.ttls.insert(key, ttl);
        Ok(ttl)
    }

    async fn write(&mut self, (tenant, partition): Partition, entries: Vec<Entry>) -> Result<(), StorageError> {
        let mut kept = Vec::with_capacity(entries.len());
        let mut ttls = HashMap::new();
        for entry in entries {
            if let Some(ttl) = self.ttl_of(&tenant, entry.trace_id).await? {
                ttls.insert(entry.trace_id, ttl);
                kept.push(entry);
            }
        }
        for row in packed::pack_partition(partition, kept) {
            let traces = packed::decode(&row.entries).ok_or_else(|| corrupt("a packed postings row"))?;
            let row_ttls = traces.iter().map(|e| ttls.get(&e.trace_id).copied().unwrap_or(0));
            let ttl = if row_ttls.clone().any(|t| t == 0) { 0 } else { row_ttls.max().unwrap_or(0) };
            self.session.execute_unpaged(&self.insert, row.insert_values(&tenant, ttl)).await.map_err(unavailable)?;
            self.moved += traces.len() as u64;
            if self.moved % 100_000 < traces.len() as u64 {
                tracing::info!(moved = self.moved, "moving pre-v006 postings into packed rows");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "migrate_tests.rs"]
mod tests;
