//! `GET /api/status`: who indexes which partition, how far behind it is, and how many
//! spans each tenant has had indexed. Built from the ownership ledger, so every indexer
//! and every query node gives the same answer; an indexer adds its live view.

use std::collections::BTreeMap;

use serde::Serialize;
use tracekeeper_storage::{OwnershipLedger, StorageError};

use crate::group::GroupView;

#[derive(Debug, Serialize)]
pub struct Status {
    /// Present on an indexer: this member (of its first topic) and what it holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<MemberStatus>,
    /// Present on an indexer: one member per topic it consumes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberStatus>,
    pub partitions: Vec<PartitionStatus>,
    /// Spans indexed per tenant, counted exactly once across replays and owners.
    pub tenants: BTreeMap<String, TenantStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberStatus {
    pub topic: String,
    pub member_id: String,
    /// Partition → the group generation it was assigned in.
    pub assigned: BTreeMap<i32, i32>,
}

#[derive(Debug, Serialize)]
pub struct PartitionStatus {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub owner: String,
    pub generation: i32,
    pub owner_since_ns: u64,
    pub committed_offset: i64,
    pub end_offset: i64,
    pub lag: i64,
    pub last_write_ns: u64,
    /// Milliseconds since the last write; grows while a partition is stuck.
    pub last_write_age_ms: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct TenantStatus {
    pub spans_indexed: i64,
}

/// The status as of `now_ns`. `members` (this process's, one per topic) add their live
/// offsets, which are fresher than the ledger's.
pub async fn snapshot(
    ledger: &dyn OwnershipLedger,
    members: &[GroupView],
    now_ns: u64,
) -> Result<Status, StorageError> {
    let owners = ledger.owners().await?;
    let mut tenants: BTreeMap<String, TenantStatus> = BTreeMap::new();
    let mut partitions = Vec::with_capacity(owners.len());
    for owner in owners {
        for (tenant, spans) in &owner.progress.tenant_spans {
            tenants.entry(tenant.clone()).or_default().spans_indexed += spans;
        }
        let mut committed = owner.progress.committed_offset;
        let mut end = owner.progress.end_offset;
        let live = members.iter().find(|m| m.topic() == owner.id.topic).and_then(|m| m.position(owner.id.partition));
        if let Some((live_committed, live_end)) = live {
            committed = committed.max(live_committed);
            end = end.max(live_end);
        }
        partitions.push(PartitionStatus {
            group: owner.id.group,
            topic: owner.id.topic,
            partition: owner.id.partition,
            owner: owner.member,
            generation: owner.generation,
            owner_since_ns: owner.since_ns,
            committed_offset: committed,
            end_offset: end,
            lag: (end - committed).max(0),
            last_write_ns: owner.progress.last_write_ns,
            last_write_age_ms: now_ns.saturating_sub(owner.progress.last_write_ns) / 1_000_000,
        });
    }
    let members: Vec<MemberStatus> =
        members.iter().map(|m| MemberStatus { topic: m.topic(), member_id: m.member(), assigned: m.owned() }).collect();
    let member = members.first().cloned();
    Ok(Status { member, members, tenants, partitions })
}
