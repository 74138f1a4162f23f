//! TraceQL's tokens, as Tempo's lexer forms them: attribute names run until a space or
//! one of `{}()=~!<>&|^,` (with `"quoted"` parts for anything else), numbers may carry
//! a duration unit (`1h30m`, `1.5s`, `2d`), and operators are taken longest first
//! (`&>>` before `&>`).

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    LBrace,
    RBrace,
    LParen,
    RParen,
    Comma,
    Pipe,
    /// An operator or punctuation of one to three characters: `&&`, `>=`, `!>>`, `+`, ...
    Sym(&'static str),
    /// A bare word: an intrinsic, a keyword, a function or a value such as `error`.
    Word(String),
    /// `scope.name`: an attribute. The scope is `""` for an unscoped `.name`.
    Attr {
        scope: &'static str,
        name: String,
    },
    Str(String),
    Int(i64),
    Float(f64),
    /// Nanoseconds.
    Duration(i64),
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::LBrace => f.write_str("'{'"),
            Token::RBrace => f.write_str("'}'"),
            Token::LParen => f.write_str("'('"),
            Token::RParen => f.write_str("')'"),
            Token::Comma => f.write_str("','"),
            Token::Pipe => f.write_str("'|'"),
            Token::Sym(s) => write!(f, "'{s}'"),
            Token::Word(w) => write!(f, "'{w}'"),
            Token::Attr { scope, name } => write!(f, "'{scope}.{name}'"),
            Token::Str(s) => write!(f, "the string {s:?}"),
            Token::Int(i) => write!(f, "the number {i}"),
            Token::Float(x) => write!(f, "the number {x}"),
            Token::Duration(ns) => write!(f, "the duration {ns}ns"),
        }
    }
}

/// Operators, longest first so that the first prefix found is the longest.
const SYMBOLS: [&str; 31] = [
    "!>>", "!<<", "&>>", "&<<", "&&", "||", ">>", "<<", ">=", "<=", "!=", "=~", "!~", "!>", "!<", "&>", "&<", "&~",
    "==", "=", ">", "<", "~", "!", "+", "-", "*", "/", "%", "^", "&",
];

/// Scopes an attribute name may follow, as `scope.name`.
const SCOPES: [&str; 6] = ["span", "resource", "event", "link", "instrumentation", "parent"];

fn ends_attribute(c: char) -> bool {
    c.is_whitespace() || "{}()=~!<>&|^,".contains(c)
}

/// A `"quoted"` part of an attribute name starting at `chars[0]`: only `\"` and `\\`
/// are escapes there.
fn quoted_name(chars: &[char]) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut i = 1;
    while let Some(&c) = chars.get(i) {
        match c {
            '"' => return Ok((out, i + 1)),
            '\\' => match chars.get(i + 1) {
                Some(&e @ ('"' | '\\')) => {
                    out.push(e);
                    i += 2;
                }
                _ => return Err("TraceQL: invalid escape in a quoted attribute name (only \\\" and \\\\)".into()),
            },
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err("TraceQL: unterminated quoted attribute name".into())
}

/// An attribute name starting at `chars[0]` (just after the scope's dot).
fn attribute_name(chars: &[char]) -> Result<(String, usize), String> {
    let (mut name, mut i) = (String::new(), 0);
    while let Some(&c) = chars.get(i) {
        if c == '"' {
            let (part, len) = quoted_name(&chars[i..])?;
            name.push_str(&part);
            i += len;
        } else if ends_attribute(c) {
            break;
        } else {
            name.push(c);
            i += 1;
        }
    }
    if i == 0 {
        return Err("TraceQL: an attribute needs a name after its '.'".into());
    }
    Ok((name, i))
}

/// A quoted string literal: Go's escapes in double quotes, none in backticks.
fn string(chars: &[char]) -> Result<(String, usize), String> {
    let quote = chars[0];
    let mut out = String::new();
    let mut i = 1;
    while let Some(&c) = chars.get(i) {
        if c == quote {
            return Ok((out, i + 1));
        }
        if c == '\\' && quote == '"' {
            let escaped = chars.get(i + 1).ok_or("TraceQL: unterminated string")?;
            let (value, len) = match escaped {
                'n' => ('\n', 2),
                't' => ('\t', 2),
                'r' => ('\r', 2),
                '0' => ('\0', 2),
                '\\' | '"' | '\'' => (*escaped, 2),
                'u' => {
                    let hex: String =
                        chars.get(i + 2..i + 6).ok_or("TraceQL: \\u needs four hex digits")?.iter().collect();
                    let code = u32::from_str_radix(&hex, 16).map_err(|_| "TraceQL: \\u needs four hex digits")?;
                    (char::from_u32(code).ok_or("TraceQL: \\u names no character")?, 6)
                }
                other => return Err(format!("TraceQL: unknown escape '\\{other}' in a string")),
            };
            out.push(value);
            i += len;
            continue;
        }
        out.push(c);
        i += 1;
    }
    Err("TraceQL: unterminated string".into())
}

/// A number at `chars[0]`: an integer, a float or (with a unit) a duration.
fn number(chars: &[char]) -> Result<(Token, usize), String> {
    let len = chars.iter().take_while(|c| c.is_alphanumeric() || **c == '.' || **c == 'µ').count();
    let text: String = chars[..len].iter().collect();
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let value = text.parse::<i64>().map_err(|_| format!("TraceQL: the integer {text} is too large"))?;
        return Ok((Token::Int(value), len));
    }
    if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let value = text.parse::<f64>().map_err(|_| format!("TraceQL: {text:?} is not a number"))?;
        return Ok((Token::Float(value), len));
    }
    match duration(&text) {
        Some(ns) => Ok((Token::Duration(ns), len)),
        None => Err(format!("TraceQL: {text:?} is neither a number nor a duration (such as 250ms, 1h30m or 2d)")),
    }
}

/// A duration with Go's units and Prometheus's `d`, `w` and `y`, in nanoseconds.
fn duration(text: &str) -> Option<i64> {
    let total = tracekeeper_model::duration::sum_of_units(text, |unit| match unit {
        "d" => Some(86_400e9),
        "w" => Some(604_800e9),
        "y" => Some(31_536_000e9),
        other => tracekeeper_model::duration::go_unit(other),
    })?;
    (total <= i64::MAX as f64).then_some(total.round() as i64)
}

pub fn lex(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let rest = &chars[i..];
        let (token, len) = match c {
            '{' => (Token::LBrace, 1),
            '}' => (Token::RBrace, 1),
            '(' => (Token::LParen, 1),
            ')' => (Token::RParen, 1),
            ',' => (Token::Comma, 1),
            '|' if rest.get(1) != Some(&'|') => (Token::Pipe, 1),
            '"' | '`' => {
                let (s, len) = string(rest)?;
                (Token::Str(s), len)
            }
            c if c.is_ascii_digit() => number(rest)?,
            '.' if rest.get(1).is_some_and(char::is_ascii_digit) => number(rest)?,
            '.' => {
                let (name, len) = attribute_name(&rest[1..])?;
                (Token::Attr { scope: "", name }, len + 1)
            }
            c if c.is_alphabetic() || c == '_' => {
                let len = rest.iter().take_while(|c| c.is_alphanumeric() || **c == '_' || **c == ':').count();
                let word: String = rest[..len].iter().collect();
                match SCOPES.iter().find(|s| **s == word) {
                    Some(scope) if rest.get(len) == Some(&'.') => {
                        let (name, name_len) = attribute_name(&rest[len + 1..])
                            .map_err(|_| format!("TraceQL: '{word}.' needs an attribute name"))?;
                        (Token::Attr { scope, name }, len + 1 + name_len)
                    }
                    _ => (Token::Word(word), len),
                }
            }
            _ => {
                let text: String = rest.iter().take(3).collect();
                match SYMBOLS.iter().find(|s| text.starts_with(**s)) {
                    Some(sym) => (Token::Sym(sym), sym.chars().count()),
                    None => return Err(format!("TraceQL: unexpected character {c:?}")),
                }
            }
        };
        tokens.push(token);
        i += len;
    }
    Ok(tokens)
}
