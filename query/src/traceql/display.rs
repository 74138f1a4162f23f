//! How the parts of a query are written in TraceQL, for error messages and for the
//! names of `by()` groups: never the parser's own types.

use tracekeeper_model::{SpanKind, StatusCode};

use super::ast::{Attribute, BinOp, Expr, Intrinsic, Scope, Static};

fn status(s: StatusCode) -> &'static str {
    match s {
        StatusCode::Unset => "unset",
        StatusCode::Ok => "ok",
        StatusCode::Error => "error",
    }
}

fn kind(k: SpanKind) -> &'static str {
    match k {
        SpanKind::Unspecified => "unspecified",
        SpanKind::Internal => "internal",
        SpanKind::Server => "server",
        SpanKind::Client => "client",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
    }
}

pub fn intrinsic(i: Intrinsic) -> &'static str {
    match i {
        Intrinsic::Name => "name",
        Intrinsic::Status => "status",
        Intrinsic::StatusMessage => "statusMessage",
        Intrinsic::Kind => "kind",
        Intrinsic::Duration => "duration",
        Intrinsic::ChildCount => "span:childCount",
        Intrinsic::SpanId => "span:id",
        Intrinsic::ParentId => "span:parentID",
        Intrinsic::TraceDuration => "traceDuration",
        Intrinsic::RootName => "rootName",
        Intrinsic::RootService => "rootServiceName",
        Intrinsic::TraceId => "trace:id",
        Intrinsic::EventName => "event:name",
        Intrinsic::EventTimeSinceStart => "event:timeSinceStart",
        Intrinsic::LinkTraceId => "link:traceID",
        Intrinsic::LinkSpanId => "link:spanID",
        Intrinsic::ScopeName => "instrumentation:name",
        Intrinsic::ScopeVersion => "instrumentation:version",
        Intrinsic::NestedSetLeft => "nestedSetLeft",
        Intrinsic::NestedSetRight => "nestedSetRight",
        Intrinsic::NestedSetParent => "nestedSetParent",
    }
}

pub fn attribute(a: &Attribute) -> String {
    let scope = match a.scope {
        Scope::Span => "span",
        Scope::Resource => "resource",
        Scope::Event => "event",
        Scope::Link => "link",
        Scope::Instrumentation => "instrumentation",
        Scope::Any => "",
    };
    let plain = !a.name.is_empty() && !a.name.chars().any(|c| c.is_whitespace() || "{}()=~!<>&|^,\"".contains(c));
    if plain {
        format!("{scope}.{}", a.name)
    } else {
        format!("{scope}.{:?}", a.name)
    }
}

fn op(op: BinOp) -> &'static str {
    match op {
        BinOp::Eq => "=",
        BinOp::Ne => "!=",
        BinOp::Lt => "<",
        BinOp::Le => "<=",
        BinOp::Gt => ">",
        BinOp::Ge => ">=",
        BinOp::Re => "=~",
        BinOp::NotRe => "!~",
        BinOp::And => "&&",
        BinOp::Or => "||",
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::Mod => "%",
        BinOp::Pow => "^",
    }
}

pub fn expr(e: &Expr) -> String {
    match e {
        Expr::Static(s) => match s {
            Static::Nil => "nil".into(),
            Static::Int(i) => i.to_string(),
            Static::Float(x) => x.to_string(),
            Static::Str(s) => format!("{s:?}"),
            Static::Bool(b) => b.to_string(),
            Static::Duration(ns) => format!("{ns}ns"),
            Static::Status(s) => status(*s).into(),
            Static::Kind(k) => kind(*k).into(),
        },
        Expr::Attribute(a) => attribute(a),
        Expr::Intrinsic(i) => intrinsic(*i).into(),
        Expr::Binary { op: o, left, right, .. } => format!("{} {} {}", expr(left), op(*o), expr(right)),
        Expr::Not(inner) => format!("!{}", expr(inner)),
        Expr::Neg(inner) => format!("-{}", expr(inner)),
    }
}
