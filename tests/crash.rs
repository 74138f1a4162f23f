//! kill -9 while clients are sending: every acknowledged span must be there after a
//! restart, once, and complete.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use support::{check_store, now_ns, rich_trace, Server};
use tracekeeper_model::{jaeger, otlp, Span};

async fn crash_and_check(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_process(dir.path(), extra);
    let url = format!("http://{}/v1/traces", server.otlp_http);
    let acked: Arc<Mutex<Vec<Vec<Span>>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let next_seed = Arc::new(AtomicU64::new(1));
    let start = now_ns() - 10_000_000_000;
    let mut senders = Vec::new();
    for _ in 0..4 {
        let (url, acked, stop, next_seed) = (url.clone(), acked.clone(), stop.clone(), next_seed.clone());
        senders.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while !stop.load(Ordering::SeqCst) {
                let spans = rich_trace(next_seed.fetch_add(1, Ordering::SeqCst), start);
                let body = otlp::to_request(&spans).encode_to_vec();
                let sent = client.post(&url).header("content-type", "application/x-protobuf").body(body).send().await;
                match sent {
                    Ok(resp) if resp.status().as_u16() == 200 => acked.lock().unwrap().push(spans),
                    Ok(resp) => panic!("unexpected status {}", resp.status()),
                    Err(_) => break, // the server is gone: this request was never acknowledged
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill9();
    stop.store(true, Ordering::SeqCst);
    for sender in senders {
        sender.await.unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(acked.len() >= 20, "only {} requests were acknowledged before the crash", acked.len());

    server.restart();
    for spans in &acked {
        let (status, body) = server.get_json(&format!("/api/traces/{}", spans[0].trace_id.to_hex())).await;
        assert_eq!(status, 200, "acknowledged trace {} lost", spans[0].trace_id);
        assert_eq!(body["data"][0], serde_json::to_value(jaeger::to_trace(spans, vec![])).unwrap());
    }
    assert!(server.terminate().success());
    let report = check_store(&["--data-dir", dir.path().to_str().unwrap()]);
    let spans: u64 = acked.iter().map(|t| t.len() as u64).sum();
    let stored = report["tenants"]["single-tenant"]["spans"].as_u64().unwrap();
    assert!(stored >= spans, "{stored} stored < {spans} acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_spans_survive_kill_9() {
    crash_and_check(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_spans_survive_kill_9_with_fsync() {
    crash_and_check(&["--sync", "fsync"]).await;
}
