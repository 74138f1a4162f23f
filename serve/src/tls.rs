//! TLS on every listener (rustls, ring): the certificate, key and optional client CA
//! (mTLS) are read from PEM files and re-read when any of them changes, without a
//! restart. Handshakes run concurrently with a deadline, so a client that connects and
//! says nothing cannot stall the accept loop.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tracekeeper_model::pem;

use crate::reloading::Reloading;
pub use crate::reloading::RELOAD_CHECK;

/// How long a client has to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
pub use crate::telemetry::HANDSHAKE_FAILURES;

/// Where a listener's TLS material lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA bundle; when set, clients must present a certificate it signed (mTLS).
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {0}")]
    Pem(#[from] tracekeeper_model::pem::PemError),
    #[error("client CA {path}: {reason}")]
    ClientCa { path: PathBuf, reason: String },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The current TLS configuration of a listener, replaced whole when its files change.
#[derive(Clone)]
pub struct TlsSource {
    config: Arc<Reloading<ServerConfig, TlsError>>,
}

fn build(files: &TlsFiles, alpn: &[Vec<u8>]) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = pem::certificates(&files.cert)?;
    let key = pem::private_key(&files.key)?;
    let builder = ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let roots = pem::root_store(path)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::ClientCa { path: path.clone(), reason: e.to_string() })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key)?;
    config.alpn_protocols = alpn.to_vec();
    Ok(config)
}

impl TlsSource {
    /// Reads the files now; errors name the file and what is wrong with it.
    pub fn load(files: TlsFiles, alpn: Vec<Vec<u8>>) -> Result<Self, TlsError> {
        let paths = [Some(&files.cert), Some(&files.key), files.client_ca.as_ref()].into_iter().flatten().cloned();
        let config = Reloading::load(paths.collect(), move || build(&files, &alpn))?;
        Ok(Self { config: Arc::new(config) })
    }

    pub fn current(&self) -> Arc<ServerConfig> {
        self.config.current()
    }

    /// Re-reads the files if any changed. A bad new set is refused (and logged) and
    /// the listener keeps serving with the last good one.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        self.config.reload_if_changed()
    }

    /// Checks the files every [`RELOAD_CHECK`] for as long as the source lives.
    pub fn watch(&self) -> JoinHandle<()> {
        self.config.watch("TLS certificate")
    }
}

/// A TLS connection, usable by axum and by tonic.
pub struct TlsConnection {
    stream: TlsStream<TcpStream>,
    peer: SocketAddr,
}

impl AsyncRead for TlsConnection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for TlsConnection {
    type ConnectInfo = SocketAddr;
    fn connect_info(&self) -> SocketAddr {
        self.peer
    }
}

/// Accepts TCP connections and completes their TLS handshakes in the background;
/// finished connections come out of [`TlsListener::next`] (or axum's `accept`).
pub struct TlsListener {
    ready: mpsc::Receiver<TlsConnection>,
    local: SocketAddr,
    accepting: JoinHandle<()>,
    watching: JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
        self.watching.abort();
    }
}

impl TlsListener {
    pub fn new(tcp: TcpListener, source: TlsSource, listener: &'static str) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let watching = source.watch();
        let accepting = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(listener, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // As for plaintext HTTP (see `serve_http`): no Nagle delay on streamed bodies.
                let _ = stream.set_nodelay(true);
                let acceptor = TlsAcceptor::from(source.current());
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send(TlsConnection { stream, peer }).await;
                        }
                        Ok(Err(e)) => {
                            metrics::counter!(HANDSHAKE_FAILURES, "listener" => listener).increment(1);
                            tracing::debug!(listener, %peer, error = %e, "TLS handshake failed");
                        }
                        Err(_) => {
                            metrics::counter!(HANDSHAKE_FAILURES, "listener" => listener).increment(1);
                            tracing::debug!(listener, %peer, "TLS handshake timed out");
                        }
                    }
                });
            }
        });
        Ok(Self { ready, local, accepting, watching })
    }

    /// The next connection whose handshake succeeded.
    pub async fn next(&mut self) -> Option<TlsConnection> {
        self.ready.recv().await
    }

    /// The connections as a stream, for tonic's `serve_with_incoming_shutdown`.
    pub fn into_stream(self) -> impl futures::Stream<Item = Result<TlsConnection, io::Error>> + Send {
        futures::stream::unfold(self, |mut listener| async move {
            listener.next().await.map(|connection| (Ok(connection), listener))
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsConnection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.next().await {
            Some(connection) => {
                let peer = connection.peer;
                (connection, peer)
            }
            // The accept loop never ends while the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
