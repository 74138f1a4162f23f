//! A typed TraceQL query: field expressions evaluated on one span, spanset expressions
//! and pipelines evaluated on one trace, and metrics expressions over many traces.

use regex::Regex;
use tracekeeper_model::{SpanKind, StatusCode};

/// Where an attribute is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Span,
    Resource,
    /// Any of the span's events.
    Event,
    /// Any of the span's links.
    Link,
    /// The span's instrumentation scope.
    Instrumentation,
    /// Unscoped `.name`: the span's attribute, else its resource's.
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub scope: Scope,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intrinsic {
    Name,
    Status,
    StatusMessage,
    Kind,
    Duration,
    ChildCount,
    SpanId,
    ParentId,
    TraceDuration,
    RootName,
    RootService,
    TraceId,
    EventName,
    EventTimeSinceStart,
    LinkTraceId,
    LinkSpanId,
    ScopeName,
    ScopeVersion,
    NestedSetLeft,
    NestedSetRight,
    NestedSetParent,
}

/// The type of a field expression, as far as it is known before evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Nil,
    Int,
    Float,
    Str,
    Bool,
    Duration,
    Status,
    Kind,
    /// An attribute's: known only per span.
    Attribute,
}

impl Type {
    pub fn numeric(self) -> bool {
        matches!(self, Type::Int | Type::Float | Type::Duration)
    }
}

impl Intrinsic {
    pub fn ty(self) -> Type {
        match self {
            Intrinsic::Status => Type::Status,
            Intrinsic::Kind => Type::Kind,
            Intrinsic::Duration | Intrinsic::TraceDuration | Intrinsic::EventTimeSinceStart => Type::Duration,
            Intrinsic::ChildCount
            | Intrinsic::NestedSetLeft
            | Intrinsic::NestedSetRight
            | Intrinsic::NestedSetParent => Type::Int,
            _ => Type::Str,
        }
    }

    /// Whether every span has it: `= nil` could never hold.
    pub fn always_present(self) -> bool {
        !matches!(
            self,
            Intrinsic::EventName
                | Intrinsic::EventTimeSinceStart
                | Intrinsic::LinkTraceId
                | Intrinsic::LinkSpanId
                | Intrinsic::ParentId
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Static {
    Nil,
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    /// Nanoseconds.
    Duration(i64),
    Status(StatusCode),
    Kind(SpanKind),
}

impl Static {
    pub fn ty(&self) -> Type {
        match self {
            Static::Nil => Type::Nil,
            Static::Int(_) => Type::Int,
            Static::Float(_) => Type::Float,
            Static::Str(_) => Type::Str,
            Static::Bool(_) => Type::Bool,
            Static::Duration(_) => Type::Duration,
            Static::Status(_) => Type::Status,
            Static::Kind(_) => Type::Kind,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Re,
    NotRe,
    And,
    Or,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

impl BinOp {
    pub fn comparison(self) -> bool {
        matches!(self, BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge)
    }
    pub fn arithmetic(self) -> bool {
        matches!(self, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod | BinOp::Pow)
    }
}

/// An expression over one span (and, for `event.`/`link.` fields, one of its events
/// or links).
#[derive(Debug, Clone)]
pub enum Expr {
    Static(Static),
    Attribute(Attribute),
    Intrinsic(Intrinsic),
    /// `regex` is the compiled right side of `=~` and `!~`.
    Binary {
        op: BinOp,
        left: Box<Expr>,
        right: Box<Expr>,
        regex: Option<Regex>,
    },
    Not(Box<Expr>),
    Neg(Box<Expr>),
}

/// How two spansets combine: `&&`, `||`, and the structural relations, each yielding
/// the right side's spans that stand in that relation to a left side's span (the
/// `!` forms: that do not; the `&` forms: both sides' spans that do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpansetOp {
    And,
    Or,
    Child,
    Parent,
    Descendant,
    Ancestor,
    Sibling,
    NotChild,
    NotParent,
    NotDescendant,
    NotAncestor,
    NotSibling,
    UnionChild,
    UnionParent,
    UnionDescendant,
    UnionAncestor,
    UnionSibling,
}

#[derive(Debug, Clone)]
pub enum Spanset {
    Filter(Expr),
    Op(SpansetOp, Box<Spanset>, Box<Spanset>),
    /// A parenthesised pipeline used as a spanset.
    Pipeline(Pipeline),
}

#[derive(Debug, Clone)]
pub enum Aggregate {
    Count,
    Avg(Expr),
    Min(Expr),
    Max(Expr),
    Sum(Expr),
}

#[derive(Debug, Clone)]
pub enum Stage {
    Spansets(Spanset),
    /// `aggregate op value`: keeps the spansets whose aggregate compares true.
    ScalarFilter {
        aggregate: Aggregate,
        op: BinOp,
        value: f64,
    },
    /// `by(expr, ...)`: splits each spanset by the values of the expressions.
    By(Vec<Expr>),
    /// `coalesce()`: merges all spansets into one.
    Coalesce,
    /// `select(expr, ...)`: fields returned with each span.
    Select(Vec<Expr>),
}

#[derive(Debug, Clone)]
pub struct Pipeline {
    pub stages: Vec<Stage>,
}

/// Query hints from `with (...)`: `most_recent` is honoured (the newest traces are
/// searched first anyway), and `exemplars`; sampling hints are accepted and ignored,
/// since answers here are exact.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    pub most_recent: bool,
    /// `with (exemplars=N)`: at most N a series; `false` is 0. `true` changes nothing.
    pub exemplars: Option<u64>,
}
