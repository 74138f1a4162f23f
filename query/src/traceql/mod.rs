//! TraceQL, Grafana Tempo's query language, with Tempo's semantics: spanset filters
//! over every scope (`span.`, `resource.`, `event.`, `link.`, `instrumentation.`,
//! unscoped `.x`) and intrinsic, field arithmetic and `nil`, `&&`/`||` and the
//! structural operators (`>`, `>>`, `<`, `<<`, `~`, their `!` and `&` forms) between
//! spansets, pipelines with `count()`, `avg`/`min`/`max`/`sum`, `by()`, `coalesce()` and
//! `select()`, `with (...)` hints; and metrics queries (`rate()`, `*_over_time`,
//! `compare()`, `topk`/`bottomk`, comparisons and arithmetic between them).
//!
//! A search query is evaluated on one whole trace at a time and yields spansets.

mod ast;
mod build;
mod display;
mod eval;
mod lex;
pub mod metrics;
mod regex;
mod spanset;
mod syntax;
mod view;

pub use ast::{Attribute, BinOp, Expr, Hints, Intrinsic, Pipeline, Scope, Spanset, Stage, Static};
pub use eval::{attribute_of, At, Value};
pub use spanset::SpanSet;
pub use syntax::{MAX_NESTING, MAX_TERMS};
pub use view::TraceView;

use tracekeeper_model::Span;

use crate::predicate::SpanPredicate;

/// A search query.
#[derive(Debug, Clone)]
pub struct Query {
    pub pipeline: Pipeline,
    pub hints: Hints,
}

/// Any TraceQL query: a search, or a metrics query for `/api/metrics/*`.
#[derive(Debug, Clone)]
pub enum Parsed {
    Search(Query),
    Metrics(metrics::MetricsQuery),
}

fn hints(syntax: &[(String, syntax::Node)]) -> Hints {
    let mut hints = Hints::default();
    for (key, value) in syntax {
        match (key.as_str(), value) {
            ("most_recent", value) => hints.most_recent = matches!(value, syntax::Node::Word(w) if w == "true"),
            ("exemplars", syntax::Node::Word(w)) if w == "false" => hints.exemplars = Some(0),
            ("exemplars", syntax::Node::Int(n)) => hints.exemplars = u64::try_from(*n).ok(),
            _ => {}
        }
    }
    hints
}

/// Parses and checks any TraceQL query.
pub fn parse_any(text: &str) -> Result<Parsed, String> {
    let syntax = syntax::parse(text)?;
    let hints = hints(&syntax.hints);
    if metrics::is_metrics(&syntax.node) {
        return Ok(Parsed::Metrics(metrics::build(&syntax.node, hints)?));
    }
    Ok(Parsed::Search(Query { pipeline: build::pipeline(&syntax.node)?, hints }))
}

/// Parses a search query; a metrics query is refused with where to send it.
pub fn parse(text: &str) -> Result<Query, String> {
    match parse_any(text)? {
        Parsed::Search(query) => Ok(query),
        Parsed::Metrics(_) => {
            Err("TraceQL: this is a metrics query: ask /api/metrics/query_range or /api/metrics/query".into())
        }
    }
}

/// An attribute or intrinsic as written in a query (`span.key`, `.key`, `name`, ...).
pub fn parse_field(text: &str) -> Result<Expr, String> {
    let syntax = syntax::parse(text)?;
    match build::field(&syntax.node)? {
        (expr @ (Expr::Attribute(_) | Expr::Intrinsic(_)), _) if syntax.hints.is_empty() => Ok(expr),
        _ => Err(format!("TraceQL: {text:?} is not an attribute or an intrinsic")),
    }
}

/// `a op b` on numbers, for the comparison operators.
pub fn compare_numbers(op: BinOp, a: f64, b: f64) -> bool {
    eval::ordered(op, a, b)
}

/// How a field is written in TraceQL.
pub fn field_name(expr: &Expr) -> String {
    display::expr(expr)
}

fn collect_fields<'q>(expr: &'q Expr, out: &mut Vec<&'q Expr>) {
    match expr {
        Expr::Attribute(_) | Expr::Intrinsic(_) => out.push(expr),
        Expr::Binary { left, right, .. } => {
            collect_fields(left, out);
            collect_fields(right, out);
        }
        Expr::Not(e) | Expr::Neg(e) => collect_fields(e, out),
        Expr::Static(_) => {}
    }
}

impl Spanset {
    fn fields<'q>(&'q self, out: &mut Vec<&'q Expr>) {
        match self {
            Spanset::Filter(condition) => collect_fields(condition, out),
            Spanset::Op(_, a, b) => {
                a.fields(out);
                b.fields(out);
            }
            Spanset::Pipeline(p) => p.fields(out),
        }
    }

    /// A span predicate that some span of every matching trace satisfies (an index
    /// hint; exactness comes from evaluating the whole query on each candidate).
    fn hint(&self) -> SpanPredicate {
        match self {
            Spanset::Filter(condition) => {
                let mut predicate = SpanPredicate::default();
                hint_of(condition, &mut predicate);
                predicate
            }
            Spanset::Op(ast::SpansetOp::And, a, _) => a.hint(),
            Spanset::Op(ast::SpansetOp::Or, ..) => SpanPredicate::default(),
            // Every other operator yields spans of its right side (and needs one).
            Spanset::Op(_, _, b) => b.hint(),
            Spanset::Pipeline(p) => p.hint(),
        }
    }
}

/// The equalities that must hold: the conjuncts of the condition's top-level `&&`.
fn hint_of(condition: &Expr, predicate: &mut SpanPredicate) {
    let Expr::Binary { op, left, right, .. } = condition else { return };
    match op {
        BinOp::And => {
            hint_of(left, predicate);
            hint_of(right, predicate);
        }
        BinOp::Eq => {
            let Expr::Static(value) = &**right else { return };
            let text = match value {
                Static::Str(s) => s.clone(),
                Static::Int(i) => i.to_string(),
                Static::Bool(b) => b.to_string(),
                Static::Status(s) if matches!(**left, Expr::Intrinsic(Intrinsic::Status)) => {
                    predicate.status = Some(*s);
                    return;
                }
                Static::Kind(k) if matches!(**left, Expr::Intrinsic(Intrinsic::Kind)) => {
                    predicate.kind = Some(*k);
                    return;
                }
                _ => return,
            };
            match &**left {
                Expr::Attribute(Attribute { scope: Scope::Resource, name }) if name == "service.name" => {
                    predicate.service = Some(text)
                }
                Expr::Intrinsic(Intrinsic::Name) if matches!(value, Static::Str(_)) => predicate.operation = Some(text),
                Expr::Intrinsic(Intrinsic::EventName) if matches!(value, Static::Str(_)) => {
                    predicate.tags.push((tracekeeper_storage::schema::EVENT_NAME_KEY.to_string(), text))
                }
                // Link attributes are not indexed.
                Expr::Attribute(Attribute { scope, name }) if *scope != Scope::Link => {
                    predicate.tags.push((name.clone(), text))
                }
                _ => {}
            }
        }
        _ => {}
    }
}

impl Pipeline {
    fn fields<'q>(&'q self, out: &mut Vec<&'q Expr>) {
        for stage in &self.stages {
            match stage {
                Stage::Spansets(s) => s.fields(out),
                Stage::Select(fields) => fields.iter().for_each(|f| collect_fields(f, out)),
                _ => {}
            }
        }
    }

    fn hint(&self) -> SpanPredicate {
        // Every span a pipeline yields passed each of its spanset stages.
        self.stages
            .iter()
            .find_map(|stage| match stage {
                Stage::Spansets(s) => Some(s.hint()),
                _ => None,
            })
            .unwrap_or_default()
    }
}

impl Query {
    /// The spansets the query yields on `trace`; none when the trace does not match.
    pub fn spansets(&self, trace: &TraceView<'_>) -> Vec<SpanSet> {
        let all = SpanSet { spans: (0..trace.spans.len()).collect(), attributes: Vec::new() };
        self.pipeline.eval(trace, vec![all])
    }

    /// Every span the query selects on `trace`, ascending; empty when it does not match.
    pub fn matches(&self, trace: &TraceView<'_>) -> Vec<usize> {
        let mut spans: Vec<usize> = self.spansets(trace).into_iter().flat_map(|s| s.spans).collect();
        spans.sort_unstable();
        spans.dedup();
        spans
    }

    /// Attributes and intrinsics the query reads or selects: returned with each span.
    pub fn fields(&self) -> Vec<&Expr> {
        let mut out = Vec::new();
        self.pipeline.fields(&mut out);
        out
    }

    /// See [`Spanset::hint`].
    pub fn hint(&self) -> SpanPredicate {
        self.pipeline.hint()
    }
}

/// The value of a field on a span of `trace`, for listings.
pub fn value_on<'s>(trace: &TraceView<'s>, span: usize, field: &Expr) -> Vec<Value<'s>> {
    let at = At { trace, span, event: None, link: None };
    let s: &Span = &trace.spans()[span];
    match eval::reads(field) {
        (true, _) => (0..s.events.len()).map(|e| At { event: Some(e), ..at }.eval(field)).collect(),
        (_, true) => (0..s.links.len()).map(|l| At { link: Some(l), ..at }.eval(field)).collect(),
        _ => vec![at.eval(field)],
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
