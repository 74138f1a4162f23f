//! RED cells on CQL: table `red_minutes` (`schemas/v005.cql`, `root` from v009,
//! `fine_buckets` from v010), one partition per tenant and hour. Each row carries a writer id of its own, and readers sum. A flush that
//! failed part-way is retried whole, so the rows it did write count twice: the counts
//! may run over after a CQL failure, as they may run short after a crash.

use std::collections::BTreeMap;

use async_trait::async_trait;
use futures::TryStreamExt;
use scylla::statement::unprepared::Statement;
use tracekeeper_model::SpanKind;

use super::errors::{corrupt, unavailable, write_error};
use super::{CqlStore, HOUR_NS, MAX_TTL_SECS};
use crate::api::StorageError;
use crate::red::{next_unique, RedCell, RedStore};

type Row = (i64, String, String, i32, bool, i64, f64, Vec<i64>, Option<bool>, Option<BTreeMap<i16, i64>>);

#[async_trait]
impl RedStore for CqlStore {
    async fn add_red(
        &self,
        tenant: &str,
        cells: Vec<RedCell>,
        retention_ns: u64,
        now_ns: u64,
    ) -> Result<(), StorageError> {
        let mut insert = Statement::new(format!(
            "INSERT INTO {}.red_minutes (tenant, hour, minute, service, operation, kind, error, writer, calls, sum_ms, buckets, root, fine_buckets) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?",
            self.keyspace
        ));
        insert.set_consistency(self.consistency);
        for cell in cells {
            let expires = cell.minute_ns.saturating_add(retention_ns);
            let Some(left) = expires.checked_sub(now_ns).map(|ns| (ns / 1_000_000_000).min(MAX_TTL_SECS)) else {
                continue;
            };
            if left == 0 {
                continue;
            }
            let buckets: Vec<i64> = cell.buckets.iter().map(|b| *b as i64).collect();
            let fine: BTreeMap<i16, i64> = cell.fine.iter().map(|(b, n)| (i16::from(*b), *n as i64)).collect();
            let values = (
                tenant,
                (cell.minute_ns / HOUR_NS) as i64,
                cell.minute_ns as i64,
                cell.service.as_str(),
                cell.operation.as_str(),
                cell.kind.to_otlp(),
                cell.error,
                (next_unique() & i64::MAX as u64) as i64,
                cell.calls as i64,
                cell.sum_ms,
                buckets,
                cell.root,
                fine,
                left as i32,
            );
            let written = self.session.query_unpaged(insert.clone(), values).await;
            written.map_err(write_error)?;
        }
        Ok(())
    }

    async fn red(&self, tenant: &str, from_ns: u64, to_ns: u64) -> Result<Vec<RedCell>, StorageError> {
        let mut select = Statement::new(format!(
            "SELECT minute, service, operation, kind, error, calls, sum_ms, buckets, root, fine_buckets FROM {}.red_minutes \
             WHERE tenant = ? AND hour = ? AND minute >= ? AND minute < ?",
            self.keyspace
        ));
        select.set_consistency(self.consistency);
        let mut out = Vec::new();
        if from_ns >= to_ns {
            return Ok(out);
        }
        for hour in from_ns / HOUR_NS..=(to_ns - 1) / HOUR_NS {
            let values = (tenant, hour as i64, from_ns as i64, to_ns.min(i64::MAX as u64) as i64);
            let mut rows = self
                .session
                .query_iter(select.clone(), values)
                .await
                .map_err(unavailable)?
                .rows_stream::<Row>()
                .map_err(corrupt)?;
            while let Some((minute, service, operation, kind, error, calls, sum_ms, buckets, root, fine)) =
                rows.try_next().await.map_err(unavailable)?
            {
                let mut cell = RedCell::new(minute as u64, &service, &operation, SpanKind::from_otlp(kind), error)
                    .of_roots(root.unwrap_or(false));
                cell.calls = calls as u64;
                cell.sum_ms = sum_ms;
                cell.buckets = buckets.into_iter().map(|b| b as u64).collect();
                let fine = fine.unwrap_or_default().into_iter();
                cell.fine = fine.filter_map(|(b, n)| Some((u8::try_from(b).ok()?, n as u64))).collect();
                out.push(cell);
            }
        }
        Ok(out)
    }
}
