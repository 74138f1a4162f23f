//! Field expressions on one span, with Tempo's semantics: a missing attribute is nil
//! and compares false except with `= nil`/`!= nil`; numbers of any kind compare by
//! value; an array attribute matches when one element does (`!=` and `!~`: when none
//! does); `event.` and `link.` conditions of one spanset hold on one event or link.

use std::borrow::Cow;

use regex::Regex;
use tracekeeper_model::{AnyValue, KeyValue, Span, SpanKind, StatusCode};

use super::ast::{Attribute, BinOp, Expr, Intrinsic, Scope, Static};
use super::view::TraceView;

#[derive(Debug, Clone, PartialEq)]
pub enum Value<'s> {
    Nil,
    Int(i64),
    Float(f64),
    Str(Cow<'s, str>),
    Bool(bool),
    Duration(i64),
    Status(StatusCode),
    Kind(SpanKind),
    Array(&'s [AnyValue]),
}

impl Value<'_> {
    pub fn number(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(x) => Some(*x),
            Value::Duration(ns) => Some(*ns as f64),
            _ => None,
        }
    }

    fn truthy(&self) -> bool {
        matches!(self, Value::Bool(true))
    }

    /// The value as text, for grouping keys and returned attributes.
    pub fn text(&self) -> String {
        match self {
            Value::Nil => "nil".into(),
            Value::Int(i) => i.to_string(),
            Value::Float(x) => x.to_string(),
            Value::Str(s) => s.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Duration(ns) => format!("{ns}ns"),
            Value::Status(s) => format!("{s:?}").to_lowercase(),
            Value::Kind(k) => format!("{k:?}").to_lowercase(),
            Value::Array(items) => tracekeeper_model::jaeger::value_to_text(&AnyValue::Array(items.to_vec())),
        }
    }
}

fn from_any(value: &AnyValue) -> Value<'_> {
    match value {
        AnyValue::String(s) => Value::Str(Cow::Borrowed(s)),
        AnyValue::Int(i) => Value::Int(*i),
        AnyValue::Double(x) => Value::Float(*x),
        AnyValue::Bool(b) => Value::Bool(*b),
        AnyValue::Array(items) => Value::Array(items),
        AnyValue::Empty | AnyValue::Bytes(_) | AnyValue::KvList(_) => Value::Nil,
    }
}

fn lookup<'s>(attrs: &'s [KeyValue], key: &str) -> Option<&'s AnyValue> {
    attrs.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
}

/// An attribute of a span, where its scope says (for `event.` and `link.`: the first
/// event or link holding it).
pub fn attribute_of<'s>(span: &'s Span, attr: &Attribute) -> Option<&'s AnyValue> {
    match attr.scope {
        Scope::Span => lookup(&span.attributes, &attr.name),
        Scope::Resource => lookup(&span.resource.attributes, &attr.name),
        Scope::Instrumentation => lookup(&span.scope.attributes, &attr.name),
        Scope::Event => span.events.iter().find_map(|e| lookup(&e.attributes, &attr.name)),
        Scope::Link => span.links.iter().find_map(|l| lookup(&l.attributes, &attr.name)),
        Scope::Any => lookup(&span.attributes, &attr.name).or_else(|| lookup(&span.resource.attributes, &attr.name)),
    }
}

/// One span, and the event and link that `event.` and `link.` fields read.
#[derive(Clone, Copy)]
pub struct At<'v, 's> {
    pub trace: &'v TraceView<'s>,
    pub span: usize,
    pub event: Option<usize>,
    pub link: Option<usize>,
}

impl<'s> At<'_, 's> {
    fn span(&self) -> &'s Span {
        &self.trace.spans[self.span]
    }

    pub fn attribute(&self, attr: &Attribute) -> Value<'s> {
        let span = self.span();
        let found = match attr.scope {
            Scope::Event => self.event.and_then(|e| lookup(&span.events[e].attributes, &attr.name)),
            Scope::Link => self.link.and_then(|l| lookup(&span.links[l].attributes, &attr.name)),
            _ => attribute_of(span, attr),
        };
        found.map_or(Value::Nil, from_any)
    }

    pub fn intrinsic(&self, intrinsic: Intrinsic) -> Value<'s> {
        let span = self.span();
        let trace = self.trace;
        let text = |s: &'s str| Value::Str(Cow::Borrowed(s));
        let event = self.event.map(|e| &span.events[e]);
        let link = self.link.map(|l| &span.links[l]);
        let nested = trace.nested[self.span];
        match intrinsic {
            Intrinsic::Name => text(&span.name),
            Intrinsic::Status => Value::Status(span.status.code),
            Intrinsic::StatusMessage => text(&span.status.message),
            Intrinsic::Kind => Value::Kind(span.kind),
            Intrinsic::Duration => Value::Duration(span.duration_ns() as i64),
            Intrinsic::ChildCount => Value::Int(i64::from(trace.child_count[self.span])),
            Intrinsic::SpanId => Value::Str(Cow::Owned(span.span_id.to_hex())),
            Intrinsic::ParentId => span.parent_span_id.map_or(Value::Nil, |p| Value::Str(Cow::Owned(p.to_hex()))),
            Intrinsic::TraceDuration => Value::Duration(trace.summary.duration_ns as i64),
            Intrinsic::RootName => Value::Str(Cow::Owned(trace.summary.root_name.clone())),
            Intrinsic::RootService => Value::Str(Cow::Owned(trace.summary.root_service.clone())),
            Intrinsic::TraceId => Value::Str(Cow::Owned(trace.trace_id.clone())),
            Intrinsic::EventName => event.map_or(Value::Nil, |e| text(&e.name)),
            Intrinsic::EventTimeSinceStart => {
                event.map_or(Value::Nil, |e| Value::Duration(e.time_ns as i64 - span.start_ns as i64))
            }
            Intrinsic::LinkTraceId => link.map_or(Value::Nil, |l| Value::Str(Cow::Owned(l.trace_id.to_hex()))),
            Intrinsic::LinkSpanId => link.map_or(Value::Nil, |l| Value::Str(Cow::Owned(l.span_id.to_hex()))),
            Intrinsic::ScopeName => text(&span.scope.name),
            Intrinsic::ScopeVersion => text(&span.scope.version),
            Intrinsic::NestedSetLeft => Value::Int(nested.0),
            Intrinsic::NestedSetRight => Value::Int(nested.1),
            Intrinsic::NestedSetParent => Value::Int(nested.2),
        }
    }

    pub fn eval(&self, expr: &Expr) -> Value<'s> {
        match expr {
            Expr::Static(s) => match s {
                Static::Nil => Value::Nil,
                Static::Int(i) => Value::Int(*i),
                Static::Float(x) => Value::Float(*x),
                Static::Str(s) => Value::Str(Cow::Owned(s.clone())),
                Static::Bool(b) => Value::Bool(*b),
                Static::Duration(ns) => Value::Duration(*ns),
                Static::Status(s) => Value::Status(*s),
                Static::Kind(k) => Value::Kind(*k),
            },
            Expr::Attribute(attr) => self.attribute(attr),
            Expr::Intrinsic(i) => self.intrinsic(*i),
            Expr::Not(inner) => match self.eval(inner) {
                Value::Bool(b) => Value::Bool(!b),
                _ => Value::Nil,
            },
            Expr::Neg(inner) => match self.eval(inner) {
                Value::Int(i) => Value::Int(i.wrapping_neg()),
                Value::Float(x) => Value::Float(-x),
                Value::Duration(ns) => Value::Duration(ns.wrapping_neg()),
                _ => Value::Nil,
            },
            Expr::Binary { op: BinOp::And, left, right, .. } => {
                Value::Bool(self.eval(left).truthy() && self.eval(right).truthy())
            }
            Expr::Binary { op: BinOp::Or, left, right, .. } => {
                Value::Bool(self.eval(left).truthy() || self.eval(right).truthy())
            }
            Expr::Binary { op, left, right, .. } if op.arithmetic() => {
                match (self.eval(left).number(), self.eval(right).number()) {
                    (Some(a), Some(b)) => Value::Float(match op {
                        BinOp::Add => a + b,
                        BinOp::Sub => a - b,
                        BinOp::Mul => a * b,
                        BinOp::Div => a / b,
                        BinOp::Mod => a % b,
                        _ => a.powf(b),
                    }),
                    _ => Value::Nil,
                }
            }
            Expr::Binary { op, left, right, regex } => {
                let nil_literal = |e: &Expr| matches!(e, Expr::Static(Static::Nil));
                if nil_literal(left) || nil_literal(right) {
                    let (a, b) = (self.eval(left), self.eval(right));
                    let both_nil = a == Value::Nil && b == Value::Nil;
                    return Value::Bool(if *op == BinOp::Eq { both_nil } else { !both_nil });
                }
                Value::Bool(compare(*op, &self.eval(left), &self.eval(right), regex.as_ref()))
            }
        }
    }

    /// Whether a filter's condition holds on the span: once per event (and link) when
    /// it reads them, so that the fields of one event are compared together.
    pub fn holds(&self, condition: &Expr, reads: (bool, bool)) -> bool {
        let span = self.span();
        let events: Vec<Option<usize>> = match reads.0 && !span.events.is_empty() {
            true => (0..span.events.len()).map(Some).collect(),
            false => vec![None],
        };
        let links: Vec<Option<usize>> = match reads.1 && !span.links.is_empty() {
            true => (0..span.links.len()).map(Some).collect(),
            false => vec![None],
        };
        events.iter().any(|&event| links.iter().any(|&link| At { event, link, ..*self }.eval(condition).truthy()))
    }
}

/// Whether an expression reads events and links: (events, links).
pub fn reads(expr: &Expr) -> (bool, bool) {
    match expr {
        Expr::Attribute(Attribute { scope: Scope::Event, .. })
        | Expr::Intrinsic(Intrinsic::EventName | Intrinsic::EventTimeSinceStart) => (true, false),
        Expr::Attribute(Attribute { scope: Scope::Link, .. })
        | Expr::Intrinsic(Intrinsic::LinkTraceId | Intrinsic::LinkSpanId) => (false, true),
        Expr::Binary { left, right, .. } => {
            let (a, b) = (reads(left), reads(right));
            (a.0 || b.0, a.1 || b.1)
        }
        Expr::Not(e) | Expr::Neg(e) => reads(e),
        _ => (false, false),
    }
}

/// `a op b` for the comparison operators; false for any other.
pub(super) fn ordered<T: PartialOrd>(op: BinOp, a: T, b: T) -> bool {
    match op {
        BinOp::Eq => a == b,
        BinOp::Ne => a != b,
        BinOp::Lt => a < b,
        BinOp::Le => a <= b,
        BinOp::Gt => a > b,
        BinOp::Ge => a >= b,
        _ => false,
    }
}

/// `=` and `!=` given whether the sides are equal; false for any other operator.
fn equality(op: BinOp, equal: bool) -> bool {
    match op {
        BinOp::Eq => equal,
        BinOp::Ne => !equal,
        _ => false,
    }
}

fn compare(op: BinOp, a: &Value<'_>, b: &Value<'_>, regex: Option<&Regex>) -> bool {
    match (a, b) {
        (Value::Array(items), other) | (other, Value::Array(items)) if !matches!(other, Value::Array(_)) => {
            let array_left = matches!(a, Value::Array(_));
            let positive = match op {
                BinOp::Ne => BinOp::Eq,
                BinOp::NotRe => BinOp::Re,
                op => op,
            };
            let any = items.iter().any(|item| {
                let item = from_any(item);
                if array_left {
                    compare(positive, &item, other, regex)
                } else {
                    compare(positive, other, &item, regex)
                }
            });
            if positive == op {
                any
            } else {
                !any
            }
        }
        (Value::Str(x), Value::Str(y)) => match op {
            BinOp::Re => regex.is_some_and(|re| re.is_match(x)),
            BinOp::NotRe => regex.is_some_and(|re| !re.is_match(x)),
            op => ordered(op, x.as_ref(), y.as_ref()),
        },
        (Value::Int(x), Value::Int(y)) => ordered(op, x, y),
        (Value::Bool(x), Value::Bool(y)) => equality(op, x == y),
        (Value::Status(x), Value::Status(y)) => equality(op, x == y),
        (Value::Kind(x), Value::Kind(y)) => equality(op, x == y),
        (Value::Array(x), Value::Array(y)) => equality(op, x == y),
        (x, y) => match (x.number(), y.number()) {
            (Some(x), Some(y)) => ordered(op, x, y),
            _ => false,
        },
    }
}
