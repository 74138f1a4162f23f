//! Serving HTTP connections with hyper directly, for what `axum::serve` leaves open: a
//! client must send its request head within [`Limits::header_read_timeout`] (so a
//! slowloris client that trickles headers is cut off), and a request head may not
//! exceed [`MAX_HEAD_BYTES`]. Shutdown is graceful: the listener closes, and requests in
//! flight finish.

use std::future::Future;

use axum::serve::Listener;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

use crate::layer::Limits;

/// The most bytes of request line and headers buffered for one connection.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

pub(crate) async fn serve<L>(mut listener: L, app: Router, limits: &Limits, shutdown: impl Future<Output = ()>)
where
    L: Listener,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            (io, _) = listener.accept() => {
                let service = TowerToHyperService::new(app.clone());
                let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service).into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        // Closed early, timed out reading headers, or not HTTP at all.
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
}
