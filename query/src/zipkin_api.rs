//! Zipkin's v2 query API (`/api/v2/services`, `/api/v2/traces`, ...), as Zipkin's UI
//! (Lens) and scripts call it. Shapes and defaults follow `zipkin2-api.yaml` and the
//! Zipkin server (`shared/reference/zipkin-tempo-quickwit.md` §2): times in µs and ms,
//! traces as `[[Span]]`, errors as plain text.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::IntoResponse;
use axum::Json;
use tracekeeper_model::zipkin::{to_zipkin, ZipkinSpan};
use tracekeeper_model::{Span, TraceId};
use tracekeeper_storage::IndexTerm;

use crate::engine::TraceQuery;
use crate::error::{QueryError, TextResult};
use crate::params::Params;
use crate::predicate::SpanPredicate;
use crate::QueryState;
use crate::Tenant;
use tracekeeper_serve::{Declared, Group, Routes, Shape};

/// Zipkin's `QUERY_LOOKBACK` default: one day, in ms.
const DEFAULT_LOOKBACK_MS: u64 = 86_400_000;
const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 10_000;
/// Most traces read to list remote services and autocomplete values.
const LISTING_TRACES: usize = 1_000;
const PEER_SERVICE: &str = "peer.service";

pub fn router(state: Arc<QueryState>) -> Routes {
    Group::new(Declared::read(Shape::Text))
        .get("/api/v2/services", services)
        .get("/api/v2/spans", span_names)
        .get("/api/v2/remoteServices", remote_services)
        .get("/api/v2/traces", traces)
        .get("/api/v2/trace/{trace_id}", trace)
        .get("/api/v2/traceMany", trace_many)
        .get("/api/v2/dependencies", dependencies)
        .get("/api/v2/autocompleteKeys", autocomplete_keys)
        .get("/api/v2/autocompleteValues", autocomplete_values)
        .with_state(state)
}

fn zipkin_trace(spans: &[Span]) -> Vec<ZipkinSpan> {
    spans.iter().map(to_zipkin).collect()
}

fn required<'a>(params: &'a Params, key: &str) -> Result<&'a str, QueryError> {
    params.get(key).ok_or_else(|| QueryError::BadRequest(format!("parameter '{key}' is required")))
}

/// `[endTs − lookback, endTs]` in ns, from ms parameters.
fn window(params: &Params, now_ns: u64) -> Result<(u64, u64), QueryError> {
    params.ms_window(now_ns, DEFAULT_LOOKBACK_MS)
}

async fn services(State(state): State<Arc<QueryState>>, tenant: Tenant) -> TextResult {
    TextResult(async { Ok(Json(state.engine.services(&tenant).await?).into_response()) }.await)
}

async fn span_names(State(state): State<Arc<QueryState>>, tenant: Tenant, RawQuery(raw): RawQuery) -> TextResult {
    TextResult(
        async {
            let params = Params::parse(raw.as_deref());
            let service = required(&params, "serviceName")?;
            let ops = state.engine.operations(&tenant, Some(service)).await?;
            let names: BTreeSet<String> = ops.into_iter().map(|o| o.name).collect();
            Ok(Json(names).into_response())
        }
        .await,
    )
}

/// Values of one attribute on the spans of recent traces (newest first, at most
/// [`LISTING_TRACES`] traces), sorted.
async fn recent_values(
    state: &QueryState,
    tenant: &str,
    term: IndexTerm,
    window: (u64, u64),
    pick: impl Fn(&Span) -> Vec<String>,
) -> Result<BTreeSet<String>, QueryError> {
    let traces = state.engine.traces_in(tenant, term, window.0, window.1, LISTING_TRACES).await?;
    Ok(traces.iter().flatten().flat_map(pick).collect())
}

async fn remote_services(State(state): State<Arc<QueryState>>, tenant: Tenant, RawQuery(raw): RawQuery) -> TextResult {
    TextResult(
        async {
            let params = Params::parse(raw.as_deref());
            let service = required(&params, "serviceName")?.to_string();
            let window = window(&params, state.engine.now_ns())?;
            let term = IndexTerm::Service(service.clone());
            let names = recent_values(&state, &tenant, term, window, |span| {
                if span.service_name() != service {
                    return vec![];
                }
                to_zipkin(span).remote_endpoint.and_then(|e| e.service_name).into_iter().collect()
            })
            .await?;
            Ok(Json(names).into_response())
        }
        .await,
    )
}

/// `annotationQuery`: terms joined by ` and `; `key=value` is a tag, a bare word an
/// annotation value or tag key.
fn parse_annotation_query(text: &str, predicate: &mut SpanPredicate) -> Result<(), QueryError> {
    for term in text.split(" and ").map(str::trim).filter(|t| !t.is_empty()) {
        match term.split_once('=') {
            Some(("", _)) => {
                return Err(QueryError::BadRequest(format!("annotationQuery term {term:?} has no key")));
            }
            Some((key, value)) => predicate.tags.push((key.to_string(), value.to_string())),
            None => predicate.words.push(term.to_string()),
        }
    }
    Ok(())
}

/// Parses `/api/v2/traces` parameters into a search.
pub fn parse_search(params: &Params, now_ns: u64) -> Result<TraceQuery, QueryError> {
    let (start_ns, end_ns) = window(params, now_ns)?;
    let micros = |key: &str| -> Result<Option<u64>, QueryError> {
        Ok(params.number::<u64>(key)?.map(|us| us.saturating_mul(1000)))
    };
    let mut span = SpanPredicate {
        service: params.get("serviceName").map(String::from),
        operation: params.get("spanName").filter(|n| *n != "all").map(String::from),
        min_duration_ns: micros("minDuration")?,
        max_duration_ns: micros("maxDuration")?,
        ..Default::default()
    };
    if let (Some(min), Some(max)) = (span.min_duration_ns, span.max_duration_ns) {
        if min > max {
            return Err(QueryError::BadRequest("'minDuration' must not be greater than 'maxDuration'".into()));
        }
    }
    if let Some(remote) = params.get("remoteServiceName") {
        span.tags.push((PEER_SERVICE.to_string(), remote.to_string()));
    }
    if let Some(query) = params.get("annotationQuery") {
        parse_annotation_query(query, &mut span)?;
    }
    let limit = params.number::<usize>("limit")?.filter(|l| *l > 0).unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    Ok(TraceQuery { span, start_ns, end_ns, min_trace_duration_ns: None, max_trace_duration_ns: None, limit })
}

async fn traces(State(state): State<Arc<QueryState>>, tenant: Tenant, RawQuery(raw): RawQuery) -> TextResult {
    TextResult(
        async {
            let query = parse_search(&Params::parse(raw.as_deref()), state.engine.now_ns())?;
            let found = state.engine.search(&tenant, &query).await?;
            let body: Vec<Vec<ZipkinSpan>> = found.iter().map(|f| zipkin_trace(&f.spans)).collect();
            Ok(crate::budget::with_partial_note(Json(body).into_response(), found.partial.as_deref()))
        }
        .await,
    )
}

fn parse_zipkin_id(text: &str) -> Result<TraceId, QueryError> {
    if !matches!(text.len(), 16 | 32) {
        return Err(QueryError::BadRequest(format!("trace id {text:?} must be 16 or 32 hex characters")));
    }
    crate::jaeger_api::parse_trace_id(text)
}

async fn trace(State(state): State<Arc<QueryState>>, tenant: Tenant, Path(id): Path<String>) -> TextResult {
    TextResult(
        async {
            let (spans, _) = state.engine.trace(&tenant, parse_zipkin_id(&id)?).await?;
            if spans.is_empty() {
                return Err(QueryError::NotFound(format!("trace {id} not found")));
            }
            Ok(Json(zipkin_trace(&spans)).into_response())
        }
        .await,
    )
}

async fn trace_many(State(state): State<Arc<QueryState>>, tenant: Tenant, RawQuery(raw): RawQuery) -> TextResult {
    TextResult(
        async {
            let params = Params::parse(raw.as_deref());
            let ids: Vec<&str> = required(&params, "traceIds")?.split(',').map(str::trim).collect();
            if ids.len() < 2 {
                return Err(QueryError::BadRequest(
                    "traceIds must list at least two trace ids, comma-separated".into(),
                ));
            }
            let mut out = Vec::new();
            for id in ids {
                let (spans, _) = state.engine.trace(&tenant, parse_zipkin_id(id)?).await?;
                if !spans.is_empty() {
                    out.push(zipkin_trace(&spans));
                }
            }
            Ok(Json(out).into_response())
        }
        .await,
    )
}

async fn dependencies(State(state): State<Arc<QueryState>>, tenant: Tenant, RawQuery(raw): RawQuery) -> TextResult {
    TextResult(
        async {
            let params = Params::parse(raw.as_deref());
            required(&params, "endTs")?;
            let (start, end) = window(&params, state.engine.now_ns())?;
            let (links, note) = crate::dependencies::graph(&state.engine, &tenant, IndexTerm::All, start, end).await?;
            Ok(crate::budget::with_partial_note(Json(links).into_response(), note.as_deref()))
        }
        .await,
    )
}

/// Tag keys seen on recent spans (Zipkin lists the keys an operator configured; we
/// list what the data has, which is what the UI's autocomplete wants).
async fn autocomplete_keys(State(state): State<Arc<QueryState>>, tenant: Tenant) -> TextResult {
    TextResult(
        async {
            let window = window(&Params::parse(None), state.engine.now_ns())?;
            let keys = recent_values(&state, &tenant, IndexTerm::All, window, |span| {
                to_zipkin(span).tags.into_keys().collect()
            })
            .await?;
            Ok(Json(keys).into_response())
        }
        .await,
    )
}

async fn autocomplete_values(
    State(state): State<Arc<QueryState>>,
    tenant: Tenant,
    RawQuery(raw): RawQuery,
) -> TextResult {
    TextResult(
        async {
            let params = Params::parse(raw.as_deref());
            let key = required(&params, "key")?.to_string();
            let window = window(&params, state.engine.now_ns())?;
            let values = recent_values(&state, &tenant, IndexTerm::All, window, |span| {
                to_zipkin(span).tags.remove(&key).into_iter().collect()
            })
            .await?;
            Ok(Json(values).into_response())
        }
        .await,
    )
}
