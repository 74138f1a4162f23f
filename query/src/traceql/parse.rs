//! A lexer and recursive-descent parser for the TraceQL subset. Anything outside the
//! subset is refused with an error that names the construct.

use tracekeeper_model::{SpanKind, StatusCode};

use super::{Cond, Field, Literal, Op, Query, Spanset};

#[derive(Debug, Clone, PartialEq)]
enum Token {
    LBrace,
    RBrace,
    LParen,
    RParen,
    Pipe,
    And,
    Or,
    Op(Op),
    /// `>` and `>>` between spansets (also `>` as a comparison inside one).
    Gt,
    Descendant,
    Word(String),
    Str(String),
    Number(String),
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::LBrace => f.write_str("'{'"),
            Token::RBrace => f.write_str("'}'"),
            Token::LParen => f.write_str("'('"),
            Token::RParen => f.write_str("')'"),
            Token::Pipe => f.write_str("'|'"),
            Token::And => f.write_str("'&&'"),
            Token::Or => f.write_str("'||'"),
            Token::Op(op) => write!(f, "'{op}'"),
            Token::Gt => f.write_str("'>'"),
            Token::Descendant => f.write_str("'>>'"),
            Token::Word(w) if w.is_empty() => f.write_str("'.' without an attribute name"),
            Token::Word(w) => write!(f, "'{w}'"),
            Token::Str(s) => write!(f, "the string {s:?}"),
            Token::Number(n) => write!(f, "the number {n}"),
        }
    }
}

/// A token, or the end of the query, as the user wrote it.
fn shown(token: Option<&Token>) -> String {
    token.map_or_else(|| "the end of the query".to_string(), Token::to_string)
}

fn unsupported(what: &str) -> String {
    format!("TraceQL: {what} is not supported (supported: spansets {{ }} with span., resource., event., instrumentation., .attr and intrinsics, = != > >= < <= =~ !~, && || inside and between spansets, >> and >, | count())")
}

fn lex(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let two = |i: usize| chars.get(i..i + 2).map(|c| c.iter().collect::<String>()).unwrap_or_default();
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let pair = two(i);
        let (token, len) = match pair.as_str() {
            "&&" => (Token::And, 2),
            "||" => (Token::Or, 2),
            ">>" => (Token::Descendant, 2),
            ">=" => (Token::Op(Op::Ge), 2),
            "<=" => (Token::Op(Op::Le), 2),
            "!=" => (Token::Op(Op::Ne), 2),
            "=~" => (Token::Op(Op::Re), 2),
            "!~" => (Token::Op(Op::NotRe), 2),
            "<<" => return Err(unsupported("the ancestor operator '<<'")),
            "&>" => return Err(unsupported("the union structural operators ('&>>', '&>', ...)")),
            "&<" | "&~" => return Err(unsupported("the union structural operators ('&<<', '&<', '&~')")),
            "!>" | "!<" => return Err(unsupported("negated structural operators ('!>>', '!>', ...)")),
            _ => match c {
                '{' => (Token::LBrace, 1),
                '}' => (Token::RBrace, 1),
                '(' => (Token::LParen, 1),
                ')' => (Token::RParen, 1),
                '|' => (Token::Pipe, 1),
                '=' => (Token::Op(Op::Eq), 1),
                '>' => (Token::Gt, 1),
                '<' => (Token::Op(Op::Lt), 1),
                '~' => return Err(unsupported("the sibling operator '~'")),
                '+' | '*' | '/' | '%' | '^' => return Err(unsupported(&format!("arithmetic ('{c}')"))),
                '"' | '`' => {
                    let (s, len) = string(&chars[i..])?;
                    (Token::Str(s), len)
                }
                c if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) => {
                    let len = 1 + chars[i + 1..].iter().take_while(|c| c.is_alphanumeric() || **c == '.').count();
                    (Token::Number(chars[i..i + len].iter().collect()), len)
                }
                '-' => return Err(unsupported("arithmetic ('-')")),
                _ => {
                    let len =
                        chars[i..].iter().take_while(|c| !c.is_whitespace() && !"{}()=!<>~&|\"`".contains(**c)).count();
                    if len == 0 {
                        return Err(format!("TraceQL: unexpected character {c:?} at {i}"));
                    }
                    (Token::Word(chars[i..i + len].iter().collect()), len)
                }
            },
        };
        tokens.push(token);
        i += len;
    }
    Ok(tokens)
}

/// A quoted string starting at `chars[0]`, with Go-style escapes in double quotes.
fn string(chars: &[char]) -> Result<(String, usize), String> {
    let quote = chars[0];
    let mut out = String::new();
    let mut i = 1;
    while let Some(&c) = chars.get(i) {
        match c {
            c if c == quote => return Ok((out, i + 1)),
            '\\' if quote == '"' => {
                let escaped = chars.get(i + 1).ok_or("TraceQL: unterminated string")?;
                out.push(match escaped {
                    'n' => '\n',
                    't' => '\t',
                    other => *other,
                });
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err("TraceQL: unterminated string".into())
}

/// Deepest nesting of parentheses a query may have. The parser, the
/// evaluator and the tree's drop all recurse over the query, so both the nesting and
/// the size of the tree are bounded: a hostile query gets a 400, never a stack overflow.
pub const MAX_NESTING: usize = 32;
/// Most conditions and spansets one query may hold; a `&&` chain nests as deep as it
/// is long.
pub const MAX_TERMS: usize = 256;

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
    terms: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(format!("TraceQL: the query nests parentheses deeper than {MAX_NESTING} levels"));
        }
        Ok(())
    }

    fn term(&mut self) -> Result<(), String> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(format!("TraceQL: the query holds more than {MAX_TERMS} conditions and spansets"));
        }
        Ok(())
    }

    /// Whether the next token ends a condition (so a bare word before it is a whole
    /// condition, not a field).
    fn closes_condition(&self) -> bool {
        matches!(self.peek(), None | Some(Token::RBrace | Token::RParen | Token::And | Token::Or))
    }

    fn expect(&mut self, want: Token, context: &str) -> Result<(), String> {
        match self.next() {
            Some(t) if t == want => Ok(()),
            Some(t) => Err(format!("TraceQL: expected {context}, found {t}")),
            None => Err(format!("TraceQL: expected {context}, found the end of the query")),
        }
    }

    /// `&&` and `||` bind alike and from the left, as in Tempo's grammar, and more
    /// loosely than the structural `>` and `>>`: `{a} || {b} && {c}` is
    /// `({a} || {b}) && {c}`.
    fn spanset_or(&mut self) -> Result<Spanset, String> {
        let mut left = self.spanset_structural()?;
        loop {
            let combine = match self.peek() {
                Some(Token::And) => Spanset::And,
                Some(Token::Or) => Spanset::Or,
                _ => return Ok(left),
            };
            self.next();
            left = combine(Box::new(left), Box::new(self.spanset_structural()?));
        }
    }

    fn spanset_structural(&mut self) -> Result<Spanset, String> {
        let mut left = self.spanset_primary()?;
        loop {
            match self.peek() {
                Some(Token::Gt) => {
                    self.next();
                    left = Spanset::Child(Box::new(left), Box::new(self.spanset_primary()?));
                }
                Some(Token::Descendant) => {
                    self.next();
                    left = Spanset::Descendant(Box::new(left), Box::new(self.spanset_primary()?));
                }
                Some(Token::Op(Op::Lt)) => return Err(unsupported("the parent operator '<'")),
                _ => return Ok(left),
            }
        }
    }

    fn spanset_primary(&mut self) -> Result<Spanset, String> {
        self.term()?;
        match self.next() {
            Some(Token::LBrace) => {
                if self.peek() == Some(&Token::RBrace) {
                    self.next();
                    return Ok(Spanset::Filter(Cond::True));
                }
                let cond = self.cond_or()?;
                self.expect(Token::RBrace, "'}' closing the spanset")?;
                Ok(Spanset::Filter(cond))
            }
            Some(Token::LParen) => {
                self.enter()?;
                let inner = self.spanset_or()?;
                self.expect(Token::RParen, "')'")?;
                self.depth -= 1;
                Ok(inner)
            }
            Some(Token::Word(w)) if w.starts_with(|c: char| c.is_ascii_alphabetic()) => {
                Err(unsupported(&format!("'{w}' outside a spanset (metrics and aggregates start with '{{ }} |')")))
            }
            Some(t) => Err(format!("TraceQL: expected a spanset '{{ ... }}', found {t}")),
            None => Err("TraceQL: expected a spanset '{ ... }', found the end of the query".into()),
        }
    }

    /// Inside a spanset too, `&&` and `||` bind alike and from the left.
    fn cond_or(&mut self) -> Result<Cond, String> {
        let mut left = self.cond_primary()?;
        loop {
            let combine = match self.peek() {
                Some(Token::And) => Cond::And,
                Some(Token::Or) => Cond::Or,
                _ => return Ok(left),
            };
            self.next();
            left = combine(Box::new(left), Box::new(self.cond_primary()?));
        }
    }

    fn cond_primary(&mut self) -> Result<Cond, String> {
        self.term()?;
        if self.peek() == Some(&Token::LParen) {
            self.next();
            self.enter()?;
            let inner = self.cond_or()?;
            self.expect(Token::RParen, "')'")?;
            self.depth -= 1;
            return Ok(inner);
        }
        let field = match self.next() {
            // `{ true }` selects every span, `{ false }` none.
            Some(Token::Word(w)) if w == "true" && self.closes_condition() => return Ok(Cond::True),
            Some(Token::Word(w)) if w == "false" && self.closes_condition() => return Ok(Cond::False),
            Some(Token::Word(w)) => field(&w)?,
            Some(t) => return Err(format!("TraceQL: expected an attribute or intrinsic, found {t}")),
            None => return Err("TraceQL: expected a condition, found the end of the query".into()),
        };
        let op = match self.next() {
            Some(Token::Op(op)) => op,
            Some(Token::Gt) => Op::Gt,
            Some(t) => return Err(format!("TraceQL: expected a comparison operator after {field}, found {t}")),
            None => return Err(format!("TraceQL: {field} needs a comparison such as = \"value\"")),
        };
        let value = match self.next() {
            Some(Token::Str(s)) => Literal::Str(s),
            Some(Token::Number(n)) => number(&n)?,
            Some(Token::Word(w)) => word_literal(&w)?,
            Some(t) => return Err(format!("TraceQL: expected a value after {op}, found {t}")),
            None => return Err("TraceQL: expected a value, found the end of the query".into()),
        };
        Cond::compare(field, op, value)
    }

    fn pipeline(&mut self) -> Result<Option<(Op, i64)>, String> {
        let mut count = None;
        while self.peek() == Some(&Token::Pipe) {
            self.next();
            match self.next() {
                Some(Token::Word(w)) if w == "count" => {}
                Some(Token::Word(w)) => return Err(unsupported(&format!("the pipeline function '{w}()'"))),
                other => return Err(format!("TraceQL: expected count() after '|', found {}", shown(other.as_ref()))),
            }
            self.expect(Token::LParen, "'(' after count")?;
            self.expect(Token::RParen, "')': count() takes no argument")?;
            let op = match self.next() {
                Some(Token::Op(op)) if !matches!(op, Op::Re | Op::NotRe) => op,
                Some(Token::Gt) => Op::Gt,
                other => {
                    return Err(format!(
                        "TraceQL: expected a comparison after count(), found {}",
                        shown(other.as_ref())
                    ))
                }
            };
            let n = match self.next() {
                Some(Token::Number(n)) => {
                    n.parse::<i64>().map_err(|_| format!("TraceQL: count() compares to an integer, not {n}"))?
                }
                other => {
                    return Err(format!(
                        "TraceQL: expected an integer after count() {op}, found {}",
                        shown(other.as_ref())
                    ))
                }
            };
            if count.replace((op, n)).is_some() {
                return Err(unsupported("more than one count() stage"));
            }
        }
        Ok(count)
    }
}

/// A field as written in a query: `span.key`, `resource.key`, `.key` or an intrinsic.
pub fn parse_field(word: &str) -> Result<Field, String> {
    field(word)
}

fn field(word: &str) -> Result<Field, String> {
    let scoped = ["span.", "resource.", "event.", "instrumentation.", "link.", "."];
    if scoped.contains(&word) {
        return Err(format!("TraceQL: '{word}' without an attribute name"));
    }
    if word.starts_with("link.") {
        return Err(unsupported(&format!("the link scope ('{word}')")));
    }
    if let Some(key) = word.strip_prefix("event.") {
        return Ok(Field::EventAttr(key.to_string()));
    }
    if let Some(key) = word.strip_prefix("instrumentation.") {
        return Ok(Field::ScopeAttr(key.to_string()));
    }
    if let Some(key) = word.strip_prefix("span.") {
        return Ok(Field::SpanAttr(key.to_string()));
    }
    if let Some(key) = word.strip_prefix("resource.") {
        return Ok(Field::ResourceAttr(key.to_string()));
    }
    if let Some(key) = word.strip_prefix('.') {
        return Ok(Field::AnyAttr(key.to_string()));
    }
    Ok(match word {
        "name" | "span:name" => Field::Name,
        "status" | "span:status" => Field::Status,
        "statusMessage" | "span:statusMessage" => Field::StatusMessage,
        "kind" | "span:kind" => Field::Kind,
        "duration" | "span:duration" => Field::Duration,
        "traceDuration" | "trace:duration" => Field::TraceDuration,
        "rootServiceName" | "trace:rootService" => Field::RootService,
        "rootName" | "trace:rootName" => Field::RootName,
        "nil" => return Err(unsupported("nil")),
        w if w.contains(':') => return Err(unsupported(&format!("the intrinsic '{w}'"))),
        w => return Err(format!("TraceQL: unknown field '{w}': scope attributes as span.{w}, resource.{w} or .{w}")),
    })
}

fn number(text: &str) -> Result<Literal, String> {
    if let Ok(i) = text.parse::<i64>() {
        return Ok(Literal::Int(i));
    }
    if let Ok(f) = text.parse::<f64>() {
        return Ok(Literal::Float(f));
    }
    tracekeeper_model::duration::parse_go_duration(text).map(Literal::Duration).map_err(|e| format!("TraceQL: {e}"))
}

fn word_literal(word: &str) -> Result<Literal, String> {
    Ok(match word {
        "true" => Literal::Bool(true),
        "false" => Literal::Bool(false),
        "error" => Literal::Status(StatusCode::Error),
        "ok" => Literal::Status(StatusCode::Ok),
        "unset" => Literal::Status(StatusCode::Unset),
        "server" => Literal::Kind(SpanKind::Server),
        "client" => Literal::Kind(SpanKind::Client),
        "producer" => Literal::Kind(SpanKind::Producer),
        "consumer" => Literal::Kind(SpanKind::Consumer),
        "internal" => Literal::Kind(SpanKind::Internal),
        "unspecified" => Literal::Kind(SpanKind::Unspecified),
        "nil" => return Err(unsupported("nil")),
        w => return Err(format!("TraceQL: {w:?} is not a value: quote strings, as in \"{w}\"")),
    })
}

pub fn parse(text: &str) -> Result<Query, String> {
    let mut parser = Parser { tokens: lex(text)?, at: 0, depth: 0, terms: 0 };
    if parser.tokens.is_empty() {
        return Ok(Query { root: Spanset::Filter(Cond::True), count: None });
    }
    let root = parser.spanset_or()?;
    let count = parser.pipeline()?;
    if let Some(t) = parser.peek() {
        return Err(match t {
            Token::Word(w) if w == "with" => unsupported("query hints ('with (...)')"),
            t => format!("TraceQL: unexpected {t} after the query"),
        });
    }
    Ok(Query { root, count })
}
