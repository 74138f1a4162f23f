//! Request bodies: read with a size limit, then gunzipped with the same limit, so a
//! small compressed body cannot expand into an unbounded one.

use std::io::Read;

use axum::body::Body;
use axum::http::HeaderMap;
use bytes::Bytes;

use crate::error::IngestError;

/// The declared encoding of a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentEncoding {
    Identity,
    Gzip,
}

pub fn content_encoding(headers: &HeaderMap) -> Result<ContentEncoding, IngestError> {
    match headers
        .get(axum::http::header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
    {
        None => Ok(ContentEncoding::Identity),
        Some(e) if e.is_empty() || e == "identity" => Ok(ContentEncoding::Identity),
        Some(e) if e == "gzip" => Ok(ContentEncoding::Gzip),
        Some(other) => Err(IngestError::UnsupportedEncoding(other)),
    }
}

pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, IngestError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let inner = e.into_inner();
        if inner.is::<http_body_util::LengthLimitError>() {
            IngestError::TooLarge(limit)
        } else {
            IngestError::BadBody(format!("could not read the request body: {inner}"))
        }
    })
}

/// Decompresses `raw` when it is gzip, refusing output over `limit` bytes.
pub fn decode(raw: Bytes, encoding: ContentEncoding, limit: usize) -> Result<Bytes, IngestError> {
    match encoding {
        ContentEncoding::Identity => Ok(raw),
        ContentEncoding::Gzip => {
            let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(limit));
            flate2::read::MultiGzDecoder::new(raw.as_ref())
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| IngestError::BadBody(format!("the gzip body could not be decompressed: {e}")))?;
            if out.len() > limit {
                return Err(IngestError::TooLarge(limit));
            }
            Ok(Bytes::from(out))
        }
    }
}

/// A request's tenant and decompressed body, with the in-flight room it holds until
/// dropped: what every HTTP receiver reads before decoding.
pub struct RequestBody {
    pub tenant: String,
    pub bytes: Bytes,
    pub _permit: tokio::sync::OwnedSemaphorePermit,
}

impl RequestBody {
    pub async fn read(state: &crate::IngestState, headers: &HeaderMap, body: Body) -> Result<Self, IngestError> {
        let tenant = state.tenant(headers.get(tracekeeper_model::TENANT_HEADER).map(|v| v.as_bytes()))?;
        let compression = content_encoding(headers)?;
        let limit = state.limits.max_body_bytes;
        let raw = read_limited(body, limit).await?;
        let _permit = state.reserve(raw.len())?;
        let bytes = decode(raw, compression, limit)?;
        Ok(Self { tenant, bytes, _permit })
    }
}
