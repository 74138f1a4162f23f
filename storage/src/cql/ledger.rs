//! [`OwnershipLedger`] on CQL: one row per partition, every change a lightweight
//! transaction (Paxos), so claims and progress are compare-and-set operations.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use scylla::client::session::Session;
use scylla::response::query_result::QueryResult;
use scylla::statement::prepared::PreparedStatement;

use super::{corrupt, lwt, prepare_lwt, unavailable, Level};
use crate::api::StorageError;
use crate::ownership::{LedgerError, OwnershipLedger, PartitionId, PartitionOwner, Progress};

const COLUMNS: &str =
    "consumer_group, topic, partition, member, generation, since_ns, committed_offset, end_offset, last_write_ns, tenant_spans";

type OwnerRow = (
    String,
    String,
    i32,
    Option<String>,
    Option<i32>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<BTreeMap<String, i64>>,
);

pub struct CqlLedger {
    session: Arc<Session>,
    insert_new: PreparedStatement,
    take_over: PreparedStatement,
    record: PreparedStatement,
    select_one: PreparedStatement,
    select_all: PreparedStatement,
}

impl CqlLedger {
    /// Prepares the ledger's statements in keyspace `ks` (schema v002 applied).
    pub async fn new(session: Arc<Session>, ks: &str) -> Result<Self, StorageError> {
        let prepare = |cql: String, level: Level| prepare_lwt(&session, cql, level);
        let key = "consumer_group = ? AND topic = ? AND partition = ?";
        Ok(Self {
            insert_new: prepare(
                format!(
                    "INSERT INTO {ks}.partition_owners (consumer_group, topic, partition, member, generation, since_ns, \
                     committed_offset, end_offset, last_write_ns) VALUES (?, ?, ?, ?, ?, ?, 0, 0, 0) IF NOT EXISTS"
                ),
                Level::Configured,
            )
            .await?,
            take_over: prepare(
                format!(
                    "UPDATE {ks}.partition_owners SET member = ?, generation = ?, since_ns = ? WHERE {key} \
                     IF generation < ?"
                ),
                Level::Configured,
            )
            .await?,
            record: prepare(
                format!(
                    "UPDATE {ks}.partition_owners SET committed_offset = ?, end_offset = ?, last_write_ns = ?, \
                     tenant_spans = ? WHERE {key} IF member = ? AND generation = ?"
                ),
                Level::Configured,
            )
            .await?,
            // SERIAL: sees the outcome of every completed (and in-progress) Paxos round.
            select_one: prepare(format!("SELECT {COLUMNS} FROM {ks}.partition_owners WHERE {key}"), Level::Serial)
                .await?,
            select_all: prepare(format!("SELECT {COLUMNS} FROM {ks}.partition_owners"), Level::One).await?,
            session,
        })
    }

    async fn read(&self, id: &PartitionId) -> Result<Option<PartitionOwner>, StorageError> {
        let result = self
            .session
            .execute_unpaged(&self.select_one, (&id.group, &id.topic, id.partition))
            .await
            .map_err(unavailable)?;
        Ok(parse_owners(result)?.pop())
    }
}

/// Whether a conditional statement was applied.
fn applied(result: QueryResult) -> Result<bool, StorageError> {
    Ok(lwt(result)?.0)
}

fn parse_owners(result: QueryResult) -> Result<Vec<PartitionOwner>, StorageError> {
    let rows = result.into_rows_result().map_err(corrupt)?;
    rows.rows::<OwnerRow>()
        .map_err(corrupt)?
        .map(|row| {
            let (group, topic, partition, member, generation, since, committed, end, last_write, spans) =
                row.map_err(corrupt)?;
            Ok(PartitionOwner {
                id: PartitionId { group, topic, partition },
                member: member.unwrap_or_default(),
                generation: generation.unwrap_or(-1),
                since_ns: since.unwrap_or(0) as u64,
                progress: Progress {
                    committed_offset: committed.unwrap_or(0),
                    end_offset: end.unwrap_or(0),
                    last_write_ns: last_write.unwrap_or(0) as u64,
                    tenant_spans: spans.unwrap_or_default(),
                },
            })
        })
        .collect()
}

#[async_trait]
impl OwnershipLedger for CqlLedger {
    async fn claim(
        &self,
        id: &PartitionId,
        member: &str,
        generation: i32,
        now_ns: u64,
    ) -> Result<PartitionOwner, LedgerError> {
        let now = now_ns as i64;
        // Two rounds cover the race where another member inserts the first row between
        // our update (no row yet) and our insert.
        for _ in 0..2 {
            let key = (&id.group, &id.topic, id.partition);
            let took_over = self
                .session
                .execute_unpaged(&self.take_over, (member, generation, now, key.0, key.1, key.2, generation))
                .await
                .map_err(unavailable)?;
            if !applied(took_over)? {
                let inserted = self
                    .session
                    .execute_unpaged(&self.insert_new, (key.0, key.1, key.2, member, generation, now))
                    .await
                    .map_err(unavailable)?;
                if !applied(inserted)? {
                    match self.read(id).await? {
                        Some(row) if row.member == member && row.generation == generation => return Ok(row),
                        Some(row) if row.generation >= generation => {
                            return Err(LedgerError::Fenced { member: row.member, generation: row.generation })
                        }
                        _ => continue,
                    }
                }
            }
            return self.read(id).await?.ok_or_else(|| corrupt("ledger row vanished after a claim").into());
        }
        Err(StorageError::Unavailable(format!("claim of partition {} kept racing", id.partition)).into())
    }

    async fn record(
        &self,
        id: &PartitionId,
        member: &str,
        generation: i32,
        progress: &Progress,
    ) -> Result<(), LedgerError> {
        let values = (
            progress.committed_offset,
            progress.end_offset,
            progress.last_write_ns as i64,
            &progress.tenant_spans,
            &id.group,
            &id.topic,
            id.partition,
            member,
            generation,
        );
        let result = self.session.execute_unpaged(&self.record, values).await.map_err(unavailable)?;
        if applied(result)? {
            return Ok(());
        }
        let holder = self.read(id).await?;
        Err(LedgerError::Fenced {
            member: holder.as_ref().map(|h| h.member.clone()).unwrap_or_default(),
            generation: holder.map_or(-1, |h| h.generation),
        })
    }

    async fn owners(&self) -> Result<Vec<PartitionOwner>, StorageError> {
        let result = self.session.execute_unpaged(&self.select_all, ()).await.map_err(unavailable)?;
        let mut owners = parse_owners(result)?;
        owners.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(owners)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(partition: i32) -> PartitionId {
        PartitionId { group: "g".into(), topic: "t".into(), partition }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn generations_only_move_forward_and_stale_owners_are_fenced() {
        let stack = tracekeeper_stack::require().await;
        let store = super::super::test_store(&stack.cql).await;
        let ledger = CqlLedger::new(store.shared_session(), store.keyspace()).await.unwrap();

        let first = ledger.claim(&id(0), "a", 3, 100).await.unwrap();
        assert_eq!((first.member.as_str(), first.generation, first.since_ns), ("a", 3, 100));
        assert_eq!(ledger.claim(&id(0), "a", 3, 150).await.unwrap().member, "a", "a repeated claim succeeds");
        let progress = Progress {
            committed_offset: 42,
            end_offset: 50,
            last_write_ns: 200,
            tenant_spans: BTreeMap::from([("acme".to_string(), 7)]),
        };
        ledger.record(&id(0), "a", 3, &progress).await.unwrap();

        // b is assigned the partition in a later generation and inherits a's progress.
        let taken = ledger.claim(&id(0), "b", 5, 300).await.unwrap();
        assert_eq!((taken.member.as_str(), taken.generation), ("b", 5));
        assert_eq!(taken.progress, progress);

        // a, resumed with its old generation, is refused everywhere.
        let later = Progress { committed_offset: 60, ..progress.clone() };
        match ledger.record(&id(0), "a", 3, &later).await {
            Err(LedgerError::Fenced { member, generation }) => assert_eq!((member.as_str(), generation), ("b", 5)),
            other => panic!("a stale record must be fenced, got {other:?}"),
        }
        assert!(matches!(ledger.claim(&id(0), "a", 4, 400).await, Err(LedgerError::Fenced { .. })));
        assert!(matches!(ledger.claim(&id(0), "c", 5, 400).await, Err(LedgerError::Fenced { .. })), "same generation");

        ledger.claim(&id(1), "a", 5, 500).await.unwrap();
        let owners = ledger.owners().await.unwrap();
        assert_eq!(
            owners.iter().map(|o| (o.id.partition, o.member.as_str())).collect::<Vec<_>>(),
            [(0, "b"), (1, "a")]
        );
        assert_eq!(owners[0].progress, progress, "the refused record changed nothing");
    }
}
