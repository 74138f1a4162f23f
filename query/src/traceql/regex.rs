//! Regular expressions with the semantics of Go's RE2, which Tempo uses: anchored at
//! both ends, and braces that form no counted repetition taken literally.

/// Largest compiled form of one regular expression. Compiling costs time in proportion,
/// and a query may hold many: a repetition such as `(a|b){500}` is refused by name
/// rather than compiled for a megabyte's worth of CPU.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// `pattern` with every brace that does not form a counted repetition (`{2}`, `{2,}`,
/// `{2,5}`) escaped. Go's RE2, which Tempo uses, reads such braces literally, so
/// `GET /products/{id}` matches itself; Rust's regex refuses them.
pub(super) fn literal_braces(pattern: &str) -> String {
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

/// A `=~` pattern, compiled once per query.
pub(super) fn compile(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(&format!("^(?:{})$", literal_braces(pattern)))
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("TraceQL: invalid regular expression {pattern:?}: {e}"))
}
