//! [`Lifecycle`] on the embedded store. The lease, watermarks, policy versions and the
//! tenant registry live in the `meta` keyspace; a compare-and-set is a read and a write
//! under one lock, which is enough in a single process. Expiry deletes whole bucket
//! keyspaces: one `delete_keyspace` per bucket, atomic, with no per-row tombstones.
//!
//! A bucket is shared by every tenant. When a tenant whose policy was shortened is the
//! only one in a bucket (any single-tenant store), the bucket is dropped whole. Else
//! its share (three key ranges) is deleted key by key, spans first and index entries
//! last: tombstones, which compaction then collects, but only when an operator
//! shortens a policy; ordinary expiry stays whole-bucket.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::keys;
use super::parts::Bucket;
use super::{blocking, io, EmbeddedStore, Inner};
use crate::api::StorageError;
use crate::lifecycle::{Expired, Lifecycle, LifecycleError, PolicyVersion};

const LEASE_KEY: &[u8] = b"lease";
const WATERMARK: &[u8] = b"w|";
const POLICY: &[u8] = b"p|";
pub(super) const TENANT: &[u8] = b"t|";

fn be_u64(bytes: &[u8]) -> Result<u64, StorageError> {
    bytes.try_into().map(u64::from_be_bytes).map_err(|_| StorageError::Corrupt("meta value".into()))
}

struct Lease {
    epoch: u64,
    expires_ns: u64,
    holder: String,
}

impl Lease {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.holder.len());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.expires_ns.to_be_bytes());
        out.extend_from_slice(self.holder.as_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, StorageError> {
        if bytes.len() < 16 {
            return Err(StorageError::Corrupt("retention lease".into()));
        }
        Ok(Self {
            epoch: be_u64(&bytes[..8])?,
            expires_ns: be_u64(&bytes[8..16])?,
            holder: String::from_utf8_lossy(&bytes[16..]).into_owned(),
        })
    }
}

fn policy_prefix(tenant: &str) -> Vec<u8> {
    let mut key = POLICY.to_vec();
    key.extend_from_slice(tenant.as_bytes());
    key.push(0);
    key
}

impl Inner {
    fn lease(&self) -> Result<Option<Lease>, StorageError> {
        self.meta.get(LEASE_KEY).map_err(io)?.map(|v| Lease::decode(&v)).transpose()
    }

    fn acquire_sync(&self, holder: &str, now_ns: u64, ttl_ns: u64) -> Result<Option<u64>, StorageError> {
        let _cas = self.meta_lock.lock().expect("meta lock");
        let current = self.lease()?;
        let epoch = match &current {
            Some(l) if l.holder == holder => l.epoch,
            Some(l) if l.expires_ns > now_ns => return Ok(None),
            Some(l) => l.epoch + 1,
            None => 1,
        };
        let lease = Lease { epoch, expires_ns: now_ns.saturating_add(ttl_ns), holder: holder.to_string() };
        self.meta.insert(LEASE_KEY, lease.encode()).map_err(io)?;
        Ok(Some(epoch))
    }

    fn advance_sync(
        &self,
        holder: &str,
        epoch: u64,
        now_ns: u64,
        tenant: &str,
        before_ns: u64,
    ) -> Result<(), LifecycleError> {
        let _cas = self.meta_lock.lock().expect("meta lock");
        match self.lease()? {
            Some(l) if l.holder == holder && l.epoch == epoch && l.expires_ns > now_ns => {}
            Some(l) => return Err(LifecycleError::Fenced { holder: l.holder, epoch: l.epoch }),
            None => return Err(LifecycleError::Fenced { holder: String::new(), epoch: 0 }),
        }
        let key = [WATERMARK, tenant.as_bytes()].concat();
        let current = self.meta.get(&key).map_err(io)?.map(|v| be_u64(&v)).transpose()?.unwrap_or(0);
        if before_ns > current {
            self.meta.insert(key, before_ns.to_be_bytes()).map_err(io)?;
        }
        Ok(())
    }

    fn watermarks_sync(&self) -> Result<BTreeMap<String, u64>, StorageError> {
        let mut out = BTreeMap::new();
        for entry in self.meta.prefix(WATERMARK) {
            let (key, value) = entry.into_inner().map_err(io)?;
            out.insert(String::from_utf8_lossy(&key[WATERMARK.len()..]).into_owned(), be_u64(&value)?);
        }
        Ok(out)
    }

    fn policies_of(&self, tenant: &str) -> Result<Vec<PolicyVersion>, StorageError> {
        let prefix = policy_prefix(tenant);
        let mut out = Vec::new();
        for entry in self.meta.prefix(&prefix) {
            let (key, value) = entry.into_inner().map_err(io)?;
            let version = key[prefix.len()..].try_into().map(u32::from_be_bytes).map_err(|_| io("policy key"))?;
            if value.len() != 16 {
                return Err(StorageError::Corrupt("policy value".into()));
            }
            out.push(PolicyVersion {
                tenant: tenant.to_string(),
                version,
                retention_secs: be_u64(&value[..8])?,
                made_ns: be_u64(&value[8..])?,
            });
        }
        Ok(out)
    }

    fn record_policy_sync(&self, tenant: &str, secs: u64, now_ns: u64) -> Result<PolicyVersion, StorageError> {
        let _cas = self.meta_lock.lock().expect("meta lock");
        let latest = self.policies_of(tenant)?.pop();
        if let Some(latest) = latest.as_ref().filter(|l| l.retention_secs == secs) {
            return Ok(latest.clone());
        }
        let version = latest.map_or(1, |l| l.version + 1);
        let key = [policy_prefix(tenant).as_slice(), &version.to_be_bytes()].concat();
        self.meta.insert(key, [secs.to_be_bytes(), now_ns.to_be_bytes()].concat()).map_err(io)?;
        Ok(PolicyVersion { tenant: tenant.to_string(), version, retention_secs: secs, made_ns: now_ns })
    }

    fn all_policies_sync(&self) -> Result<Vec<PolicyVersion>, StorageError> {
        let mut tenants = std::collections::BTreeSet::new();
        for entry in self.meta.prefix(POLICY) {
            let key = entry.key().map_err(io)?;
            let rest = &key[POLICY.len()..];
            let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
            tenants.insert(String::from_utf8_lossy(&rest[..end]).into_owned());
        }
        let mut out = Vec::new();
        for tenant in tenants {
            out.extend(self.policies_of(&tenant)?);
        }
        Ok(out)
    }

    /// Drops every bucket that ends at or before `before_ns`.
    fn expire_sync(&self, before_ns: u64) -> Result<Expired, StorageError> {
        let last_whole = (before_ns / self.bucket_width_ns).checked_sub(1);
        let Some(last_whole) = last_whole else { return Ok(Expired::default()) };
        let doomed: Vec<(u64, Bucket)> = {
            let mut buckets = self.buckets.write().expect("bucket map lock");
            let indexes: Vec<u64> = buckets.range(..=last_whole).map(|(i, _)| *i).collect();
            indexes.into_iter().filter_map(|i| buckets.remove(&i).map(|bucket| (i, bucket))).collect()
        };
        let mut expired = Expired { buckets: doomed.len() as u64, rows: 0 };
        for (index, bucket) in doomed {
            expired.rows += self.delete_bucket(bucket)?;
            tracing::info!(bucket = index, "expired bucket dropped");
        }
        Ok(expired)
    }

    /// Deletes `tenant`'s keys in every bucket lying whole in `[from_ns, before_ns)`.
    fn purge_sync(&self, tenant: &str, from_ns: u64, before_ns: u64) -> Result<(Expired, u64), StorageError> {
        let width = self.bucket_width_ns;
        let first = from_ns.div_ceil(width);
        let end = before_ns / width;
        let buckets: Vec<(u64, Bucket)> = if first < end {
            let map = self.buckets.read().expect("bucket map lock");
            map.range(first..end).map(|(i, bucket)| (*i, bucket.clone())).collect()
        } else {
            Vec::new()
        };
        let mut expired = Expired::default();
        for (index, bucket) in buckets {
            if let Some(rows) = self.drop_if_only(index, &bucket, tenant)? {
                expired.buckets += 1;
                expired.rows += rows;
                continue;
            }
            let mut removed = 0u64;
            for part in bucket.parts() {
                removed += self.purge_part(&part.rows, tenant)?;
                // Trace marks are keyed as span keys are (`keys::trace_mark`).
                self.purge_part(&part.traces, tenant)?;
            }
            if removed > 0 {
                expired.buckets += 1;
                expired.rows += removed;
                tracing::info!(bucket = index, tenant, rows = removed, "purged a tenant's share of a bucket");
            }
        }
        Ok((expired, end.max(first).saturating_mul(width)))
    }

    /// Deletes `tenant`'s keys in one part of a bucket; returns how many.
    fn purge_part(&self, part: &fjall::Keyspace, tenant: &str) -> Result<u64, StorageError> {
        const CHUNK: usize = 4096;
        let delete = |keys: &[fjall::UserKey]| -> Result<(), StorageError> {
            if keys.is_empty() {
                return Ok(());
            }
            let mut tx = self.db.batch();
            for key in keys {
                tx.remove(part, key.clone());
            }
            tx.commit().map_err(io)
        };
        let mut removed = 0u64;
        for (table, id_len) in [(keys::SPAN, 16), (keys::CATALOG, 0), (keys::POSTING, 8)] {
            if table != keys::CATALOG {
                // The tenant follows the id: read the whole table for its keys.
                let mut chunk = Vec::with_capacity(CHUNK);
                for entry in part.prefix([table]) {
                    let key = entry.key().map_err(io)?;
                    let (owner, _, _) = keys::split_owner(&key, id_len).ok_or_else(|| io("key without a tenant"))?;
                    if owner == tenant {
                        chunk.push(key);
                    }
                    if chunk.len() == CHUNK {
                        delete(&chunk)?;
                        removed += chunk.len() as u64;
                        chunk.clear();
                    }
                }
                delete(&chunk)?;
                removed += chunk.len() as u64;
                continue;
            }
            loop {
                let chunk: Vec<_> = part
                    .prefix(keys::tenant_prefix(table, tenant))
                    .take(CHUNK)
                    .map(|entry| entry.key().map_err(io))
                    .collect::<Result<_, _>>()?;
                if chunk.is_empty() {
                    break;
                }
                delete(&chunk)?;
                removed += chunk.len() as u64;
            }
        }
        Ok(removed)
    }

    /// Deletes every part of a bucket already taken out of the bucket map; returns
    /// the rows it held.
    fn delete_bucket(&self, bucket: Bucket) -> Result<u64, StorageError> {
        let rows = bucket.approximate_len();
        for keyspace in bucket.keyspaces() {
            self.db.delete_keyspace(keyspace.clone()).map_err(io)?;
        }
        Ok(rows)
    }

    /// Drops the bucket whole when it holds `tenant`'s data only (a single-tenant
    /// store, say), with writes held off meanwhile; returns the rows dropped.
    ///
    /// Span and posting keys do not start with their tenant, so the catalog tells:
    /// every write puts a catalog key of its tenant in each bucket it writes spans to,
    /// in the same batch, and only a purge of that tenant's share of the bucket removes
    /// it (whatever of that share a purge cut short left behind may go with the
    /// bucket).
    fn drop_if_only(&self, index: u64, bucket: &Bucket, tenant: &str) -> Result<Option<u64>, StorageError> {
        let _gate = self.drop_gate.write().expect("drop gate");
        for table in [keys::CATALOG, keys::RED] {
            let ours = keys::tenant_prefix(table, tenant);
            let mut after = ours.clone();
            // The first key past every key that starts with `ours`.
            while let Some(last) = after.pop() {
                if last < u8::MAX {
                    after.push(last + 1);
                    break;
                }
            }
            let other_before = bucket.prefix([table]).next().transpose()?.map(|(key, _)| key);
            let other_after = bucket.range(after..).next().transpose()?.map(|(key, _)| key);
            if other_before.is_some_and(|k| !k.starts_with(&ours))
                || other_after.is_some_and(|k| k.first() == Some(&table))
            {
                return Ok(None);
            }
        }
        let Some(bucket) = self.buckets.write().expect("bucket map lock").remove(&index) else {
            return Ok(None);
        };
        let rows = self.delete_bucket(bucket)?;
        tracing::info!(bucket = index, tenant, "dropped a bucket that held only this tenant's data");
        Ok(Some(rows))
    }
}

#[async_trait]
impl Lifecycle for EmbeddedStore {
    async fn acquire(&self, holder: &str, now_ns: u64, ttl_ns: u64) -> Result<Option<u64>, StorageError> {
        let holder = holder.to_string();
        blocking(&self.inner, move |inner| inner.acquire_sync(&holder, now_ns, ttl_ns)).await
    }

    async fn advance_watermark(
        &self,
        holder: &str,
        epoch: u64,
        now_ns: u64,
        tenant: &str,
        expired_before_ns: u64,
    ) -> Result<(), LifecycleError> {
        let (holder, tenant) = (holder.to_string(), tenant.to_string());
        let outcome = blocking(&self.inner, move |inner| {
            Ok(inner.advance_sync(&holder, epoch, now_ns, &tenant, expired_before_ns))
        })
        .await?;
        outcome
    }

    async fn watermarks(&self) -> Result<BTreeMap<String, u64>, StorageError> {
        blocking(&self.inner, Inner::watermarks_sync).await
    }

    async fn record_policy(&self, tenant: &str, secs: u64, now_ns: u64) -> Result<PolicyVersion, StorageError> {
        let tenant = tenant.to_string();
        blocking(&self.inner, move |inner| inner.record_policy_sync(&tenant, secs, now_ns)).await
    }

    async fn policies(&self) -> Result<Vec<PolicyVersion>, StorageError> {
        blocking(&self.inner, Inner::all_policies_sync).await
    }

    async fn tenants(&self) -> Result<Vec<String>, StorageError> {
        Ok(self.inner.tenants.read().expect("tenant lock").iter().cloned().collect())
    }

    async fn expire_before(&self, before_ns: u64) -> Result<Expired, StorageError> {
        blocking(&self.inner, move |inner| inner.expire_sync(before_ns)).await
    }

    async fn purge_all(&self) -> Result<u64, StorageError> {
        let mut rows = 0;
        for tenant in self.tenants().await? {
            rows += self.purge_tenant(&tenant, 0, u64::MAX).await?.0.rows;
        }
        Ok(rows)
    }

    async fn purge_tenant(&self, tenant: &str, from_ns: u64, before_ns: u64) -> Result<(Expired, u64), StorageError> {
        let tenant = tenant.to_string();
        blocking(&self.inner, move |inner| inner.purge_sync(&tenant, from_ns, before_ns)).await
    }
}
