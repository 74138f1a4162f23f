//! TraceQL metrics queries: a spanset pipeline feeding a metrics function
//! (`{ } | rate() by (resource.service.name)`), then second stages (`topk`, `bottomk`,
//! comparisons); and arithmetic between parenthesised metrics queries and numbers.

use super::ast::{BinOp, Expr, Hints, Pipeline, Spanset, Type};
use super::build::{binop, constant, field, pipeline, references_span, spanset, unsupported, written};
use super::syntax::Node;

#[derive(Debug, Clone)]
pub enum Function {
    Rate,
    CountOverTime,
    SumOverTime(Expr),
    AvgOverTime(Expr),
    MinOverTime(Expr),
    MaxOverTime(Expr),
    /// The field and the quantiles, each in [0, 1].
    QuantileOverTime(Expr, Vec<f64>),
    HistogramOverTime(Expr),
    /// `compare({selection}, top, start, end)`: attribute values of the selection
    /// against the baseline; `start`/`end` in nanoseconds, 0 for the whole range.
    Compare {
        selection: Spanset,
        top: usize,
        start_ns: i64,
        end_ns: i64,
    },
}

/// One metrics query over spans: which spans, what is computed, grouped how.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub pipeline: Pipeline,
    pub function: Function,
    pub by: Vec<Expr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MathOp {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone)]
pub enum MetricsExpr {
    Leaf(Box<Leaf>),
    Const(f64),
    Math(MathOp, Box<MetricsExpr>, Box<MetricsExpr>),
    /// Keeps the points (of each series) that compare true.
    Filter(Box<MetricsExpr>, BinOp, f64),
    TopK(Box<MetricsExpr>, usize),
    BottomK(Box<MetricsExpr>, usize),
}

#[derive(Debug, Clone)]
pub struct MetricsQuery {
    pub expr: MetricsExpr,
    pub hints: Hints,
}

const FUNCTIONS: [&str; 9] = [
    "rate",
    "count_over_time",
    "sum_over_time",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "quantile_over_time",
    "histogram_over_time",
    "compare",
];

/// Whether a query is a metrics query: it calls a metrics function or a second stage.
pub fn is_metrics(node: &Node) -> bool {
    match node {
        Node::Call { name, .. } => FUNCTIONS.contains(&name.as_str()) || name == "topk" || name == "bottomk",
        Node::Pipe(nodes) => nodes.iter().any(is_metrics),
        Node::Binary(_, a, b) => is_metrics(a) || is_metrics(b),
        Node::Paren(inner) | Node::Unary(_, inner) => is_metrics(inner),
        _ => false,
    }
}

/// A comparison operator (the ones a metrics filter takes).
fn comparison(op: &str) -> Option<BinOp> {
    binop(op).filter(|op| op.comparison())
}

/// The threshold of a comparison: a number, folded, or one plain duration.
fn threshold(node: &Node) -> Result<f64, String> {
    let (value, duration) = constant(node)?;
    if duration && !matches!(node, Node::Duration(_)) {
        return Err(format!("TraceQL: durations cannot take part in metrics arithmetic ({})", written(node)));
    }
    Ok(value)
}

fn one_field(name: &str, args: &[Node]) -> Result<Expr, String> {
    let [arg, ..] = args else { return Err(format!("TraceQL: {name}() needs a field, as in {name}(duration)")) };
    let (expr, ty) = field(arg)?;
    if !(ty.numeric() || ty == Type::Attribute) || !references_span(&expr) {
        return Err(format!("TraceQL: {name}() needs a numeric field of the span, not {}", written(arg)));
    }
    Ok(expr)
}

fn function(name: &str, args: &[Node]) -> Result<Function, String> {
    let no_args = |f: Function| {
        if args.is_empty() {
            Ok(f)
        } else {
            Err(format!("TraceQL: {name}() takes no argument"))
        }
    };
    let single = |make: fn(Expr) -> Function| {
        if args.len() != 1 {
            return Err(format!("TraceQL: {name}() takes one field"));
        }
        Ok(make(one_field(name, args)?))
    };
    match name {
        "rate" => no_args(Function::Rate),
        "count_over_time" => no_args(Function::CountOverTime),
        "sum_over_time" => single(Function::SumOverTime),
        "avg_over_time" => single(Function::AvgOverTime),
        "min_over_time" => single(Function::MinOverTime),
        "max_over_time" => single(Function::MaxOverTime),
        "histogram_over_time" => single(Function::HistogramOverTime),
        "quantile_over_time" => {
            let field = one_field(name, args)?;
            if args.len() < 2 {
                return Err(
                    "TraceQL: quantile_over_time() needs quantiles, as in quantile_over_time(duration, .99)".into()
                );
            }
            let quantiles = args[1..]
                .iter()
                .map(|q| match constant(q) {
                    Ok((q, false)) if (0.0..=1.0).contains(&q) => Ok(q),
                    _ => Err(format!("TraceQL: a quantile is a number from 0 to 1, not {}", written(q))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Function::QuantileOverTime(field, quantiles))
        }
        "compare" => {
            let Some(first) = args.first() else {
                return Err("TraceQL: compare() needs a spanset to compare, as in compare({ status = error })".into());
            };
            let selection = spanset(first)?;
            let number = |i: usize, default: i64| -> Result<i64, String> {
                match args.get(i) {
                    None => Ok(default),
                    Some(Node::Int(n)) if *n >= 0 => Ok(*n),
                    Some(other) => {
                        Err(format!("TraceQL: compare() takes whole numbers after the spanset, not {}", written(other)))
                    }
                }
            };
            if args.len() > 4 {
                return Err("TraceQL: compare() takes a spanset, a count and a start and end time".into());
            }
            let top = number(1, 10)?;
            if top == 0 {
                return Err("TraceQL: compare()'s count must be positive".into());
            }
            Ok(Function::Compare { selection, top: top as usize, start_ns: number(2, 0)?, end_ns: number(3, 0)? })
        }
        other => Err(format!("TraceQL: unknown metrics function {other}()")),
    }
}

/// A metrics function as written in a pipe, with the comparison that follows it.
struct LeafElement<'n> {
    name: &'n str,
    args: &'n [Node],
    by: Option<&'n [Node]>,
    filter: Option<(BinOp, &'n Node)>,
}

fn leaf_element(node: &Node) -> Option<LeafElement<'_>> {
    match node {
        Node::Call { name, args, by } if FUNCTIONS.contains(&name.as_str()) => {
            Some(LeafElement { name, args, by: by.as_deref(), filter: None })
        }
        Node::Binary(op, lhs, rhs) => match (&**lhs, comparison(op)) {
            (Node::Call { name, args, by }, Some(op)) if FUNCTIONS.contains(&name.as_str()) => {
                Some(LeafElement { name, args, by: by.as_deref(), filter: Some((op, &**rhs)) })
            }
            _ => None,
        },
        _ => None,
    }
}

fn second_stage(base: MetricsExpr, node: &Node) -> Result<MetricsExpr, String> {
    let (call, filter) = match node {
        Node::Binary(op, lhs, rhs) if comparison(op).is_some() => (&**lhs, comparison(op).map(|op| (op, &**rhs))),
        other => (other, None),
    };
    let expr = match call {
        Node::Call { name, args, by: None } if name == "topk" || name == "bottomk" => {
            let n = match args.as_slice() {
                [Node::Int(n)] if *n > 0 => *n as usize,
                _ => return Err(format!("TraceQL: {name}() takes a positive whole number, as in {name}(10)")),
            };
            if name == "topk" {
                MetricsExpr::TopK(Box::new(base), n)
            } else {
                MetricsExpr::BottomK(Box::new(base), n)
            }
        }
        other => {
            return Err(format!(
                "TraceQL: after a metrics function, '|' takes topk() or bottomk(), not {}",
                written(other)
            ))
        }
    };
    Ok(match filter {
        Some((op, rhs)) => MetricsExpr::Filter(Box::new(expr), op, threshold(rhs)?),
        None => expr,
    })
}

fn pipe(nodes: &[Node]) -> Result<MetricsExpr, String> {
    let (base, rest) = if is_metrics(&nodes[0]) {
        (term(&nodes[0])?, &nodes[1..])
    } else {
        let Some(k) = nodes.iter().position(|n| leaf_element(n).is_some()) else {
            return Err(match nodes.iter().find(|n| is_metrics(n)) {
                Some(n) => format!(
                    "TraceQL: {} needs a metrics function such as rate() before it, and arithmetic needs each metrics query in parentheses",
                    written(n)
                ),
                None => "TraceQL: expected a metrics function such as rate()".into(),
            });
        };
        let Some(LeafElement { name, args, by, filter }) = leaf_element(&nodes[k]) else {
            return Err("TraceQL: expected a metrics function such as rate()".into());
        };
        let spans = if k == 0 { Node::Filter(None) } else { Node::Pipe(nodes[..k].to_vec()) };
        let by = by.map(|fields| fields.iter().map(|f| field_of_span("by", f)).collect()).transpose()?;
        let leaf = MetricsExpr::Leaf(Box::new(Leaf {
            pipeline: pipeline(&spans)?,
            function: function(name, args)?,
            by: by.unwrap_or_default(),
        }));
        let leaf = match filter {
            Some((op, rhs)) => MetricsExpr::Filter(Box::new(leaf), op, threshold(rhs)?),
            None => leaf,
        };
        (leaf, &nodes[k + 1..])
    };
    rest.iter().try_fold(base, second_stage)
}

fn field_of_span(what: &str, node: &Node) -> Result<Expr, String> {
    let (expr, _) = field(node)?;
    if !references_span(&expr) {
        return Err(format!("TraceQL: {what}() must read the span, and {} is a constant", written(node)));
    }
    Ok(expr)
}

/// A metrics expression: a pipe, a parenthesised one, arithmetic, a comparison.
fn term(node: &Node) -> Result<MetricsExpr, String> {
    Ok(match node {
        Node::Pipe(nodes) => pipe(nodes)?,
        Node::Paren(inner) => term(inner)?,
        Node::Call { .. } if leaf_element(node).is_some() => pipe(std::slice::from_ref(node))?,
        Node::Int(_) | Node::Float(_) | Node::Unary("-", _) => MetricsExpr::Const(threshold(node)?),
        Node::Duration(_) => {
            return Err(format!("TraceQL: durations cannot take part in metrics arithmetic ({})", written(node)))
        }
        Node::Binary(op @ ("+" | "-" | "*" | "/"), a, b) => {
            if !matches!(**a, Node::Paren(_) | Node::Int(_) | Node::Float(_) | Node::Unary(..) | Node::Binary(..))
                || !matches!(**b, Node::Paren(_) | Node::Int(_) | Node::Float(_) | Node::Unary(..) | Node::Binary(..))
            {
                return Err(format!(
                    "TraceQL: arithmetic between metrics queries needs each in parentheses, as in ({{ }} | rate()) / 2 ({})",
                    written(node)
                ));
            }
            let op = match *op {
                "+" => MathOp::Add,
                "-" => MathOp::Sub,
                "*" => MathOp::Mul,
                _ => MathOp::Div,
            };
            let (left, right) = (term(a)?, term(b)?);
            if let (MetricsExpr::Const(x), MetricsExpr::Const(y)) = (&left, &right) {
                return Ok(MetricsExpr::Const(match op {
                    MathOp::Add => x + y,
                    MathOp::Sub => x - y,
                    MathOp::Mul => x * y,
                    MathOp::Div => x / y,
                }));
            }
            MetricsExpr::Math(op, Box::new(left), Box::new(right))
        }
        Node::Binary(op, lhs, rhs) if comparison(op).is_some() => {
            MetricsExpr::Filter(Box::new(term(lhs)?), comparison(op).unwrap_or(BinOp::Eq), threshold(rhs)?)
        }
        Node::Binary(op, ..) => {
            return Err(format!("TraceQL: '{op}' does not combine metrics queries: use + - * or / ({})", written(node)))
        }
        other => return Err(format!("TraceQL: expected a metrics query, found {}", written(other))),
    })
}

fn leaves(expr: &MetricsExpr) -> (usize, bool) {
    match expr {
        MetricsExpr::Leaf(leaf) => (1, matches!(leaf.function, Function::Compare { .. })),
        MetricsExpr::Const(_) => (0, false),
        MetricsExpr::Math(_, a, b) => {
            let (x, y) = (leaves(a), leaves(b));
            (x.0 + y.0, x.1 || y.1)
        }
        MetricsExpr::Filter(e, ..) | MetricsExpr::TopK(e, _) | MetricsExpr::BottomK(e, _) => leaves(e),
    }
}

pub fn build(node: &Node, hints: Hints) -> Result<MetricsQuery, String> {
    let expr = term(node)?;
    let (count, compare) = leaves(&expr);
    if count == 0 {
        return Err("TraceQL: a metrics query needs a metrics function such as rate()".into());
    }
    if compare && !matches!(expr, MetricsExpr::Leaf(_)) {
        return Err(unsupported("combining compare() with other stages, comparisons or arithmetic"));
    }
    Ok(MetricsQuery { expr, hints })
}
