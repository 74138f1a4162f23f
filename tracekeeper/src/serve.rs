//! Running a role's listeners together and stopping them together. Every listener
//! goes through the one serving layer (`tracekeeper-serve`: TLS, timeout, concurrency
//! limit, metrics, request span, panics contained); every HTTP listener also serves
//! `/ready` and `/metrics`; on shutdown, requests in flight finish.

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracekeeper_ingest::IngestState;
use tracekeeper_serve::{Routes, ServingConfig};

use crate::roles::ReceiverListeners;

pub struct Servers {
    ops: Routes,
    serving: ServingConfig,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

impl Servers {
    pub fn new(ops: Routes, serving: ServingConfig) -> Self {
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

    /// Serves `routes` (plus `/ready` and `/metrics`) on `listener`. TLS files are read
    /// here, so a bad certificate stops the start-up with its name.
    pub fn http(&mut self, listener: TcpListener, routes: Routes, name: &'static str) -> anyhow::Result<()> {
        listening(name, &listener);
        let app = routes.merge(self.ops.clone());
        let prepared = self.serving.http(listener, name)?;
        let stop = self.stopped();
        self.tasks.push(tokio::spawn(async move {
            prepared.serve_http(app, stop).await.with_context(|| format!("{name} server"))
        }));
        Ok(())
    }

    /// Serves the tonic services of `routes` on `listener`, every method needing
    /// `declared`.
    pub fn grpc(
        &mut self,
        listener: TcpListener,
        routes: tonic::service::Routes,
        declared: tracekeeper_serve::Declared,
        name: &'static str,
    ) -> anyhow::Result<()> {
        listening(name, &listener);
        let prepared = self.serving.grpc(listener, name)?;
        let stop = self.stopped();
        self.tasks.push(tokio::spawn(async move {
            prepared.serve_grpc_routes(routes, declared, stop).await.with_context(|| format!("{name} server"))
        }));
        Ok(())
    }

    /// The three span receivers (OTLP/HTTP, Zipkin, OTLP/gRPC) over one ingest state.
    pub fn receivers(&mut self, listeners: ReceiverListeners, ingest: &IngestState) -> anyhow::Result<()> {
        self.http(listeners.otlp_http, crate::listeners::otlp_http(ingest), "otlp-http")?;
        self.http(listeners.zipkin, crate::listeners::zipkin(ingest), "zipkin")?;
        listening("otlp-grpc", &listeners.otlp_grpc);
        let prepared = grpc_serving(&self.serving, &ingest.limits).grpc(listeners.otlp_grpc, "otlp-grpc")?;
        let stop = self.stopped();
        let service = tracekeeper_ingest::otlp_grpc::service(ingest.clone());
        self.tasks.push(tokio::spawn(async move {
            prepared.serve_grpc(service, tracekeeper_ingest::otlp_grpc::ACCESS, stop).await.context("OTLP/gRPC server")
        }));
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

/// Logs the address a listener is bound to, by the listener's name: with port 0 in the
/// configuration (`--query-addr 127.0.0.1:0`), this line is where the port is told.
fn listening(name: &'static str, listener: &TcpListener) {
    tracing::info!(listener = name, addr = %crate::roles::local(listener), "listening");
}

/// The gRPC receiver's serving: tonic decodes (and decompresses) a message, up to
/// max-body-bytes, before the handler can count it against the in-flight budget. The
/// layer's slot is held meanwhile, so at most max-inflight-bytes / max-body-bytes
/// exports at once keeps that memory within the budget too.
pub fn grpc_serving(serving: &ServingConfig, limits: &tracekeeper_ingest::IngestLimits) -> ServingConfig {
    let mut grpc = serving.clone();
    let fits = (limits.max_inflight_bytes / limits.max_body_bytes.max(1)).max(1);
    grpc.limits.max_concurrent_requests = grpc.limits.max_concurrent_requests.min(fits);
    grpc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_exports_at_once_fit_the_in_flight_budget() {
        let limits = tracekeeper_ingest::IngestLimits {
            max_body_bytes: 16 << 20,
            max_inflight_bytes: 256 << 20,
            ..Default::default()
        };
        assert_eq!(grpc_serving(&ServingConfig::default(), &limits).limits.max_concurrent_requests, 16);
        let mut few = ServingConfig::default();
        few.limits.max_concurrent_requests = 4;
        assert_eq!(grpc_serving(&few, &limits).limits.max_concurrent_requests, 4, "a lower setting stands");
        let tiny =
            tracekeeper_ingest::IngestLimits { max_body_bytes: 100, max_inflight_bytes: 100, ..Default::default() };
        assert_eq!(grpc_serving(&ServingConfig::default(), &tiny).limits.max_concurrent_requests, 1);
    }
}
