//! Tempo's own TraceQL corpus, whole, over the real socket: every query of its parser
//! test file (`test_examples.yaml`: valid, parse_fails, validate_fails, unsupported) and
//! every one-line example of its documentation (`docs_examples.txt`, all valid), sent to
//! `/api/search` of an all-in-one holding traces. A valid search query answers 200; a
//! valid metrics query is sent on to `/api/metrics/query_range` (as the search API's
//! refusal says) and answers 200 there; anything Tempo refuses is a 400 naming the
//! problem in TraceQL terms. The corpus lives
//! beside the repository (`ops/test.sh` sets `TRACEKEEPER_TEMPO_TRACEQL_CORPUS`): it is
//! Tempo's (AGPL-3.0) and is not copied here.

mod support;

use std::path::PathBuf;

use support::{now_ns, rich_trace, Server};
use tracekeeper_model::otlp;

fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("TRACEKEEPER_TEMPO_TRACEQL_CORPUS").map(PathBuf::from).expect(
        "TRACEKEEPER_TEMPO_TRACEQL_CORPUS must name the directory holding Tempo's test_examples.yaml and \
         docs_examples.txt (ops/test.sh finds it beside the repository)",
    );
    assert!(dir.join("test_examples.yaml").is_file(), "no test_examples.yaml in {}", dir.display());
    dir
}

#[derive(serde::Deserialize)]
struct Examples {
    valid: Vec<String>,
    parse_fails: Vec<String>,
    validate_fails: Vec<String>,
    unsupported: Vec<String>,
}

/// (query, what Tempo says of it).
fn corpus() -> Vec<(String, &'static str)> {
    let dir = corpus_dir();
    let text = std::fs::read_to_string(dir.join("test_examples.yaml")).unwrap();
    let examples: Examples = serde_yaml::from_str(&text).unwrap();
    let docs = std::fs::read_to_string(dir.join("docs_examples.txt")).unwrap();
    let mut out: Vec<(String, &'static str)> = Vec::new();
    out.extend(examples.valid.into_iter().map(|q| (q, "valid")));
    out.extend(docs.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).map(|q| (q.to_string(), "docs")));
    out.extend(examples.parse_fails.into_iter().map(|q| (q, "parse_fails")));
    out.extend(examples.validate_fails.into_iter().map(|q| (q, "validate_fails")));
    out.extend(examples.unsupported.into_iter().map(|q| (q, "unsupported")));
    out
}

/// An all-in-one (with `extra` flags) holding the rich trace of `seed` from `start_ns`,
/// returned once that trace is searchable: acknowledged spans are searchable once the
/// write is applied.
async fn serving_one_trace(dir: &std::path::Path, seed: u64, start_ns: u64, extra: &[&str]) -> Server {
    let server = Server::start(dir, extra);
    let body = prost::Message::encode_to_vec(&otlp::to_request(&rich_trace(seed, start_ns)));
    assert_eq!(server.post_otlp(body, "application/x-protobuf", &[]).await.0, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.get_json("/api/search?q=%7B%7D").await.1["traces"].as_array().map_or(0, Vec::len) == 0 {
        assert!(std::time::Instant::now() < deadline, "the trace never became searchable");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    server
}

const METRICS_REFUSAL: &str = "this is a metrics query";

#[tokio::test]
async fn every_query_of_tempos_corpus_is_answered_as_tempo_answers_it() {
    let queries = corpus();
    assert!(queries.len() > 500, "the whole corpus: {} queries", queries.len());
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let spans: Vec<_> = (1..=3).flat_map(|seed| rich_trace(seed, now_ns() - 60_000_000_000)).collect();
    let body = prost::Message::encode_to_vec(&otlp::to_request(&spans));
    assert_eq!(server.post_otlp(body, "application/x-protobuf", &[]).await.0, 200);

    let client = reqwest::Client::new();
    let url = server.query_url("/api/search");
    let metrics_url = server.query_url("/api/metrics/query_range");
    let mut wrong = Vec::new();
    let mut counts = std::collections::BTreeMap::<&str, (usize, usize)>::new();
    for (query, says) in &queries {
        let response = client.get(&url).query(&[("q", query.as_str())]).send().await.unwrap();
        let (mut status, mut text) = (response.status().as_u16(), response.text().await.unwrap());
        if status == 400 && text.contains(METRICS_REFUSAL) {
            // A metrics query: asked where it belongs.
            let response =
                client.get(&metrics_url).query(&[("q", query.as_str()), ("step", "60s")]).send().await.unwrap();
            (status, text) = (response.status().as_u16(), response.text().await.unwrap());
            assert_eq!(status, 200, "{says}: {query}: {text}");
        }
        let accepted = status == 200;
        let right = match *says {
            "valid" | "docs" => accepted,
            _ => status == 400 && !accepted && text.starts_with("TraceQL: "),
        };
        assert!(status == 200 || status == 400, "{query}: {status} {text}");
        for debug in ["Node::", "Binary(", "Call {", "Some(", "Attr {", "Token"] {
            assert!(!text.contains(debug), "{query}: the refusal shows Rust's debug form: {text}");
        }
        let entry = counts.entry(says).or_default();
        entry.0 += usize::from(right);
        entry.1 += 1;
        if !right {
            wrong.push(format!("{says}: {query} -> {status} {}", text.chars().take(200).collect::<String>()));
        }
    }
    for (says, (right, of)) in &counts {
        println!("{says}: {right} of {of} answered as Tempo answers");
    }
    assert!(wrong.is_empty(), "{} queries answered unlike Tempo:\n{}", wrong.len(), wrong.join("\n"));
    let (status, _) = server.get_json("/api/services").await;
    assert_eq!(status, 200, "the process is still up");
}

/// Answers over HTTP, in Tempo's search shape, on traces built for them.
#[tokio::test]
async fn search_answers_carry_spansets_with_their_groups() {
    let dir = tempfile::tempdir().unwrap();
    let server = serving_one_trace(dir.path(), 7, now_ns() - 60_000_000_000, &[]).await;
    let search = |q: &str| {
        let url = server.query_url("/api/search");
        let q = q.to_string();
        async move {
            let response = reqwest::Client::new().get(url).query(&[("q", q.as_str())]).send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<serde_json::Value>().await.unwrap()
        }
    };
    let names = |body: &serde_json::Value| -> Vec<Vec<String>> {
        body["traces"][0]["spanSets"]
            .as_array()
            .unwrap_or_else(|| panic!("no spansets: {body}"))
            .iter()
            .map(|set| {
                set["spans"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect()
            })
            .collect()
    };
    // The leaves: spans that are no span's parent.
    assert_eq!(names(&search("{ } !< { }").await), [["query"]]);
    // An array attribute matches when one element does.
    assert_eq!(names(&search("{ span.list = \"two\" }").await), [["GET /checkout"]]);
    // One spanset per service, each with its group and count.
    let grouped = search("{ } | by(resource.service.name) | count() > 0").await;
    let sets = grouped["traces"][0]["spanSets"].as_array().unwrap();
    assert_eq!(sets.len(), 2, "{grouped}");
    let attrs: Vec<String> =
        sets.iter().flat_map(|s| s["attributes"].as_array().unwrap().clone()).map(|a| a.to_string()).collect();
    assert!(attrs.iter().any(|a| a.contains("by(resource.service.name)") && a.contains("frontend")), "{attrs:?}");
    assert_eq!(sets[0]["matched"], 2);
    // The root only, as Drilldown asks for it.
    assert_eq!(names(&search("{ nestedSetParent < 0 && true } | select(span.http.method)").await), [["GET /checkout"]]);
    let selected = search("{ nestedSetParent < 0 } | select(span.http.method)").await;
    let attributes = selected["traces"][0]["spanSets"][0]["spans"][0]["attributes"].to_string();
    assert!(attributes.contains("http.method") && attributes.contains("GET"), "{attributes}");
}

/// The editors' tag APIs: names by every scope, values of any attribute or intrinsic,
/// typed, both narrowed by a TraceQL query.
#[tokio::test]
async fn tag_names_and_values_by_scope_narrowed_by_a_query() {
    let dir = tempfile::tempdir().unwrap();
    let server = serving_one_trace(dir.path(), 11, now_ns() - 60_000_000_000, &[]).await;
    let get = |path: String| {
        let server = &server;
        async move { server.get_json(&path).await }
    };
    let q = support::urlencode;
    let (status, all) = get("/api/v2/search/tags".into()).await;
    assert_eq!(status, 200, "{all}");
    let scope = |body: &serde_json::Value, name: &str| -> Vec<String> {
        body["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["name"] == name)
            .flat_map(|s| s["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()))
            .collect()
    };
    assert!(scope(&all, "resource").contains(&"host.name".to_string()), "{all}");
    assert!(scope(&all, "span").contains(&"http.method".to_string()), "{all}");
    assert_eq!(scope(&all, "event"), ["key"], "{all}");
    assert!(scope(&all, "intrinsic").contains(&"span:childCount".to_string()), "{all}");
    let (_, db) =
        get(format!("/api/v2/search/tags?scope=resource&q={}", q("{ resource.service.name = \"db\" }"))).await;
    assert_eq!(scope(&db, "resource"), ["service.name"], "only the db span's resource: {db}");

    let values = |body: &serde_json::Value| -> Vec<(String, String)> {
        body["tagValues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["type"].as_str().unwrap().to_string(), v["value"].as_str().unwrap().to_string()))
            .collect()
    };
    let (_, key) = get("/api/v2/search/tag/event.key/values".into()).await;
    assert_eq!(values(&key), [("string".to_string(), "cart:1".to_string())]);
    let (_, names) = get(format!("/api/v2/search/tag/name/values?q={}", q("{ kind = server }"))).await;
    assert_eq!(values(&names), [("string".into(), "GET /checkout".into()), ("string".into(), "query".into())]);
    let (_, children) = get("/api/v2/search/tag/span:childCount/values".into()).await;
    assert_eq!(values(&children), [("int".into(), "0".into()), ("int".into(), "1".into())]);
    let (_, statuses) = get("/api/v2/search/tag/status/values".into()).await;
    assert_eq!(values(&statuses), [("keyword".into(), "error".into()), ("keyword".into(), "unset".into())]);
    let refused = reqwest::get(server.query_url("/api/v2/search/tags?scope=nope")).await.unwrap();
    assert_eq!(refused.status(), 400);
    let why = refused.text().await.unwrap();
    assert!(why.contains("instrumentation"), "{why}");
}

/// The queries Grafana's Traces Drilldown app sends (root spans, no filters, as it
/// builds them), each answered by the API it goes to: search or metrics.
#[tokio::test]
async fn the_queries_traces_drilldown_sends_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let start = now_ns() - 60_000_000_000;
    // Root-span metrics are answered from the RED cells: have them written at once.
    let server = serving_one_trace(dir.path(), 21, start, &["--red-flush-interval", "200ms"]).await;
    let (from, to) = (start - 60_000_000_000, start + 60_000_000_000);
    // (query, whether the trace gives it points): the root span is no error.
    let metrics = [
        ("{nestedSetParent<0 && true} | rate()  with(sample=true)".to_string(), true),
        ("{nestedSetParent<0 && true && status=error} | rate()  with(sample=true)".into(), false),
        ("{nestedSetParent<0 && true} | histogram_over_time(duration) with(sample=true)".into(), true),
        ("{nestedSetParent<0 && true && resource.service.name != nil} | rate() by(resource.service.name)".into(), true),
        ("{nestedSetParent<0 && true && resource.service.name != nil} | quantile_over_time(duration, 0.9) by(resource.service.name)".into(), true),
        (format!("{{nestedSetParent<0 && true}} | compare({{duration >= 1.2s && duration <= 3s}}, 10, {from}, {to})"), true),
    ];
    // (query, traces found).
    let searches = [
        ("{nestedSetParent<0 && true && status = error}", 0),
        ("({nestedSetParent<0 && true  && status = error} &>> { status = error }) || ({nestedSetParent<0 && true  && status = error}) | select(status, resource.service.name, name, nestedSetParent, nestedSetLeft, nestedSetRight)", 0),
        ("{nestedSetParent<0 && true && status = error} | select(resource.service.name, event.exception.message,event.exception.stacktrace,event.exception.type) with(most_recent=true)", 0),
        ("{nestedSetParent<0 && true} | select(span.http.method)", 1),
    ];
    let q = support::urlencode;
    for (query, points) in &metrics {
        let path = format!("/api/metrics/query_range?q={}&since=1h&step=60s", q(query));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (status, body) = server.get_json(&path).await;
            assert_eq!(status, 200, "{query}: {body}");
            let samples: usize =
                body["series"].as_array().unwrap().iter().map(|s| s["samples"].as_array().unwrap().len()).sum();
            // The cells' first flush may be a moment behind the spans.
            if samples > 0 || !*points || std::time::Instant::now() > deadline {
                assert_eq!(samples > 0, *points, "{query}: {body}");
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    for (query, traces) in searches {
        let (status, body) = server.get_json(&format!("/api/search?q={}&limit=200&spss=10", q(query))).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(body["traces"].as_array().unwrap().len(), traces, "{query}: {body}");
    }
    let (status, tags) = server.get_json("/api/v2/search/tags?limit=5000").await;
    assert_eq!(status, 200, "{tags}");
}
