//! From the untyped syntax to a typed query: what each piece means, whether it may
//! stand where it stands, and whether its operands' types fit. Every refusal names
//! what the user wrote, in TraceQL terms.

use tracekeeper_model::{SpanKind, StatusCode};

use super::ast::{
    Aggregate, Attribute, BinOp, Expr, Intrinsic, Pipeline, Scope, Spanset, SpansetOp, Stage, Static, Type,
};
use super::regex::compile;
use super::syntax::Node;

pub(super) fn unsupported(what: &str) -> String {
    format!("TraceQL: {what} is not supported")
}

/// How a piece of syntax reads back, for error messages.
pub(super) fn written(node: &Node) -> String {
    match node {
        Node::Filter(None) => "{ }".into(),
        Node::Filter(Some(inner)) => format!("{{ {} }}", written(inner)),
        Node::Pipe(stages) => stages.iter().map(written).collect::<Vec<_>>().join(" | "),
        Node::Call { name, args, by } => {
            let args = args.iter().map(written).collect::<Vec<_>>().join(", ");
            match by {
                Some(by) => format!("{name}({args}) by ({})", by.iter().map(written).collect::<Vec<_>>().join(", ")),
                None => format!("{name}({args})"),
            }
        }
        Node::Binary(op, a, b) => format!("{} {op} {}", written(a), written(b)),
        Node::Unary(op, a) => format!("{op}{}", written(a)),
        Node::Paren(inner) => format!("({})", written(inner)),
        Node::Word(w) => w.clone(),
        Node::Attr { scope, name } => format!("{scope}.{name}"),
        Node::Str(s) => format!("{s:?}"),
        Node::Int(i) => i.to_string(),
        Node::Float(x) => x.to_string(),
        Node::Duration(ns) => format!("{ns}ns"),
    }
}

fn intrinsic(word: &str) -> Option<Intrinsic> {
    Some(match word {
        "name" | "span:name" => Intrinsic::Name,
        "status" | "span:status" => Intrinsic::Status,
        "statusMessage" | "span:statusMessage" => Intrinsic::StatusMessage,
        "kind" | "span:kind" => Intrinsic::Kind,
        "duration" | "span:duration" => Intrinsic::Duration,
        "childCount" | "span:childCount" => Intrinsic::ChildCount,
        "span:id" => Intrinsic::SpanId,
        "span:parentID" => Intrinsic::ParentId,
        "traceDuration" | "trace:duration" => Intrinsic::TraceDuration,
        "rootName" | "trace:rootName" => Intrinsic::RootName,
        "rootServiceName" | "trace:rootService" => Intrinsic::RootService,
        "trace:id" => Intrinsic::TraceId,
        "event:name" => Intrinsic::EventName,
        "event:timeSinceStart" => Intrinsic::EventTimeSinceStart,
        "link:traceID" => Intrinsic::LinkTraceId,
        "link:spanID" => Intrinsic::LinkSpanId,
        "instrumentation:name" => Intrinsic::ScopeName,
        "instrumentation:version" => Intrinsic::ScopeVersion,
        "nestedSetLeft" => Intrinsic::NestedSetLeft,
        "nestedSetRight" => Intrinsic::NestedSetRight,
        "nestedSetParent" => Intrinsic::NestedSetParent,
        _ => return None,
    })
}

fn keyword(word: &str) -> Option<Static> {
    Some(match word {
        "true" => Static::Bool(true),
        "false" => Static::Bool(false),
        "nil" => Static::Nil,
        "ok" => Static::Status(StatusCode::Ok),
        "error" => Static::Status(StatusCode::Error),
        "unset" => Static::Status(StatusCode::Unset),
        "unspecified" => Static::Kind(SpanKind::Unspecified),
        "internal" => Static::Kind(SpanKind::Internal),
        "server" => Static::Kind(SpanKind::Server),
        "client" => Static::Kind(SpanKind::Client),
        "producer" => Static::Kind(SpanKind::Producer),
        "consumer" => Static::Kind(SpanKind::Consumer),
        "minInt" => Static::Int(i64::MIN),
        "maxInt" => Static::Int(i64::MAX),
        _ => return None,
    })
}

fn scope(name: &str) -> Result<Scope, String> {
    Ok(match name {
        "" => Scope::Any,
        "span" => Scope::Span,
        "resource" => Scope::Resource,
        "event" => Scope::Event,
        "link" => Scope::Link,
        "instrumentation" => Scope::Instrumentation,
        _ => return Err(unsupported("the parent scope ('parent.')")),
    })
}

pub(super) fn binop(op: &str) -> Option<BinOp> {
    Some(match op {
        "=" => BinOp::Eq,
        "!=" => BinOp::Ne,
        "<" => BinOp::Lt,
        "<=" => BinOp::Le,
        ">" => BinOp::Gt,
        ">=" => BinOp::Ge,
        "=~" => BinOp::Re,
        "!~" => BinOp::NotRe,
        "&&" => BinOp::And,
        "||" => BinOp::Or,
        "+" => BinOp::Add,
        "-" => BinOp::Sub,
        "*" => BinOp::Mul,
        "/" => BinOp::Div,
        "%" => BinOp::Mod,
        "^" => BinOp::Pow,
        _ => return None,
    })
}

fn type_name(ty: Type) -> &'static str {
    match ty {
        Type::Nil => "nil",
        Type::Int => "an integer",
        Type::Float => "a number",
        Type::Str => "a string",
        Type::Bool => "a boolean",
        Type::Duration => "a duration",
        Type::Status => "a status",
        Type::Kind => "a kind",
        Type::Attribute => "an attribute",
    }
}

/// Whether `a op b` is well typed, following Tempo: attributes fit anything, numbers
/// (integers, floats, durations) fit each other, nil fits `=` and `!=`.
fn operands_fit(op: BinOp, a: Type, b: Type) -> bool {
    use Type::*;
    let either = |t: Type| a == t || b == t;
    let both = |f: fn(Type) -> bool| f(a) && f(b);
    match op {
        BinOp::And | BinOp::Or => both(|t| matches!(t, Bool | Attribute)),
        _ if op.arithmetic() => both(|t| t.numeric() || t == Attribute),
        BinOp::Re | BinOp::NotRe => both(|t| matches!(t, Str | Attribute)),
        BinOp::Eq | BinOp::Ne if either(Nil) => true,
        _ if either(Nil) => false,
        _ if either(Attribute) => {
            !(op != BinOp::Eq && op != BinOp::Ne && (either(Status) || either(Kind) || either(Bool)))
        }
        BinOp::Eq | BinOp::Ne => a == b || both(Type::numeric),
        _ => both(Type::numeric) || (a == Str && b == Str),
    }
}

fn is_always_present(expr: &Expr) -> bool {
    match expr {
        Expr::Intrinsic(i) => i.always_present(),
        Expr::Attribute(Attribute { scope: Scope::Resource, name }) => name == "service.name",
        _ => false,
    }
}

/// Whether a field expression reads the span at all (aggregates and groupings must).
pub(super) fn references_span(expr: &Expr) -> bool {
    match expr {
        Expr::Static(_) => false,
        Expr::Attribute(_) | Expr::Intrinsic(_) => true,
        Expr::Binary { left, right, .. } => references_span(left) || references_span(right),
        Expr::Not(e) | Expr::Neg(e) => references_span(e),
    }
}

/// A field expression and its type.
pub(super) fn field(node: &Node) -> Result<(Expr, Type), String> {
    Ok(match node {
        Node::Int(i) => (Expr::Static(Static::Int(*i)), Type::Int),
        Node::Float(x) => (Expr::Static(Static::Float(*x)), Type::Float),
        Node::Duration(ns) => (Expr::Static(Static::Duration(*ns)), Type::Duration),
        Node::Str(s) => (Expr::Static(Static::Str(s.clone())), Type::Str),
        Node::Attr { scope: s, name } => {
            (Expr::Attribute(Attribute { scope: scope(s)?, name: name.clone() }), Type::Attribute)
        }
        Node::Word(w) => {
            if let Some(i) = intrinsic(w) {
                (Expr::Intrinsic(i), i.ty())
            } else if let Some(value) = keyword(w) {
                let ty = value.ty();
                (Expr::Static(value), ty)
            } else if w == "parent" {
                return Err(unsupported("the parent intrinsic"));
            } else if w.contains(':') {
                return Err(format!("TraceQL: unknown intrinsic '{w}'"));
            } else {
                return Err(format!(
                    "TraceQL: unknown identifier '{w}': attributes are written .{w}, span.{w} or resource.{w}"
                ));
            }
        }
        Node::Paren(inner) => field(inner)?,
        Node::Unary(op, inner) => {
            let (expr, ty) = field(inner)?;
            match (*op, ty) {
                ("!", Type::Bool | Type::Attribute) => (Expr::Not(Box::new(expr)), Type::Bool),
                ("-", t) if t.numeric() || t == Type::Attribute => (Expr::Neg(Box::new(expr)), t),
                (op, t) => {
                    return Err(format!("TraceQL: '{op}' cannot apply to {} ({})", type_name(t), written(inner)))
                }
            }
        }
        Node::Binary(op, a, b) => {
            let Some(bin) = binop(op) else {
                return Err(format!(
                    "TraceQL: '{op}' relates spansets, not values: write it between {{ }} spansets ({})",
                    written(node)
                ));
            };
            let ((left, lt), (right, rt)) = (field(a)?, field(b)?);
            if !operands_fit(bin, lt, rt) {
                return Err(format!(
                    "TraceQL: '{op}' cannot compare or combine {} with {} ({})",
                    type_name(lt),
                    type_name(rt),
                    written(node)
                ));
            }
            let nil_side = (lt == Type::Nil) || (rt == Type::Nil);
            if bin == BinOp::Eq && nil_side && (is_always_present(&left) || is_always_present(&right)) {
                let present = if lt == Type::Nil { b } else { a };
                return Err(format!("TraceQL: {} is never nil, so '= nil' cannot hold", written(present)));
            }
            let regex = match (bin, &right) {
                (BinOp::Re | BinOp::NotRe, Expr::Static(Static::Str(pattern))) => Some(compile(pattern)?),
                (BinOp::Re | BinOp::NotRe, _) => {
                    return Err(format!(
                        "TraceQL: the right side of '{op}' must be a quoted pattern ({})",
                        written(node)
                    ))
                }
                _ => None,
            };
            let ty = if bin.arithmetic() {
                if lt == Type::Attribute || rt == Type::Attribute {
                    Type::Attribute
                } else {
                    Type::Float
                }
            } else {
                Type::Bool
            };
            (Expr::Binary { op: bin, left: Box::new(left), right: Box::new(right), regex }, ty)
        }
        Node::Filter(_) | Node::Pipe(_) => {
            return Err(format!("TraceQL: a spanset cannot stand inside a condition ({})", written(node)))
        }
        Node::Call { name, .. } => {
            return Err(format!("TraceQL: {name}() cannot stand inside a condition ({})", written(node)))
        }
    })
}

/// A constant number (folding `+ - * /` and unary minus), in nanoseconds for a
/// duration; `Some(true)` in the second place when a duration is involved.
pub(super) fn constant(node: &Node) -> Result<(f64, bool), String> {
    Ok(match node {
        Node::Int(i) => (*i as f64, false),
        Node::Float(x) => (*x, false),
        Node::Duration(ns) => (*ns as f64, true),
        Node::Paren(inner) => constant(inner)?,
        Node::Unary("-", inner) => {
            let (x, d) = constant(inner)?;
            (-x, d)
        }
        Node::Binary(op @ ("+" | "-" | "*" | "/" | "^"), a, b) => {
            let ((x, dx), (y, dy)) = (constant(a)?, constant(b)?);
            let value = match *op {
                "+" => x + y,
                "-" => x - y,
                "*" => x * y,
                "/" => x / y,
                _ => x.powf(y),
            };
            (value, dx || dy)
        }
        other => return Err(format!("TraceQL: expected a number or a duration, found {}", written(other))),
    })
}

/// A filter's condition: a boolean expression, or an attribute (true when it holds
/// the boolean true).
fn condition(node: &Node) -> Result<Expr, String> {
    let (expr, ty) = field(node)?;
    if !matches!(ty, Type::Bool | Type::Attribute) {
        return Err(format!(
            "TraceQL: a spanset's condition must be true or false, and {} is {}",
            written(node),
            type_name(ty)
        ));
    }
    Ok(expr)
}

fn spanset_op(op: &str) -> Option<SpansetOp> {
    Some(match op {
        "&&" => SpansetOp::And,
        "||" => SpansetOp::Or,
        ">" => SpansetOp::Child,
        "<" => SpansetOp::Parent,
        ">>" => SpansetOp::Descendant,
        "<<" => SpansetOp::Ancestor,
        "~" => SpansetOp::Sibling,
        "!>" => SpansetOp::NotChild,
        "!<" => SpansetOp::NotParent,
        "!>>" => SpansetOp::NotDescendant,
        "!<<" => SpansetOp::NotAncestor,
        "!~" => SpansetOp::NotSibling,
        "&>" => SpansetOp::UnionChild,
        "&<" => SpansetOp::UnionParent,
        "&>>" => SpansetOp::UnionDescendant,
        "&<<" => SpansetOp::UnionAncestor,
        "&~" => SpansetOp::UnionSibling,
        _ => return None,
    })
}

pub(super) fn spanset(node: &Node) -> Result<Spanset, String> {
    match node {
        Node::Filter(None) => Ok(Spanset::Filter(Expr::Static(Static::Bool(true)))),
        Node::Filter(Some(inner)) => Ok(Spanset::Filter(condition(inner)?)),
        Node::Paren(inner) => match &**inner {
            Node::Pipe(_) => Ok(Spanset::Pipeline(pipeline(inner)?)),
            other => spanset(other),
        },
        Node::Binary(op, a, b) => match spanset_op(op) {
            Some(op) => Ok(Spanset::Op(op, Box::new(spanset(a)?), Box::new(spanset(b)?))),
            None => Err(format!("TraceQL: '{op}' does not combine spansets ({})", written(node))),
        },
        Node::Call { name, .. } if ["count", "avg", "min", "max", "sum"].contains(&name.as_str()) => {
            Err(format!("TraceQL: {} must be compared and follow a '|', as in {{ }} | count() > 2", written(node)))
        }
        other => Err(format!("TraceQL: expected a spanset {{ ... }}, found {}", written(other))),
    }
}

fn aggregate(name: &str, args: &[Node]) -> Result<Option<Aggregate>, String> {
    let make = match name {
        "count" => {
            if !args.is_empty() {
                return Err("TraceQL: count() takes no argument".into());
            }
            return Ok(Some(Aggregate::Count));
        }
        "avg" => Aggregate::Avg,
        "min" => Aggregate::Min,
        "max" => Aggregate::Max,
        "sum" => Aggregate::Sum,
        _ => return Ok(None),
    };
    let [arg] = args else { return Err(format!("TraceQL: {name}() takes one field, as in {name}(duration)")) };
    let (expr, ty) = field(arg)?;
    if !(ty.numeric() || ty == Type::Attribute) {
        return Err(format!("TraceQL: {name}() needs a number, and {} is {}", written(arg), type_name(ty)));
    }
    if !references_span(&expr) {
        return Err(format!("TraceQL: {name}() must read the span, and {} is a constant", written(arg)));
    }
    Ok(Some(make(expr)))
}

fn fields_of(what: &str, args: &[Node]) -> Result<Vec<Expr>, String> {
    if args.is_empty() {
        return Err(format!("TraceQL: {what}() needs at least one field"));
    }
    args.iter()
        .map(|arg| {
            let (expr, _) = field(arg)?;
            if !references_span(&expr) {
                return Err(format!("TraceQL: {what}() must read the span, and {} is a constant", written(arg)));
            }
            Ok(expr)
        })
        .collect()
}

fn stage(node: &Node, first: bool) -> Result<Stage, String> {
    match node {
        Node::Call { name, args, by: None } if name == "by" => Ok(Stage::By(fields_of("by", args)?)),
        Node::Call { name, args, by: None } if name == "select" => {
            let fields = fields_of("select", args)?;
            if fields.iter().any(|f| !matches!(f, Expr::Attribute(_) | Expr::Intrinsic(_))) {
                return Err("TraceQL: select() takes attributes and intrinsics only".into());
            }
            Ok(Stage::Select(fields))
        }
        Node::Call { name, args, by: None } if name == "coalesce" => {
            if first {
                return Err("TraceQL: a pipeline cannot start with coalesce()".into());
            }
            if !args.is_empty() {
                return Err("TraceQL: coalesce() takes no argument".into());
            }
            Ok(Stage::Coalesce)
        }
        Node::Binary(op @ ("=" | "!=" | "<" | "<=" | ">" | ">="), lhs, rhs) => {
            let Node::Call { name, args, by: None } = &**lhs else { return Ok(Stage::Spansets(spanset(node)?)) };
            let Some(aggregate) = aggregate(name, args)? else { return Ok(Stage::Spansets(spanset(node)?)) };
            if let Node::Call { name: other, .. } = &**rhs {
                return Err(unsupported(&format!("comparing {name}() with {other}()")));
            }
            let (value, _) = constant(rhs)
                .map_err(|_| format!("TraceQL: {name}() compares with a number or a duration, not {}", written(rhs)))?;
            let op = binop(op).unwrap_or(BinOp::Eq);
            Ok(Stage::ScalarFilter { aggregate, op, value })
        }
        Node::Call { name, .. }
            if ["rate", "topk", "bottomk", "compare"].contains(&name.as_str()) || name.ends_with("_over_time") =>
        {
            Err(format!("TraceQL: {name}() makes a metrics query: ask /api/metrics/query_range"))
        }
        Node::Call { name, .. } if !["count", "avg", "min", "max", "sum"].contains(&name.as_str()) => {
            Err(format!("TraceQL: unknown function {name}()"))
        }
        other => Ok(Stage::Spansets(spanset(other)?)),
    }
}

pub(super) fn pipeline(node: &Node) -> Result<Pipeline, String> {
    let nodes = match node {
        Node::Pipe(stages) => stages.as_slice(),
        single => std::slice::from_ref(single),
    };
    let stages = nodes.iter().enumerate().map(|(i, n)| stage(n, i == 0)).collect::<Result<Vec<_>, _>>()?;
    Ok(Pipeline { stages })
}
