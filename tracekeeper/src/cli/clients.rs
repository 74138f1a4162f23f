//! The Kafka and CQL client settings the distributed roles share: where the cluster is,
//! how to log in, and TLS. Each becomes the one client configuration its library takes.

use std::path::PathBuf;

use anyhow::{bail, Context};
use tracekeeper_storage::cql::CqlConnection;

/// How a role's Kafka clients reach a secured cluster.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaSecurityArgs {
    /// How to talk to the brokers: plaintext, ssl, sasl_plaintext or sasl_ssl.
    #[arg(long, env = "TRACEKEEPER_KAFKA_SECURITY_PROTOCOL", default_value = "plaintext",
          value_parser = ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"])]
    pub kafka_security_protocol: String,
    /// SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 [default: none].
    #[arg(long, env = "TRACEKEEPER_KAFKA_SASL_MECHANISM", value_parser = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])]
    pub kafka_sasl_mechanism: Option<String>,
    /// SASL username [default: none].
    #[arg(long, env = "TRACEKEEPER_KAFKA_SASL_USERNAME")]
    pub kafka_sasl_username: Option<String>,
    /// SASL password; prefer its variable or --kafka-sasl-password-file to the flag,
    /// which other users of the machine can see [default: none].
    #[arg(long, env = "TRACEKEEPER_KAFKA_SASL_PASSWORD", hide_env_values = true)]
    pub kafka_sasl_password: Option<String>,
    /// File whose first line is the SASL password [default: none].
    #[arg(long, env = "TRACEKEEPER_KAFKA_SASL_PASSWORD_FILE", conflicts_with = "kafka_sasl_password")]
    pub kafka_sasl_password_file: Option<PathBuf>,
    /// PEM CA bundle that signed the brokers' certificates [default: the system's].
    #[arg(long, env = "TRACEKEEPER_KAFKA_TLS_CA")]
    pub kafka_tls_ca: Option<PathBuf>,
    /// PEM client certificate, for brokers that require one (needs --kafka-tls-key)
    /// [default: none].
    #[arg(long, env = "TRACEKEEPER_KAFKA_TLS_CERT", requires = "kafka_tls_key")]
    pub kafka_tls_cert: Option<PathBuf>,
    /// PEM private key of --kafka-tls-cert [default: none].
    #[arg(long, env = "TRACEKEEPER_KAFKA_TLS_KEY", requires = "kafka_tls_cert")]
    pub kafka_tls_key: Option<PathBuf>,
    /// Any librdkafka property as key=value, repeatable, e.g.
    /// --kafka-option socket.keepalive.enable=true; set after the flags above
    /// [default: none].
    #[arg(long = "kafka-option", env = "TRACEKEEPER_KAFKA_OPTIONS", value_delimiter = ';')]
    pub kafka_options: Vec<String>,
}

impl KafkaSecurityArgs {
    /// The librdkafka properties these flags stand for.
    pub fn options(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut options = vec![("security.protocol".to_string(), self.kafka_security_protocol.clone())];
        let sasl = self.kafka_security_protocol.starts_with("sasl");
        let password = password(&self.kafka_sasl_password, &self.kafka_sasl_password_file)?;
        match (&self.kafka_sasl_mechanism, &self.kafka_sasl_username, password) {
            (Some(mechanism), Some(user), Some(password)) if sasl => {
                options.push(("sasl.mechanism".into(), mechanism.clone()));
                options.push(("sasl.username".into(), user.clone()));
                options.push(("sasl.password".into(), password));
            }
            (None, None, None) if !sasl => {}
            _ if sasl => bail!(
                "kafka-security-protocol {} needs kafka-sasl-mechanism, kafka-sasl-username and a password",
                self.kafka_security_protocol
            ),
            _ => bail!("SASL settings need kafka-security-protocol sasl_plaintext or sasl_ssl"),
        }
        for (flag, key, path) in [
            ("kafka-tls-ca", "ssl.ca.location", &self.kafka_tls_ca),
            ("kafka-tls-cert", "ssl.certificate.location", &self.kafka_tls_cert),
            ("kafka-tls-key", "ssl.key.location", &self.kafka_tls_key),
        ] {
            if let Some(path) = path {
                anyhow::ensure!(path.is_file(), "{flag}: {} is not a readable file", path.display());
                options.push((key.into(), path.display().to_string()));
            }
        }
        for option in &self.kafka_options {
            let (key, value) = option.split_once('=').with_context(|| {
                format!("kafka-option {option:?}: expected key=value, e.g. socket.keepalive.enable=true")
            })?;
            options.push((key.trim().to_string(), value.trim().to_string()));
        }
        Ok(options)
    }
}

/// How a role's CQL session reaches a secured cluster.
#[derive(Debug, Clone, clap::Args)]
pub struct CqlSecurityArgs {
    /// CQL username, for clusters with PasswordAuthenticator [default: none].
    #[arg(long, env = "TRACEKEEPER_CQL_USERNAME")]
    pub cql_username: Option<String>,
    /// CQL password; prefer its variable or --cql-password-file to the flag [default:
    /// none].
    #[arg(long, env = "TRACEKEEPER_CQL_PASSWORD", hide_env_values = true)]
    pub cql_password: Option<String>,
    /// File whose first line is the CQL password [default: none].
    #[arg(long, env = "TRACEKEEPER_CQL_PASSWORD_FILE", conflicts_with = "cql_password")]
    pub cql_password_file: Option<PathBuf>,
    /// PEM CA bundle that signed the nodes' certificates: TLS to every node
    /// [default: plaintext].
    #[arg(long, env = "TRACEKEEPER_CQL_TLS_CA")]
    pub cql_tls_ca: Option<PathBuf>,
    /// PEM client certificate, for clusters that require one (needs --cql-tls-key)
    /// [default: none].
    #[arg(long, env = "TRACEKEEPER_CQL_TLS_CERT", requires = "cql_tls_key")]
    pub cql_tls_cert: Option<PathBuf>,
    /// PEM private key of --cql-tls-cert [default: none].
    #[arg(long, env = "TRACEKEEPER_CQL_TLS_KEY", requires = "cql_tls_cert")]
    pub cql_tls_key: Option<PathBuf>,
    /// Send requests only to nodes of this datacenter (token-aware) [default: any].
    #[arg(long, env = "TRACEKEEPER_CQL_LOCAL_DATACENTER")]
    pub cql_local_datacenter: Option<String>,
    /// Consistency of reads and writes: one, local_one, quorum, local_quorum, each_quorum
    /// or all; a write is acknowledged once that many replicas have it.
    #[arg(long, env = "TRACEKEEPER_CQL_CONSISTENCY", default_value = "local_quorum", value_parser = parse_consistency)]
    pub cql_consistency: scylla::statement::Consistency,
    /// Consistency of the Paxos rounds of the ownership ledger and the retention lease:
    /// local_serial (a quorum of this datacenter's replicas) or serial (of all).
    #[arg(long, env = "TRACEKEEPER_CQL_SERIAL_CONSISTENCY", default_value = "local_serial", value_parser = parse_serial)]
    pub cql_serial_consistency: scylla::statement::SerialConsistency,
    /// Reach a node at another address than the one the cluster advertises for it, as
    /// ADVERTISED=REACHABLE (host:port each), comma-separated: for clusters behind NAT,
    /// port forwarding or a proxy. Nodes not listed are reached as advertised
    /// [default: none].
    #[arg(long, env = "TRACEKEEPER_CQL_ADDRESS_MAP", value_delimiter = ',', value_parser = parse_address_pair)]
    pub cql_address_map: Vec<(std::net::SocketAddr, std::net::SocketAddr)>,
}

fn parse_address_pair(text: &str) -> Result<(std::net::SocketAddr, std::net::SocketAddr), String> {
    let (advertised, reachable) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected ADVERTISED=REACHABLE, e.g. 10.0.0.5:9042=127.0.0.1:19042"))?;
    let address = |part: &str| {
        part.trim().parse::<std::net::SocketAddr>().map_err(|e| format!("{part:?} in {text:?}: {e}; expected ip:port"))
    };
    Ok((address(advertised)?, address(reachable)?))
}

fn parse_serial(text: &str) -> Result<scylla::statement::SerialConsistency, String> {
    match text.to_ascii_lowercase().as_str() {
        "serial" => Ok(scylla::statement::SerialConsistency::Serial),
        "local_serial" => Ok(scylla::statement::SerialConsistency::LocalSerial),
        other => Err(format!("unknown serial consistency {other:?}: use local_serial or serial")),
    }
}

fn parse_consistency(text: &str) -> Result<scylla::statement::Consistency, String> {
    use scylla::statement::Consistency::*;
    Ok(match text.to_ascii_lowercase().as_str() {
        "one" => One,
        "local_one" => LocalOne,
        "quorum" => Quorum,
        "local_quorum" => LocalQuorum,
        "each_quorum" => EachQuorum,
        "all" => All,
        other => {
            return Err(format!(
                "unknown consistency {other:?}: use one, local_one, quorum, local_quorum, each_quorum or all"
            ))
        }
    })
}

impl CqlSecurityArgs {
    /// The connection to `nodes` these flags stand for.
    pub fn connection(&self, nodes: &[String]) -> anyhow::Result<CqlConnection> {
        let password = password(&self.cql_password, &self.cql_password_file)?;
        if self.cql_username.is_some() != password.is_some() {
            bail!("cql-username and a CQL password go together");
        }
        Ok(CqlConnection {
            nodes: nodes.to_vec(),
            username: self.cql_username.clone(),
            password,
            tls_ca: self.cql_tls_ca.clone(),
            tls_cert: self.cql_tls_cert.clone(),
            tls_key: self.cql_tls_key.clone(),
            local_datacenter: self.cql_local_datacenter.clone(),
            consistency: Some(self.cql_consistency),
            serial_consistency: Some(self.cql_serial_consistency),
            address_map: self.cql_address_map.iter().copied().collect(),
        })
    }
}

/// A password given directly (flag or variable), else the first line of its file.
fn password(given: &Option<String>, file: &Option<PathBuf>) -> anyhow::Result<Option<String>> {
    match (given, file) {
        (Some(password), _) => Ok(Some(password.clone())),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            Ok(Some(text.lines().next().unwrap_or("").to_string()))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_address_pair;

    #[test]
    fn an_address_map_entry_is_two_socket_addresses() {
        let (advertised, reachable) = parse_address_pair("10.0.0.5:9042=127.0.0.1:19042").unwrap();
        assert_eq!(
            (advertised.to_string().as_str(), reachable.to_string().as_str()),
            ("10.0.0.5:9042", "127.0.0.1:19042")
        );
        let missing = parse_address_pair("10.0.0.5:9042").unwrap_err();
        assert!(missing.contains("expected ADVERTISED=REACHABLE"), "{missing}");
        let no_port = parse_address_pair("10.0.0.5=127.0.0.1:19042").unwrap_err();
        assert!(no_port.contains("\"10.0.0.5\"") && no_port.contains("expected ip:port"), "{no_port}");
    }
}
