//! The partition ownership ledger: which indexer owns which Kafka partition, under
//! which consumer-group generation, and how far it has indexed.
//!
//! Kafka already refuses offset commits from a member of an older generation; the
//! ledger carries the same fencing token to the store, so that a stale owner (paused,
//! partitioned away) is refused there too. See `docs/adr/0004-fencing.md`.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::api::StorageError;

/// One Kafka partition as a consumer group sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PartitionId {
    pub group: String,
    pub topic: String,
    pub partition: i32,
}

/// How far a partition has been indexed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Every message below this offset has all its rows stored.
    pub committed_offset: i64,
    /// The partition's end offset (high watermark) when the progress was recorded.
    pub end_offset: i64,
    /// When the progress was recorded, ns since the epoch.
    pub last_write_ns: u64,
    /// Spans stored per tenant from the messages below `committed_offset`.
    pub tenant_spans: BTreeMap<String, i64>,
}

/// A ledger row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOwner {
    pub id: PartitionId,
    pub member: String,
    /// The consumer-group generation under which `member` was assigned the partition.
    pub generation: i32,
    pub since_ns: u64,
    pub progress: Progress,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Another member holds the partition at a generation at least as new.
    #[error("fenced: the partition is owned by {member:?} at generation {generation}")]
    Fenced { member: String, generation: i32 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The ownership ledger.
///
/// # Contract
/// - [`claim`](Self::claim) succeeds when the partition has no owner yet, when its
///   owner's generation is older than `generation`, or when `member` already holds it
///   at `generation` (a repeated claim). Otherwise it fails with
///   [`LedgerError::Fenced`]. The generation of a row therefore only moves forward.
///   A successful claim keeps the previous owner's progress and returns the row.
/// - [`record`](Self::record) replaces the progress only while the row still names
///   `member` at `generation`, atomically with that check (a compare-and-set);
///   otherwise it fails with [`LedgerError::Fenced`] and changes nothing.
/// - [`owners`](Self::owners) lists every row; it may lag a concurrent claim.
#[async_trait]
pub trait OwnershipLedger: Send + Sync {
    async fn claim(
        &self,
        id: &PartitionId,
        member: &str,
        generation: i32,
        now_ns: u64,
    ) -> Result<PartitionOwner, LedgerError>;

    async fn record(
        &self,
        id: &PartitionId,
        member: &str,
        generation: i32,
        progress: &Progress,
    ) -> Result<(), LedgerError>;

    async fn owners(&self) -> Result<Vec<PartitionOwner>, StorageError>;
}
