//! How many queries each tenant may run at once on this node. One tenant's heavy
//! queries then wait their turn instead of taking every worker; the others are not
//! slowed. Beyond its share a tenant gets 429 with Retry-After.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::QueryError;

/// Default most queries one tenant runs at once on one node (`--max-queries-per-tenant`).
pub const DEFAULT_MAX_QUERIES_PER_TENANT: usize = 32;
/// Idle entries are forgotten beyond this many tenants.
const MAX_REMEMBERED: usize = 10_000;

#[derive(Debug)]
pub struct TenantGate {
    max: usize,
    running: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Default for TenantGate {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_QUERIES_PER_TENANT)
    }
}

/// A tenant's name, holding one of its query slots until dropped.
#[derive(Debug)]
pub struct TenantSlot {
    name: String,
    _slot: OwnedSemaphorePermit,
}

impl Deref for TenantSlot {
    type Target = String;
    fn deref(&self) -> &String {
        &self.name
    }
}

impl TenantGate {
    pub fn new(max: usize) -> Self {
        Self { max: max.max(1), running: Mutex::default() }
    }

    pub fn enter(&self, tenant: String) -> Result<TenantSlot, QueryError> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if running.len() > MAX_REMEMBERED {
            let max = self.max;
            running.retain(|_, s| s.available_permits() < max);
        }
        let semaphore = running.entry(tenant.clone()).or_insert_with(|| Arc::new(Semaphore::new(self.max))).clone();
        drop(running);
        match semaphore.try_acquire_owned() {
            Ok(slot) => Ok(TenantSlot { name: tenant, _slot: slot }),
            Err(_) => {
                metrics::counter!(crate::telemetry::QUERIES_REFUSED_TOTAL, "reason" => "tenant_busy").increment(1);
                Err(QueryError::Busy(format!(
                    "tenant {tenant:?} already runs {} queries at once on this node (--max-queries-per-tenant); retry shortly",
                    self.max
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tenant_has_its_own_share() {
        let gate = TenantGate::new(2);
        let a1 = gate.enter("a".into()).unwrap();
        let _a2 = gate.enter("a".into()).unwrap();
        let refused = gate.enter("a".into()).unwrap_err();
        assert!(refused.to_string().contains("already runs 2 queries"), "{refused}");
        assert_eq!(&**gate.enter("b".into()).unwrap(), "b", "another tenant is not held up");
        drop(a1);
        assert!(gate.enter("a".into()).is_ok(), "a slot comes back when a query ends");
    }

    #[test]
    fn busy_is_429_with_retry_after_in_every_api_shape() {
        let busy = || QueryError::Busy("busy".into());
        for response in [busy().into_jaeger_response(), busy().into_v3_response(), busy().into_text_response()] {
            assert_eq!(response.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "1");
        }
    }
}
