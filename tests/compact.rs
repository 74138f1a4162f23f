//! `tracekeeper compact` on a real all-in-one data directory: refused while the server
//! holds it, then every bucket rewritten with the same traces readable afterwards.

mod support;

use std::process::Command;

use prost::Message;
use support::{check_store, now_ns, rich_trace, Server};
use tracekeeper_model::{jaeger, otlp, Span};

fn compact(dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tracekeeper"))
        .args(["compact", "--data-dir", dir.to_str().unwrap()])
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_every_trace_and_is_refused_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    // Two days apart, so the store has two buckets.
    let day = 86_400_000_000_000;
    let traces: Vec<Vec<Span>> =
        (1..=40).map(|seed| rich_trace(seed, now_ns() - 60_000_000_000 - (seed % 2) * day)).collect();
    for spans in &traces {
        let body = otlp::to_request(spans).encode_to_vec();
        let url = format!("http://{}/v1/traces", server.otlp_http);
        let resp = client.post(url).header("content-type", "application/x-protobuf").body(body).send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }

    let refused = compact(dir.path());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "the running server holds the directory");
    assert!(stderr.contains("is all-in-one still running?"), "{stderr}");

    assert!(server.terminate().success());
    let done = compact(dir.path());
    let (stdout, stderr) = (String::from_utf8_lossy(&done.stdout), String::from_utf8_lossy(&done.stderr));
    assert!(done.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("compacted 2 buckets"), "{stdout}");
    assert_eq!(stderr.matches(" MiB in ").count(), 2, "one progress line per bucket: {stderr}");

    server.restart();
    for spans in &traces {
        let (status, body) = server.get_json(&format!("/api/traces/{}", spans[0].trace_id.to_hex())).await;
        assert_eq!(status, 200);
        assert_eq!(body["data"][0], serde_json::to_value(jaeger::to_trace(spans, vec![])).unwrap());
    }
    assert!(server.terminate().success());
    let report = check_store(&["--data-dir", dir.path().to_str().unwrap()]);
    let spans: usize = traces.iter().map(Vec::len).sum();
    assert_eq!(report["tenants"]["single-tenant"]["spans"].as_u64(), Some(spans as u64));

    let nothing = tempfile::tempdir().unwrap();
    let refused = compact(nothing.path());
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("holds no tracekeeper store"));
}

/// A data directory that older versions wrote in every earlier key layout
/// (`storage/fixtures/README.md`): all-in-one and `check` refuse it and name the step,
/// `compact` takes it, and then every tenant's spans are there and hold every invariant.
#[test]
fn a_directory_older_versions_wrote_is_refused_until_compact_upgrades_it() {
    let fixture = include_bytes!("../storage/fixtures/embedded-layouts-b-c-d.tar.gz");
    let dir = tempfile::tempdir().unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(&fixture[..])).unpack(dir.path()).unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let tracekeeper = || Command::new(env!("CARGO_BIN_EXE_tracekeeper"));
    // The fixture's spans are from 2023: held to a century, none is expired.
    let check = ["check", "--json", "--data-dir", data_dir, "--retention", "876000h"];

    let any = "127.0.0.1:0";
    let started = tracekeeper()
        .args(["all-in-one", "--data-dir", data_dir, "--query-addr", any, "--otlp-grpc-addr", any])
        .args(["--otlp-http-addr", any, "--zipkin-addr", any, "--query-grpc-addr", any])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&started.stderr);
    assert!(!started.status.success(), "all-in-one must not serve a directory it cannot read whole");
    assert!(stderr.contains("older version") && stderr.contains("tracekeeper compact"), "{stderr}");
    let checked = tracekeeper().args(check).output().unwrap();
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert!(!checked.status.success() && stderr.contains("tracekeeper compact"), "{stderr}");

    let done = compact(dir.path());
    let (stdout, stderr) = (String::from_utf8_lossy(&done.stdout), String::from_utf8_lossy(&done.stderr));
    assert!(done.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("upgraded 2 buckets written by older versions"), "{stdout}");
    assert!(stdout.contains("compacted 3 buckets"), "{stdout}");
    assert!(stderr.contains("[1/2] bucket from 2023-11-14T00:00:00+00:00: rewriting"), "{stderr}");

    let report = check_store(&check[2..]);
    for tenant in ["a", "ab"] {
        assert!(report["tenants"][tenant]["spans"].as_u64() > Some(0), "{report}");
    }
    let again = compact(dir.path());
    assert!(!String::from_utf8_lossy(&again.stdout).contains("upgraded"), "nothing is left to upgrade");
}
