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
    use super::regex::literal_braces;
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
fn what_tempo_does_not_support_is_refused_by_name() {
    for (query, named) in [
        ("{ parent.a != 3 }", "parent scope"),
        ("{ parent }", "parent intrinsic"),
        ("min(.field) < max(duration)", "comparing min() with max()"),
    ] {
        let error = refused(query);
        assert!(error.contains("not supported") && error.contains(named), "{query}: {error}");
    }
}

#[test]
fn malformed_queries_say_what_is_wrong() {
    for (query, says) in [
        ("{ name = \"a\" ", "'}'"),
        ("{ name \"a\" }", "expected '}'"),
        ("{ name = }", "unexpected '}'"),
        ("{ status = \"error\" }", "cannot compare or combine a status with a string"),
        ("{ status > error }", "cannot compare or combine a status with a status"),
        ("{ name = charge }", "unknown identifier 'charge'"),
        ("{ foo = 1 }", "unknown identifier 'foo'"),
        ("{ name =~ \"(\" }", "invalid regular expression"),
        ("{ name = \"a\" } }", "unexpected"),
        ("{ } | count() > x", "compares with a number"),
        ("{ name = \"unterminated }", "unterminated"),
        ("{ 1 + 1 }", "must be true or false"),
        ("{ . = 1 }", "needs a name"),
        ("{ name = \"a\" } | count() > }", "unexpected '}'"),
        ("{ name = \"a\" } | ", "the end of the query"),
        ("{ duration = \"1s\" }", "a duration with a string"),
        ("{ span:status = nil }", "never nil"),
        ("{ } | rate()", "metrics query"),
        ("{ } | count()", "must be compared"),
        ("{ .a == 1 }", "expected '}'"),
    ] {
        let error = refused(query);
        assert!(error.contains(says), "{query}: {error}");
        for debug in ["Number(", "Word(", "Str(", "Attr {", "Binary(", "Token", "Some(", "Call {"] {
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
    assert!(refused(&long_chain).contains("more than 512"), "{}", refused(&long_chain));
    let many_spansets = vec!["{ }"; 1_000].join(" >> ");
    assert!(refused(&many_spansets).contains("more than 512"));
    let powers = vec!["1"; 5_000].join(" ^ ");
    assert!(refused(&format!("{{ .a = {powers} }}")).contains("deeper than 32"), "right-associative chains nest");

    // At the limits, queries still parse and run.
    // The spanset's braces are the 32nd level.
    let at_depth = format!("{}{{ name = \"charge\" }}{}", "(".repeat(31), ")".repeat(31));
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

#[test]
fn every_structural_operator_and_its_negated_and_union_forms() {
    assert_eq!(run("{ name = \"charge\" } < { }"), [2], "parent");
    assert_eq!(run("{ name = \"query\" } << { }"), [1, 2, 3], "ancestors");
    assert_eq!(run("{ name = \"render\" } ~ { }"), [2], "siblings, not itself");
    assert_eq!(run("{ kind = server } !> { }"), [1, 3], "not children of a server");
    assert_eq!(run("{ } !< { }"), [4, 5], "parents of no span: the leaves");
    assert_eq!(run("{ name = \"call payment\" } !>> { }"), [1, 2, 5]);
    assert_eq!(run("{ name = \"query\" } !<< { }"), [4, 5]);
    assert_eq!(run("{ name = \"render\" } !~ { }"), [1, 3, 4, 5]);
    assert_eq!(run("{ name = \"call payment\" } &> { }"), [2, 3], "the child and its parent");
    assert_eq!(run("{ name = \"charge\" } &>> { }"), [3, 4]);
    assert_eq!(run("{ name = \"charge\" } &< { }"), [2, 3]);
    assert_eq!(run("{ name = \"query\" } &<< { kind = server }"), [1, 3, 4]);
    assert_eq!(run("{ name = \"render\" } &~ { }"), [2, 5]);
    assert!(run("{ name = \"missing\" } &>> { }").is_empty());
}

#[test]
fn nil_arithmetic_unary_and_literals() {
    assert_eq!(run("{ span.db.system != nil }"), [4]);
    assert_eq!(run("{ span.db.system = nil }"), [1, 2, 3, 5]);
    assert_eq!(run("{ nil = nil }"), [1, 2, 3, 4, 5]);
    assert!(run("{ nil != nil }").is_empty());
    assert_eq!(run("{ duration / 1ms > 29 }"), [1, 2, 3]);
    assert_eq!(run("{ span.amount * 2 = 25 }"), [3]);
    assert_eq!(run("{ -span.amount < -12 }"), [3]);
    assert_eq!(run("{ 2 ^ 3 = 8 && span.amount % 5 = 2.5 }"), [3]);
    assert_eq!(run("{ !(kind = server) }"), [2, 4, 5]);
    assert!(run("{ 1 = 2 }").is_empty());
    assert_eq!(run("{ 1 < 1h }"), [1, 2, 3, 4, 5], "numbers of any kind compare by value");
    assert!(run("{ span.missing + 1 > 0 }").is_empty(), "arithmetic on nil is nil");
}

#[test]
fn every_intrinsic() {
    let spans = trace();
    let trace_id = spans[0].trace_id.to_hex();
    assert_eq!(run(&format!("{{ trace:id = \"{trace_id}\" && kind = internal }}")), [5]);
    assert_eq!(run("{ span:childCount = 0 }"), [4, 5]);
    assert_eq!(run("{ span:childCount > 1 }"), [1]);
    assert_eq!(run("{ nestedSetParent < 0 }"), [1], "the root");
    assert_eq!(run("{ nestedSetLeft = 1 && nestedSetRight = 10 }"), [1]);
    assert_eq!(run("{ span:parentID = \"0101010101010101\" }"), [2, 5]);
    assert_eq!(run("{ span:id = \"0303030303030303\" }"), [3]);
    assert_eq!(run("{ event:name = \"exception\" && event.exception.type = \"Timeout\" }"), [2]);
    assert!(run("{ event:name = \"other\" && event.exception.type = \"Timeout\" }").is_empty(), "one event");
    assert_eq!(run("{ event:timeSinceStart > 0 }"), [2]);
    assert_eq!(run(&format!("{{ instrumentation:name = \"{}\" && name = \"query\" }}", spans[3].scope.name)), [4]);
    assert_eq!(run("{ rootServiceName = \"frontend\" && rootName = \"GET /checkout\" && traceDuration = 50ms && kind = internal }"), [5]);
}

#[test]
fn arrays_match_when_an_element_does() {
    let mut spans = trace();
    spans[4]
        .attributes
        .push(KeyValue::new("tags", AnyValue::Array(vec![AnyValue::String("a".into()), AnyValue::String("b".into())])));
    spans[4].attributes.push(KeyValue::new("sizes", AnyValue::Array(vec![AnyValue::Int(1), AnyValue::Int(40)])));
    let view = TraceView::new(&spans).unwrap();
    let on = |q: &str| parse(q).unwrap().matches(&view);
    assert_eq!(on("{ span.tags = \"b\" }"), [4]);
    assert_eq!(on("{ span.tags =~ \"a|z\" }"), [4]);
    assert!(on("{ span.tags != \"a\" }").is_empty(), "!= holds when no element equals");
    assert_eq!(on("{ span.tags != \"c\" }"), [4]);
    assert!(on("{ span.tags !~ \"[ab]\" }").is_empty());
    assert_eq!(on("{ span.sizes > 30 }"), [4]);
    assert!(on("{ span.sizes > 50 }").is_empty());
}

#[test]
fn aggregates_groups_and_selections() {
    assert_eq!(run("{ } | avg(duration) > 20ms"), [1, 2, 3, 4, 5], "24.4 ms on average");
    assert!(run("{ } | avg(duration) > 25ms").is_empty());
    assert_eq!(run("{ } | max(duration) = 50ms"), [1, 2, 3, 4, 5]);
    assert_eq!(run("{ kind = client } | sum(duration) = 40ms"), [2, 4]);
    assert!(run("{ } | min(duration) > 3ms").is_empty());
    assert_eq!(run("{ } | by(resource.service.name) | count() > 2"), [1, 2, 5]);
    assert_eq!(run("{ } | by(resource.service.name) | count() = 1"), [3, 4]);
    assert_eq!(run("count() = 5"), [1, 2, 3, 4, 5], "a pipeline may start with a scalar filter");
    assert!(run("max(duration) > 3s | { }").is_empty());
    assert_eq!(run("({ kind = client } | count() = 2) && { name = \"charge\" }"), [2, 3, 4]);
    let spans = trace();
    let view = TraceView::new(&spans).unwrap();
    let grouped = parse("{ } | by(kind) | count() = 2").unwrap().spansets(&view);
    assert_eq!(grouped.iter().map(|s| s.spans.clone()).collect::<Vec<_>>(), [vec![0, 2], vec![1, 3]]);
    assert!(grouped[0].attributes.contains(&("by(kind)".to_string(), "server".to_string())), "{grouped:?}");
    let merged = parse("{ } | by(kind) | count() = 2 | coalesce()").unwrap().spansets(&view);
    assert_eq!(merged.len(), 1);
    assert_eq!(merged[0].spans, [0, 1, 2, 3]);
    let selected = parse("{ name = \"charge\" } | select(span.amount, resource.region)").unwrap();
    let names: Vec<String> = selected.fields().into_iter().map(field_name).collect();
    assert_eq!(names, ["name", "span.amount", "resource.region"]);
}

#[test]
fn hints_are_accepted_and_metrics_queries_are_told_where_to_go() {
    assert!(parse("{ } with (most_recent=true)").unwrap().hints.most_recent);
    assert!(!parse("{ } with (sample=0.1)").unwrap().hints.most_recent);
    let exemplars = |q: &str| match parse_any(q).unwrap() {
        Parsed::Metrics(m) => m.hints.exemplars,
        Parsed::Search(_) => panic!("{q} is a metrics query"),
    };
    assert_eq!(exemplars("{ } | rate() with (exemplars=false)"), Some(0));
    assert_eq!(exemplars("{ } | rate() with (exemplars=7)"), Some(7));
    assert_eq!(exemplars("{ } | rate() with (exemplars=true, sample=true)"), None);
    assert!(matches!(parse_any("{ } | rate() by (resource.service.name)"), Ok(Parsed::Metrics(_))));
    assert!(refused("{ } | quantile_over_time(duration, .99)").contains("/api/metrics/query_range"));
}

/// Hostile input: queries mutated at random (characters dropped, doubled, swapped for
/// operators) are parsed and, when accepted, evaluated; nothing panics.
#[test]
fn mutated_queries_are_refused_or_answered_never_a_panic() {
    let seeds = [
        "{ span.http.status_code >= 200 && span.http.status_code < 300 } | count() > 2",
        "{ } >> { kind = server } | select(nestedSetLeft, nestedSetRight, nestedSetParent)",
        "({ true } | count() > 1 | { false }) ~ ({ .a } | by(name) | coalesce())",
        "{ event:name = \"exception\" && link:traceID != nil } &<< { -duration / 2 < -1ms ^ 2 }",
        "({status=error} | rate() by (resource.service.name)) / ({} | rate()) | topk(5) > 10",
        "{ } | quantile_over_time(duration, .99, .5) by (name) with(sample=0.1)",
        "{ .\"a b\" =~ \"x{2}|{id}\" || span.list != \"two\" } | max(span:childCount) > 1",
    ];
    let pieces = ["{", "}", "(", ")", "|", "&&", "!", "-", ">>", "<", "~", "\"", ".", "nil", "1h", ",", "by(", " "];
    let spans = trace();
    let view = TraceView::new(&spans).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    for seed in seeds {
        for _ in 0..400 {
            let mut chars: Vec<String> = seed.chars().map(String::from).collect();
            for _ in 0..1 + next(4) {
                let at = next(chars.len());
                match next(3) {
                    0 => {
                        chars.remove(at);
                    }
                    1 => chars.insert(at, pieces[next(pieces.len())].to_string()),
                    _ => chars[at] = pieces[next(pieces.len())].to_string(),
                }
            }
            let query: String = chars.concat();
            if let Ok(Parsed::Search(q)) = parse_any(&query) {
                let _ = (q.matches(&view), q.hint(), q.fields());
            }
        }
    }
}
