//! `ops/monitoring/` checked with the real tools and against live processes:
//! - promtool checks the rules and runs their unit tests, and every alert has a test
//!   in which it fires;
//! - every dashboard query parses (promtool), and the dashboards are what their
//!   generator writes;
//! - every metric a dashboard or rule names is exported by a live all-in-one or by a
//!   live pipeline (collector, indexer, query, retention).

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use prost::Message as _;
use support::cluster::{post_until_acked, Cluster};
use support::tools::tool;
use support::{now_ns, rich_trace, Server};

fn monitoring() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops/monitoring")
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    text
}

fn yaml(path: &Path) -> serde_yaml::Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn rules_file() -> PathBuf {
    monitoring().join("rules/tracekeeper.rules.yml")
}

fn dashboards() -> Vec<(String, serde_json::Value)> {
    let mut all: Vec<(String, serde_json::Value)> = std::fs::read_dir(monitoring().join("dashboards"))
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap())
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

fn dashboard_queries() -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for (name, dashboard) in dashboards() {
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let title = format!("{name}: {}", panel["title"].as_str().unwrap());
                queries.push((title, target["expr"].as_str().unwrap().to_string()));
            }
        }
    }
    queries
}

fn rule_expressions() -> Vec<String> {
    let doc = yaml(&rules_file());
    let mut exprs = Vec::new();
    for group in doc["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            exprs.push(rule["expr"].as_str().unwrap().to_string());
        }
    }
    exprs
}

#[test]
fn promtool_checks_the_rules_and_runs_their_unit_tests() {
    let promtool = tool("promtool");
    let checked = run(Command::new(&promtool).arg("check").arg("rules").arg(rules_file()));
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tests: Vec<PathBuf> =
        std::fs::read_dir(monitoring().join("tests")).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(!tests.is_empty());
    let tested = run(Command::new(&promtool).arg("test").arg("rules").args(&tests));
    assert!(tested.contains("SUCCESS") && !tested.contains("FAILED"), "{tested}");

    // Every alert has a unit test in which it fires.
    let alerts: BTreeSet<String> = yaml(&rules_file())["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap().iter())
        .filter_map(|r| r["alert"].as_str().map(str::to_string))
        .collect();
    let mut fired = BTreeSet::new();
    for file in &tests {
        for test in yaml(file)["tests"].as_sequence().unwrap() {
            for case in test["alert_rule_test"].as_sequence().into_iter().flatten() {
                if case["exp_alerts"].as_sequence().is_some_and(|a| !a.is_empty()) {
                    fired.insert(case["alertname"].as_str().unwrap().to_string());
                }
            }
        }
    }
    let untested: Vec<&String> = alerts.difference(&fired).collect();
    assert!(untested.is_empty(), "alerts without a unit test that fires them: {untested:?}");
    for required in [
        "TracekeeperIngestRefusing",
        "TracekeeperConsumerLagGrowing",
        "TracekeeperFreshnessPastBound",
        "TracekeeperNoRetentionRun",
        "TracekeeperPartitionWithoutOwner",
        "TracekeeperEmbeddedStoreNotReady",
    ] {
        assert!(alerts.contains(required), "{required} is missing");
    }
}

/// Grafana's variables replaced by what they stand for, so promtool's parser can check
/// each query: as the expression of a recording rule in a throwaway rules file.
#[test]
fn every_dashboard_query_parses() {
    let queries = dashboard_queries();
    assert!(queries.len() >= 25, "{} queries", queries.len());
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    for (n, (_, expr)) in queries.iter().enumerate() {
        let expr = expr.replace("$__rate_interval", "5m").replace("$job", ".*");
        rules.push_str(&format!(
            "      - record: dashboard_query_{n}\n        expr: {}\n",
            serde_json::to_string(&expr).unwrap()
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboards.rules.yml");
    std::fs::write(&file, rules).unwrap();
    run(Command::new(tool("promtool")).arg("check").arg("rules").arg(&file));

    let mut uids = BTreeSet::new();
    for (name, dashboard) in dashboards() {
        assert!(uids.insert(dashboard["uid"].as_str().unwrap().to_string()), "{name}: uid repeated");
        let variables: Vec<&str> =
            dashboard["templating"]["list"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
        assert_eq!(variables, ["datasource", "job"], "{name}");
    }
    let names: BTreeSet<String> = dashboards().into_iter().map(|(name, _)| name).collect();
    let expected: BTreeSet<String> =
        ["ingest", "pipeline", "query", "retention", "storage"].iter().map(|n| format!("{n}.json")).collect();
    assert_eq!(names, expected);
}

#[test]
fn the_dashboards_are_what_their_generator_writes() {
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("python3").arg(monitoring().join("generate-dashboards.py")).arg(dir.path()));
    for (name, committed) in dashboards() {
        let generated: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(&name)).unwrap()).unwrap();
        assert_eq!(generated, committed, "{name} differs: run python3 ops/monitoring/generate-dashboards.py");
    }
}

/// The `tracekeeper_*` series names in `text` (histograms by their `_bucket`, `_sum`
/// and `_count` series, as PromQL names them); recording rules' outputs contain `:`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("tracekeeper_") {
        let before = rest[..at].chars().next_back();
        let tail = &rest[at..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        if !matches!(before, Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            names.insert(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    names
}

fn exported(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

async fn scrape(url: &str) -> String {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_named_by_a_dashboard_or_rule_is_exported() {
    let mut named = BTreeSet::new();
    for (_, expr) in dashboard_queries() {
        named.extend(metric_names(&expr));
    }
    for expr in rule_expressions() {
        named.extend(metric_names(&expr));
    }
    assert!(named.len() >= 30, "{named:?}");

    // A live all-in-one, after a trace.
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let trace = rich_trace(1, now_ns() - 1_000_000_000);
    let body = tracekeeper_model::otlp::to_request(&trace).encode_to_vec();
    assert_eq!(server.post_otlp(body, "application/x-protobuf", &[]).await.0, 200);
    let mut seen = exported(&scrape(&server.query_url("/metrics")).await);
    assert!(seen.contains("tracekeeper_spans_stored_total"), "{seen:?}");

    // A live pipeline, after the same trace went through it.
    let stack = tracekeeper_stack::require().await;
    let cluster = Cluster::create(&stack.kafka, &stack.cql, "monitoring").await;
    let collector = cluster.collector();
    let indexer = cluster.indexer("10s").await;
    let query = cluster.query().await;
    let retention = cluster.retention(&["--interval", "1s"]).await;
    post_until_acked(&collector, &trace, Duration::from_secs(30), &Default::default()).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while indexer.metric("tracekeeper_spans_stored_total").await < trace.len() as f64 {
        assert!(Instant::now() < deadline, "the indexer did not store the trace within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let traced = query.json(&format!("/api/traces/{}", trace[0].trace_id.to_hex())).await;
    assert_eq!(traced["data"][0]["spans"].as_array().map(Vec::len), Some(trace.len()));
    // A run that saw the tenant (the first may have come before its spans).
    while !scrape(&retention.url("/metrics")).await.contains("tracekeeper_retention_watermark_lag_seconds{") {
        assert!(Instant::now() < deadline, "no retention run saw the tenant within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(retention.metric("tracekeeper_retention_last_run_timestamp_seconds").await > 0.0);
    for url in [
        format!("http://{}/metrics", collector.otlp_http),
        indexer.url("/metrics"),
        query.url("/metrics"),
        retention.url("/metrics"),
    ] {
        seen.extend(exported(&scrape(&url).await));
    }
    let missing: Vec<&String> = named.difference(&seen).collect();
    assert!(missing.is_empty(), "named by ops/monitoring but exported by no live process: {missing:?}");

    // The gauges the alerts depend on hold what they say.
    let indexer_scrape = scrape(&indexer.url("/metrics")).await;
    let partitions = format!("tracekeeper_kafka_topic_partitions{{topic=\"{}\"}} 6", cluster.topic);
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut indexer_scrape = indexer_scrape;
    while !indexer_scrape.contains(&partitions) {
        assert!(Instant::now() < deadline, "{partitions} not exported:\n{indexer_scrape}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        indexer_scrape = scrape(&indexer.url("/metrics")).await;
    }
    assert_eq!(indexer.metric("tracekeeper_kafka_partition_owned").await, 6.0, "{indexer_scrape}");
    assert_eq!(indexer.metric("tracekeeper_ready").await, 1.0);
    let all_in_one = scrape(&server.query_url("/metrics")).await;
    let info = format!("tracekeeper_build_info{{version=\"{}\",role=\"all-in-one\"}} 1", env!("CARGO_PKG_VERSION"));
    assert!(all_in_one.contains(&info), "{all_in_one}");
    assert!(all_in_one.contains("\ntracekeeper_ready 1\n"), "{all_in_one}");
}
