//! Grafana Tempo's HTTP API, so that Grafana's Tempo data source works: trace by id
//! (OTLP JSON, or protobuf on `Accept: application/protobuf`), search with TraceQL,
//! tag names and values (`shared/reference/zipkin-tempo-quickwit.md` §1). Errors are
//! plain text, as Tempo's are.
//!
//! `GET /api/traces/{id}` is also Jaeger's path: JSON there keeps Jaeger's shape, and
//! Tempo clients get Tempo's through `Accept: application/protobuf` (what Grafana
//! sends) or `/api/v2/traces/{id}`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tracekeeper_model::otlp::{to_resource_spans, value_to_proto};
use tracekeeper_model::otlp_json::encode_traces_data;
use tracekeeper_model::{AnyValue, Span};

use crate::engine::{Found, TraceQuery};
use crate::error::{QueryError, TextResult};
use crate::jaeger_api::parse_trace_id;
use crate::params::Params;
use crate::predicate::SpanPredicate;
use crate::traceql::{self, Expr, SpanSet, TraceView};
use crate::QueryState;
use crate::Tenant;
use tracekeeper_serve::{Declared, Group, Routes, Shape};

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 10_000;
const DEFAULT_SPSS: usize = 3;
/// Without `start`/`end`, search and tag listings cover the last day.
const DEFAULT_WINDOW_NS: u64 = 86_400_000_000_000;

pub fn router(state: Arc<QueryState>) -> Routes {
    Group::new(Declared::read(Shape::Text))
        .get("/api/echo", || async { "echo" })
        .get("/api/status/buildinfo", buildinfo)
        .get("/api/v2/traces/{trace_id}", trace_v2)
        .get("/api/search", search)
        .with_state(state.clone())
        .merge(crate::tempo_tags::router(state))
}

/// The Tempo API level served, for Grafana's feature checks: 2.1 has TraceQL search
/// and the tag APIs, and predates streaming over gRPC, which is not served here (so
/// Grafana keeps to HTTP).
const TEMPO_API_LEVEL: &str = "2.1.0";

/// `GET /api/status/buildinfo`, which Grafana reads when it loads the data source.
async fn buildinfo() -> Json<Value> {
    Json(json!({
        "version": TEMPO_API_LEVEL,
        "revision": concat!("tracekeeper-", env!("CARGO_PKG_VERSION")),
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }))
}

/// Tempo's `Trace` message: the same wire format as OTLP `TracesData`.
#[derive(Clone, PartialEq, prost::Message)]
struct TempoTrace {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<opentelemetry_proto::tonic::trace::v1::ResourceSpans>,
}

/// Tempo's `TraceByIDResponse` (metrics, field 2, left out).
#[derive(Clone, PartialEq, prost::Message)]
struct TraceByIdResponse {
    #[prost(message, optional, tag = "1")]
    trace: Option<TempoTrace>,
    /// COMPLETE = 0, PARTIAL = 1.
    #[prost(int32, tag = "3")]
    status: i32,
    #[prost(string, tag = "4")]
    message: String,
}

pub fn wants_protobuf(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/protobuf"))
}

pub(crate) fn protobuf(message: &impl prost::Message) -> Response {
    ([(header::CONTENT_TYPE, "application/protobuf")], message.encode_to_vec()).into_response()
}

/// `GET /api/traces/{id}` with `Accept: application/protobuf`: Tempo's `Trace`.
pub fn trace_protobuf(spans: &[Span]) -> Response {
    protobuf(&TempoTrace { resource_spans: to_resource_spans(spans) })
}

async fn trace_v2(
    State(state): State<Arc<QueryState>>,
    tenant: Tenant,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> TextResult {
    TextResult(
        async {
            let (spans, truncated) = state.engine.trace(&tenant, parse_trace_id(&id)?).await?;
            if spans.is_empty() {
                return Err(QueryError::NotFound("trace not found".into()));
            }
            let message = state.truncation_warning(truncated).join("; ");
            if wants_protobuf(&headers) {
                let trace = Some(TempoTrace { resource_spans: to_resource_spans(&spans) });
                return Ok(protobuf(&TraceByIdResponse { trace, status: i32::from(truncated), message }));
            }
            let status = if truncated { "PARTIAL" } else { "COMPLETE" };
            let mut body = json!({ "trace": encode_traces_data(&spans), "status": status });
            if truncated {
                body["message"] = Value::String(message);
            }
            Ok(Json(body).into_response())
        }
        .await,
    )
}

/// `[start, end]` from epoch-second parameters, else the last day.
pub(crate) fn window(params: &Params, now_ns: u64) -> Result<(u64, u64), QueryError> {
    let seconds = |key: &str| -> Result<Option<u64>, QueryError> {
        Ok(params.number::<u64>(key)?.map(|s| s.saturating_mul(1_000_000_000)))
    };
    let end = seconds("end")?.unwrap_or(now_ns);
    let start = seconds("start")?.unwrap_or(end.saturating_sub(DEFAULT_WINDOW_NS));
    if start > end {
        return Err(QueryError::BadRequest("parameter 'start' must not be after 'end'".into()));
    }
    Ok((start, end))
}

pub(crate) fn parse_traceql(text: &str) -> Result<traceql::Query, QueryError> {
    traceql::parse(text).map_err(QueryError::BadRequest)
}

/// `tags=key=value key2="a b"` (logfmt) as span conditions.
fn parse_logfmt(text: &str, predicate: &mut SpanPredicate) -> Result<(), QueryError> {
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').ok_or_else(|| {
            QueryError::BadRequest(format!("parameter 'tags' must be logfmt key=value pairs, got {rest:?}"))
        })?;
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end =
                    quoted.find('"').ok_or_else(|| QueryError::BadRequest("unterminated quote in 'tags'".into()))?;
                (&quoted[..end], &quoted[end + 1..])
            }
            None => after.split_once(' ').unwrap_or((after, "")),
        };
        match key.trim() {
            "service.name" => predicate.service = Some(value.to_string()),
            "name" => predicate.operation = Some(value.to_string()),
            key => predicate.tags.push((key.to_string(), value.to_string())),
        }
        rest = after.trim_start();
    }
    Ok(())
}

fn kv_json(key: &str, value: &AnyValue) -> Value {
    json!({ "key": key, "value": serde_json::to_value(value_to_proto(value)).unwrap_or(Value::Null) })
}

/// The attributes the query reads or selects that `span` has, as OTLP JSON key-values.
fn matched_attributes(span: &Span, fields: &[&Expr]) -> Vec<Value> {
    let mut out = BTreeMap::new();
    for field in fields {
        let Expr::Attribute(attr) = field else { continue };
        if let Some(value) = traceql::attribute_of(span, attr) {
            out.entry(attr.name.clone()).or_insert_with(|| kv_json(&attr.name, value));
        }
    }
    out.into_values().collect()
}

fn spanset_json(found: &Found, set: &SpanSet, fields: &[&Expr], spss: usize) -> Value {
    let spans: Vec<Value> = set
        .spans
        .iter()
        .take(spss)
        .map(|&i| {
            let span = &found.spans[i];
            json!({
                "spanID": span.span_id.to_hex(),
                "name": span.name,
                "startTimeUnixNano": span.start_ns.to_string(),
                "durationNanos": span.duration_ns().to_string(),
                "attributes": matched_attributes(span, fields),
            })
        })
        .collect();
    let attributes: Vec<Value> = set.attributes.iter().map(|(k, v)| kv_json(k, &AnyValue::String(v.clone()))).collect();
    json!({ "spans": spans, "matched": set.spans.len(), "attributes": attributes })
}

fn trace_json(found: &Found, sets: &[SpanSet], fields: &[&Expr], spss: usize) -> Value {
    let span_sets: Vec<Value> = sets.iter().map(|set| spanset_json(found, set, fields, spss)).collect();
    let span_set = span_sets.first().cloned().unwrap_or_else(|| json!({ "spans": [], "matched": 0 }));
    let stats: BTreeMap<&str, Value> = found
        .summary
        .services
        .iter()
        .map(|(service, spans, errors)| (service.as_str(), json!({ "spanCount": spans, "errorCount": errors })))
        .collect();
    json!({
        "traceID": found.summary.trace_id.to_hex(),
        "rootServiceName": found.summary.root_service,
        "rootTraceName": found.summary.root_name,
        "startTimeUnixNano": found.summary.start_ns.to_string(),
        "durationMs": found.summary.duration_ns / 1_000_000,
        "spanSet": span_set,
        "spanSets": span_sets,
        "serviceStats": stats,
    })
}

/// A parsed `/api/search`: the candidate search, the TraceQL query that verifies each
/// trace (if one was given), and the most matching spans shown per trace.
pub struct TempoSearch {
    pub query: TraceQuery,
    pub traceql: Option<traceql::Query>,
    pub spss: usize,
}

/// Parses `/api/search` parameters: `q` (TraceQL) or `tags` (logfmt), the window, the
/// durations and the limits.
pub fn parse_search(params: &Params, now_ns: u64) -> Result<TempoSearch, QueryError> {
    let (start_ns, end_ns) = window(params, now_ns)?;
    let traceql = params.get("q").map(parse_traceql).transpose()?;
    let mut span = traceql.as_ref().map(traceql::Query::hint).unwrap_or_default();
    if traceql.is_none() {
        if let Some(tags) = params.get("tags") {
            parse_logfmt(tags, &mut span)?;
        }
    }
    let limit = params.number::<usize>("limit")?.filter(|l| *l > 0).unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    let spss = params.number::<usize>("spss")?.filter(|s| *s > 0).unwrap_or(DEFAULT_SPSS);
    let query = TraceQuery {
        span,
        start_ns,
        end_ns,
        min_trace_duration_ns: params.duration("minDuration")?,
        max_trace_duration_ns: params.duration("maxDuration")?,
        limit,
    };
    Ok(TempoSearch { query, traceql, spss })
}

async fn search(State(state): State<Arc<QueryState>>, tenant: Tenant, RawQuery(raw): RawQuery) -> TextResult {
    TextResult(
        async {
            let TempoSearch { query, traceql, spss } =
                parse_search(&Params::parse(raw.as_deref()), state.engine.now_ns())?;
            let span = &query.span;
            let spansets = |spans: &[Span]| -> Vec<SpanSet> {
                match (&traceql, TraceView::new(spans)) {
                    (Some(q), Some(view)) => q.spansets(&view),
                    (Some(_), None) => Vec::new(),
                    (None, _) => {
                        let spans: Vec<usize> = (0..spans.len()).filter(|&i| span.matches(&spans[i])).collect();
                        if spans.is_empty() {
                            Vec::new()
                        } else {
                            vec![SpanSet { spans, attributes: Vec::new() }]
                        }
                    }
                }
            };
            let found = state.engine.search_where(&tenant, &query, &|spans| !spansets(spans).is_empty()).await?;
            let fields = traceql.as_ref().map(traceql::Query::fields).unwrap_or_default();
            let traces: Vec<Value> = found.iter().map(|f| trace_json(f, &spansets(&f.spans), &fields, spss)).collect();
            let metrics = json!({ "inspectedTraces": traces.len(), "completedJobs": 1, "totalJobs": 1 });
            let response = Json(json!({ "traces": traces, "metrics": metrics })).into_response();
            Ok(crate::budget::with_partial_note(response, found.partial.as_deref()))
        }
        .await,
    )
}
