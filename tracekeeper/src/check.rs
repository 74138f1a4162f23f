//! `tracekeeper check`: scans a store (embedded or CQL) and reports the invariants that
//! must hold, with a progress bar on a terminal; exits non-zero on any violation.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tracekeeper_model::clock::{Clock, SystemClock};
use tracekeeper_retention::RetentionPolicies;
use tracekeeper_storage::embedded::{EmbeddedConfig, EmbeddedStore};
use tracekeeper_storage::{CheckReport, Checkable, Horizons, Lifecycle};

use crate::cli::parse_duration;
use crate::config;

#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: crate::cli::ConfigArgs,
    /// Embedded store to check. Stop all-in-one first: it locks its directory.
    #[arg(long, conflicts_with = "cql_nodes")]
    pub data_dir: Option<PathBuf>,
    /// CQL store to check: contact points, comma-separated host:port.
    #[arg(long, value_delimiter = ',')]
    pub cql_nodes: Vec<String>,
    /// Keyspace of the CQL store.
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
    #[command(flatten)]
    pub cql_security: crate::cli::CqlSecurityArgs,
}

pub async fn run(args: CheckArgs) -> anyhow::Result<()> {
    let policies = config::retention_with_overrides(&args.retention, &args.tenant_retention)?;
    let (store, lifecycle, slack): (Arc<dyn Checkable>, Arc<dyn Lifecycle>, Duration) = match &args.data_dir {
        Some(dir) => {
            let store = Arc::new(
                EmbeddedStore::open(EmbeddedConfig::new(dir))
                    .with_context(|| format!("opening {} (is all-in-one still running?)", dir.display()))?,
            );
            let bucket = Duration::from_nanos(store.bucket_width_ns());
            (store.clone(), store, bucket)
        }
        None if !args.cql_nodes.is_empty() => {
            let store = config::connect_cql(&args.cql_security, &args.cql_nodes, &args.keyspace).await?;
            let lifecycle =
                tracekeeper_storage::cql::lifecycle::CqlLifecycle::new(store.shared_session(), &args.keyspace).await?;
            // A shortened policy's rows are purged an hour bucket at a time.
            (Arc::new(store), Arc::new(lifecycle), Duration::from_secs(3600))
        }
        None => bail!("give the store to check: --data-dir DIR (embedded) or --cql-nodes HOST:PORT (CQL)"),
    };
    let now = SystemClock.now_ns();
    let watermarks = lifecycle.watermarks().await.context("reading the retention watermarks")?;
    let visible_from =
        |tenant: &str| policies.visible_from_ns(tenant, now).max(watermarks.get(tenant).copied().unwrap_or(0));
    let grace = (args.grace + slack).as_nanos() as u64;
    let gone_before = |tenant: &str| policies.visible_from_ns(tenant, now).saturating_sub(grace);
    let horizons = Horizons { visible_from: &visible_from, gone_before: &gone_before };

    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed} scanned {pos} rows ({per_sec})")
            .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let report = store.check(&horizons, &|rows| bar.set_position(rows)).await.context("scanning the store")?;
    bar.finish_and_clear();
    print(&report, &policies, args.json)?;
    match report.violations() {
        0 => Ok(()),
        n => bail!("{n} invariant violations"),
    }
}

fn print(report: &CheckReport, policies: &RetentionPolicies, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    for (tenant, counts) in &report.tenants {
        println!(
            "tenant {tenant:?} (retention {:?}): {} spans in {} traces, {} index entries",
            policies.retention_for(tenant),
            counts.spans,
            counts.traces,
            counts.postings
        );
    }
    println!("index entries pointing at traces that are not stored: {}", report.dangling_postings);
    println!("spans stored more than once: {}", report.duplicate_spans);
    println!("spans older than retention + grace still stored: {}", report.expired_present);
    Ok(())
}
