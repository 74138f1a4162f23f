//! Pipelines on one trace: each stage turns spansets (sets of the trace's spans) into
//! spansets, starting from one spanset of every span. A trace matches when spansets
//! remain at the end.

use super::ast::{Aggregate, Expr, Pipeline, Spanset, SpansetOp, Stage};
use super::eval::{ordered, reads, At, Value};
use super::view::TraceView;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanSet {
    /// Indices into the trace's spans, ascending.
    pub spans: Vec<usize>,
    /// Attributes of the spanset as a whole: `by()` groups and aggregate values.
    pub attributes: Vec<(String, String)>,
}

impl SpanSet {
    fn with_spans(&self, spans: Vec<usize>) -> SpanSet {
        SpanSet { spans, attributes: self.attributes.clone() }
    }
}

fn union(sets: &[SpanSet], size: usize) -> Vec<bool> {
    let mut member = vec![false; size];
    for set in sets {
        for &i in &set.spans {
            member[i] = true;
        }
    }
    member
}

/// For each span: whether it has an ancestor in `set`.
fn below(trace: &TraceView<'_>, set: &[bool]) -> Vec<bool> {
    let mut out = vec![false; set.len()];
    for &i in &trace.preorder {
        if let Some(p) = trace.parent_of[i] {
            out[i] = set[p] || out[p];
        }
    }
    out
}

/// For each span: whether it has a descendant in `set`.
fn above(trace: &TraceView<'_>, set: &[bool]) -> Vec<bool> {
    let mut out = vec![false; set.len()];
    for &i in trace.preorder.iter().rev() {
        if let Some(p) = trace.parent_of[i] {
            out[p] |= set[i] || out[i];
        }
    }
    out
}

/// For each span: whether it stands in `op`'s relation to some span of `left`
/// (`Child`: its parent is in `left`; `Parent`: it is the parent of one; ...).
fn related(trace: &TraceView<'_>, op: SpansetOp, left: &[bool]) -> Vec<bool> {
    let n = left.len();
    match op {
        SpansetOp::Child => (0..n).map(|i| trace.parent_of[i].is_some_and(|p| left[p])).collect(),
        SpansetOp::Parent => {
            let mut out = vec![false; n];
            for i in (0..n).filter(|&i| left[i]) {
                if let Some(p) = trace.parent_of[i] {
                    out[p] = true;
                }
            }
            out
        }
        SpansetOp::Descendant => below(trace, left),
        SpansetOp::Ancestor => above(trace, left),
        SpansetOp::Sibling => {
            let mut per_parent = vec![0u32; n];
            for i in (0..n).filter(|&i| left[i]) {
                if let Some(p) = trace.parent_of[i] {
                    per_parent[p] += 1;
                }
            }
            (0..n).map(|i| trace.parent_of[i].is_some_and(|p| per_parent[p] > u32::from(left[i]))).collect()
        }
        _ => vec![false; n],
    }
}

fn structural(trace: &TraceView<'_>, op: SpansetOp, left: &[bool], right: &[bool]) -> Vec<usize> {
    use SpansetOp::*;
    let (relation, negated, union) = match op {
        Child | Parent | Descendant | Ancestor | Sibling => (op, false, false),
        NotChild => (Child, true, false),
        NotParent => (Parent, true, false),
        NotDescendant => (Descendant, true, false),
        NotAncestor => (Ancestor, true, false),
        NotSibling => (Sibling, true, false),
        UnionChild => (Child, false, true),
        UnionParent => (Parent, false, true),
        UnionDescendant => (Descendant, false, true),
        UnionAncestor => (Ancestor, false, true),
        UnionSibling => (Sibling, false, true),
        And | Or => unreachable!("not structural"),
    };
    let to_left = related(trace, relation, left);
    let rights: Vec<bool> = (0..left.len()).map(|i| right[i] && (to_left[i] != negated)).collect();
    if !union {
        return (0..left.len()).filter(|&i| rights[i]).collect();
    }
    // The left side's spans that stand in the mirrored relation to a kept right span.
    let mirrored = match relation {
        Child => Parent,
        Parent => Child,
        Descendant => Ancestor,
        Ancestor => Descendant,
        other => other,
    };
    let to_right = related(trace, mirrored, &rights);
    (0..left.len()).filter(|&i| rights[i] || (left[i] && to_right[i])).collect()
}

impl Spanset {
    fn eval(&self, trace: &TraceView<'_>, input: &SpanSet) -> Vec<SpanSet> {
        match self {
            Spanset::Filter(condition) => {
                let reads = reads(condition);
                let spans: Vec<usize> = input
                    .spans
                    .iter()
                    .copied()
                    .filter(|&span| At { trace, span, event: None, link: None }.holds(condition, reads))
                    .collect();
                if spans.is_empty() {
                    Vec::new()
                } else {
                    vec![input.with_spans(spans)]
                }
            }
            Spanset::Pipeline(pipeline) => pipeline.eval(trace, vec![input.clone()]),
            Spanset::Op(op, a, b) => {
                let (left, right) = (a.eval(trace, input), b.eval(trace, input));
                let n = trace.spans.len();
                let spans = match op {
                    SpansetOp::And if left.is_empty() || right.is_empty() => Vec::new(),
                    SpansetOp::And | SpansetOp::Or => {
                        let both = union(&[left, right].concat(), n);
                        (0..n).filter(|&i| both[i]).collect()
                    }
                    op => structural(trace, *op, &union(&left, n), &union(&right, n)),
                };
                if spans.is_empty() {
                    Vec::new()
                } else {
                    vec![input.with_spans(spans)]
                }
            }
        }
    }
}

fn numbers<'a>(trace: &'a TraceView<'_>, set: &'a SpanSet, expr: &'a Expr) -> impl Iterator<Item = f64> + 'a {
    set.spans.iter().filter_map(move |&span| At { trace, span, event: None, link: None }.eval(expr).number())
}

impl Aggregate {
    fn of(&self, trace: &TraceView<'_>, set: &SpanSet) -> f64 {
        match self {
            Aggregate::Count => set.spans.len() as f64,
            Aggregate::Sum(e) => numbers(trace, set, e).sum(),
            Aggregate::Min(e) => numbers(trace, set, e).fold(f64::NAN, f64::min),
            Aggregate::Max(e) => numbers(trace, set, e).fold(f64::NAN, f64::max),
            Aggregate::Avg(e) => {
                let (sum, count) = numbers(trace, set, e).fold((0.0, 0u64), |(s, c), x| (s + x, c + 1));
                sum / count as f64
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Aggregate::Count => "count()",
            Aggregate::Avg(_) => "avg()",
            Aggregate::Min(_) => "min()",
            Aggregate::Max(_) => "max()",
            Aggregate::Sum(_) => "sum()",
        }
    }
}

impl Pipeline {
    pub fn eval(&self, trace: &TraceView<'_>, mut sets: Vec<SpanSet>) -> Vec<SpanSet> {
        for stage in &self.stages {
            if sets.is_empty() {
                break;
            }
            sets = match stage {
                Stage::Spansets(spanset) => sets.iter().flat_map(|set| spanset.eval(trace, set)).collect(),
                Stage::ScalarFilter { aggregate, op, value } => sets
                    .into_iter()
                    .filter_map(|mut set| {
                        let result = aggregate.of(trace, &set);
                        set.attributes.push((aggregate.name().to_string(), result.to_string()));
                        ordered(*op, result, *value).then_some(set)
                    })
                    .collect(),
                Stage::By(fields) => sets.iter().flat_map(|set| group(trace, set, fields)).collect(),
                Stage::Coalesce => {
                    let all = union(&sets, trace.spans.len());
                    vec![SpanSet { spans: (0..all.len()).filter(|&i| all[i]).collect(), attributes: Vec::new() }]
                }
                Stage::Select(_) => sets,
            };
        }
        sets
    }
}

/// `by(...)`: one spanset per distinct tuple of values, in order of first appearance.
fn group(trace: &TraceView<'_>, set: &SpanSet, fields: &[Expr]) -> Vec<SpanSet> {
    let mut groups: Vec<(Vec<String>, Vec<usize>)> = Vec::new();
    let mut index: std::collections::HashMap<Vec<String>, usize> = std::collections::HashMap::new();
    for &span in &set.spans {
        let at = At { trace, span, event: None, link: None };
        let key: Vec<String> = fields
            .iter()
            .map(|f| match at.eval(f) {
                Value::Nil => "nil".to_string(),
                value => value.text(),
            })
            .collect();
        match index.get(&key) {
            Some(&g) => groups[g].1.push(span),
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key, vec![span]));
            }
        }
    }
    groups
        .into_iter()
        .map(|(key, spans)| {
            let mut attributes = set.attributes.clone();
            attributes.extend(fields.iter().zip(key).map(|(f, v)| (format!("by({})", super::display::expr(f)), v)));
            SpanSet { spans, attributes }
        })
        .collect()
}
