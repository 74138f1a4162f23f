//! RED cells in the embedded store: in the time bucket of their minute, so that
//! retention drops them with the spans of that minute. Each flush writes new keys (a
//! sequence number ends the key); reads return every cell and the caller sums.

use async_trait::async_trait;
use tracekeeper_model::SpanKind;

use super::{blocking, io, keys, EmbeddedStore, Inner};
use crate::api::StorageError;
use crate::red::{next_unique, RedCell, RedStore, MINUTE_NS};

fn key(tenant: &str, cell: &RedCell, sequence: u64) -> Vec<u8> {
    let mut key = keys::tenant_prefix(keys::RED, tenant);
    key.extend_from_slice(&cell.minute_ns.to_be_bytes());
    for text in [&cell.service, &cell.operation] {
        key.extend_from_slice(&(text.len() as u32).to_be_bytes());
        key.extend_from_slice(text.as_bytes());
    }
    key.push(cell.kind.to_otlp() as u8);
    key.push(u8::from(cell.error));
    key.push(u8::from(cell.root));
    key.extend_from_slice(&sequence.to_be_bytes());
    key
}

fn parse(key: &[u8], prefix_len: usize, value: &[u8]) -> Option<Result<RedCell, StorageError>> {
    let rest = key.get(prefix_len..)?;
    let minute_ns = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let mut at = 8;
    let mut text = || {
        let len = u32::from_be_bytes(rest.get(at..at + 4)?.try_into().ok()?) as usize;
        let s = std::str::from_utf8(rest.get(at + 4..at + 4 + len)?).ok()?.to_string();
        at += 4 + len;
        Some(s)
    };
    let service = text()?;
    let operation = text()?;
    let kind = SpanKind::from_otlp(i32::from(*rest.get(at)?));
    let error = *rest.get(at + 1)? == 1;
    // Keys written before the root flag end with the sequence right after the error.
    let root = match rest.len() - (at + 2) {
        8 => false,
        9 => *rest.get(at + 2)? == 1,
        _ => return None,
    };
    let mut cell = RedCell::new(minute_ns, &service, &operation, kind, error).of_roots(root);
    Some(cell.decode_counts(value).map(|()| cell))
}

impl Inner {
    fn add_red_sync(&self, tenant: &str, cells: &[RedCell]) -> Result<(), StorageError> {
        let gate = self.drop_gate.read().expect("drop gate");
        let mut tx = self.db.batch();
        for cell in cells {
            let bucket = self.bucket(cell.minute_ns / self.bucket_width_ns)?;
            tx.insert(bucket.first(), key(tenant, cell, next_unique()), cell.encode_counts());
        }
        tx.commit().map_err(io)?;
        drop(gate);
        Ok(())
    }

    fn red_sync(&self, tenant: &str, from_ns: u64, to_ns: u64) -> Result<Vec<RedCell>, StorageError> {
        let prefix = keys::tenant_prefix(keys::RED, tenant);
        let bound = |ns: u64| [prefix.as_slice(), &ns.to_be_bytes()].concat();
        let (start, end) = (bound(from_ns - from_ns % MINUTE_NS), bound(to_ns));
        let mut out = Vec::new();
        for bucket in self.buckets_between(from_ns, to_ns.saturating_sub(1)) {
            for item in bucket.first().range::<Vec<u8>, _>(start.clone()..end.clone()) {
                let (key, value) = item.into_inner().map_err(io)?;
                let cell =
                    parse(&key, prefix.len(), &value).ok_or_else(|| StorageError::Corrupt("RED key".into()))??;
                if cell.minute_ns >= from_ns && cell.minute_ns < to_ns {
                    out.push(cell);
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl RedStore for EmbeddedStore {
    async fn add_red(
        &self,
        tenant: &str,
        cells: Vec<RedCell>,
        retention_ns: u64,
        now_ns: u64,
    ) -> Result<(), StorageError> {
        // As on CQL, where such a row's TTL would be zero: already expired, not kept.
        let cells: Vec<RedCell> =
            cells.into_iter().filter(|c| c.minute_ns.saturating_add(retention_ns) > now_ns).collect();
        let tenant = tenant.to_string();
        blocking(&self.inner, move |inner| inner.add_red_sync(&tenant, &cells)).await
    }

    async fn red(&self, tenant: &str, from_ns: u64, to_ns: u64) -> Result<Vec<RedCell>, StorageError> {
        if from_ns >= to_ns {
            return Ok(Vec::new());
        }
        let tenant = tenant.to_string();
        blocking(&self.inner, move |inner| inner.red_sync(&tenant, from_ns, to_ns)).await
    }
}
