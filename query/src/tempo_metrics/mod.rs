//! Tempo's TraceQL metrics API: `/api/metrics/query_range` and `/api/metrics/query`
//! (instant), with Tempo's parameters (`q`, `start`, `end`, `since`, `step`,
//! `exemplars`) and JSON shape, so that Grafana's Explore and Traces Drilldown chart
//! them. Counts are exact: nothing is sampled (`with (sample=...)` is accepted and has
//! nothing to do). Bounded: at most [`MAX_POINTS`] points and [`MAX_SERIES`] series a
//! query, and [`compute::MAX_TRACES`] traces read span by span.

mod compare;
mod compute;
mod series;

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use crate::error::{QueryError, TextResult};
use crate::params::Params;
use crate::traceql::metrics::MetricsExpr;
use crate::traceql::{self, Expr, Intrinsic, Parsed};
use crate::{QueryState, Tenant};
use compute::{Context, Inspected};
use series::{Label, Range, SeriesSet};
use tracekeeper_serve::{Declared, Group, Routes, Shape};

/// As Prometheus: no series of more points than this.
pub const MAX_POINTS: u64 = 11_000;
/// Most series one metrics query may yield, as Tempo's default.
pub const MAX_SERIES: usize = 1_000;
const DEFAULT_WINDOW_NS: u64 = 3_600_000_000_000;
const MAX_EXEMPLARS: usize = 100;

pub fn router(state: Arc<QueryState>) -> Routes {
    Group::new(Declared::read(Shape::Text))
        .get("/api/metrics/query_range", query_range)
        .get("/api/metrics/query", query_instant)
        .with_state(state)
}

pub(crate) fn is_duration(expr: &Expr) -> bool {
    matches!(expr, Expr::Intrinsic(Intrinsic::Duration | Intrinsic::TraceDuration | Intrinsic::EventTimeSinceStart))
}

/// A time parameter: Unix seconds (with a fraction), Unix nanoseconds, or RFC 3339.
fn time(params: &Params, key: &str) -> Result<Option<u64>, QueryError> {
    let Some(text) = params.get(key) else { return Ok(None) };
    if let Ok(n) = text.parse::<u64>() {
        // Seconds until the year 5138; nanoseconds beyond.
        return Ok(Some(if n < 100_000_000_000 { n * 1_000_000_000 } else { n }));
    }
    if let Ok(s) = text.parse::<f64>() {
        if s.is_finite() && s >= 0.0 {
            return Ok(Some((s * 1e9) as u64));
        }
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .and_then(|ns| u64::try_from(ns).ok())
        .map(Some)
        .ok_or_else(|| {
            QueryError::BadRequest(format!(
                "parameter '{key}' must be Unix seconds, nanoseconds or RFC 3339, got {text:?}"
            ))
        })
}

fn duration_param(params: &Params, key: &str) -> Result<Option<u64>, QueryError> {
    let Some(text) = params.get(key) else { return Ok(None) };
    if let Ok(seconds) = text.parse::<f64>() {
        if seconds.is_finite() && seconds >= 0.0 {
            return Ok(Some((seconds * 1e9) as u64));
        }
    }
    tracekeeper_model::duration::parse_go_duration(text)
        .map(Some)
        .map_err(|_| QueryError::BadRequest(format!("parameter '{key}' must be a duration such as 60s, got {text:?}")))
}

/// The range asked for: `start`/`end` (or `since` before `end`), cut at `step`
/// (default: a hundredth of the range, at least a second), start aligned down to it.
fn range(params: &Params, now_ns: u64, instant: bool) -> Result<Range, QueryError> {
    let end = time(params, "end")?.unwrap_or(now_ns);
    let start = match (time(params, "start")?, duration_param(params, "since")?) {
        (Some(start), _) => start,
        (None, Some(since)) => end.saturating_sub(since),
        (None, None) => end.saturating_sub(DEFAULT_WINDOW_NS),
    };
    if start >= end {
        return Err(QueryError::BadRequest("parameter 'start' must be before 'end'".into()));
    }
    if instant {
        return Ok(Range { start_ns: start, end_ns: end, step_ns: end - start });
    }
    let step = duration_param(params, "step")?.unwrap_or(((end - start) / 100).max(1_000_000_000));
    if step == 0 {
        return Err(QueryError::BadRequest("parameter 'step' must be positive".into()));
    }
    let start = start - start % step;
    let range = Range { start_ns: start, end_ns: end, step_ns: step };
    if range.intervals() as u64 > MAX_POINTS {
        return Err(QueryError::BadRequest(format!(
            "a step of {step} ns cuts this range into {} points, more than {MAX_POINTS}: raise 'step'",
            range.intervals()
        )));
    }
    Ok(range)
}

fn evaluate<'a>(
    ctx: &'a Context<'a>,
    expr: &'a MetricsExpr,
    inspected: &'a mut Inspected,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<SeriesSet, QueryError>> + Send + 'a>> {
    Box::pin(async move {
        Ok(match expr {
            MetricsExpr::Leaf(leaf) => {
                let (set, seen) = compute::leaf(ctx, leaf).await?;
                inspected.traces += seen.traces;
                inspected.spans += seen.spans;
                inspected.cells += seen.cells;
                if set.len() > MAX_SERIES {
                    return Err(QueryError::BadRequest(format!(
                        "the query yields more than {MAX_SERIES} series: filter further or group by fewer fields"
                    )));
                }
                set
            }
            MetricsExpr::Const(c) => {
                let values = vec![*c; ctx.range.intervals()];
                SeriesSet::from([(Vec::new(), series::Series { values, exemplars: Vec::new() })])
            }
            MetricsExpr::Math(op, a, b) => {
                let left = evaluate(ctx, a, inspected).await?;
                let right = evaluate(ctx, b, inspected).await?;
                series::math(*op, &left, &right)
            }
            MetricsExpr::Filter(inner, op, threshold) => {
                let set = evaluate(ctx, inner, inspected).await?;
                let (op, threshold) = (*op, *threshold);
                series::filter(set, move |v| traceql::compare_numbers(op, v, threshold))
            }
            MetricsExpr::TopK(inner, k) => series::top(evaluate(ctx, inner, inspected).await?, *k, true),
            MetricsExpr::BottomK(inner, k) => series::top(evaluate(ctx, inner, inspected).await?, *k, false),
        })
    })
}

fn label_json(label: &Label) -> Value {
    match label {
        Label::Str(s) => json!({ "stringValue": s }),
        Label::Int(i) => json!({ "intValue": i.to_string() }),
        Label::Float(x) => json!({ "doubleValue": x.parse::<f64>().unwrap_or(f64::NAN) }),
        Label::Bool(b) => json!({ "boolValue": b }),
        Label::Nil => json!({}),
    }
}

fn prom_labels(labels: &series::Labels) -> String {
    let text = |l: &Label| match l {
        Label::Str(s) => s.clone(),
        Label::Int(i) => i.to_string(),
        Label::Float(x) => x.clone(),
        Label::Bool(b) => b.to_string(),
        Label::Nil => "nil".into(),
    };
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={:?}", text(v))).collect();
    format!("{{{}}}", pairs.join(", "))
}

async fn answer(state: &QueryState, tenant: &str, raw: Option<&str>, instant: bool) -> Result<Value, QueryError> {
    let params = Params::parse(raw);
    let text = params.get("q").ok_or_else(|| QueryError::BadRequest("parameter 'q' (TraceQL) is required".into()))?;
    let query = match traceql::parse_any(text).map_err(QueryError::BadRequest)? {
        Parsed::Metrics(query) => query,
        Parsed::Search(_) => {
            return Err(QueryError::BadRequest(
                "TraceQL: this is a search query: a metrics query ends in a metrics function, as in { } | rate()"
                    .into(),
            ))
        }
    };
    let range = range(&params, state.engine.now_ns(), instant)?;
    let max_exemplars = params.number::<usize>("exemplars")?.unwrap_or(MAX_EXEMPLARS).min(MAX_EXEMPLARS);
    let ctx = Context { state, tenant, range, max_exemplars };
    let mut inspected = Inspected::default();
    let set = evaluate(&ctx, &query.expr, &mut inspected).await?;
    let series: Vec<Value> = set
        .iter()
        .map(|(labels, s)| {
            let labels_json: Vec<Value> =
                labels.iter().map(|(k, v)| json!({ "key": k, "value": label_json(v) })).collect();
            let mut out = json!({ "labels": labels_json, "promLabels": prom_labels(labels) });
            if instant {
                out["value"] = json!(s.values.first().copied().filter(|v| !v.is_nan()).unwrap_or(0.0));
            } else {
                out["samples"] = s
                    .values
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| !v.is_nan())
                    .map(|(i, v)| json!({ "timestampMs": range.timestamp_ms(i).to_string(), "value": v }))
                    .collect();
                out["exemplars"] = s
                    .exemplars
                    .iter()
                    .map(|e| {
                        json!({
                            "labels": [
                                { "key": "trace:id", "value": { "stringValue": e.trace_id } },
                                { "key": "span:id", "value": { "stringValue": e.span_id } },
                            ],
                            "value": e.value,
                            "timestampMs": e.timestamp_ms.to_string(),
                        })
                    })
                    .collect();
            }
            out
        })
        .collect();
    let metrics = json!({
        "inspectedTraces": inspected.traces,
        "inspectedSpans": inspected.spans.to_string(),
        "inspectedBytes": "0",
        "totalJobs": 1,
        "completedJobs": 1,
    });
    Ok(json!({ "series": series, "metrics": metrics }))
}

async fn query_range(State(state): State<Arc<QueryState>>, tenant: Tenant, RawQuery(raw): RawQuery) -> TextResult {
    TextResult(answer(&state, &tenant, raw.as_deref(), false).await.map(|v| Json(v).into_response()))
}

async fn query_instant(State(state): State<Arc<QueryState>>, tenant: Tenant, RawQuery(raw): RawQuery) -> TextResult {
    TextResult(answer(&state, &tenant, raw.as_deref(), true).await.map(|v| Json(v).into_response()))
}
