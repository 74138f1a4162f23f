//! The retention policies in force in this process. The retention worker records every
//! policy, versioned, in the store; indexers and query nodes read the latest version of
//! each tenant's from there (every few seconds), so that a tenant's rows get that
//! tenant's TTL and its data stays visible for exactly its window on every node, and a
//! change reaches them all without a restart. Until the store holds any policy (no
//! worker has run yet) the process's own flags stand.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tracekeeper_storage::lifecycle::{PolicyVersion, DEFAULT_POLICY};
use tracekeeper_storage::{Lifecycle, StorageError};

use crate::RetentionPolicies;

/// Read on every span written and every query, replaced every few seconds at most:
/// reads take no lock.
#[derive(Debug, Clone)]
pub struct Policies(Arc<arc_swap::ArcSwap<RetentionPolicies>>);

impl From<RetentionPolicies> for Policies {
    fn from(policies: RetentionPolicies) -> Self {
        Self::from(Arc::new(policies))
    }
}

impl From<Arc<RetentionPolicies>> for Policies {
    fn from(policies: Arc<RetentionPolicies>) -> Self {
        Self(Arc::new(arc_swap::ArcSwap::new(policies)))
    }
}

impl Policies {
    /// The policies as this process last saw them.
    pub fn current(&self) -> Arc<RetentionPolicies> {
        self.0.load_full()
    }

    pub fn replace(&self, policies: RetentionPolicies) {
        self.0.store(Arc::new(policies));
    }

    /// The latest version of each tenant's policy, or `None` when there is none.
    pub fn from_versions(versions: &[PolicyVersion]) -> Option<RetentionPolicies> {
        let mut latest: BTreeMap<&str, &PolicyVersion> = BTreeMap::new();
        for v in versions {
            let entry = latest.entry(v.tenant.as_str()).or_insert(v);
            if v.version > entry.version {
                *entry = v;
            }
        }
        let default = latest.remove(DEFAULT_POLICY)?;
        Some(RetentionPolicies {
            default: Duration::from_secs(default.retention_secs),
            per_tenant: latest
                .into_iter()
                .map(|(tenant, v)| (tenant.to_string(), Duration::from_secs(v.retention_secs)))
                .collect(),
        })
    }

    /// Takes the store's policies, if it holds any.
    pub async fn load(&self, store: &dyn Lifecycle) -> Result<(), StorageError> {
        if let Some(policies) = Self::from_versions(&store.policies().await?) {
            if *self.current() != policies {
                tracing::info!(default = ?policies.default, tenants = policies.per_tenant.len(), "retention policies changed");
                self.replace(policies);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(tenant: &str, version: u32, secs: u64) -> PolicyVersion {
        PolicyVersion { tenant: tenant.into(), version, retention_secs: secs, made_ns: u64::from(version) }
    }

    #[test]
    fn the_latest_version_of_each_tenant_wins() {
        let versions = [
            version("*", 1, 100),
            version("*", 2, 200),
            version("acme", 2, 50),
            version("acme", 1, 999),
            version("beta", 1, 900),
        ];
        let policies = Policies::from_versions(&versions).unwrap();
        assert_eq!(policies.default, Duration::from_secs(200));
        assert_eq!(policies.retention_for("acme"), Duration::from_secs(50));
        assert_eq!(policies.retention_for("beta"), Duration::from_secs(900));
        assert_eq!(policies.retention_for("other"), Duration::from_secs(200));
        assert!(Policies::from_versions(&[version("acme", 1, 5)]).is_none(), "no default recorded: keep the flags");
    }
}
