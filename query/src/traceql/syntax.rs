//! The shape of a TraceQL query before it is typed: one precedence-climbing parser for
//! spansets, pipelines, field expressions and metrics math alike. `|` binds most
//! loosely, then `&&` and `||`, then comparisons and the structural operators, then
//! `+ -`, `* / %` and `^` (from the right), as in Tempo's grammar. What each piece
//! means, and whether it may stand where it stands, is decided in `build.rs`.

use super::lex::{lex, Token};

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `{ ... }`; `None` for `{ }`.
    Filter(Option<Box<Node>>),
    /// `a | b | c`.
    Pipe(Vec<Node>),
    /// `name(args)`, with `by (...)` when one follows.
    Call {
        name: String,
        args: Vec<Node>,
        by: Option<Vec<Node>>,
    },
    Binary(&'static str, Box<Node>, Box<Node>),
    /// `-x` or `!x`.
    Unary(&'static str, Box<Node>),
    Paren(Box<Node>),
    Word(String),
    Attr {
        scope: &'static str,
        name: String,
    },
    Str(String),
    Int(i64),
    Float(f64),
    Duration(i64),
}

/// A query: its expression and its `with (key = value, ...)` hints.
#[derive(Debug)]
pub struct Syntax {
    pub node: Node,
    pub hints: Vec<(String, Node)>,
}

/// Deepest nesting of parentheses, braces and unary operators a query may have. The
/// parser, the evaluator and the tree's drop all recurse over the query, so both the
/// nesting and the size of the tree are bounded: a hostile query gets a 400, never a
/// stack overflow.
pub const MAX_NESTING: usize = 32;
/// Most operands (conditions, spansets, values) one query may hold.
pub const MAX_TERMS: usize = 512;

fn precedence(token: &Token) -> Option<(u8, &'static str)> {
    Some(match token {
        Token::Pipe => (0, "|"),
        Token::Sym(s @ ("&&" | "||")) => (1, s),
        Token::Sym(
            s @ ("=" | "!=" | "<" | "<=" | ">" | ">=" | "=~" | "!~" | ">>" | "<<" | "~" | "!>" | "!<" | "!>>" | "!<<"
            | "&>" | "&<" | "&>>" | "&<<" | "&~"),
        ) => (2, s),
        Token::Sym(s @ ("+" | "-")) => (3, s),
        Token::Sym(s @ ("*" | "/" | "%")) => (4, s),
        Token::Sym(s @ "^") => (5, s),
        _ => return None,
    })
}

fn shown(token: Option<&Token>) -> String {
    token.map_or_else(|| "the end of the query".to_string(), Token::to_string)
}

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

    fn peek_at(&self, ahead: usize) -> Option<&Token> {
        self.tokens.get(self.at + ahead)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn expect(&mut self, want: Token, context: &str) -> Result<(), String> {
        match self.next() {
            Some(t) if t == want => Ok(()),
            other => Err(format!("TraceQL: expected {context}, found {}", shown(other.as_ref()))),
        }
    }

    fn nested<T>(&mut self, inner: impl FnOnce(&mut Self) -> Result<T, String>) -> Result<T, String> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(format!("TraceQL: the query nests deeper than {MAX_NESTING} levels"));
        }
        let out = inner(self);
        self.depth -= 1;
        out
    }

    fn expr(&mut self, min: u8) -> Result<Node, String> {
        let mut left = self.unary()?;
        while let Some((prec, op)) = self.peek().and_then(precedence) {
            if prec < min {
                break;
            }
            self.next();
            // `^` associates from the right, every other operator from the left.
            let right = if op == "^" { self.nested(|p| p.expr(prec))? } else { self.expr(prec + 1)? };
            left = match (op, left) {
                ("|", Node::Pipe(mut stages)) => {
                    stages.push(right);
                    Node::Pipe(stages)
                }
                ("|", first) => Node::Pipe(vec![first, right]),
                (op, left) => Node::Binary(op, Box::new(left), Box::new(right)),
            };
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Node, String> {
        match self.peek() {
            Some(Token::Sym(op @ ("-" | "!"))) => {
                let op = *op;
                self.next();
                self.nested(|p| Ok(Node::Unary(op, Box::new(p.unary()?))))
            }
            _ => self.primary(),
        }
    }

    fn list(&mut self, what: &str) -> Result<Vec<Node>, String> {
        self.expect(Token::LParen, &format!("'(' after {what}"))?;
        let mut items = Vec::new();
        if self.peek() == Some(&Token::RParen) {
            self.next();
            return Ok(items);
        }
        loop {
            items.push(self.nested(|p| p.expr(1))?);
            match self.next() {
                Some(Token::Comma) => continue,
                Some(Token::RParen) => return Ok(items),
                other => {
                    return Err(format!("TraceQL: expected ',' or ')' in {what}, found {}", shown(other.as_ref())))
                }
            }
        }
    }

    fn primary(&mut self) -> Result<Node, String> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(format!("TraceQL: the query holds more than {MAX_TERMS} terms"));
        }
        match self.next() {
            Some(Token::LBrace) => {
                if self.peek() == Some(&Token::RBrace) {
                    self.next();
                    return Ok(Node::Filter(None));
                }
                let inner = self.nested(|p| p.expr(1))?;
                self.expect(Token::RBrace, "'}' closing the spanset")?;
                Ok(Node::Filter(Some(Box::new(inner))))
            }
            Some(Token::LParen) => {
                let inner = self.nested(|p| p.expr(0))?;
                self.expect(Token::RParen, "')'")?;
                Ok(Node::Paren(Box::new(inner)))
            }
            Some(Token::Word(name)) if self.peek() == Some(&Token::LParen) => {
                let args = self.list(&format!("{name}("))?;
                let by = match (self.peek(), self.peek_at(1)) {
                    (Some(Token::Word(w)), Some(Token::LParen)) if w == "by" => {
                        self.next();
                        Some(self.list("by(")?)
                    }
                    _ => None,
                };
                Ok(Node::Call { name, args, by })
            }
            Some(Token::Word(w)) => Ok(Node::Word(w)),
            Some(Token::Attr { scope, name }) => Ok(Node::Attr { scope, name }),
            Some(Token::Str(s)) => Ok(Node::Str(s)),
            Some(Token::Int(i)) => Ok(Node::Int(i)),
            Some(Token::Float(x)) => Ok(Node::Float(x)),
            Some(Token::Duration(ns)) => Ok(Node::Duration(ns)),
            Some(Token::Sym("==")) => Err("TraceQL: '==' is not an operator: compare with '='".into()),
            other => Err(format!("TraceQL: unexpected {}", shown(other.as_ref()))),
        }
    }

    fn hints(&mut self) -> Result<Vec<(String, Node)>, String> {
        let mut hints = Vec::new();
        self.expect(Token::LParen, "'(' after with")?;
        loop {
            let key = match self.next() {
                Some(Token::Word(key)) => key,
                other => {
                    return Err(format!("TraceQL: expected a hint name in with(...), found {}", shown(other.as_ref())))
                }
            };
            self.expect(Token::Sym("="), &format!("'=' after the hint {key}"))?;
            let value = match self.unary()? {
                value @ (Node::Word(_) | Node::Str(_) | Node::Int(_) | Node::Float(_) | Node::Duration(_)) => value,
                Node::Unary("-", inner) if matches!(*inner, Node::Int(_) | Node::Float(_)) => Node::Unary("-", inner),
                _ => return Err(format!("TraceQL: the hint {key} takes a value such as true, 0.1 or \"text\"")),
            };
            hints.push((key, value));
            match self.next() {
                Some(Token::Comma) => continue,
                Some(Token::RParen) => return Ok(hints),
                other => {
                    return Err(format!("TraceQL: expected ',' or ')' in with(...), found {}", shown(other.as_ref())))
                }
            }
        }
    }
}

pub fn parse(text: &str) -> Result<Syntax, String> {
    let mut parser = Parser { tokens: lex(text)?, at: 0, depth: 0, terms: 0 };
    if parser.tokens.is_empty() {
        return Ok(Syntax { node: Node::Filter(None), hints: Vec::new() });
    }
    let node = parser.expr(0)?;
    let mut hints = Vec::new();
    if matches!(parser.peek(), Some(Token::Word(w)) if w == "with") {
        parser.next();
        hints = parser.hints()?;
    }
    if let Some(t) = parser.peek() {
        return Err(format!("TraceQL: unexpected {t} after the query"));
    }
    Ok(Syntax { node, hints })
}
