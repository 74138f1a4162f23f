//! A TraceQL subset, as Grafana's Tempo data source sends it: spansets `{ ... }` whose
//! conditions all hold on one span; `span.`, `resource.`, `event.` (any of the span's
//! events), `instrumentation.` and unscoped `.attr` (span or resource) attributes; the intrinsics `name`, `status`, `statusMessage`, `kind`, `duration`
//! (also as `span:*`), `trace:duration`, `trace:rootService` and `trace:rootName`;
//! `= != > >= < <= =~ !~`; `&&` and `||` inside and between spansets; the structural
//! `>` (child) and `>>` (descendant); and `| count() > N`.
//!
//! A query is evaluated on one whole trace at a time and yields the matching spans.

mod display;
mod parse;

use std::collections::{BTreeSet, HashMap};

use regex::Regex;
use tracekeeper_model::{AnyValue, Span, SpanKind, StatusCode};

use crate::engine::TraceSummary;
use crate::predicate::SpanPredicate;

pub use parse::{parse, parse_field};

#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    SpanAttr(String),
    ResourceAttr(String),
    /// `.key`: the span's attribute or its resource's.
    AnyAttr(String),
    /// `event.key`: an attribute of any of the span's events.
    EventAttr(String),
    /// `instrumentation.key`: an attribute of the span's instrumentation scope.
    ScopeAttr(String),
    Name,
    Status,
    StatusMessage,
    Kind,
    Duration,
    TraceDuration,
    RootService,
    RootName,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Re,
    NotRe,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Nanoseconds.
    Duration(u64),
    Status(StatusCode),
    Kind(SpanKind),
}

#[derive(Debug, Clone)]
pub enum Cond {
    True,
    False,
    Compare { field: Field, op: Op, value: Literal, regex: Option<Regex> },
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

#[derive(Debug, Clone)]
pub enum Spanset {
    Filter(Cond),
    And(Box<Spanset>, Box<Spanset>),
    Or(Box<Spanset>, Box<Spanset>),
    /// Spans of the right side whose parent is in the left side.
    Child(Box<Spanset>, Box<Spanset>),
    /// Spans of the right side with an ancestor in the left side.
    Descendant(Box<Spanset>, Box<Spanset>),
}

#[derive(Debug, Clone)]
pub struct Query {
    pub root: Spanset,
    /// `| count() <op> N` on the resulting spanset.
    pub count: Option<(Op, i64)>,
}

/// Largest compiled form of one regular expression. Compiling costs time in proportion,
/// and a query may hold many: a repetition such as `(a|b){500}` is refused by name
/// rather than compiled for a megabyte's worth of CPU.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// `pattern` with every brace that does not form a counted repetition (`{2}`, `{2,}`,
/// `{2,5}`) escaped. Go's RE2, which Tempo uses, reads such braces literally, so
/// `GET /products/{id}` matches itself; Rust's regex refuses them.
fn literal_braces(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let (mut i, mut in_class) = (0, false);
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                out.push(c);
                if let Some(&next) = chars.get(i + 1) {
                    out.push(next);
                }
                i += 2;
                continue;
            }
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '{' if !in_class => {
                let close = chars[i + 1..].iter().position(|&c| c == '}').map(|p| i + 1 + p);
                let counted = close.is_some_and(|end| {
                    let inner: String = chars[i + 1..end].iter().collect();
                    let (min, max) = inner.split_once(',').unwrap_or((&inner, "0"));
                    !min.is_empty()
                        && min.bytes().all(|b| b.is_ascii_digit())
                        && max.bytes().all(|b| b.is_ascii_digit())
                });
                match (counted, close) {
                    (true, Some(end)) => {
                        out.extend(&chars[i..=end]);
                        i = end + 1;
                    }
                    _ => {
                        out.push_str("\\{");
                        i += 1;
                    }
                }
                continue;
            }
            '}' if !in_class => {
                out.push_str("\\}");
                i += 1;
                continue;
            }
            _ => {}
        }
        out.push(c);
        i += 1;
    }
    out
}

impl Cond {
    fn compare(field: Field, op: Op, value: Literal) -> Result<Self, String> {
        let regex = match (op, &value) {
            (Op::Re | Op::NotRe, Literal::Str(pattern)) => Some(
                regex::RegexBuilder::new(&format!("^(?:{})$", literal_braces(pattern)))
                    .size_limit(REGEX_SIZE_LIMIT)
                    .dfa_size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| format!("TraceQL: invalid regular expression {pattern:?}: {e}"))?,
            ),
            (Op::Re | Op::NotRe, other) => return Err(format!("TraceQL: {op} needs a string, not {other}")),
            _ => None,
        };
        let fits = match (&field, &value) {
            (Field::Status, Literal::Status(_)) | (Field::Kind, Literal::Kind(_)) => true,
            (Field::Status | Field::Kind, _) | (_, Literal::Status(_) | Literal::Kind(_)) => false,
            (Field::Duration | Field::TraceDuration, v) => matches!(v, Literal::Duration(_) | Literal::Int(0)),
            (Field::Name | Field::StatusMessage | Field::RootService | Field::RootName, v) => {
                matches!(v, Literal::Str(_))
            }
            _ => true,
        };
        if !fits {
            return Err(format!("TraceQL: {field} cannot be compared with {value}"));
        }
        if matches!(field, Field::Status | Field::Kind) && !matches!(op, Op::Eq | Op::Ne) {
            return Err(format!("TraceQL: {field} only supports = and !="));
        }
        Ok(Cond::Compare { field, op, value, regex })
    }
}

/// One trace prepared for evaluation.
pub struct TraceView<'a> {
    spans: &'a [Span],
    summary: TraceSummary,
    parent_of: Vec<Option<usize>>,
}

impl<'a> TraceView<'a> {
    pub fn new(spans: &'a [Span]) -> Option<Self> {
        let summary = TraceSummary::of(spans)?;
        let index: HashMap<_, _> = spans.iter().enumerate().map(|(i, s)| (s.span_id, i)).collect();
        let parent_of = spans.iter().map(|s| s.parent_span_id.and_then(|p| index.get(&p).copied())).collect();
        Some(Self { spans, summary, parent_of })
    }
}

fn ordering<T: PartialOrd>(a: T, op: Op, b: T) -> bool {
    match op {
        Op::Eq => a == b,
        Op::Ne => a != b,
        Op::Gt => a > b,
        Op::Ge => a >= b,
        Op::Lt => a < b,
        Op::Le => a <= b,
        Op::Re | Op::NotRe => false,
    }
}

fn compare_value(stored: &AnyValue, op: Op, value: &Literal, regex: Option<&Regex>) -> bool {
    match (stored, value) {
        (AnyValue::String(s), Literal::Str(v)) => match (op, regex) {
            (Op::Re, Some(re)) => re.is_match(s),
            (Op::NotRe, Some(re)) => !re.is_match(s),
            _ => ordering(s.as_str(), op, v.as_str()),
        },
        (AnyValue::Int(i), Literal::Int(v)) => ordering(*i, op, *v),
        (AnyValue::Int(i), Literal::Float(v)) => ordering(*i as f64, op, *v),
        (AnyValue::Double(d), Literal::Float(v)) => ordering(*d, op, *v),
        (AnyValue::Double(d), Literal::Int(v)) => ordering(*d, op, *v as f64),
        (AnyValue::Bool(b), Literal::Bool(v)) => matches!(op, Op::Eq | Op::Ne) && ordering(*b, op, *v),
        (AnyValue::Int(i), Literal::Duration(v)) => ordering(*i as f64, op, *v as f64),
        _ => false,
    }
}

fn attribute<'s>(attrs: &'s [tracekeeper_model::KeyValue], key: &str) -> Option<&'s AnyValue> {
    attrs.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
}

impl Field {
    /// The values of an attribute field on `span`, in the order TraceQL looks: one for
    /// a span, resource or scope attribute, one per event holding it for `event.`, and
    /// the span's then the resource's for an unscoped one. Empty for intrinsics.
    pub fn values<'s>(&self, span: &'s Span) -> Vec<&'s AnyValue> {
        match self {
            Field::SpanAttr(key) => attribute(&span.attributes, key).into_iter().collect(),
            Field::ResourceAttr(key) => attribute(&span.resource.attributes, key).into_iter().collect(),
            Field::ScopeAttr(key) => attribute(&span.scope.attributes, key).into_iter().collect(),
            Field::AnyAttr(key) => {
                attribute(&span.attributes, key).into_iter().chain(attribute(&span.resource.attributes, key)).collect()
            }
            Field::EventAttr(key) => span.events.iter().filter_map(|e| attribute(&e.attributes, key)).collect(),
            _ => Vec::new(),
        }
    }

    /// The key of an attribute field.
    pub fn attribute_key(&self) -> Option<&str> {
        match self {
            Field::SpanAttr(k)
            | Field::ResourceAttr(k)
            | Field::AnyAttr(k)
            | Field::EventAttr(k)
            | Field::ScopeAttr(k) => Some(k),
            _ => None,
        }
    }
}

impl Cond {
    fn holds(&self, trace: &TraceView<'_>, span: &Span) -> bool {
        match self {
            Cond::True => true,
            Cond::False => false,
            Cond::And(a, b) => a.holds(trace, span) && b.holds(trace, span),
            Cond::Or(a, b) => a.holds(trace, span) || b.holds(trace, span),
            Cond::Compare { field, op, value, regex } => {
                let text = |s: &str| compare_value(&AnyValue::String(s.to_string()), *op, value, regex.as_ref());
                let nanos = |n: u64| match value {
                    Literal::Duration(v) => ordering(n, *op, *v),
                    Literal::Int(v) => ordering(n as i64, *op, *v),
                    _ => false,
                };
                match field {
                    Field::SpanAttr(_)
                    | Field::ResourceAttr(_)
                    | Field::AnyAttr(_)
                    | Field::EventAttr(_)
                    | Field::ScopeAttr(_) => {
                        field.values(span).into_iter().any(|v| compare_value(v, *op, value, regex.as_ref()))
                    }
                    Field::Name => text(&span.name),
                    Field::StatusMessage => text(&span.status.message),
                    // Only = and != reach here (checked when parsed).
                    Field::Status => (span.status.code == status_of(value)) == (*op == Op::Eq),
                    Field::Kind => (span.kind == kind_of(value)) == (*op == Op::Eq),
                    Field::Duration => nanos(span.duration_ns()),
                    Field::TraceDuration => nanos(trace.summary.duration_ns),
                    Field::RootService => text(&trace.summary.root_service),
                    Field::RootName => text(&trace.summary.root_name),
                }
            }
        }
    }

    /// Every attribute the condition reads, as (scope, key): what Tempo returns with
    /// each matched span.
    fn attributes<'c>(&'c self, out: &mut Vec<&'c Field>) {
        match self {
            Cond::True | Cond::False => {}
            Cond::And(a, b) | Cond::Or(a, b) => {
                a.attributes(out);
                b.attributes(out);
            }
            Cond::Compare { field, .. } => out.push(field),
        }
    }
}

fn status_of(value: &Literal) -> StatusCode {
    match value {
        Literal::Status(s) => *s,
        _ => StatusCode::Unset,
    }
}

fn kind_of(value: &Literal) -> SpanKind {
    match value {
        Literal::Kind(k) => *k,
        _ => SpanKind::Unspecified,
    }
}

impl Spanset {
    fn eval(&self, trace: &TraceView<'_>) -> BTreeSet<usize> {
        match self {
            Spanset::Filter(cond) => (0..trace.spans.len()).filter(|&i| cond.holds(trace, &trace.spans[i])).collect(),
            Spanset::And(a, b) => {
                let (a, b) = (a.eval(trace), b.eval(trace));
                if a.is_empty() || b.is_empty() {
                    BTreeSet::new()
                } else {
                    a.union(&b).copied().collect()
                }
            }
            Spanset::Or(a, b) => a.eval(trace).union(&b.eval(trace)).copied().collect(),
            Spanset::Child(a, b) => {
                let parents = a.eval(trace);
                b.eval(trace)
                    .into_iter()
                    .filter(|&i| trace.parent_of[i].is_some_and(|p| parents.contains(&p)))
                    .collect()
            }
            Spanset::Descendant(a, b) => {
                let ancestors = a.eval(trace);
                b.eval(trace)
                    .into_iter()
                    .filter(|&i| {
                        let mut at = trace.parent_of[i];
                        // Bounded by the trace size, in case of a parent cycle.
                        for _ in 0..trace.spans.len() {
                            match at {
                                Some(p) if ancestors.contains(&p) => return true,
                                Some(p) => at = trace.parent_of[p],
                                None => return false,
                            }
                        }
                        false
                    })
                    .collect()
            }
        }
    }

    fn fields<'c>(&'c self, out: &mut Vec<&'c Field>) {
        match self {
            Spanset::Filter(cond) => cond.attributes(out),
            Spanset::And(a, b) | Spanset::Or(a, b) | Spanset::Child(a, b) | Spanset::Descendant(a, b) => {
                a.fields(out);
                b.fields(out);
            }
        }
    }

    /// A span predicate every trace this spanset matches has a span for: the equality
    /// conditions of the leftmost spanset that must hold (an index hint; exactness
    /// comes from evaluating the whole query on each candidate).
    fn hint(&self) -> SpanPredicate {
        match self {
            Spanset::Filter(cond) => {
                let mut predicate = SpanPredicate::default();
                cond.hint(&mut predicate);
                predicate
            }
            // Both sides must match: either side's hint holds.
            Spanset::And(a, _) => a.hint(),
            // The right side's spans are the result, and must match it.
            Spanset::Child(_, b) | Spanset::Descendant(_, b) => b.hint(),
            Spanset::Or(..) => SpanPredicate::default(),
        }
    }
}

impl Cond {
    fn hint(&self, predicate: &mut SpanPredicate) {
        match self {
            Cond::And(a, b) => {
                a.hint(predicate);
                b.hint(predicate);
            }
            Cond::Compare { field, op: Op::Eq, value, .. } => match (field, value) {
                (Field::ResourceAttr(key), Literal::Str(v)) if key == "service.name" => {
                    predicate.service = Some(v.clone())
                }
                (Field::Name, Literal::Str(v)) => predicate.operation = Some(v.clone()),
                (Field::Status, Literal::Status(s)) => predicate.status = Some(*s),
                (Field::Kind, Literal::Kind(k)) => predicate.kind = Some(*k),
                (
                    Field::SpanAttr(k)
                    | Field::ResourceAttr(k)
                    | Field::AnyAttr(k)
                    | Field::EventAttr(k)
                    | Field::ScopeAttr(k),
                    v,
                ) => {
                    let text = match v {
                        Literal::Str(s) => s.clone(),
                        Literal::Int(i) => i.to_string(),
                        Literal::Bool(b) => b.to_string(),
                        _ => return,
                    };
                    predicate.tags.push((k.clone(), text));
                }
                _ => {}
            },
            _ => {}
        }
    }
}

impl Query {
    /// The spans of `trace` the query selects; empty when the trace does not match.
    pub fn matches(&self, trace: &TraceView<'_>) -> Vec<usize> {
        let spans = self.root.eval(trace);
        if let Some((op, n)) = self.count {
            if !ordering(spans.len() as i64, op, n) {
                return Vec::new();
            }
        }
        spans.into_iter().collect()
    }

    /// Attributes the query reads, to return with the matched spans.
    pub fn fields(&self) -> Vec<&Field> {
        let mut out = Vec::new();
        self.root.fields(&mut out);
        out
    }

    /// See [`Spanset::hint`]. The service and operation only narrow the index walk
    /// when they are plain equalities of the spanset that decides.
    pub fn hint(&self) -> SpanPredicate {
        self.root.hint()
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
