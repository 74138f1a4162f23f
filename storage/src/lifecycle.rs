//! What the retention worker needs from a store: a lease that makes it a singleton,
//! per-tenant "expired before" watermarks, versioned policies, and whole-bucket
//! expiry. See `docs/adr/0005-retention.md`.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::api::StorageError;

/// The tenant name under which the default policy is versioned.
pub const DEFAULT_POLICY: &str = "*";

/// One version of a tenant's retention policy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PolicyVersion {
    /// A tenant id, or [`DEFAULT_POLICY`].
    pub tenant: String,
    /// 1 for the first policy recorded, then +1 per change.
    pub version: u32,
    pub retention_secs: u64,
    /// When this version was recorded, ns since the epoch.
    pub made_ns: u64,
}

/// What an expiry or a purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expired {
    /// Time buckets removed (whole, or one tenant's share of them).
    pub buckets: u64,
    /// Stored entries removed. A partition deleted whole counts once, whatever it held.
    pub rows: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The lease is held by someone else now: the caller must stop acting.
    #[error("fenced: the retention lease is held by {holder:?} at epoch {epoch}")]
    Fenced { holder: String, epoch: u64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// # Contract
/// - [`acquire`](Self::acquire) grants the lease when it is free, expired at `now_ns`,
///   or already held by `holder`; a new holder gets the previous epoch + 1, a renewal
///   keeps its epoch. It returns `None` while another holder's lease is live. Granting
///   is atomic (compare-and-set): two callers never both get the same epoch.
/// - [`advance_watermark`](Self::advance_watermark) raises a tenant's watermark (never
///   lowers it) only if `holder` still holds the lease at `epoch`; otherwise it fails
///   with [`LifecycleError::Fenced`] and changes nothing.
/// - [`record_policy`](Self::record_policy) appends a version when `retention_secs`
///   differs from the latest version for `tenant`, and returns the latest version.
/// - [`expire_before`](Self::expire_before) deletes, in whole units (buckets or
///   partitions), data that no tenant can see any more: every stored row that starts
///   before `before_ns`. It is idempotent and may be interrupted at any point. It
///   returns what it removed.
/// - [`purge_tenant`](Self::purge_tenant) deletes one tenant's data in the whole
///   buckets that lie in `[from_ns, before_ns)`: span rows, index entries and catalog
///   entries, index entries last, so that no visible entry ever points at a deleted
///   span. It is how a shortened policy frees space before the rows' own expiry. It is
///   idempotent and may be interrupted at any point; it returns what it removed and
///   the start of the first bucket it did not cover whole, where the next purge of the
///   tenant may begin.
/// - [`purge_all`](Self::purge_all) deletes every tenant's spans, index and catalog at
///   once, for test suites that empty the store between cases (served only behind
///   `--test-purge-endpoint`). Policies, watermarks and the lease stay.
#[async_trait]
pub trait Lifecycle: Send + Sync {
    async fn acquire(&self, holder: &str, now_ns: u64, ttl_ns: u64) -> Result<Option<u64>, StorageError>;

    async fn advance_watermark(
        &self,
        holder: &str,
        epoch: u64,
        now_ns: u64,
        tenant: &str,
        expired_before_ns: u64,
    ) -> Result<(), LifecycleError>;

    /// Tenant → "expired before", ns since the epoch.
    async fn watermarks(&self) -> Result<BTreeMap<String, u64>, StorageError>;

    async fn record_policy(
        &self,
        tenant: &str,
        retention_secs: u64,
        now_ns: u64,
    ) -> Result<PolicyVersion, StorageError>;

    /// Every version of every policy, by tenant then version.
    async fn policies(&self) -> Result<Vec<PolicyVersion>, StorageError>;

    /// Tenants that have stored data.
    async fn tenants(&self) -> Result<Vec<String>, StorageError>;

    async fn expire_before(&self, before_ns: u64) -> Result<Expired, StorageError>;

    async fn purge_tenant(&self, tenant: &str, from_ns: u64, before_ns: u64) -> Result<(Expired, u64), StorageError>;

    /// Returns the rows (or, where the backend cannot count them, the tables) removed.
    async fn purge_all(&self) -> Result<u64, StorageError>;
}
