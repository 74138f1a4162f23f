//! Jaeger's Monitor-tab API: `/api/metrics/calls`, `/errors`, `/latencies` and
//! `/minstep`, with Jaeger's parameters and response shapes, answered from the RED cells
//! the indexers store per minute (`tracekeeper_storage::red`), so every query node of
//! either shape gives the same answer.
//!
//! Each point at time `t` covers the minutes that start at or after `t - ratePer` and
//! are over by `t`, as Jaeger's Prometheus queries do with `rate(...[ratePer])`: calls
//! per second, the share of calls that failed, or a latency quantile interpolated within
//! the histogram's buckets. Minutes are those of the spans' start.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tracekeeper_model::SpanKind;
use tracekeeper_storage::red::{RedCell, DURATION_BOUNDS_MS, MINUTE_NS};

use crate::error::{JaegerResult, QueryError};
use crate::params::Params;
use crate::{QueryState, Tenant};
use tracekeeper_serve::{Declared, Group, Routes, Shape};

const MS: u64 = 1_000_000;
/// The cells' resolution, which is the smallest step worth asking for.
const MIN_STEP_MS: u64 = MINUTE_NS / MS;
const DEFAULT_LOOKBACK_MS: u64 = 3_600_000;
const DEFAULT_RATE_PER_MS: u64 = 600_000;
/// As Prometheus: no answer of more points than this per series.
const MAX_POINTS: u64 = 11_000;

pub fn router(state: Arc<QueryState>) -> Routes {
    Group::new(Declared::read(Shape::Jaeger))
        .get("/api/metrics/calls", calls)
        .get("/api/metrics/errors", errors)
        .get("/api/metrics/latencies", latencies)
        .get("/api/metrics/minstep", minstep)
        .with_state(state)
}

#[derive(Clone, Copy, PartialEq)]
enum Measure {
    Calls,
    Errors,
    Latency(f64),
}

struct Request {
    services: Vec<String>,
    kinds: Vec<SpanKind>,
    by_operation: bool,
    end_ns: u64,
    lookback_ns: u64,
    step_ns: u64,
    rate_per_ns: u64,
}

fn parse(params: &Params, now_ns: u64) -> Result<Request, QueryError> {
    let services: Vec<String> = params.all("service").filter(|s| !s.is_empty()).map(str::to_string).collect();
    if services.is_empty() {
        return Err(QueryError::BadRequest("please provide at least one service name".into()));
    }
    let mut kinds = Vec::new();
    for name in params.all("spanKind") {
        kinds.push(match name.to_ascii_lowercase().trim_start_matches("span_kind_") {
            "unspecified" => SpanKind::Unspecified,
            "internal" => SpanKind::Internal,
            "server" => SpanKind::Server,
            "client" => SpanKind::Client,
            "producer" => SpanKind::Producer,
            "consumer" => SpanKind::Consumer,
            other => {
                return Err(QueryError::BadRequest(format!(
                    "unsupported spanKind {other:?}: one of unspecified, internal, server, client, producer, consumer"
                )))
            }
        });
    }
    if kinds.is_empty() {
        kinds.push(SpanKind::Server);
    }
    let by_operation = match params.get("groupByOperation") {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => {
            return Err(QueryError::BadRequest(format!("groupByOperation must be true or false, not {other:?}")))
        }
    };
    let ms = |key: &str, default: u64| -> Result<u64, QueryError> {
        Ok(params.number::<u64>(key)?.unwrap_or(default).saturating_mul(MS))
    };
    let end_ns = ms("endTs", now_ns / MS)?;
    let lookback_ns = ms("lookback", DEFAULT_LOOKBACK_MS)?;
    let step_ns = ms("step", MIN_STEP_MS)?;
    let rate_per_ns = ms("ratePer", DEFAULT_RATE_PER_MS)?;
    if step_ns < MIN_STEP_MS * MS {
        return Err(QueryError::BadRequest(format!("step must be at least the minimum step of {MIN_STEP_MS} ms")));
    }
    if rate_per_ns < MIN_STEP_MS * MS {
        return Err(QueryError::BadRequest(format!("ratePer must be at least {MIN_STEP_MS} ms")));
    }
    if lookback_ns == 0 || lookback_ns / step_ns > MAX_POINTS {
        return Err(QueryError::BadRequest(format!(
            "lookback / step must give between 1 and {MAX_POINTS} points per series"
        )));
    }
    Ok(Request { services, kinds, by_operation, end_ns, lookback_ns, step_ns, rate_per_ns })
}

#[derive(Serialize)]
struct Label {
    name: &'static str,
    value: String,
}

#[derive(Serialize)]
struct GaugeValue {
    #[serde(rename = "doubleValue")]
    double_value: f64,
}

#[derive(Serialize)]
struct MetricPoint {
    #[serde(rename = "gaugeValue")]
    gauge_value: GaugeValue,
    timestamp: String,
}

#[derive(Serialize)]
struct Metric {
    labels: Vec<Label>,
    #[serde(rename = "metricPoints")]
    metric_points: Vec<MetricPoint>,
}

#[derive(Serialize)]
struct MetricFamily {
    name: String,
    #[serde(rename = "type")]
    kind: &'static str,
    help: String,
    metrics: Vec<Metric>,
}

/// The latency at `quantile` of `buckets` (counts per bucket, not cumulative), in ms:
/// linear within the bucket it falls in, as Prometheus's `histogram_quantile`.
pub(crate) fn quantile_ms(buckets: &[u64], quantile: f64) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = quantile * total as f64;
    let mut below = 0u64;
    for (at, count) in buckets.iter().enumerate() {
        if (below + count) as f64 >= rank && *count > 0 {
            let Some(upper) = DURATION_BOUNDS_MS.get(at) else {
                // Above the last bound: the last bound, as Prometheus answers.
                return DURATION_BOUNDS_MS.last().copied();
            };
            let lower = if at == 0 { 0.0 } else { DURATION_BOUNDS_MS[at - 1] };
            return Some(lower + (upper - lower) * ((rank - below as f64) / *count as f64));
        }
        below += count;
    }
    DURATION_BOUNDS_MS.last().copied()
}

fn timestamp(ns: u64) -> String {
    chrono::DateTime::from_timestamp((ns / 1_000_000_000) as i64, 0)
        .map_or_else(String::new, |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

async fn answer(
    state: &QueryState,
    tenant: &str,
    raw: Option<&str>,
    measure: Option<Measure>,
) -> Result<Response, QueryError> {
    let params = Params::parse(raw);
    let request = parse(&params, state.engine.now_ns())?;
    let measure = match measure {
        Some(m) => m,
        None => {
            let q = params
                .number::<f64>("quantile")?
                .ok_or_else(|| QueryError::BadRequest("please provide a quantile between 0 and 1".into()))?;
            if !(q > 0.0 && q <= 1.0) {
                return Err(QueryError::BadRequest(format!("quantile must be in (0, 1], not {q}")));
            }
            Measure::Latency(q)
        }
    };
    let first_ns = request.end_ns.saturating_sub(request.lookback_ns);
    let from_ns = first_ns.saturating_sub(request.rate_per_ns).max(state.engine.visible_horizon(tenant));
    let cells = state.red_cells(tenant, from_ns, request.end_ns.saturating_add(1)).await?;
    // (service, operation) → minute → the cell of all kinds asked for, and its errors.
    let mut groups: BTreeMap<(String, String), BTreeMap<u64, (RedCell, u64)>> = BTreeMap::new();
    for cell in cells {
        if !request.services.contains(&cell.service) || !request.kinds.contains(&cell.kind) {
            continue;
        }
        let operation = if request.by_operation { cell.operation.clone() } else { String::new() };
        let minutes = groups.entry((cell.service.clone(), operation)).or_default();
        let (sum, errors) = minutes
            .entry(cell.minute_ns)
            .or_insert_with(|| (RedCell::new(cell.minute_ns, &cell.service, "", cell.kind, false), 0));
        sum.add(&cell);
        if cell.error {
            *errors += cell.calls;
        }
    }
    let mut metrics = Vec::new();
    for ((service, operation), minutes) in groups {
        let mut points = Vec::new();
        let mut t = first_ns;
        while t <= request.end_ns {
            // The minutes of the window that are over by `t`.
            let (oldest, newest) = (t.saturating_sub(request.rate_per_ns), t.checked_sub(MINUTE_NS));
            let mut total = RedCell::new(0, "", "", SpanKind::Server, false);
            let mut errors = 0;
            if let Some(newest) = newest.filter(|n| *n >= oldest) {
                for (cell, errored) in minutes.range(oldest..=newest).map(|(_, v)| v) {
                    total.add(cell);
                    errors += errored;
                }
            }
            let value = match measure {
                Measure::Calls => Some(total.calls as f64 / (request.rate_per_ns as f64 / 1e9)),
                Measure::Errors => (total.calls > 0).then(|| errors as f64 / total.calls as f64),
                Measure::Latency(q) => quantile_ms(&total.buckets, q),
            };
            if let Some(value) = value {
                points.push(MetricPoint { gauge_value: GaugeValue { double_value: value }, timestamp: timestamp(t) });
            }
            t += request.step_ns;
        }
        let mut labels = vec![Label { name: "service_name", value: service }];
        if request.by_operation {
            labels.push(Label { name: "operation", value: operation });
        }
        metrics.push(Metric { labels, metric_points: points });
    }
    let grouping = if request.by_operation { "service & operation" } else { "service" };
    let scope = if request.by_operation { "service_operation" } else { "service" };
    let (name, help) = match measure {
        Measure::Calls => (format!("{scope}_call_rate"), format!("calls/sec, grouped by {grouping}")),
        Measure::Errors => (
            format!("{scope}_error_rate"),
            format!("error rate, computed as a fraction of errors/sec over calls/sec, grouped by {grouping}"),
        ),
        Measure::Latency(q) => (format!("{scope}_latencies"), format!("{q}th quantile latency, grouped by {grouping}")),
    };
    Ok(Json(MetricFamily { name, kind: "GAUGE", help, metrics }).into_response())
}

async fn calls(State(state): State<Arc<QueryState>>, tenant: Tenant, RawQuery(raw): RawQuery) -> JaegerResult {
    JaegerResult(answer(&state, &tenant, raw.as_deref(), Some(Measure::Calls)).await)
}

async fn errors(State(state): State<Arc<QueryState>>, tenant: Tenant, RawQuery(raw): RawQuery) -> JaegerResult {
    JaegerResult(answer(&state, &tenant, raw.as_deref(), Some(Measure::Errors)).await)
}

async fn latencies(State(state): State<Arc<QueryState>>, tenant: Tenant, RawQuery(raw): RawQuery) -> JaegerResult {
    JaegerResult(answer(&state, &tenant, raw.as_deref(), None).await)
}

async fn minstep(_tenant: Tenant) -> Response {
    Json(serde_json::json!({"data": MIN_STEP_MS, "total": 0, "limit": 0, "offset": 0, "errors": null})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quantile_is_interpolated_within_its_bucket() {
        let mut buckets = vec![0u64; DURATION_BOUNDS_MS.len() + 1];
        buckets[5] = 10; // (10, 50] ms
        assert_eq!(quantile_ms(&buckets, 0.5), Some(30.0));
        assert_eq!(quantile_ms(&buckets, 1.0), Some(50.0));
        buckets[DURATION_BOUNDS_MS.len()] = 90;
        assert_eq!(quantile_ms(&buckets, 0.95), Some(15_000.0), "past the last bound");
        assert_eq!(quantile_ms(&[0; 17], 0.5), None);
    }

    #[test]
    fn bad_parameters_are_named() {
        let now = 1_800_000_000_000_000_000;
        for (query, says) in [
            ("", "at least one service"),
            ("service=a&spanKind=sideways", "unsupported spanKind \"sideways\""),
            ("service=a&step=1000", "minimum step of 60000 ms"),
            ("service=a&ratePer=1", "ratePer must be at least"),
            ("service=a&lookback=999999999999&step=60000", "points per series"),
            ("service=a&groupByOperation=maybe", "groupByOperation must be true or false"),
            ("service=a&endTs=yesterday", "endTs"),
        ] {
            let error = parse(&Params::parse(Some(query)), now).err().unwrap_or_else(|| panic!("{query} accepted"));
            assert!(error.to_string().contains(says), "{query}: {error}");
        }
        let fine =
            parse(&Params::parse(Some("service=a&service=b&spanKind=client&groupByOperation=true")), now).unwrap();
        assert_eq!(fine.services, ["a", "b"]);
        assert_eq!(fine.kinds, [SpanKind::Client]);
        assert!(fine.by_operation);
        assert_eq!((fine.end_ns, fine.step_ns, fine.rate_per_ns), (now, 60_000 * MS, 600_000 * MS));
    }
}
