//! Time series of a TraceQL metrics query: the range they cover, their labels, what is
//! accumulated per interval while spans (or RED cells) are read, and the second stages
//! and arithmetic applied to whole series sets.

use std::collections::BTreeMap;

use crate::traceql::metrics::{Function, MathOp};
use crate::traceql::Value;

/// `[start, end)` cut into intervals of `step`; the point of interval `i` is stamped
/// with its start, as Tempo stamps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start_ns: u64,
    pub end_ns: u64,
    pub step_ns: u64,
}

impl Range {
    pub fn intervals(&self) -> usize {
        (self.end_ns - self.start_ns).div_ceil(self.step_ns) as usize
    }

    pub fn interval_of(&self, t_ns: u64) -> Option<usize> {
        (t_ns >= self.start_ns && t_ns < self.end_ns).then(|| ((t_ns - self.start_ns) / self.step_ns) as usize)
    }

    /// Whether the per-minute RED cells can be cut into these intervals.
    pub fn in_whole_minutes(&self) -> bool {
        let minute = tracekeeper_storage::red::MINUTE_NS;
        self.step_ns.is_multiple_of(minute) && self.start_ns.is_multiple_of(minute)
    }

    pub fn timestamp_ms(&self, interval: usize) -> u64 {
        (self.start_ns + interval as u64 * self.step_ns) / 1_000_000
    }
}

/// A label's value, typed as Tempo returns it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Label {
    Str(String),
    Int(i64),
    /// A float, kept as its text so that labels order and compare.
    Float(String),
    Bool(bool),
    Nil,
}

impl Label {
    pub fn of(value: &Value<'_>) -> Label {
        match value {
            Value::Nil => Label::Nil,
            Value::Int(i) => Label::Int(*i),
            Value::Float(x) => Label::Float(x.to_string()),
            Value::Bool(b) => Label::Bool(*b),
            Value::Duration(ns) => Label::Int(*ns),
            other => Label::Str(other.text()),
        }
    }
}

pub type Labels = Vec<(String, Label)>;

#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    pub trace_id: String,
    pub span_id: String,
    /// The span's start: where the exemplar sits on the chart.
    pub start_ns: u64,
    /// The span's own value of the measured field; counting functions show the
    /// series' value at the exemplar instead, as Tempo does.
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// One value per interval; NaN where there is none.
    pub values: Vec<f64>,
    pub exemplars: Vec<Exemplar>,
}

pub type SeriesSet = BTreeMap<Labels, Series>;

/// What one series accumulates in one interval.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// Every value, for exact quantiles (span scans).
    pub values: Vec<f64>,
    /// RED spanmetrics buckets, for quantiles of cells written before the fine ones.
    pub buckets: Vec<u64>,
    /// RED fine buckets (`tracekeeper_storage::red::fine_bucket`), for quantiles of cells.
    pub fine: BTreeMap<u8, u64>,
    /// Calls of cells without fine buckets: while there are any, quantiles come from
    /// the spanmetrics buckets.
    pub without_fine: u64,
}

impl Cell {
    pub fn observe(&mut self, value: f64, keep: bool) {
        if self.count == 0 || value < self.min {
            self.min = value;
        }
        if self.count == 0 || value > self.max {
            self.max = value;
        }
        self.count += 1;
        self.sum += value;
        if keep {
            self.values.push(value);
        }
    }
}

/// Cells per series and interval, and up to `max_exemplars` exemplars per series.
#[derive(Debug, Default)]
pub struct Accumulator {
    pub cells: BTreeMap<Labels, (Vec<Cell>, Vec<Exemplar>)>,
}

impl Accumulator {
    pub fn cell(&mut self, labels: Labels, intervals: usize, interval: usize) -> &mut Cell {
        let (cells, _) = self.cells.entry(labels).or_insert_with(|| (vec![Cell::default(); intervals], Vec::new()));
        &mut cells[interval]
    }

    pub fn exemplar(&mut self, labels: &Labels, exemplar: Exemplar, max: usize) {
        if let Some((_, exemplars)) = self.cells.get_mut(labels) {
            if exemplars.len() < max {
                exemplars.push(exemplar);
            }
        }
    }
}

/// The exact `q` quantile of `values` (sorted in place), interpolated between ranks.
pub fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = q * (values.len() - 1) as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    values[low] + (values[high] - values[low]) * (rank - low as f64)
}

/// Tempo's `histogram_over_time` buckets: powers of two of the value.
pub fn log2_bucket(value: f64) -> f64 {
    if value <= 1.0 {
        1.0
    } else {
        2f64.powi(value.log2().ceil() as i32)
    }
}

/// The series a function yields from accumulated cells. Durations are in seconds,
/// as Tempo returns them. `quantile_of_buckets` turns a cell's RED buckets into a
/// quantile, in the series' unit.
pub fn finish(
    function: &Function,
    accumulated: Accumulator,
    range: &Range,
    seconds: bool,
    quantile_of_buckets: &dyn Fn(&Cell, f64) -> Option<f64>,
) -> SeriesSet {
    let scale = if seconds { 1e-9 } else { 1.0 };
    let step_s = range.step_ns as f64 / 1e9;
    let mut out = SeriesSet::new();
    for (labels, (cells, exemplars)) in accumulated.cells {
        let per_cell = |f: &dyn Fn(&Cell) -> f64| -> Vec<f64> { cells.iter().map(f).collect() };
        let nan_if_empty = |c: &Cell, v: f64| if c.count == 0 { f64::NAN } else { v };
        let values = match function {
            Function::Rate => per_cell(&|c| c.count as f64 / step_s),
            Function::CountOverTime => per_cell(&|c| c.count as f64),
            Function::SumOverTime(_) => per_cell(&|c| nan_if_empty(c, c.sum * scale)),
            Function::AvgOverTime(_) => per_cell(&|c| nan_if_empty(c, c.sum * scale / c.count as f64)),
            Function::MinOverTime(_) => per_cell(&|c| nan_if_empty(c, c.min * scale)),
            Function::MaxOverTime(_) => per_cell(&|c| nan_if_empty(c, c.max * scale)),
            Function::QuantileOverTime(_, quantiles) => {
                let series: Vec<(f64, Vec<f64>)> = quantiles
                    .iter()
                    .map(|q| {
                        let values = cells
                            .iter()
                            .map(|c| {
                                if !c.values.is_empty() {
                                    quantile(&mut c.values.clone(), *q) * scale
                                } else if c.count > 0 {
                                    quantile_of_buckets(c, *q).unwrap_or(f64::NAN)
                                } else {
                                    f64::NAN
                                }
                            })
                            .collect();
                        (*q, values)
                    })
                    .collect();
                // Each exemplar goes to the one quantile series nearest its value.
                let nearest = |e: &Exemplar| {
                    let at = range.interval_of(e.start_ns)?;
                    let distance = |values: &Vec<f64>| (values[at] - e.value).abs();
                    let nearest = series.iter().filter(|(_, v)| !v[at].is_nan());
                    nearest.min_by(|a, b| distance(&a.1).total_cmp(&distance(&b.1))).map(|(q, _)| *q)
                };
                for (q, values) in &series {
                    let mut with_p = labels.clone();
                    with_p.push(("p".into(), Label::Float(q.to_string())));
                    let mine = exemplars.iter().filter(|e| nearest(e) == Some(*q)).cloned().collect();
                    out.insert(with_p, Series { values: values.clone(), exemplars: mine });
                }
                continue;
            }
            // Bucketed when observed: one series per bucket, counted.
            Function::HistogramOverTime(_) | Function::Compare { .. } => {
                per_cell(&|c| if c.count == 0 { f64::NAN } else { c.count as f64 })
            }
        };
        // As Tempo: an exemplar where its series has no value is dropped, and those of
        // counting functions show the series' value where they sit.
        let counting = matches!(function, Function::Rate | Function::CountOverTime | Function::HistogramOverTime(_));
        let exemplars = exemplars
            .iter()
            .filter_map(|e| {
                let value = *values.get(range.interval_of(e.start_ns)?)?;
                (!value.is_nan()).then(|| Exemplar { value: if counting { value } else { e.value }, ..e.clone() })
            })
            .collect();
        out.insert(labels, Series { values, exemplars });
    }
    out
}

fn combine(op: MathOp, a: f64, b: f64) -> f64 {
    // As Prometheus and Tempo: a missing input counts as 0; 0 as a divisor gives NaN.
    let (a, b) = (if a.is_nan() { 0.0 } else { a }, if b.is_nan() { 0.0 } else { b });
    match op {
        MathOp::Add => a + b,
        MathOp::Sub => a - b,
        MathOp::Mul => a * b,
        MathOp::Div if b == 0.0 => f64::NAN,
        MathOp::Div => a / b,
    }
}

/// `left op right`, series matched by labels, a series without labels matching every
/// series of the other side.
pub fn math(op: MathOp, left: &SeriesSet, right: &SeriesSet) -> SeriesSet {
    let unlabelled = |set: &SeriesSet| set.get(&Vec::new()).cloned();
    let (left_default, right_default) = (unlabelled(left), unlabelled(right));
    let keys: Vec<&Labels> =
        if left.len() == 1 && left_default.is_some() { right.keys().collect() } else { left.keys().collect() };
    let mut out = SeriesSet::new();
    for key in keys {
        let a = left.get(key).or(left_default.as_ref());
        let b = right.get(key).or(right_default.as_ref());
        if let (Some(a), Some(b)) = (a, b) {
            let values = a.values.iter().zip(&b.values).map(|(x, y)| combine(op, *x, *y)).collect();
            let exemplars = a.exemplars.iter().chain(&b.exemplars).cloned().collect();
            out.insert(key.clone(), Series { values, exemplars });
        }
    }
    out
}

/// Keeps the points that compare true; series left without points are dropped.
pub fn filter(set: SeriesSet, keep: impl Fn(f64) -> bool) -> SeriesSet {
    set.into_iter()
        .filter_map(|(labels, mut series)| {
            for v in &mut series.values {
                if v.is_nan() || !keep(*v) {
                    *v = f64::NAN;
                }
            }
            series.values.iter().any(|v| !v.is_nan()).then_some((labels, series))
        })
        .collect()
}

/// At every point, the `k` highest (or lowest) series keep their value.
pub fn top(set: SeriesSet, k: usize, highest: bool) -> SeriesSet {
    let points = set.values().map(|s| s.values.len()).max().unwrap_or(0);
    let series: Vec<&Series> = set.values().collect();
    // (series, point) pairs that keep their value.
    let mut kept = std::collections::HashSet::new();
    for point in 0..points {
        let mut ranked: Vec<(usize, f64)> = series
            .iter()
            .enumerate()
            .filter_map(|(n, s)| s.values.get(point).filter(|v| !v.is_nan()).map(|v| (n, *v)))
            .collect();
        ranked.sort_by(|a, b| if highest { b.1.total_cmp(&a.1) } else { a.1.total_cmp(&b.1) });
        kept.extend(ranked.into_iter().take(k).map(|(n, _)| (n, point)));
    }
    set.into_iter()
        .enumerate()
        .filter_map(|(n, (labels, mut s))| {
            for (point, v) in s.values.iter_mut().enumerate() {
                if !kept.contains(&(n, point)) {
                    *v = f64::NAN;
                }
            }
            s.values.iter().any(|v| !v.is_nan()).then_some((labels, s))
        })
        .collect()
}
