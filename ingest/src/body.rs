//! Request bodies: read with a size limit, then gunzipped with the same limit, so a
//! small compressed body cannot expand into an unbounded one. The in-flight budget
//! counts what is held in memory: the body as received, and then its decompressed form
//! as it grows, so many small gzip bodies cannot each expand unseen.

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

/// How much decompressed output is reserved at a time.
const INFLATE_CHUNK: usize = 64 * 1024;

/// Decompresses `raw` when it is gzip, refusing output over `limit` bytes. `reserve`
/// is asked for room for every chunk of output before it is kept; when it refuses, so
/// does the decode.
pub fn decode(
    raw: Bytes,
    encoding: ContentEncoding,
    limit: usize,
    mut reserve: impl FnMut(usize) -> Result<(), IngestError>,
) -> Result<Bytes, IngestError> {
    match encoding {
        ContentEncoding::Identity => Ok(raw),
        ContentEncoding::Gzip => {
            let mut decoder = flate2::read::MultiGzDecoder::new(raw.as_ref()).take(limit as u64 + 1);
            let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(limit));
            let mut chunk = vec![0u8; INFLATE_CHUNK];
            loop {
                let n = decoder
                    .read(&mut chunk)
                    .map_err(|e| IngestError::BadBody(format!("the gzip body could not be decompressed: {e}")))?;
                if n == 0 {
                    break;
                }
                if out.len() + n > limit {
                    return Err(IngestError::TooLarge(limit));
                }
                reserve(n)?;
                out.extend_from_slice(&chunk[..n]);
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
    /// `tenant`: what the request names ([`tracekeeper_serve::requested_tenant`]).
    pub async fn read(
        state: &crate::IngestState,
        headers: &HeaderMap,
        tenant: Option<&[u8]>,
        body: Body,
    ) -> Result<Self, IngestError> {
        let tenant = state.tenant(tenant)?;
        let compression = content_encoding(headers)?;
        let limit = state.limits.max_body_bytes;
        let raw = read_limited(body, limit).await?;
        let mut permit = state.reserve(raw.len())?;
        let bytes = decode(raw, compression, limit, |n| {
            permit.merge(state.reserve(n)?);
            Ok(())
        })?;
        Ok(Self { tenant, bytes, _permit: permit })
    }
}
