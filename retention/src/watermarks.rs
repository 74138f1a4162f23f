//! The per-tenant "expired before" watermarks as this process last saw them. Query
//! paths hide everything below them, so data of a shortened policy disappears at once
//! on every node, before it is physically deleted.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use tracekeeper_storage::{Lifecycle, StorageError};

#[derive(Debug, Clone, Default)]
pub struct Watermarks(Arc<RwLock<BTreeMap<String, u64>>>);

impl Watermarks {
    /// Start times below this are expired for `tenant` (0: nothing is).
    pub fn expired_before(&self, tenant: &str) -> u64 {
        self.0.read().unwrap_or_else(PoisonError::into_inner).get(tenant).copied().unwrap_or(0)
    }

    /// Replaces the view with what the store holds; a watermark never moves back.
    pub fn update(&self, from_store: BTreeMap<String, u64>) {
        let mut view = self.0.write().unwrap_or_else(PoisonError::into_inner);
        for (tenant, before) in from_store {
            let entry = view.entry(tenant).or_insert(0);
            *entry = (*entry).max(before);
        }
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Watermarks {
    /// Reads the store's watermarks once, so that a process starts with them.
    pub async fn load(&self, store: &dyn Lifecycle) -> Result<(), StorageError> {
        self.update(store.watermarks().await?);
        Ok(())
    }
}
