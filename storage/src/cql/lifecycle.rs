//! [`Lifecycle`] on CQL: the lease and the watermarks are lightweight transactions.
//! Span rows and postings expire by their TTL (span start + retention) and TWCS drops
//! whole SSTables; the worker removes the catalog partitions of expired days, and
//! purges a shortened tenant's rows early (`purge.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use scylla::client::session::Session;
use scylla::response::query_result::QueryResult;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlValue;

use super::purge::Purger;
use super::{corrupt, lwt, prepare_lwt, unavailable, Level, DAY_NS};
use crate::api::StorageError;
use crate::lifecycle::{Expired, Lifecycle, LifecycleError, PolicyVersion};

const LEASE: &str = "retention";

pub struct CqlLifecycle {
    session: Arc<Session>,
    read_lease: PreparedStatement,
    insert_lease: PreparedStatement,
    renew_lease: PreparedStatement,
    take_lease: PreparedStatement,
    check_lease: PreparedStatement,
    insert_watermark: PreparedStatement,
    raise_watermark: PreparedStatement,
    select_watermarks: PreparedStatement,
    select_policies: PreparedStatement,
    select_all_policies: PreparedStatement,
    insert_policy: PreparedStatement,
    select_tenants: PreparedStatement,
    select_days: PreparedStatement,
    delete_operations: PreparedStatement,
    delete_day: PreparedStatement,
    purger: Purger,
    keyspace: String,
}

impl CqlLifecycle {
    pub async fn new(session: Arc<Session>, ks: &str) -> Result<Self, StorageError> {
        let prepare = |cql: String, level: Level| prepare_lwt(&session, cql, level);
        let q = Level::Configured;
        Ok(Self {
            read_lease: prepare(
                format!("SELECT holder, epoch, expires_ns FROM {ks}.retention_lease WHERE name = '{LEASE}'"),
                Level::Serial,
            )
            .await?,
            insert_lease: prepare(
                format!(
                    "INSERT INTO {ks}.retention_lease (name, holder, epoch, expires_ns) VALUES ('{LEASE}', ?, 1, ?) \
                     IF NOT EXISTS"
                ),
                q,
            )
            .await?,
            renew_lease: prepare(
                format!(
                    "UPDATE {ks}.retention_lease SET expires_ns = ? WHERE name = '{LEASE}' IF holder = ? AND epoch = ?"
                ),
                q,
            )
            .await?,
            take_lease: prepare(
                format!(
                    "UPDATE {ks}.retention_lease SET holder = ?, epoch = ?, expires_ns = ? WHERE name = '{LEASE}' \
                     IF epoch = ? AND expires_ns = ?"
                ),
                q,
            )
            .await?,
            check_lease: prepare(
                format!(
                    "UPDATE {ks}.retention_lease SET holder = ? WHERE name = '{LEASE}' \
                     IF holder = ? AND epoch = ? AND expires_ns > ?"
                ),
                q,
            )
            .await?,
            insert_watermark: prepare(
                format!(
                    "INSERT INTO {ks}.retention_watermarks (tenant, expired_before_ns, epoch) VALUES (?, ?, ?) \
                     IF NOT EXISTS"
                ),
                q,
            )
            .await?,
            raise_watermark: prepare(
                format!(
                    "UPDATE {ks}.retention_watermarks SET expired_before_ns = ?, epoch = ? WHERE tenant = ? \
                     IF expired_before_ns < ? AND epoch <= ?"
                ),
                q,
            )
            .await?,
            select_watermarks: prepare(
                format!("SELECT tenant, expired_before_ns FROM {ks}.retention_watermarks"),
                Level::One,
            )
            .await?,
            select_policies: prepare(
                format!(
                    "SELECT tenant, version, retention_secs, made_ns FROM {ks}.retention_policies WHERE tenant = ? \
                     LIMIT 1"
                ),
                Level::Serial,
            )
            .await?,
            select_all_policies: prepare(
                format!("SELECT tenant, version, retention_secs, made_ns FROM {ks}.retention_policies"),
                Level::One,
            )
            .await?,
            insert_policy: prepare(
                format!(
                    "INSERT INTO {ks}.retention_policies (tenant, version, retention_secs, made_ns) \
                     VALUES (?, ?, ?, ?) IF NOT EXISTS"
                ),
                q,
            )
            .await?,
            select_tenants: prepare(format!("SELECT DISTINCT tenant FROM {ks}.catalog_days"), Level::One).await?,
            select_days: prepare(format!("SELECT day FROM {ks}.catalog_days WHERE tenant = ? AND day < ?"), q).await?,
            delete_operations: prepare(format!("DELETE FROM {ks}.operations WHERE tenant = ? AND day = ?"), q).await?,
            delete_day: prepare(format!("DELETE FROM {ks}.catalog_days WHERE tenant = ? AND day = ?"), q).await?,
            purger: Purger::new(Arc::clone(&session), ks).await?,
            keyspace: ks.to_string(),
            session,
        })
    }

    async fn run(
        &self,
        statement: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
    ) -> Result<QueryResult, StorageError> {
        self.session.execute_unpaged(statement, values).await.map_err(unavailable)
    }

    fn rows<T>(result: QueryResult) -> Result<Vec<T>, StorageError>
    where
        T: for<'f, 'm> scylla::deserialize::row::DeserializeRow<'f, 'm>,
    {
        let rows = result.into_rows_result().map_err(corrupt)?;
        rows.rows::<T>().map_err(corrupt)?.map(|r| r.map_err(corrupt)).collect()
    }
}

type PolicyRow = (String, i32, i64, i64);

fn policy(row: PolicyRow) -> PolicyVersion {
    PolicyVersion { tenant: row.0, version: row.1 as u32, retention_secs: row.2 as u64, made_ns: row.3 as u64 }
}

#[async_trait]
impl Lifecycle for CqlLifecycle {
    async fn acquire(&self, holder: &str, now_ns: u64, ttl_ns: u64) -> Result<Option<u64>, StorageError> {
        let expires = now_ns.saturating_add(ttl_ns) as i64;
        let current: Vec<(Option<String>, Option<i64>, Option<i64>)> =
            Self::rows(self.run(&self.read_lease, ()).await?)?;
        let Some((current_holder, epoch, current_expiry)) = current.into_iter().next() else {
            let (applied, _) = lwt(self.run(&self.insert_lease, (holder, expires)).await?)?;
            return Ok(applied.then_some(1));
        };
        let (epoch, current_expiry) = (epoch.unwrap_or(0), current_expiry.unwrap_or(0));
        if current_holder.as_deref() == Some(holder) {
            let (applied, _) = lwt(self.run(&self.renew_lease, (expires, holder, epoch)).await?)?;
            return Ok(applied.then_some(epoch as u64));
        }
        if current_expiry as u64 > now_ns {
            return Ok(None);
        }
        let next = epoch + 1;
        let (applied, _) = lwt(self.run(&self.take_lease, (holder, next, expires, epoch, current_expiry)).await?)?;
        Ok(applied.then_some(next as u64))
    }

    async fn advance_watermark(
        &self,
        holder: &str,
        epoch: u64,
        now_ns: u64,
        tenant: &str,
        before_ns: u64,
    ) -> Result<(), LifecycleError> {
        let (epoch, before) = (epoch as i64, before_ns as i64);
        let (held, current) = lwt(self.run(&self.check_lease, (holder, holder, epoch, now_ns as i64)).await?)?;
        if !held {
            let holder = match current.first() {
                Some(Some(CqlValue::Text(h))) => h.clone(),
                _ => String::new(),
            };
            let epoch = match current.get(1) {
                Some(Some(CqlValue::BigInt(e))) => *e as u64,
                _ => 0,
            };
            return Err(LifecycleError::Fenced { holder, epoch });
        }
        let (inserted, _) = lwt(self.run(&self.insert_watermark, (tenant, before, epoch)).await?)?;
        if inserted {
            return Ok(());
        }
        let (raised, current) = lwt(self.run(&self.raise_watermark, (before, epoch, tenant, before, epoch)).await?)?;
        if !raised {
            if let Some(Some(CqlValue::BigInt(newer))) = current.get(1) {
                if *newer > epoch {
                    return Err(LifecycleError::Fenced { holder: String::new(), epoch: *newer as u64 });
                }
            }
        }
        Ok(())
    }

    async fn watermarks(&self) -> Result<BTreeMap<String, u64>, StorageError> {
        let rows: Vec<(String, Option<i64>)> = Self::rows(self.run(&self.select_watermarks, ()).await?)?;
        Ok(rows.into_iter().map(|(t, w)| (t, w.unwrap_or(0) as u64)).collect())
    }

    async fn record_policy(&self, tenant: &str, secs: u64, now_ns: u64) -> Result<PolicyVersion, StorageError> {
        for _ in 0..3 {
            let latest: Option<PolicyRow> = Self::rows(self.run(&self.select_policies, (tenant,)).await?)?.pop();
            if let Some(latest) = latest.as_ref().filter(|l| l.2 as u64 == secs) {
                return Ok(policy(latest.clone()));
            }
            let version = latest.map_or(1, |l| l.1 + 1);
            let row: PolicyRow = (tenant.to_string(), version, secs as i64, now_ns as i64);
            let (applied, _) = lwt(self.run(&self.insert_policy, row.clone()).await?)?;
            if applied {
                return Ok(policy(row));
            }
        }
        Err(StorageError::Unavailable(format!("recording the policy of {tenant:?} kept racing")))
    }

    async fn policies(&self) -> Result<Vec<PolicyVersion>, StorageError> {
        let rows: Vec<PolicyRow> = Self::rows(self.run(&self.select_all_policies, ()).await?)?;
        let mut out: Vec<PolicyVersion> = rows.into_iter().map(policy).collect();
        out.sort_by(|a, b| (&a.tenant, a.version).cmp(&(&b.tenant, b.version)));
        Ok(out)
    }

    async fn tenants(&self) -> Result<Vec<String>, StorageError> {
        let rows: Vec<(String,)> = Self::rows(self.run(&self.select_tenants, ()).await?)?;
        Ok(rows.into_iter().map(|(t,)| t).collect())
    }

    /// Catalog partitions of days that ended before `before_ns`, whole; span rows and
    /// postings have expired by TTL by then.
    async fn expire_before(&self, before_ns: u64) -> Result<Expired, StorageError> {
        let first_live_day = (before_ns / DAY_NS) as i64;
        let mut removed = Expired::default();
        for tenant in self.tenants().await? {
            let days: Vec<(i64,)> = Self::rows(self.run(&self.select_days, (&tenant, first_live_day)).await?)?;
            for (day,) in days {
                self.run(&self.delete_operations, (&tenant, day)).await?;
                self.run(&self.delete_day, (&tenant, day)).await?;
                removed.buckets += 1;
                removed.rows += 2;
            }
        }
        Ok(removed)
    }

    async fn purge_tenant(&self, tenant: &str, from_ns: u64, before_ns: u64) -> Result<(Expired, u64), StorageError> {
        self.purger.purge(tenant, from_ns, before_ns).await
    }

    /// Truncates the data tables, as Jaeger's own Cassandra store purges.
    async fn purge_all(&self) -> Result<u64, StorageError> {
        const DATA: [&str; 6] =
            ["spans", "packed_postings", "bucket_terms", "operations", "catalog_days", "red_minutes"];
        for table in DATA {
            let truncate = format!("TRUNCATE {}.{table}", self.keyspace);
            self.session.query_unpaged(truncate, ()).await.map_err(unavailable)?;
        }
        // After the truncation: writers that see it forget the catalog rows they wrote
        // (`schemas/v008.cql`).
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
        let record = format!("INSERT INTO {}.purges (name, purged_ns) VALUES ('data', ?)", self.keyspace);
        self.session.query_unpaged(record, (now,)).await.map_err(unavailable)?;
        Ok(DATA.len() as u64)
    }
}
