//! Jaeger's classic JSON API (`/api/services`, `/api/operations`, `/api/traces`, ...),
//! with the shapes in `shared/reference/jaeger.md` §3.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tracekeeper_model::{jaeger, SpanKind, TraceId};
use tracekeeper_storage::IndexTerm;

use crate::budget::with_partial_note;
use crate::engine::TraceQuery;
use crate::error::{JaegerResult, QueryError};
use crate::params::Params;
use crate::predicate::SpanPredicate;
use crate::QueryState;
use crate::Tenant;
use tracekeeper_serve::{Declared, Group, Routes, Shape};

const DEFAULT_LOOKBACK_NS: u64 = 2 * 86_400_000_000_000;
const DEFAULT_DEPENDENCY_LOOKBACK_MS: u64 = 86_400_000;
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 10_000;

pub fn router(state: Arc<QueryState>) -> Routes {
    Group::new(Declared::read(Shape::Jaeger))
        .get("/api/services", services)
        .get("/api/services/{service}/operations", service_operations)
        .get("/api/operations", operations)
        .get("/api/traces", find_traces)
        .get("/api/traces/{trace_id}", get_trace)
        .get("/api/dependencies", dependencies)
        .with_state(state)
}

#[derive(Serialize)]
pub(crate) struct Envelope<T: Serialize> {
    pub data: T,
    pub total: usize,
    pub limit: usize,
    pub offset: usize,
    pub errors: Option<Vec<ApiError>>,
}

#[derive(Serialize)]
pub(crate) struct ApiError {
    code: u16,
    msg: String,
    #[serde(rename = "traceID", skip_serializing_if = "Option::is_none")]
    trace_id: Option<String>,
}

fn envelope<T: Serialize>(data: Vec<T>, errors: Vec<ApiError>) -> Response {
    let total = data.len();
    Json(Envelope { data, total, limit: 0, offset: 0, errors: (!errors.is_empty()).then_some(errors) }).into_response()
}

async fn services(State(state): State<Arc<QueryState>>, tenant: Tenant) -> JaegerResult {
    JaegerResult(async { Ok(envelope(state.engine.services(&tenant).await?, vec![])) }.await)
}

async fn service_operations(
    State(state): State<Arc<QueryState>>,
    tenant: Tenant,
    Path(service): Path<String>,
) -> JaegerResult {
    JaegerResult(
        async {
            let mut names: Vec<String> =
                state.engine.operations(&tenant, Some(&service)).await?.into_iter().map(|o| o.name).collect();
            names.dedup();
            Ok(envelope(names, vec![]))
        }
        .await,
    )
}

/// An operation as both Jaeger APIs list it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationJson {
    name: String,
    span_kind: &'static str,
}

/// The operations of `service`, of one kind when `span_kind` names it.
pub async fn operations_of(
    state: &QueryState,
    tenant: &str,
    service: &str,
    span_kind: Option<&str>,
) -> Result<Vec<OperationJson>, QueryError> {
    let kind = parse_kind(span_kind)?;
    Ok(state
        .engine
        .operations(tenant, Some(service))
        .await?
        .into_iter()
        .filter(|o| kind.is_none_or(|k| o.kind == k))
        .map(|o| OperationJson { name: o.name, span_kind: o.kind.jaeger_name() })
        .collect())
}

async fn operations(State(state): State<Arc<QueryState>>, tenant: Tenant, RawQuery(raw): RawQuery) -> JaegerResult {
    JaegerResult(
        async {
            let params = Params::parse(raw.as_deref());
            let service = params
                .get("service")
                .ok_or_else(|| QueryError::BadRequest("parameter 'service' is required".into()))?;
            Ok(envelope(operations_of(&state, &tenant, service, params.get("spanKind")).await?, vec![]))
        }
        .await,
    )
}

pub fn parse_kind(text: Option<&str>) -> Result<Option<SpanKind>, QueryError> {
    text.map(|k| {
        SpanKind::from_jaeger_name(k).ok_or_else(|| {
            QueryError::BadRequest(format!(
                "unknown span kind {k:?}: use server, client, producer, consumer or internal"
            ))
        })
    })
    .transpose()
}

pub fn parse_trace_id(text: &str) -> Result<TraceId, QueryError> {
    TraceId::from_hex(text).map_err(|e| QueryError::BadRequest(format!("invalid trace id {text:?}: {e}")))
}

async fn get_trace(
    State(state): State<Arc<QueryState>>,
    tenant: Tenant,
    headers: HeaderMap,
    Path(trace_id): Path<String>,
) -> JaegerResult {
    JaegerResult(
        async {
            let id = parse_trace_id(&trace_id)?;
            let mut pages = state.engine.trace_pages(&tenant, id);
            let Some(first) = pages.next().await? else {
                return Err(QueryError::NotFound("trace not found".into()));
            };
            // Tempo's clients (Grafana) ask for protobuf on this same path.
            if crate::tempo_api::wants_protobuf(&headers) {
                let mut spans = first;
                while let Some(page) = pages.next().await? {
                    spans.extend(page);
                }
                return Ok(crate::tempo_api::trace_protobuf(&spans));
            }
            Ok(crate::jaeger_stream::trace_response(first, pages, Arc::clone(&state)))
        }
        .await,
    )
}

/// Parses `/api/traces` parameters into a search.
pub fn parse_search(params: &Params, now_ns: u64) -> Result<TraceQuery, QueryError> {
    let micros = |key: &str| -> Result<Option<u64>, QueryError> {
        Ok(params.number::<u64>(key)?.map(|us| us.saturating_mul(1000)))
    };
    let end_ns = micros("end")?.unwrap_or(now_ns);
    let start_ns = micros("start")?.unwrap_or(end_ns.saturating_sub(DEFAULT_LOOKBACK_NS));
    if start_ns > end_ns {
        return Err(QueryError::BadRequest("parameter 'start' must not be after 'end'".into()));
    }
    let mut tags = Vec::new();
    if let Some(json) = params.get("tags") {
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json)
            .map_err(|e| QueryError::BadRequest(format!("parameter 'tags' must be a JSON object of strings: {e}")))?;
        for (k, v) in map {
            let v = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            tags.push((k, v));
        }
    }
    for tag in params.all("tag") {
        let (k, v) = tag
            .split_once(':')
            .ok_or_else(|| QueryError::BadRequest(format!("parameter 'tag' must be key:value, got {tag:?}")))?;
        tags.push((k.to_string(), v.to_string()));
    }
    let min = params.duration("minDuration")?;
    let max = params.duration("maxDuration")?;
    if let (Some(min), Some(max)) = (min, max) {
        if min > max {
            return Err(QueryError::BadRequest("'minDuration' must not be greater than 'maxDuration'".into()));
        }
    }
    let limit = params.number::<usize>("limit")?.filter(|l| *l > 0).unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    Ok(TraceQuery {
        span: SpanPredicate {
            service: params.get("service").map(String::from),
            operation: params.get("operation").map(String::from),
            kind: parse_kind(params.get("spanKind"))?,
            status: None,
            tags,
            min_duration_ns: min,
            max_duration_ns: max,
            words: Vec::new(),
        },
        start_ns,
        end_ns,
        min_trace_duration_ns: None,
        max_trace_duration_ns: None,
        limit,
    })
}

async fn find_traces(State(state): State<Arc<QueryState>>, tenant: Tenant, RawQuery(raw): RawQuery) -> JaegerResult {
    JaegerResult(
        async {
            let params = Params::parse(raw.as_deref());
            let ids: Vec<&str> = params.all("traceID").collect();
            if !ids.is_empty() {
                return multi_get(&state, &tenant, &ids).await;
            }
            let query = parse_search(&params, state.engine.now_ns())?;
            let found = state.engine.search(&tenant, &query).await?;
            let data =
                found.iter().map(|f| jaeger::to_trace(&f.spans, state.truncation_warning(f.truncated))).collect();
            Ok(with_partial_note(envelope::<jaeger::TraceJson>(data, vec![]), found.partial.as_deref()))
        }
        .await,
    )
}

async fn multi_get(state: &QueryState, tenant: &str, ids: &[&str]) -> Result<Response, QueryError> {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for text in ids {
        let id = parse_trace_id(text)?;
        let (spans, truncated) = state.engine.trace(tenant, id).await?;
        if spans.is_empty() {
            errors.push(ApiError { code: 404, msg: "trace not found".into(), trace_id: Some(id.to_jaeger_hex()) });
        } else {
            found.push((spans, state.truncation_warning(truncated)));
        }
    }
    let data = found.iter().map(|(spans, warnings)| jaeger::to_trace(spans, warnings.clone())).collect();
    Ok(envelope::<jaeger::TraceJson>(data, errors))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DependencyJson {
    parent: String,
    child: String,
    call_count: u64,
    /// Calls whose child span failed; not in Jaeger's shape, which its clients ignore.
    error_count: u64,
}

/// `GET /api/dependencies?endTs=&lookback=` (ms): the service graph of the window,
/// computed from the stored traces. `service` keeps the edges that touch it.
async fn dependencies(State(state): State<Arc<QueryState>>, tenant: Tenant, RawQuery(raw): RawQuery) -> JaegerResult {
    JaegerResult(
        async {
            let params = Params::parse(raw.as_deref());
            let (start_ns, end_ns) = params.ms_window(state.engine.now_ns(), DEFAULT_DEPENDENCY_LOOKBACK_MS)?;
            let term = params.get("service").map_or(IndexTerm::All, |s| IndexTerm::Service(s.to_string()));
            let (links, note) = crate::dependencies::graph(&state.engine, &tenant, term, start_ns, end_ns).await?;
            let service = params.get("service");
            let data: Vec<DependencyJson> = links
                .into_iter()
                .filter(|l| service.is_none_or(|s| l.parent == s || l.child == s))
                .map(|l| DependencyJson {
                    parent: l.parent,
                    child: l.child,
                    call_count: l.call_count,
                    error_count: l.error_count,
                })
                .collect();
            Ok(with_partial_note(envelope(data, vec![]), note.as_deref()))
        }
        .await,
    )
}
