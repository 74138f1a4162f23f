//! Running a role's listeners together and stopping them together. Every listener
//! goes through the one serving layer (`tracekeeper-serve`: TLS, timeout, concurrency
//! limit, metrics, request span, panics contained); every HTTP listener also serves
//! `/ready` and `/metrics`; on shutdown, requests in flight finish.

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracekeeper_ingest::IngestState;
use tracekeeper_serve::ServingConfig;

pub struct Servers {
    ops: Router,
    serving: ServingConfig,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

impl Servers {
    pub fn new(ops: Router, serving: ServingConfig) -> Self {
        if let Some(auth) = &serving.auth {
            // Ends by itself once the last listener using these tokens is gone.
            auth.watch();
        }
        Self { ops, serving, stop: watch::channel(false).0, tasks: Vec::new() }
    }

    fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.stop.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    /// Serves `router` (plus `/ready` and `/metrics`) on `listener`. TLS files are read
    /// here, so a bad certificate stops the start-up with its name.
    pub fn http(&mut self, listener: TcpListener, router: Router, name: &'static str) -> anyhow::Result<()> {
        let app = router.merge(self.ops.clone());
        let prepared = self.serving.http(listener, name)?;
        let stop = self.stopped();
        self.tasks.push(tokio::spawn(async move {
            prepared.serve_http(app, stop).await.with_context(|| format!("{name} server"))
        }));
        Ok(())
    }

    /// The three span receivers (OTLP/HTTP, Zipkin, OTLP/gRPC) over one ingest state.
    pub fn receivers(
        &mut self,
        otlp_http: TcpListener,
        zipkin: TcpListener,
        otlp_grpc: TcpListener,
        ingest: &IngestState,
    ) -> anyhow::Result<()> {
        self.http(otlp_http, tracekeeper_ingest::otlp_http::router(ingest.clone()), "otlp-http")?;
        self.http(zipkin, tracekeeper_ingest::zipkin::router(ingest.clone()), "zipkin")?;
        let prepared = self.serving.grpc(otlp_grpc, "otlp-grpc")?;
        let stop = self.stopped();
        let service = tracekeeper_ingest::otlp_grpc::service(ingest.clone());
        self.tasks
            .push(tokio::spawn(async move { prepared.serve_grpc(service, stop).await.context("OTLP/gRPC server") }));
        Ok(())
    }

    /// Stops accepting, waits for requests in flight, returns the first server error.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        tracing::info!("shutting down: finishing requests in flight");
        let _ = self.stop.send(true);
        let mut result = Ok(());
        for task in self.tasks {
            if let Err(e) = task.await.context("server task")? {
                result = Err(e);
            }
        }
        result
    }
}
