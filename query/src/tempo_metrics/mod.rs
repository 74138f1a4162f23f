//! Tempo's TraceQL metrics API: `/api/metrics/query_range` and `/api/metrics/query`
//! (instant), with Tempo's parameters (`q`, `start`, `end`, `since`, `step`,
//! `exemplars`) and its JSON and protobuf shapes, so that Grafana's Explore and Traces Drilldown chart
//! them. Counts are exact: nothing is sampled (`with (sample=...)` is accepted and has
//! nothing to do). Bounded: at most [`MAX_POINTS`] points and [`MAX_SERIES`] series a
//! query, and [`compute::MAX_TRACES`] traces read span by span.

mod compare;
mod compute;
mod proto;
mod series;

pub use compute::MAX_TRACES;

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
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
use tracekeeper_storage::red::MINUTE_NS;

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

/// Tempo's step when none is given: about 240 points, rounded down to a multiple of
/// the first of 1 h, 5 m, 1 m, 15 s, 5 s, 1 s below that (to 50 ms under a minute).
fn default_step(window_ns: u64) -> u64 {
    const SECOND: u64 = 1_000_000_000;
    let baseline = window_ns / 240;
    if window_ns < 60 * SECOND {
        let unit = 50_000_000;
        return (baseline - baseline % unit).max(unit);
    }
    let unit = [3_600, 300, 60, 15, 5, 1].map(|s| s * SECOND).into_iter().find(|unit| *unit < baseline);
    unit.map_or(SECOND, |unit| (baseline - baseline % unit).max(SECOND))
}

/// The range asked for: `start`/`end` (or `since` before `end`), cut at `step`
/// (default: [`default_step`]), start aligned down to it.
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
    let step = duration_param(params, "step")?.unwrap_or_else(|| default_step(end - start));
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

/// A query's answer, before it is written as JSON or protobuf.
struct Answer {
    set: SeriesSet,
    range: Range,
    inspected: Inspected,
    instant: bool,
    /// Said to the client beside the series (Tempo's `message`).
    message: Option<String>,
}

async fn answer(state: &QueryState, tenant: &str, raw: Option<&str>, instant: bool) -> Result<Answer, QueryError> {
    let params = Params::parse(raw);
    let text = params
        .get("q")
        .or_else(|| params.get("query"))
        .ok_or_else(|| QueryError::BadRequest("parameter 'q' (TraceQL) is required".into()))?;
    let query = match traceql::parse_any(text).map_err(QueryError::BadRequest)? {
        Parsed::Metrics(query) => query,
        Parsed::Search(_) => {
            return Err(QueryError::BadRequest(
                "TraceQL: this is a search query: a metrics query ends in a metrics function, as in { } | rate()"
                    .into(),
            ))
        }
    };
    let now_ns = state.engine.now_ns();
    let mut range = range(&params, now_ns, instant)?;
    // Bounded as searches are: the range to the search window, the work to the deadline.
    let budget = state.engine.search_budget();
    let mut notes = Vec::new();
    let (earliest, cut) = budget.window_from(range.start_ns, range.end_ns, now_ns);
    if cut.is_some() {
        range = within_window(range, earliest, instant)?;
        notes.push(format!(
            "only the last {:?} of the range is answered (--max-search-window): no point starts before {} ms",
            budget.max_window,
            range.start_ns / 1_000_000
        ));
    }
    // As Tempo: an absent or 0 `exemplars` means the default; `with (exemplars=...)`
    // overrides it; instant queries have none.
    let asked = params.number::<u64>("exemplars")?.filter(|n| *n > 0);
    let max_exemplars = match (instant, query.hints.exemplars, asked) {
        (true, ..) => 0,
        (false, Some(n), _) | (false, None, Some(n)) => n.min(MAX_EXEMPLARS as u64) as usize,
        (false, None, None) => MAX_EXEMPLARS,
    };
    let ctx = Context { state, tenant, range, max_exemplars };
    let answered = tokio::time::timeout(budget.timeout, answer_in(&ctx, &query.expr, instant)).await;
    let mut answer = answered.map_err(|_| {
        QueryError::BadRequest(format!(
            "the metrics query ran past the query timeout ({:?}, --query-timeout): narrow the time range or the \
             filter, or raise 'step'",
            budget.timeout
        ))
    })??;
    notes.extend(answer.message.take());
    answer.message = (!notes.is_empty()).then(|| notes.join("; "));
    Ok(answer)
}

/// `range` starting at `earliest` (the search window's start) or, for a range query,
/// at the first step boundary after it.
fn within_window(range: Range, earliest: u64, instant: bool) -> Result<Range, QueryError> {
    let start_ns = if instant { earliest } else { earliest.div_ceil(range.step_ns) * range.step_ns };
    if start_ns >= range.end_ns {
        return Err(QueryError::BadRequest(
            "no whole step of the range fits in the search window (--max-search-window): lower 'step'".into(),
        ));
    }
    let step_ns = if instant { range.end_ns - start_ns } else { range.step_ns };
    Ok(Range { start_ns, step_ns, ..range })
}

async fn answer_in(ctx: &Context<'_>, expr: &MetricsExpr, instant: bool) -> Result<Answer, QueryError> {
    let range = ctx.range;
    // At a step the per-minute cells cannot cut (Drilldown's are ranges over its
    // panel's width), the spans are read while they are few; past that, queries the
    // cells can answer are answered from them at the step rounded up to whole minutes,
    // exact at that step. Whether they are few the cells tell at once where they can,
    // else the bound on reading them does.
    let widen = !instant && !range.in_whole_minutes() && ctx.state.red.is_some() && from_cells(expr);
    if widen && too_many_spans(ctx, expr).await? {
        return widened(ctx, expr, instant).await;
    }
    let mut inspected = Inspected::default();
    match evaluate(ctx, expr, &mut inspected).await {
        Ok(set) => Ok(Answer { set, range, inspected, instant, message: None }),
        Err(e) if widen && compute::is_too_many_traces(&e) => widened(ctx, expr, instant).await,
        Err(e) => Err(e),
    }
}

/// Whether, by the cells, some leaf of `expr` selects more spans than may be read.
async fn too_many_spans(ctx: &Context<'_>, expr: &MetricsExpr) -> Result<bool, QueryError> {
    let mut leaves = vec![expr];
    while let Some(expr) = leaves.pop() {
        match expr {
            MetricsExpr::Leaf(leaf) => {
                if compute::spans_by_cells(ctx, leaf).await?.is_some_and(|n| n > compute::MAX_TRACES as u64) {
                    return Ok(true);
                }
            }
            MetricsExpr::Const(_) => {}
            MetricsExpr::Math(_, a, b) => leaves.extend([&**a, &**b]),
            MetricsExpr::Filter(inner, ..) | MetricsExpr::TopK(inner, _) | MetricsExpr::BottomK(inner, _) => {
                leaves.push(inner)
            }
        }
    }
    Ok(false)
}

/// `expr` answered from the cells at the step rounded up to whole minutes, and saying so.
async fn widened(ctx: &Context<'_>, expr: &MetricsExpr, instant: bool) -> Result<Answer, QueryError> {
    let asked_s = ctx.range.step_ns as f64 / 1e9;
    let step_ns = ctx.range.step_ns.div_ceil(MINUTE_NS) * MINUTE_NS;
    let range = Range { start_ns: ctx.range.start_ns - ctx.range.start_ns % step_ns, step_ns, ..ctx.range };
    let ctx = Context { range, ..*ctx };
    let mut inspected = Inspected::default();
    let set = evaluate(&ctx, expr, &mut inspected).await?;
    let message = format!(
        "answered from per-minute counts at a step of {} s: at the {asked_s} s asked for, the spans of more than {} \
         traces would be read",
        step_ns / 1_000_000_000,
        compute::MAX_TRACES
    );
    Ok(Answer { set, range, inspected, instant, message: Some(message) })
}

/// Whether every leaf of `expr` is answered from the RED cells at whole minutes.
fn from_cells(expr: &MetricsExpr) -> bool {
    match expr {
        MetricsExpr::Leaf(leaf) => compute::cells_could_answer(leaf),
        MetricsExpr::Const(_) => true,
        MetricsExpr::Math(_, a, b) => from_cells(a) && from_cells(b),
        MetricsExpr::Filter(inner, ..) | MetricsExpr::TopK(inner, _) | MetricsExpr::BottomK(inner, _) => {
            from_cells(inner)
        }
    }
}

fn json_answer(answer: &Answer) -> Value {
    let range = answer.range;
    let series: Vec<Value> = answer
        .set
        .iter()
        .map(|(labels, s)| {
            let labels_json: Vec<Value> =
                labels.iter().map(|(k, v)| json!({ "key": k, "value": label_json(v) })).collect();
            let mut out = json!({ "labels": labels_json, "promLabels": prom_labels(labels) });
            if answer.instant {
                out["value"] = json!(instant_value(s));
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
                            "timestampMs": (e.start_ns / 1_000_000).to_string(),
                        })
                    })
                    .collect();
            }
            out
        })
        .collect();
    // No `inspectedBytes`: the stores do not count the bytes they read, and Tempo leaves
    // out what is zero.
    let metrics = json!({
        "inspectedTraces": answer.inspected.traces,
        "inspectedSpans": answer.inspected.spans.to_string(),
        "totalJobs": 1,
        "completedJobs": 1,
    });
    let mut out = json!({ "series": series, "metrics": metrics });
    if let Some(message) = &answer.message {
        out["message"] = json!(message);
    }
    out
}

fn instant_value(series: &series::Series) -> f64 {
    series.values.first().copied().filter(|v| !v.is_nan()).unwrap_or(0.0)
}

fn proto_answer(answer: &Answer) -> axum::response::Response {
    let metrics = Some(proto::SearchMetrics {
        inspected_traces: answer.inspected.traces.min(u64::from(u32::MAX)) as u32,
        inspected_bytes: 0,
        completed_jobs: 1,
        total_jobs: 1,
        inspected_spans: answer.inspected.spans,
    });
    if answer.instant {
        let series = answer
            .set
            .iter()
            .map(|(labels, s)| proto::InstantSeries {
                labels: proto::labels(labels),
                value: instant_value(s),
                prom_labels: prom_labels(labels),
            })
            .collect();
        let message = answer.message.clone().unwrap_or_default();
        return crate::tempo_api::protobuf(&proto::QueryInstantResponse { series, metrics, message });
    }
    let range = answer.range;
    let series = answer
        .set
        .iter()
        .map(|(labels, s)| proto::TimeSeries {
            labels: proto::labels(labels),
            samples: s
                .values
                .iter()
                .enumerate()
                .filter(|(_, v)| !v.is_nan())
                .map(|(i, v)| proto::Sample { value: *v, timestamp_ms: range.timestamp_ms(i) as i64 })
                .collect(),
            prom_labels: prom_labels(labels),
            exemplars: s
                .exemplars
                .iter()
                .map(|e| proto::Exemplar {
                    labels: vec![
                        proto::key_value("trace:id", &Label::Str(e.trace_id.clone())),
                        proto::key_value("span:id", &Label::Str(e.span_id.clone())),
                    ],
                    value: e.value,
                    timestamp_ms: (e.start_ns / 1_000_000) as i64,
                })
                .collect(),
        })
        .collect();
    let message = answer.message.clone().unwrap_or_default();
    crate::tempo_api::protobuf(&proto::QueryRangeResponse { series, metrics, message })
}

fn respond(answer: Result<Answer, QueryError>, headers: &HeaderMap) -> TextResult {
    TextResult(answer.map(|a| {
        if crate::tempo_api::wants_protobuf(headers) {
            proto_answer(&a)
        } else {
            Json(json_answer(&a)).into_response()
        }
    }))
}

async fn query_range(
    State(state): State<Arc<QueryState>>,
    tenant: Tenant,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> TextResult {
    respond(answer(&state, &tenant, raw.as_deref(), false).await, &headers)
}

async fn query_instant(
    State(state): State<Arc<QueryState>>,
    tenant: Tenant,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> TextResult {
    respond(answer(&state, &tenant, raw.as_deref(), true).await, &headers)
}

#[cfg(test)]
mod tests {
    use super::default_step;

    #[test]
    fn the_default_step_is_tempos() {
        let s = 1_000_000_000;
        assert_eq!(default_step(3_600 * s), 15 * s, "an hour: 15 s");
        assert_eq!(default_step(6 * 3_600 * s), 60 * s, "90 s rounds down to whole minutes");
        assert_eq!(default_step(24 * 3_600 * s), 300 * s, "6 m rounds down to whole 5 minutes");
        assert_eq!(default_step(30 * s), 100_000_000, "125 ms rounds down to 50 ms steps");
        assert_eq!(default_step(s), 50_000_000, "at least 50 ms");
        assert_eq!(default_step(4 * 60 * s), s, "at least a second from a minute up");
    }
}
