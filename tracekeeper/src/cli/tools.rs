//! The flags of the tools every build has: `check` and `compact`.

use std::path::PathBuf;
use std::time::Duration;

#[cfg(feature = "distributed")]
use super::CqlSecurityArgs;
use super::{parse_duration, ConfigArgs};

#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Embedded store to check. Stop all-in-one first: it locks its directory.
    #[cfg_attr(feature = "distributed", arg(long, conflicts_with = "cql_nodes"))]
    #[cfg_attr(not(feature = "distributed"), arg(long))]
    pub data_dir: Option<PathBuf>,
    /// CQL store to check: contact points, comma-separated host:port.
    #[cfg(feature = "distributed")]
    #[arg(long, value_delimiter = ',')]
    pub cql_nodes: Vec<String>,
    /// Keyspace of the CQL store.
    #[cfg(feature = "distributed")]
    #[arg(long, default_value = "tracekeeper")]
    pub keyspace: String,
    /// Default retention the data is held to, as a Go duration.
    #[arg(long, default_value = "168h")]
    pub retention: String,
    /// Per-tenant retention, `tenant=duration`, comma-separated or repeated.
    #[arg(long, value_delimiter = ',')]
    pub tenant_retention: Vec<String>,
    /// Slack past retention before data that still exists counts as a violation
    /// (the worker runs periodically; one bucket width is added: the embedded store's, or
    /// an hour on CQL).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub grace: Duration,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[cfg(feature = "distributed")]
    #[command(flatten)]
    pub cql_security: CqlSecurityArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct CompactArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Data directory of the embedded store. Stop all-in-one first: it locks its
    /// directory, and this command says so if it is still running.
    #[arg(long, env = "TRACEKEEPER_DATA_DIR")]
    pub data_dir: PathBuf,
}
