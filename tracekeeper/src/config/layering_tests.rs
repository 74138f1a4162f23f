//! The config system end to end: flags, variables and the file layered by
//! [`crate::cli::parse`], then resolved here.

use std::ffi::OsString;
use std::time::Duration;

use crate::cli::{is_secret, parse, Command, Layered};
use crate::config::FileTables;
use crate::roles::all_in_one::Config as AllInOneConfig;

fn resolve(layered: Layered) -> anyhow::Result<AllInOneConfig> {
    let file = FileTables::from_layered(&layered)?;
    match layered.cli.command {
        Command::AllInOne(args) => crate::config::all_in_one(*args, &file),
        other => panic!("not all-in-one: {other:?}"),
    }
}

fn file(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap().to_string();
    (dir, path)
}

fn layered(argv: &[&str]) -> Result<Layered, clap::Error> {
    parse(argv.iter().map(OsString::from).collect())
}

fn all_in_one(argv: &[&str]) -> AllInOneConfig {
    resolve(layered(argv).unwrap()).unwrap()
}

#[test]
fn a_flag_beats_the_file_which_beats_the_default() {
    let (_dir, path) = file(
        "log-format = \"json\"\nquery-addr = \"127.0.0.1:1000\"\nzipkin-addr = \"127.0.0.1:2000\"\nretention = \"24h\"\nmulti-tenancy = true\n[tenant-retention]\nacme = \"1h\"\n",
    );
    let layered = layered(&["tracekeeper", "all-in-one", "--config", &path, "--query-addr", "127.0.0.1:3000"]).unwrap();
    assert_eq!(layered.cli.log_format, crate::cli::LogFormat::Json);
    let effective = layered.effective.clone();
    let config = resolve(layered).unwrap();
    assert_eq!(config.query_addr.to_string(), "127.0.0.1:3000", "the flag");
    assert_eq!(config.receivers.zipkin_addr.to_string(), "127.0.0.1:2000", "the file");
    assert_eq!(config.receivers.otlp_http_addr.to_string(), "0.0.0.0:4318", "the default");
    assert!(config.receivers.multi_tenancy, "a true boolean in the file is the bare flag");
    assert_eq!(config.retention.retention_for("x"), Duration::from_secs(86_400));
    assert_eq!(config.retention.retention_for("acme"), Duration::from_secs(3600));
    let sources: Vec<(&str, &str)> =
        effective.iter().map(|(k, _, from)| (k.as_str(), *from)).filter(|(k, _)| k.ends_with("-addr")).collect();
    assert!(sources.contains(&("query-addr", "flag")), "{sources:?}");
    assert!(sources.contains(&("zipkin-addr", "file")), "{sources:?}");
    assert!(sources.contains(&("otlp-http-addr", "default")), "{sources:?}");
}

#[cfg(feature = "distributed")]
#[test]
fn every_role_takes_a_config_file() {
    let (_dir, path) = file("keyspace = \"from_file\"\ncql-nodes = [\"10.0.0.1:9042\", \"10.0.0.2:9042\"]\n");
    for role in [&["indexer"][..], &["query"], &["retention"], &["schema", "apply"], &["check"]] {
        let argv: Vec<&str> =
            ["tracekeeper"].into_iter().chain(role.iter().copied()).chain(["--config", &path]).collect();
        let layered = layered(&argv).unwrap_or_else(|e| panic!("{role:?}: {e}"));
        let get =
            |key: &str| layered.effective.iter().find(|(k, _, _)| k == key).map(|(_, v, from)| (v.clone(), *from));
        assert_eq!(get("keyspace"), Some(("from_file".to_string(), "file")), "{role:?}");
        assert_eq!(get("cql-nodes"), Some(("10.0.0.1:9042,10.0.0.2:9042".to_string(), "file")), "{role:?}");
    }
}

#[test]
fn unknown_keys_and_tables_are_errors_that_name_them() {
    let (_dir, path) = file("query-adr = \"127.0.0.1:1000\"\n");
    let err = layered(&["tracekeeper", "all-in-one", "--config", &path]).err().unwrap().to_string();
    assert!(err.contains("unknown key `query-adr`") && err.contains("query-addr"), "{err}");
    #[cfg(feature = "distributed")]
    {
        // A key of another role is unknown here.
        let (_dir, path) = file("data-dir = \"/tmp/x\"\n");
        let err = layered(&["tracekeeper", "indexer", "--config", &path]).err().unwrap().to_string();
        assert!(err.contains("unknown key `data-dir`"), "{err}");
        let (_dir, path) = file("[tenant-ingest-limits.x]\nmax-future-skew = \"5m\"\n");
        assert!(layered(&["tracekeeper", "indexer", "--config", &path]).is_ok(), "the indexer reads a tenant's skew");
        let (_dir, path) = file("[tenant-retention]\nacme = \"1h\"\n");
        let err = layered(&["tracekeeper", "collector", "--config", &path]).err().unwrap().to_string();
        assert!(err.contains("[tenant-retention] is not a table `tracekeeper collector` reads"), "{err}");
    }
    let (_dir, path) = file("[some-table]\nx = 1\n");
    let err = layered(&["tracekeeper", "all-in-one", "--config", &path]).err().unwrap().to_string();
    assert!(err.contains("[some-table] is not a table `tracekeeper all-in-one` reads"), "{err}");
    let (_dir, path) = file("max-body-bytes = \"lots\"\n");
    let err = layered(&["tracekeeper", "all-in-one", "--config", &path]).err().unwrap().to_string();
    assert!(err.contains("max-body-bytes") && err.contains("lots"), "a bad value is checked like a flag: {err}");
}

#[test]
fn a_tenant_table_sets_rates_and_clock_skew() {
    let (_dir, path) = file("[tenant-ingest-limits.satellite]\nrate-spans = 10.0\nmax-future-skew = \"48h\"\n");
    let config = all_in_one(&["tracekeeper", "all-in-one", "--config", &path]);
    assert_eq!(config.tenant_future_skews.get("satellite"), Some(&Duration::from_secs(48 * 3600)));
    assert_eq!(config.receivers.limits.tenant_rates.per_tenant["satellite"].spans_per_second, Some(10.0));
    let (_dir, path) = file("[tenant-ingest-limits.satellite]\nmax-future-skew = \"soon\"\n");
    let err = resolve(layered(&["tracekeeper", "all-in-one", "--config", &path]).unwrap()).unwrap_err();
    assert!(format!("{err:#}").contains("tenant-ingest-limits.satellite.max-future-skew"), "{err:#}");
}

#[test]
fn secrets_never_reach_the_effective_config() {
    assert!(is_secret("cql-password", "hunter2"));
    assert!(is_secret("kafka-option", "sasl.password=hunter2"));
    assert!(!is_secret("auth-tokens-file", "/etc/tokens.toml"));
    let (_dir, path) = file("query-addr = \"127.0.0.1:1\"\n");
    let layered = layered(&["tracekeeper", "all-in-one", "--config", &path]).unwrap();
    assert!(layered.effective.iter().any(|(k, _, _)| k == "config"), "the file itself is listed");
}
