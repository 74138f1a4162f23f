//! One serving layer for every listener of every role (all-in-one, collector, indexer,
//! query, retention), HTTP and gRPC alike:
//!
//! 1. TLS (rustls) when configured, with optional client certificates, reloaded when
//!    the files change ([`tls`]);
//! 2. authentication and the tenant, from a tokens file ([`auth`]), as each route
//!    declares it needs ([`access`]);
//! 3. a request timeout;
//! 4. a concurrency limit per listener;
//! 5. request metrics per route: a counter by status and a duration histogram;
//! 6. a request span in the logs;
//! 7. a panic in a handler answered as a 500 for that request only ([`layer`]).
//!
//! Refusals (credentials, overload, timeout, panic) are written in the listener's
//! protocol, in each route's error shape ([`shapes`]).

pub mod access;
pub mod auth;
mod http_server;
pub mod layer;
pub mod reloading;
pub mod shapes;
pub mod telemetry;
pub mod tls;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

pub use access::{requested_tenant, shape_of, Access, Declared, Grant, Group, RouteEntry, Routes};
pub use auth::{Authenticator, Scope};
pub use layer::{Limits, Protocol, ServingLayer, DURATION_BUCKETS, REQUEST_DURATION};
pub use shapes::Shape;
pub use tls::{TlsError, TlsFiles, TlsSource};

/// How every listener of a process serves.
#[derive(Debug, Clone)]
pub struct ServingConfig {
    /// TLS material; plaintext when `None`.
    pub tls: Option<TlsFiles>,
    pub limits: Limits,
    /// Who may do what; every request is let through when `None` (`--auth=none`).
    pub auth: Option<Arc<Authenticator>>,
}

/// Default per-request deadline.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Default most requests in flight on one listener.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 4096;
/// How long a client has to send its request head: long enough for any real client on
/// a slow link, short enough that a slowloris client cannot hold connections open.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for ServingConfig {
    fn default() -> Self {
        Self {
            tls: None,
            auth: None,
            limits: Limits {
                request_timeout: DEFAULT_REQUEST_TIMEOUT,
                max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
                header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{listener} listener TLS: {source}")]
    Tls { listener: &'static str, source: TlsError },
    #[error("{listener} listener: {source}")]
    Io { listener: &'static str, source: std::io::Error },
    #[error("{listener} gRPC server: {source}")]
    Grpc { listener: &'static str, source: tonic::transport::Error },
}

/// A bound socket with its TLS (if any) already loaded, so that bad certificate files
/// stop the process at start-up rather than in a background task.
pub struct Prepared {
    name: &'static str,
    socket: Socket,
    limits: Limits,
    auth: Option<Arc<Authenticator>>,
}

enum Socket {
    Plain(TcpListener),
    Tls(tls::TlsListener),
}

impl ServingConfig {
    fn prepare(&self, listener: TcpListener, name: &'static str, alpn: &[&[u8]]) -> Result<Prepared, ServeError> {
        let socket = match &self.tls {
            None => Socket::Plain(listener),
            Some(files) => {
                let source = TlsSource::load(files.clone(), alpn.iter().map(|p| p.to_vec()).collect())
                    .map_err(|source| ServeError::Tls { listener: name, source })?;
                Socket::Tls(
                    tls::TlsListener::new(listener, source, name)
                        .map_err(|source| ServeError::Io { listener: name, source })?,
                )
            }
        };
        Ok(Prepared { name, socket, limits: self.limits.clone(), auth: self.auth.clone() })
    }

    /// An HTTP/1.1 listener (JSON, protobuf and the web UI).
    pub fn http(&self, listener: TcpListener, name: &'static str) -> Result<Prepared, ServeError> {
        self.prepare(listener, name, &[b"http/1.1"])
    }

    /// A gRPC listener (HTTP/2).
    pub fn grpc(&self, listener: TcpListener, name: &'static str) -> Result<Prepared, ServeError> {
        self.prepare(listener, name, &[b"h2"])
    }
}

impl Prepared {
    /// Serves `routes` behind the serving layer until `shutdown`, then lets requests
    /// in flight finish. Only declared routes are served ([`Routes`]).
    pub async fn serve_http(
        self,
        routes: Routes,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let limits = self.limits.clone();
        let app = routes.into_router().layer(ServingLayer::new(self.name, Protocol::Http, self.limits, self.auth));
        match self.socket {
            Socket::Plain(tcp) => {
                use axum::serve::ListenerExt;
                // A streamed body goes out in many writes: without NODELAY, Nagle holds
                // each small one until the client's delayed ACK (40 ms) comes back.
                let tcp = tcp.tap_io(|stream| {
                    let _ = stream.set_nodelay(true);
                });
                http_server::serve(tcp, app, &limits, shutdown).await
            }
            Socket::Tls(tls) => http_server::serve(tls, app, &limits, shutdown).await,
        }
        Ok(())
    }

    /// Serves a tonic service behind the same layer, every method needing `declared`.
    pub async fn serve_grpc<S>(
        self,
        service: S,
        declared: Declared,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError>
    where
        S: tower::Service<
                axum::http::Request<tonic::body::Body>,
                Response = axum::http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + tonic::server::NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.serve_grpc_routes(tonic::service::Routes::new(service), declared, shutdown).await
    }

    /// [`Self::serve_grpc`] for several tonic services on one listener.
    pub async fn serve_grpc_routes(
        self,
        routes: tonic::service::Routes,
        declared: Declared,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let name = self.name;
        let layers = tower::ServiceBuilder::new()
            .layer(ServingLayer::new(name, Protocol::Grpc, self.limits, self.auth))
            .layer(declared);
        let server = tonic::transport::Server::builder().layer(layers).add_routes(routes);
        let result = match self.socket {
            Socket::Plain(tcp) => server.serve_with_incoming_shutdown(TcpListenerStream::new(tcp), shutdown).await,
            Socket::Tls(tls) => server.serve_with_incoming_shutdown(tls.into_stream(), shutdown).await,
        };
        result.map_err(|source| ServeError::Grpc { listener: name, source })
    }
}

#[cfg(test)]
mod tests;
