//! Running a role's listeners together and stopping them together: every HTTP
//! listener also serves `/ready` and `/metrics`; on shutdown, requests in flight finish.

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracekeeper_ingest::IngestState;

pub struct Servers {
    ops: Router,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

impl Servers {
    pub fn new(ops: Router) -> Self {
        Self { ops, stop: watch::channel(false).0, tasks: Vec::new() }
    }

    fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.stop.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    pub fn http(&mut self, listener: TcpListener, router: Router, name: &'static str) {
        let app = router.merge(self.ops.clone());
        let stop = self.stopped();
        self.tasks.push(tokio::spawn(async move {
            axum::serve(listener, app).with_graceful_shutdown(stop).await.with_context(|| format!("{name} server"))
        }));
    }

    /// The three span receivers (OTLP/HTTP, Zipkin, OTLP/gRPC) over one ingest state.
    pub fn receivers(
        &mut self,
        otlp_http: TcpListener,
        zipkin: TcpListener,
        otlp_grpc: TcpListener,
        ingest: &IngestState,
    ) {
        self.http(otlp_http, tracekeeper_ingest::otlp_http::router(ingest.clone()), "OTLP/HTTP");
        self.http(zipkin, tracekeeper_ingest::zipkin::router(ingest.clone()), "Zipkin");
        let stop = self.stopped();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(otlp_grpc);
        let service = tracekeeper_ingest::otlp_grpc::service(ingest.clone());
        self.tasks.push(tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, stop)
                .await
                .context("OTLP/gRPC server")
        }));
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
