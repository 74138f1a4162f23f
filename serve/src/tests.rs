//! The serving layer over real sockets: refusals in the protocol's words, panics
//! contained, metrics with buckets, and TLS (with client certificates and reload).

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use super::*;

fn metrics_handle() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: OnceLock<metrics_exporter_prometheus::PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(REQUEST_DURATION.into()),
                DURATION_BUCKETS,
            )
            .unwrap()
            .build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).unwrap();
        handle
    })
}

fn config(timeout_ms: u64, max: usize, tls: Option<TlsFiles>) -> ServingConfig {
    ServingConfig {
        tls,
        auth: None,
        limits: Limits {
            request_timeout: Duration::from_millis(timeout_ms),
            max_concurrent_requests: max,
            header_read_timeout: Duration::from_millis(500),
        },
    }
}

fn open() -> Group<()> {
    Group::new(Declared::open(Shape::Text))
}

/// Serves `routes` under `name`; returns its address.
async fn start(config: ServingConfig, name: &'static str, routes: Routes) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let prepared = config.http(listener, name).unwrap();
    tokio::spawn(prepared.serve_http(routes, std::future::pending()));
    addr
}

#[tokio::test]
async fn overload_and_timeouts_are_refused_with_a_reason_and_retry_after() {
    let release = Arc::new(Notify::new());
    let held = release.clone();
    let router = open()
        .get("/hold", move || {
            let held = held.clone();
            async move {
                held.notified().await;
                "done"
            }
        })
        .get("/slow", || async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        })
        .done();
    let addr = start(config(300, 1, None), "limits", router).await;
    let client = reqwest::Client::new();
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.get(format!("http://{addr}/hold")).send().await.unwrap().text().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = client.get(format!("http://{addr}/hold")).send().await.unwrap();
    assert_eq!(second.status(), 503);
    assert_eq!(second.headers()["retry-after"], "1");
    assert!(second.text().await.unwrap().contains("limit of 1 requests at once on the limits listener"));
    release.notify_one();
    assert_eq!(first.await.unwrap(), "done");

    let slow = client.get(format!("http://{addr}/slow")).send().await.unwrap();
    assert_eq!(slow.status(), 503);
    assert!(slow.text().await.unwrap().contains("--request-timeout"));
}

#[tokio::test]
async fn a_panicking_handler_costs_one_request_not_the_process() {
    let router = open()
        .get("/boom", || async {
            let empty: Vec<u8> = Vec::new();
            empty[1].to_string()
        })
        .get("/fine", || async { "fine" })
        .done();
    let addr = start(config(5_000, 16, None), "panics", router).await;
    let client = reqwest::Client::new();
    let boom = client.get(format!("http://{addr}/boom")).send().await.unwrap();
    assert_eq!(boom.status(), 500);
    assert_eq!(boom.text().await.unwrap(), "internal error while serving this request\n", "no internals leak");
    let fine = client.get(format!("http://{addr}/fine")).send().await.unwrap();
    assert_eq!(fine.text().await.unwrap(), "fine");
}

#[tokio::test]
async fn requests_are_counted_per_route_with_histogram_buckets() {
    let handle = metrics_handle();
    let router = open().get("/items/{id}", || async { "item" }).done();
    let addr = start(config(5_000, 16, None), "metered", router).await;
    let client = reqwest::Client::new();
    for id in ["a", "b", "c"] {
        client.get(format!("http://{addr}/items/{id}")).send().await.unwrap();
    }
    client.get(format!("http://{addr}/nowhere/{}", "x".repeat(50))).send().await.unwrap();
    let text = handle.render();
    assert!(
        text.contains(
            r#"tracekeeper_http_requests_total{listener="metered",route="/items/{id}",method="GET",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"tracekeeper_http_request_duration_seconds_bucket{listener="metered",route="/items/{id}",le="0.005"}"#
    ));
    assert!(text.contains(r#"route="unmatched",method="GET",status="404"} 1"#), "unknown paths share one label");
}

struct Pki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // OpenSSL takes a leaf whose subject equals its issuer for self-signed.
        params.distinguished_name.push(DnType::CommonName, "tracekeeper test CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { dir: tempfile::tempdir().unwrap(), ca }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `{name}.pem` and `{name}.key` for a leaf this CA signs.
    fn leaf(&self, name: &str, sans: &[&str]) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.signed_by(&key, &self.ca).unwrap();
        std::fs::write(self.path(&format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(self.path(&format!("{name}.key")), key.serialize_pem()).unwrap();
    }

    fn write_ca(&self, name: &str) {
        std::fs::write(self.path(name), self.ca.pem()).unwrap();
    }
}

/// One HTTPS GET with a hand-written request; `Err` when the handshake fails.
async fn https_get(
    addr: std::net::SocketAddr,
    ca: &Path,
    client_cert: Option<(&Path, &Path)>,
) -> Result<String, String> {
    let roots = tracekeeper_model::pem::root_store(ca).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                tracekeeper_model::pem::certificates(cert).unwrap(),
                tracekeeper_model::pem::private_key(key).unwrap(),
            )
            .unwrap(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls =
        connector.connect(ServerName::try_from("127.0.0.1").unwrap(), tcp).await.map_err(|e| e.to_string())?;
    tls.write_all(b"GET /hello HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    tls.read_to_string(&mut out).await.map_err(|e| e.to_string())?;
    Ok(out)
}

fn hello() -> Routes {
    open().get("/hello", || async { "hello over tls" }).done()
}

#[tokio::test]
async fn tls_serves_with_the_configured_certificate_and_reloads_it() {
    let pki = Pki::new();
    pki.leaf("server", &["127.0.0.1"]);
    pki.write_ca("ca.pem");
    let files = TlsFiles { cert: pki.path("server.pem"), key: pki.path("server.key"), client_ca: None };
    let addr = start(config(5_000, 16, Some(files)), "tls", hello()).await;
    let answer = https_get(addr, &pki.path("ca.pem"), None).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("hello over tls"), "{answer}");

    let plain = reqwest::get(format!("http://{addr}/hello")).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success(), "plaintext must not be served on a TLS port");

    // A new CA's certificate replaces the files: the running listener picks it up.
    let other = Pki::new();
    other.leaf("server", &["127.0.0.1"]);
    other.write_ca("ca.pem");
    std::fs::copy(other.path("server.pem"), pki.path("server.pem")).unwrap();
    std::fs::copy(other.path("server.key"), pki.path("server.key")).unwrap();
    let deadline = std::time::Instant::now() + tls::RELOAD_CHECK * 4;
    loop {
        match https_get(addr, &other.path("ca.pem"), None).await {
            Ok(answer) => {
                assert!(answer.ends_with("hello over tls"));
                break;
            }
            Err(e) if std::time::Instant::now() > deadline => panic!("the new certificate was not picked up: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    assert!(https_get(addr, &pki.path("ca.pem"), None).await.is_err(), "the old certificate is gone");
}

#[tokio::test]
async fn client_certificates_are_required_when_a_client_ca_is_set() {
    let pki = Pki::new();
    pki.leaf("server", &["127.0.0.1"]);
    pki.leaf("client", &["tracekeeper-client"]);
    pki.write_ca("ca.pem");
    let files =
        TlsFiles { cert: pki.path("server.pem"), key: pki.path("server.key"), client_ca: Some(pki.path("ca.pem")) };
    let addr = start(config(5_000, 16, Some(files)), "mtls", hello()).await;
    let anonymous = https_get(addr, &pki.path("ca.pem"), None).await;
    assert!(anonymous.is_err() || !anonymous.unwrap().contains("hello over tls"), "no client certificate, no answer");
    let answer =
        https_get(addr, &pki.path("ca.pem"), Some((&pki.path("client.pem"), &pki.path("client.key")))).await.unwrap();
    assert!(answer.ends_with("hello over tls"), "{answer}");
}

#[test]
fn bad_tls_files_are_named_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.pem"), "").unwrap();
    std::fs::write(dir.path().join("key.pem"), "").unwrap();
    let missing = TlsSource::load(
        TlsFiles { cert: dir.path().join("nope.pem"), key: dir.path().join("key.pem"), client_ca: None },
        vec![],
    );
    assert!(
        matches!(&missing, Err(e) if e.to_string().contains("nope.pem")),
        "{:?}",
        missing.err().map(|e| e.to_string())
    );
    let empty = TlsSource::load(
        TlsFiles { cert: dir.path().join("empty.pem"), key: dir.path().join("key.pem"), client_ca: None },
        vec![],
    );
    assert!(matches!(&empty, Err(e) if e.to_string().contains("holds no certificate")));
}

/// A client that opens a connection and trickles its request head is cut off once the
/// header deadline passes, while ordinary requests on the same listener carry on.
#[tokio::test]
async fn a_slowloris_client_is_cut_off() {
    let addr = start(config(5_000, 16, None), "slow", hello()).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    let started = std::time::Instant::now();
    let trickle = async {
        let mut buf = [0u8; 256];
        loop {
            // One more header byte every 100 ms, never the blank line that ends the head.
            if slow.write_all(b"x").await.is_err() {
                return;
            }
            match tokio::time::timeout(Duration::from_millis(100), slow.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), trickle).await.expect("the server closed the slow connection");
    let held = started.elapsed();
    assert!(held >= Duration::from_millis(400) && held < Duration::from_secs(3), "cut off after {held:?}");
    let fine = reqwest::get(format!("http://{addr}/hello")).await.unwrap();
    assert_eq!(fine.text().await.unwrap(), "hello over tls");
}

#[tokio::test]
async fn a_request_head_over_the_limit_is_refused() {
    let addr = start(config(5_000, 16, None), "head", hello()).await;
    let padding = "a".repeat(http_server::MAX_HEAD_BYTES + 1);
    let response = reqwest::Client::new().get(format!("http://{addr}/hello")).header("x-padding", padding).send().await;
    match response {
        Ok(r) => assert_eq!(r.status(), 431),
        Err(e) => assert!(!e.is_timeout(), "refused, not left hanging: {e}"),
    }
    let fine = reqwest::get(format!("http://{addr}/hello")).await.unwrap();
    assert!(fine.status().is_success());
}
