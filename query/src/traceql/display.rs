//! How the parts of a query are written in TraceQL, for error messages: a refusal
//! names what the user wrote, never the parser's own types.

use std::fmt;

use tracekeeper_model::{SpanKind, StatusCode};

use super::{Field, Literal, Op};

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::SpanAttr(k) => write!(f, "span.{k}"),
            Field::ResourceAttr(k) => write!(f, "resource.{k}"),
            Field::AnyAttr(k) => write!(f, ".{k}"),
            Field::EventAttr(k) => write!(f, "event.{k}"),
            Field::ScopeAttr(k) => write!(f, "instrumentation.{k}"),
            Field::Name => f.write_str("name"),
            Field::Status => f.write_str("status"),
            Field::StatusMessage => f.write_str("statusMessage"),
            Field::Kind => f.write_str("kind"),
            Field::Duration => f.write_str("duration"),
            Field::TraceDuration => f.write_str("traceDuration"),
            Field::RootService => f.write_str("rootServiceName"),
            Field::RootName => f.write_str("rootName"),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Re => "=~",
            Op::NotRe => "!~",
        })
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Str(s) => write!(f, "the string {s:?}"),
            Literal::Int(i) => write!(f, "the integer {i}"),
            Literal::Float(x) => write!(f, "the number {x}"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Duration(ns) => write!(f, "the duration {ns}ns"),
            Literal::Status(s) => f.write_str(match s {
                StatusCode::Unset => "unset",
                StatusCode::Ok => "ok",
                StatusCode::Error => "error",
            }),
            Literal::Kind(k) => f.write_str(match k {
                SpanKind::Unspecified => "unspecified",
                SpanKind::Internal => "internal",
                SpanKind::Server => "server",
                SpanKind::Client => "client",
                SpanKind::Producer => "producer",
                SpanKind::Consumer => "consumer",
            }),
        }
    }
}
