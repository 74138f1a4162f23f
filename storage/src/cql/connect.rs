//! How the CQL roles reach their cluster: contact points, credentials, TLS and the
//! local datacenter, as a production Cassandra or ScyllaDB cluster requires them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::TranslationError;
use scylla::policies::address_translator::{AddressTranslator, UntranslatedPeer};
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::policies::speculative_execution::SimpleSpeculativeExecutionPolicy;
use scylla::statement::{Consistency, SerialConsistency};
use tracekeeper_model::pem;

use super::errors::unavailable;
use crate::api::StorageError;

/// How long an idempotent request waits for its replica before it is also sent to
/// another: several times a healthy read's p99 on a busy node (about 200 ms at 10M
/// spans, `docs/benchmarks.md`), so that speculation is rare until a node hangs.
const SPECULATE_AFTER: std::time::Duration = std::time::Duration::from_millis(1000);

const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);
const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(4);

/// Where the cluster is and how to log in; plaintext and anonymous by default.
#[derive(Debug, Clone, Default)]
pub struct CqlConnection {
    /// Contact points, `host:port`.
    pub nodes: Vec<String>,
    /// Login for clusters with `PasswordAuthenticator`; both or neither.
    pub username: Option<String>,
    pub password: Option<String>,
    /// PEM CA bundle that signed the nodes' certificates: TLS to every node when set.
    /// Nodes are verified by IP address, as the driver connects to them by address.
    pub tls_ca: Option<PathBuf>,
    /// PEM client certificate chain and key, for clusters that require them.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Requests go to nodes of this datacenter (token-aware), never to another one.
    pub local_datacenter: Option<String>,
    /// Consistency of every request [driver default: LOCAL_QUORUM].
    pub consistency: Option<Consistency>,
    /// Consistency of the Paxos rounds of lightweight transactions (the ownership
    /// ledger, the retention lease) [driver default: LOCAL_SERIAL].
    pub serial_consistency: Option<SerialConsistency>,
    /// Node address as the cluster advertises it → the address to connect to instead
    /// (NAT, port forwarding, a proxy); nodes not listed are reached as advertised.
    pub address_map: BTreeMap<SocketAddr, SocketAddr>,
}

/// The nodes' advertised addresses, translated by [`CqlConnection::address_map`].
#[derive(Debug)]
struct AddressMap(BTreeMap<SocketAddr, SocketAddr>);

#[async_trait::async_trait]
impl AddressTranslator for AddressMap {
    async fn translate_address(&self, peer: &UntranslatedPeer) -> Result<SocketAddr, TranslationError> {
        let advertised = peer.untranslated_address();
        Ok(self.0.get(&advertised).copied().unwrap_or(advertised))
    }
}

impl CqlConnection {
    /// Contact points only: plaintext, anonymous.
    pub fn plain(nodes: &[String]) -> Self {
        Self { nodes: nodes.to_vec(), ..Self::default() }
    }

    pub async fn session(&self) -> Result<Session, StorageError> {
        // A node that stops answering with its connections open (a paused JVM) is found
        // by the keepalives going unanswered: its connections are closed within
        // KEEPALIVE_TIMEOUT and requests in flight on them retried elsewhere (the
        // driver's 30 s defaults left queries hanging on such a node).
        let mut builder = SessionBuilder::new()
            .known_nodes(&self.nodes)
            .keepalive_interval(KEEPALIVE_INTERVAL)
            .keepalive_timeout(KEEPALIVE_TIMEOUT);
        match (&self.username, &self.password) {
            (Some(user), Some(password)) => builder = builder.user(user, password),
            (None, None) => {}
            _ => {
                return Err(StorageError::Refused("a CQL username needs a password, and a password a username".into()))
            }
        }
        if !self.address_map.is_empty() {
            builder = builder.address_translator(Arc::new(AddressMap(self.address_map.clone())));
        }
        if let Some(ca) = &self.tls_ca {
            builder = builder.tls_context(Some(self.rustls_config(ca)?));
        }
        let mut policy = DefaultPolicy::builder().token_aware(true);
        if let Some(dc) = &self.local_datacenter {
            policy = policy.prefer_datacenter(dc.clone()).permit_dc_failover(false);
        }
        // A replica that hangs rather than fails (a paused JVM, a stalled disk) keeps its
        // connections open, so nothing marks it down: an idempotent request (reads, and
        // writes at a fixed timestamp) not answered within SPECULATE_AFTER is sent to
        // the next replica as well, and the first answer wins.
        let speculate = SimpleSpeculativeExecutionPolicy { max_retry_count: 1, retry_interval: SPECULATE_AFTER };
        let mut profile = ExecutionProfile::builder()
            .load_balancing_policy(policy.build())
            .speculative_execution_policy(Some(Arc::new(speculate)));
        if let Some(consistency) = self.consistency {
            profile = profile.consistency(consistency);
        }
        if let Some(serial) = self.serial_consistency {
            profile = profile.serial_consistency(Some(serial));
        }
        builder = builder.default_execution_profile_handle(profile.build().into_handle());
        builder.build().await.map_err(unavailable)
    }

    fn rustls_config(&self, ca: &PathBuf) -> Result<Arc<rustls::ClientConfig>, StorageError> {
        let unreadable = |path: &PathBuf, e: &dyn std::fmt::Display| {
            StorageError::Refused(format!("CQL TLS file {}: {e}", path.display()))
        };
        let tls_file = |e: pem::PemError| StorageError::Refused(format!("CQL TLS file {e}"));
        let roots = pem::root_store(ca).map_err(tls_file)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| unreadable(ca, &e))?
            .with_root_certificates(roots);
        let config = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                let chain = pem::certificates(cert).map_err(tls_file)?;
                let key = pem::private_key(key).map_err(tls_file)?;
                builder.with_client_auth_cert(chain, key).map_err(|e| unreadable(cert, &e))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(StorageError::Refused(
                    "a CQL client certificate needs its key, and a key its certificate".into(),
                ))
            }
        };
        Ok(Arc::new(config))
    }
}
