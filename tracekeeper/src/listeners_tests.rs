//! Walks every route of every role's HTTP listeners, taken from the routes' own table,
//! over real sockets with a tokens file: each route needs the scope its kind of
//! endpoint should need, is refused without credentials or with another scope, and
//! is let through with its own. Only probes and the web UI's page and files are open.

use std::io::Write;
use std::sync::Arc;

#[cfg(feature = "distributed")]
use async_trait::async_trait;
use tokio::net::TcpListener;
use tracekeeper_indexer::Indexer;
use tracekeeper_ingest::{IngestLimits, IngestState};
use tracekeeper_model::clock::SystemClock;
use tracekeeper_model::Tenancy;
use tracekeeper_query::{QueryEngine, QueryState};
use tracekeeper_retention::RetentionPolicies;
use tracekeeper_serve::{Access, Authenticator, Declared, Routes, Scope, ServingConfig, Shape};
use tracekeeper_storage::embedded::{EmbeddedConfig, EmbeddedStore};
#[cfg(feature = "distributed")]
use tracekeeper_storage::{LedgerError, OwnershipLedger, PartitionId, PartitionOwner, Progress, StorageError};
use tracekeeper_ui::UiConfig;

use crate::roles::all_in_one::DirectSink;
use crate::{ops, retention_api};

/// The status page reads the ledger; its content does not matter to access.
#[cfg(feature = "distributed")]
struct EmptyLedger;

#[cfg(feature = "distributed")]
#[async_trait]
impl OwnershipLedger for EmptyLedger {
    async fn claim(&self, _: &PartitionId, _: &str, _: i32, _: u64) -> Result<PartitionOwner, LedgerError> {
        unreachable!("the status page only lists owners")
    }
    async fn record(&self, _: &PartitionId, _: &str, _: i32, _: &Progress) -> Result<(), LedgerError> {
        unreachable!("the status page only lists owners")
    }
    async fn owners(&self) -> Result<Vec<PartitionOwner>, StorageError> {
        Ok(Vec::new())
    }
}

const TOKENS: [(&str, &str, Scope); 3] =
    [("reader", "r-secret", Scope::Read), ("writer", "w-secret", Scope::Write), ("ops", "o-secret", Scope::Admin)];

fn tokens_file() -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for (name, secret, scope) in TOKENS {
        let scope = format!("{scope:?}").to_lowercase();
        let sha = hex::encode(tracekeeper_serve::auth::sha256(secret.as_bytes()));
        writeln!(
            file,
            "[[token]]\nname = \"{name}\"\nsha256 = \"{sha}\"\ntenants = [\"acme\"]\nscopes = [\"{scope}\"]\n"
        )
        .unwrap();
    }
    file
}

/// What a route on `listener` must need, by what kind of endpoint it is.
fn expected(listener: &str, base: &str, path: &str) -> Access {
    let open = ["/ready".to_string(), format!("{base}/*"), format!("{base}/assets/{{build}}/{{*file}}")];
    if open.iter().any(|p| p == path) {
        return Access::Open;
    }
    let admin = ["/metrics".to_string(), format!("{base}/api/status"), format!("{base}/api/retention")];
    if admin.iter().any(|p| p == path) {
        return Access::Needs(Scope::Admin);
    }
    match listener {
        "otlp-http" | "zipkin" => Access::Needs(Scope::Write),
        "query" => Access::Needs(Scope::Read),
        _ => panic!("{path} on the {listener} listener is neither a probe, the metrics nor an admin API"),
    }
}

/// A request path for a route pattern: each parameter filled with a trace id.
fn concrete(pattern: &str) -> String {
    let pattern = pattern.replace("/*", "/some/page");
    let mut out = String::new();
    let mut rest = pattern.as_str();
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').expect("a closed parameter") + open;
        out.push_str(if rest[open..close].starts_with("{*") { "app.js" } else { "0af7651916cd43dd8448eb211c80319c" });
        rest = &rest[close + 1..];
    }
    out + rest
}

struct Walked {
    routes: usize,
    open: Vec<String>,
    /// Whether it was a query listener (with the UI).
    query: bool,
}

/// Serves `routes` (with `/ready` and `/metrics`, as every listener) and checks each.
async fn walk(listener: &'static str, base: &str, routes: Routes, serving: &ServingConfig) -> Walked {
    let routes = routes.merge(ops::router(ops::Readiness::default(), metrics_handle()));
    let table = routes.table().to_vec();
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serving.http(socket, listener).unwrap().serve_http(routes, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let mut open = Vec::new();
    for entry in &table {
        let Declared { access, .. } = entry.declared;
        assert_eq!(access, expected(listener, base, &entry.path), "{} {} on {listener}", entry.method, entry.path);
        let url = format!("http://{addr}{}", concrete(&entry.path));
        let send = |token: Option<&str>| {
            let mut request = client.request(entry.method.clone(), &url);
            if let Some(secret) = token {
                request = request.bearer_auth(secret);
            }
            async move { request.send().await.unwrap().status().as_u16() }
        };
        let what = format!("{} {} on {listener}", entry.method, entry.path);
        match access {
            Access::Open => {
                open.push(entry.path.clone());
                assert!(![401, 403].contains(&send(None).await), "{what} is open");
            }
            Access::Needs(scope) => {
                assert_eq!(send(None).await, 401, "{what} without credentials");
                for (name, secret, has) in TOKENS {
                    let status = send(Some(secret)).await;
                    if has == scope {
                        assert!(![401, 403].contains(&status), "{what} with {name}'s {has:?} token: {status}");
                    } else {
                        assert_eq!(status, 403, "{what} with {name}'s {has:?} token");
                    }
                }
            }
        }
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    Walked { routes: table.len(), open, query: listener == "query" }
}

fn metrics_handle() -> metrics_exporter_prometheus::PrometheusHandle {
    metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder().handle()
}

#[tokio::test]
async fn every_route_of_every_role_needs_what_it_declares() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap());
    let tenancy = Tenancy { multi_tenant: true };
    let clock = crate::roles::system_clock();
    let indexer = Indexer::new(store.clone(), RetentionPolicies::default(), clock.clone());
    let ingest = IngestState::new(Arc::new(DirectSink(indexer)), tenancy, IngestLimits::default());
    let query = || {
        let engine = QueryEngine::new(store.clone(), RetentionPolicies::default(), clock.clone(), 1000);
        Arc::new(QueryState::new(engine, tenancy).with_red(store.clone()))
    };
    let ui = |base: &str| UiConfig { enabled: true, base_path: base.into(), multi_tenancy: true, auth: true };
    let retention = || retention_api::router(store.clone());

    let file = tokens_file();
    let serving = ServingConfig {
        auth: Some(Arc::new(Authenticator::load(file.path(), true).unwrap())),
        ..ServingConfig::default()
    };
    let mut walked = Vec::new();
    // all-in-one and collector: the same receivers.
    walked.push(walk("otlp-http", "", super::otlp_http(&ingest), &serving).await);
    walked.push(walk("zipkin", "", super::zipkin(&ingest), &serving).await);
    // all-in-one's query listener, then the query role's, under a base path.
    walked.push(walk("query", "", super::query(query(), retention(), &ui("")), &serving).await);
    #[cfg(feature = "distributed")]
    {
        let status =
            || crate::status::router(Arc::new(EmptyLedger), Vec::new(), Arc::new(SystemClock), serde_json::Value::Null);
        let admin = status().merge(retention());
        walked.push(walk("query", "/tracing", super::query(query(), admin, &ui("/tracing")), &serving).await);
        // The indexer's and the retention worker's admin listeners.
        walked.push(walk("admin", "", status(), &serving).await);
        walked.push(walk("admin", "", retention(), &serving).await);
    }

    let routes: usize = walked.iter().map(|w| w.routes).sum();
    eprintln!("walked {routes} routes on {} listeners", walked.len());
    assert!(routes > 40 * walked.iter().filter(|w| w.query).count(), "walked {routes} routes");
    let open: Vec<&String> = walked.iter().flat_map(|w| &w.open).collect();
    assert_eq!(open.iter().filter(|p| p.as_str() == "/ready").count(), walked.len(), "one probe per listener");
    let uis = walked.iter().filter(|w| w.query).count();
    assert_eq!(open.len(), walked.len() + 2 * uis, "the probes, and the UI's files and page: {open:?}");
    assert_eq!(tracekeeper_ingest::otlp_grpc::ACCESS, Declared::write(Shape::Text), "the gRPC receiver takes spans");
}

#[tokio::test]
async fn grafana_reads_tempo_buildinfo_and_echo_with_a_read_token() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap());
    let engine = QueryEngine::new(store.clone(), RetentionPolicies::default(), Arc::new(SystemClock), 1000);
    let state = Arc::new(QueryState::new(engine, Tenancy { multi_tenant: true }));
    let file = tokens_file();
    let serving = ServingConfig {
        auth: Some(Arc::new(Authenticator::load(file.path(), true).unwrap())),
        ..ServingConfig::default()
    };
    let routes = super::query(state, retention_api::router(store), &UiConfig::default());
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(serving.http(socket, "query").unwrap().serve_http(routes, std::future::pending()));
    let client = reqwest::Client::new();
    let buildinfo = client.get(format!("http://{addr}/api/status/buildinfo")).bearer_auth("r-secret").send().await;
    let buildinfo = buildinfo.unwrap();
    assert_eq!(buildinfo.status(), 200);
    let body: serde_json::Value = buildinfo.json().await.unwrap();
    assert!(body["version"].is_string(), "{body}");
    let echo = client.get(format!("http://{addr}/api/echo")).bearer_auth("r-secret").send().await.unwrap();
    assert_eq!((echo.status().as_u16(), echo.text().await.unwrap().as_str()), (200, "echo"));
    let status = client.get(format!("http://{addr}/api/retention")).bearer_auth("r-secret").send().await.unwrap();
    assert_eq!(status.status(), 403, "the admin API beside it still needs admin");
}
