//! One metrics function over the spans a pipeline selects, two ways:
//! - **From the RED cells**, when the filter and the grouping only name what they are
//!   kept by (service, span name, kind, error status, root spans) and the step is
//!   whole minutes:
//!   the counts are the stored spans' own, read from one cell per minute and label set.
//! - **By reading the spans**, for everything else: every trace with a span in the
//!   range is read and the pipeline run on it, exactly; bounded by [`MAX_TRACES`].

use tracekeeper_model::{SpanKind, StatusCode};
use tracekeeper_storage::red::{fine_upper_ns, RedCell, DURATION_BOUNDS_MS, FINE_PER_OCTAVE, MINUTE_NS};
use tracekeeper_storage::schema::POSTING_GROUP_NS;
use tracekeeper_storage::IndexTerm;

use super::series::{finish, log2_bucket, Accumulator, Cell, Exemplar, Label, Labels, Range, SeriesSet};
use crate::error::QueryError;
use crate::traceql::metrics::{Function, Leaf};
use crate::traceql::{
    self, At, Attribute, BinOp, Expr, Intrinsic, Pipeline, Query, Scope, Spanset, Stage, Static, TraceView,
};
use crate::QueryState;

/// Most traces one metrics query reads span by span. A query that would read more is
/// refused rather than answered from a part: metrics here are exact or not given.
pub const MAX_TRACES: usize = 50_000;

/// What a query read, for the answer's `metrics`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Inspected {
    pub traces: u64,
    pub spans: u64,
    pub cells: u64,
}

pub struct Context<'a> {
    pub state: &'a QueryState,
    pub tenant: &'a str,
    pub range: Range,
    pub max_exemplars: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Dimension {
    Service,
    Name,
    Kind,
}

/// A leaf answered from RED cells: which cells, grouped how.
#[derive(Debug, Default)]
struct RedPlan {
    service: Option<String>,
    name: Option<String>,
    kind: Option<SpanKind>,
    error: Option<bool>,
    root: Option<bool>,
    by: Vec<(String, Dimension)>,
}

impl RedPlan {
    fn matches(&self, cell: &RedCell) -> bool {
        self.service.as_ref().is_none_or(|s| *s == cell.service)
            && self.name.as_ref().is_none_or(|n| *n == cell.operation)
            && self.kind.is_none_or(|k| k == cell.kind)
            && self.error.is_none_or(|e| e == cell.error)
            && self.root.is_none_or(|r| r == cell.root)
    }
}

fn is_service(attr: &Attribute) -> bool {
    attr.scope == Scope::Resource && attr.name == "service.name"
}

fn red_condition(expr: &Expr, plan: &mut RedPlan) -> Option<()> {
    let Expr::Binary { op, left, right, .. } = expr else {
        return matches!(expr, Expr::Static(Static::Bool(true))).then_some(());
    };
    match (&**left, op, &**right) {
        (_, BinOp::And, _) => {
            red_condition(left, plan)?;
            red_condition(right, plan)?;
        }
        (Expr::Attribute(attr), BinOp::Eq, Expr::Static(Static::Str(s))) if is_service(attr) => {
            plan.service = Some(s.clone())
        }
        (Expr::Intrinsic(Intrinsic::Name), BinOp::Eq, Expr::Static(Static::Str(s))) => plan.name = Some(s.clone()),
        (Expr::Intrinsic(Intrinsic::Kind), BinOp::Eq, Expr::Static(Static::Kind(k))) => plan.kind = Some(*k),
        (
            Expr::Intrinsic(Intrinsic::Status),
            BinOp::Eq | BinOp::Ne,
            Expr::Static(Static::Status(StatusCode::Error)),
        ) => plan.error = Some(*op == BinOp::Eq),
        // Root spans, as Drilldown selects them: a root's parent is -1, any other's >= 0.
        (Expr::Intrinsic(Intrinsic::NestedSetParent), BinOp::Lt, Expr::Static(Static::Int(0))) => {
            plan.root = Some(true)
        }
        // Fields every span has: `!= nil` always holds.
        (field, BinOp::Ne, Expr::Static(Static::Nil)) if is_red_dimension(field) => {}
        _ => return None,
    }
    Some(())
}

fn is_red_dimension(field: &Expr) -> bool {
    match field {
        Expr::Attribute(attr) => is_service(attr),
        Expr::Intrinsic(i) => matches!(i, Intrinsic::Name | Intrinsic::Kind | Intrinsic::Status),
        _ => false,
    }
}

fn red_plan(leaf: &Leaf, range: &Range) -> Option<RedPlan> {
    if !range.in_whole_minutes() {
        return None;
    }
    cells_plan(leaf)
}

/// Whether the RED cells hold `leaf`'s answer at a step of whole minutes.
pub fn cells_could_answer(leaf: &Leaf) -> bool {
    cells_plan(leaf).is_some()
}

fn cells_plan(leaf: &Leaf) -> Option<RedPlan> {
    let duration = |e: &Expr| matches!(e, Expr::Intrinsic(Intrinsic::Duration));
    match &leaf.function {
        Function::Rate | Function::CountOverTime => {}
        Function::AvgOverTime(e) | Function::SumOverTime(e) | Function::HistogramOverTime(e) if duration(e) => {}
        Function::QuantileOverTime(e, _) if duration(e) => {}
        _ => return None,
    }
    let mut plan = RedPlan::default();
    match leaf.pipeline.stages.as_slice() {
        [Stage::Spansets(Spanset::Filter(condition))] => red_condition(condition, &mut plan)?,
        _ => return None,
    }
    for field in &leaf.by {
        let dimension = match field {
            Expr::Attribute(attr) if is_service(attr) => Dimension::Service,
            Expr::Intrinsic(Intrinsic::Name) => Dimension::Name,
            Expr::Intrinsic(Intrinsic::Kind) => Dimension::Kind,
            _ => return None,
        };
        plan.by.push((traceql::field_name(field), dimension));
    }
    Some(plan)
}

fn kind_name(kind: SpanKind) -> String {
    format!("{kind:?}").to_lowercase()
}

/// Labels of a series without a grouping: the function's name, as Tempo names it.
fn unlabelled(function: &Function) -> Labels {
    let name = match function {
        Function::Rate => "rate",
        Function::CountOverTime => "count_over_time",
        Function::SumOverTime(_) => "sum_over_time",
        Function::AvgOverTime(_) => "avg_over_time",
        Function::MinOverTime(_) => "min_over_time",
        Function::MaxOverTime(_) => "max_over_time",
        Function::QuantileOverTime(..) => "quantile_over_time",
        Function::HistogramOverTime(_) => "histogram_over_time",
        Function::Compare { .. } => "compare",
    };
    vec![("__name__".to_string(), Label::Str(name.to_string()))]
}

async fn from_red(ctx: &Context<'_>, leaf: &Leaf, plan: &RedPlan) -> Result<(SeriesSet, Inspected), QueryError> {
    let range = ctx.range;
    let cells: Vec<RedCell> = ctx.state.red_cells(ctx.tenant, range.start_ns, range.end_ns).await?;
    let mut acc = Accumulator::default();
    let intervals = range.intervals();
    let bucket_edges: Vec<f64> = DURATION_BOUNDS_MS.iter().map(|ms| ms / 1e3).collect();
    for cell in &cells {
        let wanted = plan.matches(cell);
        let Some(interval) = range.interval_of(cell.minute_ns).filter(|_| wanted && cell.calls > 0) else { continue };
        let mut labels: Labels = plan
            .by
            .iter()
            .map(|(name, dimension)| {
                let value = match dimension {
                    Dimension::Service => cell.service.clone(),
                    Dimension::Name => cell.operation.clone(),
                    Dimension::Kind => kind_name(cell.kind),
                };
                (name.clone(), Label::Str(value))
            })
            .collect();
        if labels.is_empty() {
            labels = unlabelled(&leaf.function);
        }
        if let Function::HistogramOverTime(_) = leaf.function {
            // Tempo's power-of-two buckets, from the fine buckets that nest in them; cells
            // written before those had only the spanmetrics buckets.
            let buckets: Vec<(f64, u64)> = if cell.fine.is_empty() {
                let edge = |at: usize| bucket_edges.get(at).copied().unwrap_or(f64::INFINITY);
                cell.buckets.iter().enumerate().map(|(at, count)| (edge(at), *count)).collect()
            } else {
                let power_of = |fine: u8| 2f64.powi(u32::from(fine).div_ceil(FINE_PER_OCTAVE) as i32) / 1e9;
                cell.fine.iter().map(|(fine, count)| (power_of(*fine), *count)).collect()
            };
            for (edge, count) in buckets.into_iter().filter(|(_, count)| *count > 0) {
                let mut bucketed = labels.clone();
                bucketed.push(("__bucket".into(), Label::Float(edge.to_string())));
                acc.cell(bucketed, intervals, interval).count += count;
            }
            continue;
        }
        let into = acc.cell(labels, intervals, interval);
        into.count += cell.calls;
        // RED keeps milliseconds; series are accumulated in nanoseconds.
        into.sum += cell.sum_ms * 1e6;
        if into.buckets.is_empty() {
            into.buckets = vec![0; cell.buckets.len()];
        }
        for (mine, theirs) in into.buckets.iter_mut().zip(&cell.buckets) {
            *mine += theirs;
        }
        if cell.fine.is_empty() {
            into.without_fine += cell.calls;
        }
        for (fine, count) in &cell.fine {
            *into.fine.entry(*fine).or_default() += count;
        }
    }
    let quantile_s = |cell: &Cell, q: f64| match cell.without_fine {
        0 => fine_quantile_ns(&cell.fine, q).map(|ns| ns / 1e9),
        _ => crate::jaeger_metrics::quantile_ms(&cell.buckets, q).map(|ms| ms / 1e3),
    };
    let traces = exemplars_of_cells(ctx, leaf, &mut acc).await?;
    let inspected = Inspected { cells: cells.len() as u64, traces, ..Default::default() };
    Ok((finish(&leaf.function, acc, &range, true, &quantile_s), inspected))
}

/// The `q` quantile of durations counted in fine buckets, in ns: interpolated in the
/// bucket that holds its rank, so within a factor of 2^(1/4) of the exact value.
pub fn fine_quantile_ns(fine: &std::collections::BTreeMap<u8, u64>, q: f64) -> Option<f64> {
    let total: u64 = fine.values().sum();
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut below = 0u64;
    let mut last = None;
    for (&bucket, &count) in fine.iter().filter(|(_, count)| **count > 0) {
        let upper = fine_upper_ns(bucket);
        if (below + count) as f64 >= rank {
            let lower = if bucket == 0 { 0.0 } else { fine_upper_ns(bucket - 1) };
            let within = ((rank - below as f64) / count as f64).max(0.0);
            return Some(lower + (upper - lower) * within);
        }
        below += count;
        last = Some(upper);
    }
    last
}

/// The ids of the traces with a span selected by `query`'s index hint in
/// `[start_ns, end_ns)`, newest first, at most `max`.
async fn trace_ids(
    ctx: &Context<'_>,
    query: &Query,
    start_ns: u64,
    end_ns: u64,
    max: usize,
) -> Result<Vec<tracekeeper_model::TraceId>, QueryError> {
    // The union of the hint's posting lists holds every trace the query can select.
    let mut terms = query.hint().candidate_terms();
    if terms.is_empty() {
        terms.push(IndexTerm::All);
    }
    // A posting stands for spans that started up to one group before its time.
    let end = end_ns.saturating_add(POSTING_GROUP_NS);
    Ok(ctx.state.engine.trace_ids_in(ctx.tenant, terms, start_ns, end, max).await?)
}

const TOO_MANY_TRACES: &str = "this metrics query reads more than";
/// Traces read and evaluated at a time by [`scan`].
const SCAN_CHUNK: usize = 256;

/// Whether `error` is [`scan`]'s refusal past [`MAX_TRACES`].
pub fn is_too_many_traces(error: &QueryError) -> bool {
    matches!(error, QueryError::BadRequest(message) if message.starts_with(TOO_MANY_TRACES))
}

/// Runs `pipeline` on every trace with a span in the range, and calls `visit` with
/// each selected span that started in the range and its interval.
pub async fn scan(
    ctx: &Context<'_>,
    pipeline: &Pipeline,
    mut visit: impl FnMut(&TraceView<'_>, usize, usize),
) -> Result<Inspected, QueryError> {
    let range = ctx.range;
    let query = Query { pipeline: pipeline.clone(), hints: Default::default() };
    let ids = trace_ids(ctx, &query, range.start_ns, range.end_ns, MAX_TRACES + 1).await?;
    if ids.len() > MAX_TRACES {
        return Err(QueryError::BadRequest(format!(
            "{TOO_MANY_TRACES} {MAX_TRACES} traces span by span: narrow the time range or the filter \
             (queries that filter and group only by resource.service.name, name, kind and status = error \
             are answered from per-minute counts without this bound)"
        )));
    }
    let mut inspected = Inspected::default();
    // A chunk of traces at a time: what is held is one chunk's spans, not all of them.
    for chunk in ids.chunks(SCAN_CHUNK) {
        let traces = ctx.state.engine.traces_of(ctx.tenant, chunk.to_vec()).await?;
        inspected.traces += traces.len() as u64;
        for spans in &traces {
            let Some(view) = TraceView::new(spans) else { continue };
            for index in query.matches(&view) {
                if let Some(interval) = range.interval_of(spans[index].start_ns) {
                    inspected.spans += 1;
                    visit(&view, index, interval);
                }
            }
        }
    }
    Ok(inspected)
}

/// The field a function measures, and whether it is a duration (answered in seconds).
fn measured(function: &Function) -> (Option<&Expr>, bool) {
    match function {
        Function::SumOverTime(e)
        | Function::AvgOverTime(e)
        | Function::MinOverTime(e)
        | Function::MaxOverTime(e)
        | Function::QuantileOverTime(e, _)
        | Function::HistogramOverTime(e) => (Some(e), super::is_duration(e)),
        _ => (None, false),
    }
}

/// What one selected span adds to a leaf's series: the series' labels (its histogram
/// bucket among them), the value observed, and the span as an exemplar.
fn observe(leaf: &Leaf, view: &TraceView<'_>, index: usize) -> Option<(Labels, f64, Exemplar)> {
    let (field, seconds) = measured(&leaf.function);
    let span = &view.spans()[index];
    let at = At { trace: view, span: index, event: None, link: None };
    let value = match field {
        Some(e) => at.eval(e).number()?,
        None => 1.0,
    };
    let mut labels: Labels = leaf.by.iter().map(|f| (traceql::field_name(f), Label::of(&at.eval(f)))).collect();
    if labels.is_empty() {
        labels = unlabelled(&leaf.function);
    }
    if let Function::HistogramOverTime(_) = leaf.function {
        let edge = log2_bucket(value);
        let edge = if seconds { edge / 1e9 } else { edge };
        labels.push(("__bucket".into(), Label::Float(edge.to_string())));
    }
    let exemplar = Exemplar {
        trace_id: span.trace_id.to_hex(),
        span_id: span.span_id.to_hex(),
        start_ns: span.start_ns,
        value: if seconds { value / 1e9 } else { value },
    };
    Some((labels, value, exemplar))
}

async fn from_spans(ctx: &Context<'_>, leaf: &Leaf) -> Result<(SeriesSet, Inspected), QueryError> {
    let seconds = measured(&leaf.function).1;
    let exact = matches!(leaf.function, Function::QuantileOverTime(..));
    let intervals = ctx.range.intervals();
    let mut acc = Accumulator::default();
    let inspected = scan(ctx, &leaf.pipeline, |view, index, interval| {
        let Some((labels, value, exemplar)) = observe(leaf, view, index) else { return };
        acc.cell(labels.clone(), intervals, interval).observe(value, exact);
        acc.exemplar(&labels, exemplar, ctx.max_exemplars);
    })
    .await?;
    Ok((finish(&leaf.function, acc, &ctx.range, seconds, &|_, _| None), inspected))
}

/// Windows of the range that series answered from cells take exemplars from, so that
/// they spread over the chart; and the traces read in each.
const EXEMPLAR_WINDOWS: u64 = 20;
const EXEMPLAR_WINDOWS_AT_ONCE: usize = 8;

/// A window's start and end, and the traces read from it.
type WindowTraces = (u64, u64, Vec<Vec<tracekeeper_model::Span>>);
const EXEMPLAR_TRACES_PER_WINDOW: usize = 2;

/// Exemplars for series answered from cells, which know no span: a few traces read
/// from each window of the range, their selected spans attached to the series they
/// were counted in. Returns the traces read.
async fn exemplars_of_cells(ctx: &Context<'_>, leaf: &Leaf, acc: &mut Accumulator) -> Result<u64, QueryError> {
    let range = ctx.range;
    if ctx.max_exemplars == 0 {
        return Ok(0);
    }
    let query = Query { pipeline: leaf.pipeline.clone(), hints: Default::default() };
    let windows = (range.intervals() as u64).clamp(1, EXEMPLAR_WINDOWS);
    let width = (range.end_ns - range.start_ns).div_ceil(windows);
    // The windows are read side by side: on a networked store each is a few round trips.
    use futures::StreamExt;
    let query = &query;
    let read: Vec<Result<WindowTraces, QueryError>> = futures::stream::iter(0..windows)
        .map(|window| async move {
            let start = range.start_ns + window * width;
            let end = (start + width).min(range.end_ns);
            let ids = trace_ids(ctx, query, start, end, EXEMPLAR_TRACES_PER_WINDOW).await?;
            Ok((start, end, ctx.state.engine.traces_of(ctx.tenant, ids).await?))
        })
        .buffered(EXEMPLAR_WINDOWS_AT_ONCE)
        .collect()
        .await;
    let mut traces_read = 0;
    for window in read {
        let (start, end, traces) = window?;
        traces_read += traces.len() as u64;
        for spans in &traces {
            let Some(view) = TraceView::new(spans) else { continue };
            for index in query.matches(&view) {
                if !(start..end).contains(&spans[index].start_ns) {
                    continue;
                }
                if let Some((labels, _, exemplar)) = observe(leaf, &view, index) {
                    acc.exemplar(&labels, exemplar, ctx.max_exemplars);
                }
            }
        }
    }
    Ok(traces_read)
}

/// How many spans `leaf` selects in the range, by the cells (when they can tell): more
/// than [`MAX_TRACES`] means reading them one by one would be refused.
pub async fn spans_by_cells(ctx: &Context<'_>, leaf: &Leaf) -> Result<Option<u64>, QueryError> {
    let Some(plan) = cells_plan(leaf) else { return Ok(None) };
    let range = ctx.range;
    let from = range.start_ns - range.start_ns % MINUTE_NS;
    let cells: Vec<RedCell> = ctx.state.red_cells(ctx.tenant, from, range.end_ns).await?;
    Ok(Some(cells.iter().filter(|cell| plan.matches(cell)).map(|cell| cell.calls).sum()))
}

/// The series of one leaf: from RED cells when they hold the answer, else from spans.
pub async fn leaf(ctx: &Context<'_>, leaf: &Leaf) -> Result<(SeriesSet, Inspected), QueryError> {
    if let Function::Compare { .. } = leaf.function {
        return super::compare::compare(ctx, leaf).await;
    }
    match (red_plan(leaf, &ctx.range), &ctx.state.red) {
        (Some(plan), Some(_)) => from_red(ctx, leaf, &plan).await,
        _ => from_spans(ctx, leaf).await,
    }
}
