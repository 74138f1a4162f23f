//! Jaeger's `/api/v3` HTTP gateway, which the Jaeger UI uses for search since the
//! classic search endpoints were removed: OTLP JSON traces, RFC 3339 times, and errors
//! as `{"error":{"httpCode","message"}}` (`shared/reference/jaeger.md` §3).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;
use tracekeeper_model::otlp_json::encode_traces_data;
use tracekeeper_model::Span;

use crate::budget::{with_partial_note, Searched};
use crate::engine::TraceQuery;
use crate::error::QueryError;
use crate::jaeger_api::{operations_of, parse_kind, parse_trace_id};
use crate::params::Params;
use crate::predicate::SpanPredicate;
use crate::QueryState;
use crate::Tenant;
use tracekeeper_serve::{Declared, Group, Routes, Shape};

const DEFAULT_SEARCH_DEPTH: usize = 100;

/// Each parameter by its current camelCase name, then the snake_case (and older)
/// aliases Jaeger still accepts and many clients send.
const SERVICE: &[&str] = &["query.serviceName", "query.service_name"];
const OPERATION: &[&str] = &["query.operationName", "query.operation_name"];
const START_MIN: &[&str] = &["query.startTimeMin", "query.start_time_min"];
const START_MAX: &[&str] = &["query.startTimeMax", "query.start_time_max"];
const DURATION_MIN: &[&str] = &["query.durationMin", "query.duration_min"];
const DURATION_MAX: &[&str] = &["query.durationMax", "query.duration_max"];
const SEARCH_DEPTH: &[&str] = &["query.searchDepth", "query.search_depth", "query.num_traces"];
const ATTRIBUTES: &[&str] = &["query.attributes"];
const SPAN_KIND: &[&str] = &["spanKind", "span_kind"];
const MAX_SEARCH_DEPTH: usize = 10_000;

pub fn router(state: Arc<QueryState>) -> Routes {
    Group::new(Declared::read(Shape::JaegerV3))
        .get("/api/v3/services", services)
        .get("/api/v3/operations", operations)
        .get("/api/v3/traces", find_traces)
        .get("/api/v3/traces/{trace_id}", get_trace)
        .get("/api/v3/trace-summaries", trace_summaries)
        .with_state(state)
}

/// Wraps a handler result so that errors take the api_v3 shape.
pub struct V3Result(pub Result<Response, QueryError>);

impl IntoResponse for V3Result {
    fn into_response(self) -> Response {
        self.0.unwrap_or_else(QueryError::into_v3_response)
    }
}

async fn services(State(state): State<Arc<QueryState>>, tenant: Tenant) -> V3Result {
    V3Result(async { Ok(Json(json!({ "services": state.engine.services(&tenant).await? })).into_response()) }.await)
}

async fn operations(State(state): State<Arc<QueryState>>, tenant: Tenant, RawQuery(raw): RawQuery) -> V3Result {
    V3Result(
        async {
            let params = Params::parse(raw.as_deref());
            let service = params
                .get("service")
                .ok_or_else(|| QueryError::BadRequest("parameter 'service' is required".into()))?;
            let operations =
                operations_of(&state, &tenant, service, params.first_of(SPAN_KIND).map(|(_, v)| v)).await?;
            Ok(Json(json!({ "operations": operations })).into_response())
        }
        .await,
    )
}

fn rfc3339_ns(params: &Params, names: &[&str]) -> Result<u64, QueryError> {
    let (key, text) = params
        .first_of(names)
        .ok_or_else(|| QueryError::BadRequest(format!("parameter '{}' is required", names[0])))?;
    let time = chrono::DateTime::parse_from_rfc3339(text).map_err(|e| {
        QueryError::BadRequest(format!(
            "parameter '{key}' must be an RFC 3339 time such as 2026-01-02T15:04:05.999Z: {e}"
        ))
    })?;
    time.timestamp_nanos_opt()
        .and_then(|ns| u64::try_from(ns).ok())
        .ok_or_else(|| QueryError::BadRequest(format!("parameter '{key}' is out of range")))
}

/// Parses the `query.*` parameters of `/api/v3/traces` and `/api/v3/trace-summaries`.
pub fn parse_search(params: &Params) -> Result<TraceQuery, QueryError> {
    let start_ns = rfc3339_ns(params, START_MIN)?;
    let end_ns = rfc3339_ns(params, START_MAX)?;
    if start_ns > end_ns {
        return Err(QueryError::BadRequest("'query.startTimeMin' must not be after 'query.startTimeMax'".into()));
    }
    let mut tags = Vec::new();
    if let Some((_, text)) = params.first_of(ATTRIBUTES) {
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).map_err(|e| {
            QueryError::BadRequest(format!("parameter 'query.attributes' must be a JSON object of strings: {e}"))
        })?;
        for (key, value) in map {
            let value = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            tags.push((key, value));
        }
    }
    let duration = |names: &[&str]| match params.first_of(names) {
        Some((key, _)) => params.duration(key),
        None => Ok(None),
    };
    let (min, max) = (duration(DURATION_MIN)?, duration(DURATION_MAX)?);
    if let (Some(min), Some(max)) = (min, max) {
        if min > max {
            return Err(QueryError::BadRequest(
                "'query.durationMin' must not be greater than 'query.durationMax'".into(),
            ));
        }
    }
    let depth = match params.first_of(SEARCH_DEPTH) {
        Some((key, _)) => params.number::<usize>(key)?,
        None => None,
    };
    let depth = depth.filter(|d| *d > 0).unwrap_or(DEFAULT_SEARCH_DEPTH);
    Ok(TraceQuery {
        span: SpanPredicate {
            service: params.first_of(SERVICE).map(|(_, v)| v.to_string()),
            operation: params.first_of(OPERATION).map(|(_, v)| v.to_string()),
            kind: parse_kind(params.first_of(&["query.spanKind", "query.span_kind"]).map(|(_, v)| v))?,
            tags,
            min_duration_ns: min,
            max_duration_ns: max,
            ..Default::default()
        },
        start_ns,
        end_ns,
        min_trace_duration_ns: None,
        max_trace_duration_ns: None,
        limit: depth.min(MAX_SEARCH_DEPTH),
    })
}

fn no_traces() -> QueryError {
    QueryError::NotFound("No traces found".into())
}

async fn search(state: &QueryState, tenant: &str, raw: Option<&str>) -> Result<Searched, QueryError> {
    let query = parse_search(&Params::parse(raw))?;
    let found = state.engine.search(tenant, &query).await?;
    if found.is_empty() {
        return Err(no_traces());
    }
    Ok(found)
}

async fn find_traces(State(state): State<Arc<QueryState>>, tenant: Tenant, RawQuery(raw): RawQuery) -> V3Result {
    V3Result(
        async {
            let found = search(&state, &tenant, raw.as_deref()).await?;
            let spans: Vec<&Span> = found.iter().flat_map(|f| &f.spans).collect();
            let response = Json(json!({ "result": encode_traces_data(spans) })).into_response();
            Ok(with_partial_note(response, found.partial.as_deref()))
        }
        .await,
    )
}

async fn get_trace(State(state): State<Arc<QueryState>>, tenant: Tenant, Path(id): Path<String>) -> V3Result {
    V3Result(
        async {
            let (spans, _) = state.engine.trace(&tenant, parse_trace_id(&id)?).await?;
            if spans.is_empty() {
                return Err(no_traces());
            }
            Ok(Json(json!({ "result": encode_traces_data(&spans) })).into_response())
        }
        .await,
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    trace_id: String,
    root_service_name: String,
    root_operation_name: String,
    /// 64-bit integers are strings in proto3 JSON.
    min_start_time_unix_nano: String,
    max_start_time_unix_nano: String,
    max_end_time_unix_nano: String,
    span_count: usize,
    error_span_count: usize,
    services: Vec<ServiceSummary>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceSummary {
    name: String,
    span_count: usize,
    error_span_count: usize,
}

async fn trace_summaries(State(state): State<Arc<QueryState>>, tenant: Tenant, RawQuery(raw): RawQuery) -> V3Result {
    V3Result(
        async {
            let found = search(&state, &tenant, raw.as_deref()).await?;
            let summaries: Vec<Summary> = found
                .iter()
                .map(|f| Summary {
                    trace_id: f.summary.trace_id.to_hex(),
                    root_service_name: f.summary.root_service.clone(),
                    root_operation_name: f.summary.root_name.clone(),
                    min_start_time_unix_nano: f.summary.start_ns.to_string(),
                    max_start_time_unix_nano: f.spans.iter().map(|s| s.start_ns).max().unwrap_or(0).to_string(),
                    max_end_time_unix_nano: (f.summary.start_ns + f.summary.duration_ns).to_string(),
                    span_count: f.summary.span_count,
                    error_span_count: f.summary.error_count,
                    services: f
                        .summary
                        .services
                        .iter()
                        .map(|(name, span_count, error_span_count)| ServiceSummary {
                            name: name.clone(),
                            span_count: *span_count,
                            error_span_count: *error_span_count,
                        })
                        .collect(),
                })
                .collect();
            Ok(with_partial_note(Json(json!({ "summaries": summaries })).into_response(), found.partial.as_deref()))
        }
        .await,
    )
}
