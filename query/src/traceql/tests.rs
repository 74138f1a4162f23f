//! One test per construct of the subset, and one per refusal.

use tracekeeper_model::{AnyValue, KeyValue, Span, SpanId, SpanKind, StatusCode};
use tracekeeper_storage::testing::span;

use super::*;

/// frontend GET /checkout (server, root, 50 ms)
/// ├─ frontend "call payment" (client, http.status_code=500, error; an exception event
/// │  with exception.type=Timeout; span attribute region=us)
/// │  └─ payment charge (server, 30 ms, resource region=eu, scope attribute lib=grpc)
/// │     └─ db query (client, db.system=postgres)
/// └─ frontend render (internal)
fn trace() -> Vec<Span> {
    let at = |id: u8, parent: Option<u8>, service: &str, name: &str, kind: SpanKind, ms: u64| {
        let mut s = span(1, id, service, name, 1_000_000_000 + u64::from(id) * 1_000_000);
        s.parent_span_id = parent.map(|p| SpanId([p; 8]));
        s.kind = kind;
        s.end_ns = s.start_ns + ms * 1_000_000;
        s
    };
    let root = at(1, None, "frontend", "GET /checkout", SpanKind::Server, 50);
    let mut call = at(2, Some(1), "frontend", "call payment", SpanKind::Client, 35);
    call.attributes.push(KeyValue::new("http.status_code", AnyValue::Int(500)));
    call.status.code = StatusCode::Error;
    call.status.message = "payment failed".into();
    call.attributes.push(KeyValue::string("region", "us"));
    call.events.push(tracekeeper_model::Event {
        time_ns: call.start_ns + 1,
        name: "exception".into(),
        attributes: vec![KeyValue::string("exception.type", "Timeout")],
        dropped_attributes_count: 0,
    });
    let mut charge = at(3, Some(2), "payment", "charge", SpanKind::Server, 30);
    let mut resource = (*charge.resource).clone();
    resource.attributes.push(KeyValue::string("region", "eu"));
    charge.resource = std::sync::Arc::new(resource);
    charge.attributes.push(KeyValue::new("amount", AnyValue::Double(12.5)));
    let mut scope = (*charge.scope).clone();
    scope.attributes.push(KeyValue::string("lib", "grpc"));
    charge.scope = std::sync::Arc::new(scope);
    let mut query = at(4, Some(3), "db", "query", SpanKind::Client, 5);
    query.attributes.push(KeyValue::string("db.system", "postgres"));
    let render = at(5, Some(1), "frontend", "render", SpanKind::Internal, 2);
    vec![root, call, charge, query, render]
}

/// Span ids (their first byte) the query selects on [`trace`].
fn run(query: &str) -> Vec<u8> {
    let spans = trace();
    let view = TraceView::new(&spans).unwrap();
    let parsed = parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
    parsed.matches(&view).into_iter().map(|i| spans[i].span_id.0[0]).collect()
}

fn refused(query: &str) -> String {
    parse(query).expect_err(query)
}

#[test]
fn empty_spanset_and_empty_query_select_every_span() {
    assert_eq!(run("{}"), [1, 2, 3, 4, 5]);
    assert_eq!(run(""), [1, 2, 3, 4, 5]);
}

#[test]
fn scoped_and_unscoped_attributes() {
    assert_eq!(run("{ span.http.status_code = 500 }"), [2]);
    assert_eq!(run("{ resource.service.name = \"payment\" }"), [3]);
    assert_eq!(run("{ resource.region = \"eu\" }"), [3]);
    assert_eq!(run("{ .region = \"eu\" }"), [3], "unscoped reads the resource too");
    assert_eq!(run("{ .region = \"us\" }"), [2]);
    assert_eq!(run("{ .region =~ \"eu|us\" }"), [2, 3], "the span's or the resource's");
    assert_eq!(run("{ .service.name = \"frontend\" }"), [1, 2, 5], "a resource attribute, unscoped");
    assert_eq!(run("{ .db.system = \"postgres\" }"), [4]);
    assert!(run("{ span.region = \"eu\" }").is_empty(), "span scope does not read the resource");
}

#[test]
fn event_and_instrumentation_scopes() {
    assert_eq!(run("{ event.exception.type = \"Timeout\" }"), [2]);
    assert!(run("{ span.exception.type = \"Timeout\" }").is_empty(), "an event's attribute is not the span's");
    assert_eq!(run("{ instrumentation.lib = \"grpc\" }"), [3]);
    assert!(run("{ .lib = \"grpc\" }").is_empty(), "unscoped reads the span and the resource, as in Tempo");
}

#[test]
fn true_and_false_spansets() {
    assert_eq!(run("{ true }"), [1, 2, 3, 4, 5]);
    assert!(run("{ false }").is_empty());
    assert_eq!(run("{ true && name = \"charge\" }"), [3]);
    assert_eq!(run("{ false || name = \"charge\" }"), [3]);
}

#[test]
fn braces_that_are_no_repetition_are_literal_as_in_go() {
    assert_eq!(literal_braces("GET /products/{id}"), "GET /products/\\{id\\}");
    assert_eq!(literal_braces("a{2}b{1,}c{1,3}"), "a{2}b{1,}c{1,3}", "counted repetitions stay");
    assert_eq!(literal_braces(r"\{x}[{]"), r"\{x\}[{]", "escaped, and inside a class, as written");
    let q = parse("{ name =~ \"GET /products/{id}\" }").unwrap();
    let mut s = trace().remove(0);
    s.name = "GET /products/{id}".into();
    let spans = [s];
    assert_eq!(q.matches(&TraceView::new(&spans).unwrap()), [0]);
    assert_eq!(run("{ name =~ \"que{1}ry\" }"), [4]);
}

#[test]
fn intrinsics() {
    assert_eq!(run("{ name = \"charge\" }"), [3]);
    assert_eq!(run("{ span:name = \"charge\" }"), [3]);
    assert_eq!(run("{ status = error }"), [2]);
    assert_eq!(run("{ span:status != unset }"), [2]);
    assert_eq!(run("{ statusMessage = \"payment failed\" }"), [2]);
    assert_eq!(run("{ kind = server }"), [1, 3]);
    assert_eq!(run("{ span:kind = internal }"), [5]);
    assert_eq!(run("{ duration > 20ms }"), [1, 2, 3]);
    assert_eq!(run("{ span:duration <= 5ms }"), [4, 5]);
    assert_eq!(run("{ trace:duration >= 50ms && name = \"render\" }"), [5]);
    assert!(run("{ trace:duration > 1s }").is_empty());
    assert_eq!(run("{ trace:rootService = \"frontend\" && kind = client }"), [2, 4]);
    assert_eq!(run("{ trace:rootName = \"GET /checkout\" && resource.service.name = \"db\" }"), [4]);
}

#[test]
fn every_comparison_operator() {
    assert_eq!(run("{ span.amount = 12.5 }"), [3]);
    assert_eq!(run("{ span.amount != 12.5 }"), Vec::<u8>::new(), "!= needs the attribute");
    assert_eq!(run("{ span.amount > 12 }"), [3]);
    assert_eq!(run("{ span.amount >= 12.5 }"), [3]);
    assert!(run("{ span.amount < 12.5 }").is_empty());
    assert_eq!(run("{ span.amount <= 12.5 }"), [3]);
    assert_eq!(run("{ name =~ \"c.*\" }"), [2, 3], "regexes are anchored: \"call payment\", \"charge\"");
    assert_eq!(run("{ name !~ \"c.*\" }"), [1, 4, 5]);
    assert!(run("{ name =~ \"harg\" }").is_empty(), "anchored, not a substring match");
}

#[test]
fn and_or_inside_a_spanset_hold_on_one_span() {
    assert_eq!(run("{ resource.service.name = \"frontend\" && kind = client }"), [2]);
    assert_eq!(run("{ name = \"charge\" || name = \"query\" }"), [3, 4]);
    assert_eq!(run("{ (name = \"charge\" || name = \"query\") && kind = client }"), [4]);
    assert!(run("{ name = \"charge\" && name = \"query\" }").is_empty(), "one span cannot be both");
    // As in Tempo's grammar, && and || bind alike, from the left.
    assert_eq!(run("{ name = \"charge\" || name = \"query\" && kind = client }"), [4]);
    assert_eq!(run("{ kind = client && name = \"query\" || name = \"charge\" }"), [3, 4]);
}

#[test]
fn and_or_between_spansets() {
    assert_eq!(run("{ name = \"charge\" } && { name = \"query\" }"), [3, 4]);
    assert!(run("{ name = \"charge\" } && { name = \"missing\" }").is_empty());
    assert_eq!(run("{ name = \"charge\" } || { name = \"missing\" }"), [3]);
    // (charge || missing) && query, not charge || (missing && query).
    assert_eq!(run("{ name = \"charge\" } || { name = \"missing\" } && { name = \"query\" }"), [3, 4]);
}

#[test]
fn structural_child_and_descendant() {
    assert_eq!(run("{ resource.service.name = \"frontend\" } > { resource.service.name = \"payment\" }"), [3]);
    assert!(run("{ kind = server && resource.service.name = \"frontend\" } > { name = \"query\" }").is_empty());
    assert_eq!(run("{ name = \"GET /checkout\" } >> { kind = client }"), [2, 4]);
    assert_eq!(run("{ name = \"GET /checkout\" } >> { name = \"query\" } && { status = error }"), [2, 4]);
}

#[test]
fn count_pipeline() {
    assert_eq!(run("{ kind = client } | count() > 1"), [2, 4]);
    assert!(run("{ kind = client } | count() > 2").is_empty());
    assert_eq!(run("{ } | count() = 5"), [1, 2, 3, 4, 5]);
}

#[test]
fn quoted_strings_and_escapes() {
    assert_eq!(run("{ name = `call payment` }"), [2]);
    assert_eq!(run("{ statusMessage = \"payment \\\"failed\\\"\" || name = \"render\" }"), [5]);
}

#[test]
fn the_index_hint_is_implied_by_the_query() {
    let q = parse("{ resource.service.name = \"payment\" && name = \"charge\" && span.x = 3 }").unwrap();
    let hint = q.hint();
    assert_eq!(hint.service.as_deref(), Some("payment"));
    assert_eq!(hint.operation.as_deref(), Some("charge"));
    assert_eq!(hint.tags, [("x".to_string(), "3".to_string())]);
    assert_eq!(parse("{ name = \"a\" || name = \"b\" }").unwrap().hint(), Default::default());
    assert_eq!(parse("{ name = \"a\" } || { name = \"b\" }").unwrap().hint(), Default::default());
    assert_eq!(parse("{ name = \"a\" } > { name = \"b\" }").unwrap().hint().operation.as_deref(), Some("b"));
    // The hint holds on a span of every trace the query selects.
    let spans = trace();
    for query in
        ["{ kind = server && resource.service.name = \"payment\" }", "{ } >> { span.db.system = \"postgres\" }"]
    {
        let q = parse(query).unwrap();
        let view = TraceView::new(&spans).unwrap();
        assert!(!q.matches(&view).is_empty());
        assert!(spans.iter().any(|s| q.hint().matches(s)), "{query}");
    }
}

#[test]
fn constructs_outside_the_subset_are_refused_by_name() {
    for (query, named) in [
        ("{ a } << { b }", "'<<'"),
        ("{ name = \"a\" } < { name = \"b\" }", "'<'"),
        ("{ name = \"a\" } ~ { name = \"b\" }", "'~'"),
        ("{ name = \"a\" } &>> { name = \"b\" }", "union structural"),
        ("{ name = \"a\" } !>> { name = \"b\" }", "negated structural"),
        ("{ } | avg(duration) > 1s", "'avg()'"),
        ("{ } | by(name)", "'by()'"),
        ("{ } | select(span.a)", "'select()'"),
        ("{ link.traceID = \"x\" }", "link scope"),
        ("{ span:id = \"x\" }", "'span:id'"),
        ("{ span.a = nil }", "nil"),
        ("{ span.a + 1 = 2 }", "arithmetic"),
        ("{ } with (most_recent=true)", "hints"),
        ("rate()", "'rate'"),
    ] {
        let error = refused(query);
        assert!(error.contains("not supported") && error.contains(named), "{query}: {error}");
    }
}

#[test]
fn malformed_queries_say_what_is_wrong() {
    for (query, says) in [
        ("{ name = \"a\" ", "'}'"),
        ("{ name \"a\" }", "comparison operator"),
        ("{ name = }", "expected a value"),
        ("{ status = \"error\" }", "cannot be compared"),
        ("{ status > error }", "only supports = and !="),
        ("{ name = charge }", "quote strings"),
        ("{ foo = 1 }", "unknown field"),
        ("{ name =~ \"(\" }", "invalid regular expression"),
        ("{ name = \"a\" } }", "unexpected"),
        ("{ } | count() > x", "integer"),
        ("{ name = \"unterminated }", "unterminated"),
        ("{ 1 = 1 }", "found the number 1"),
        ("{ . = 1 }", "'.' without an attribute name"),
        ("{ name = \"a\" } | count() > }", "found '}'"),
        ("{ name = \"a\" } | ", "found the end of the query"),
        ("{ duration = \"1s\" }", "duration cannot be compared with the string \"1s\""),
    ] {
        let error = refused(query);
        assert!(error.contains(says), "{query}: {error}");
        for debug in ["Number(", "Word(", "Str(", "AnyAttr", "Literal", "Token", "Some("] {
            assert!(!error.contains(debug), "{query}: {error} shows Rust's debug form");
        }
    }
}

#[test]
fn hostile_nesting_and_length_are_refused_not_overflowed() {
    let deep_spansets = format!("{}{{ }}{}", "(".repeat(5000), ")".repeat(5000));
    assert!(refused(&deep_spansets).contains("deeper than 32"), "{}", refused(&deep_spansets));
    let deep_conditions = format!("{{ {}name = \"a\"{} }}", "(".repeat(5000), ")".repeat(5000));
    assert!(refused(&deep_conditions).contains("deeper than 32"));
    let long_chain = format!("{{ {} }}", vec!["name = \"a\""; 10_000].join(" && "));
    assert!(refused(&long_chain).contains("more than 256"), "{}", refused(&long_chain));
    let many_spansets = vec!["{ }"; 1_000].join(" >> ");
    assert!(refused(&many_spansets).contains("more than 256"));

    // At the limits, queries still parse and run.
    let at_depth = format!("{}{{ name = \"charge\" }}{}", "(".repeat(32), ")".repeat(32));
    assert_eq!(run(&at_depth), run("{ name = \"charge\" }"));
    let at_length = format!("{{ {} }}", vec!["name = \"charge\""; 255].join(" || "));
    assert_eq!(run(&at_length), run("{ name = \"charge\" }"));
}

#[test]
fn a_regular_expression_too_large_to_compile_cheaply_is_refused_by_name() {
    let why = refused(r#"{ name =~ "(a|b|c|d|e|f|g|h){5000}" }"#);
    assert!(why.contains("invalid regular expression") && why.contains("size limit"), "{why}");
    assert!(parse(r#"{ name =~ "(GET|POST) /[a-z]{1,64}" }"#).is_ok(), "an ordinary pattern still compiles");
}
