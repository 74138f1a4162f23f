//! `tracekeeper check`: scans a store (embedded or CQL) and reports the invariants that
//! must hold, with a progress bar on a terminal; exits non-zero on any violation.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tracekeeper_model::clock::{Clock, SystemClock};
use tracekeeper_retention::RetentionPolicies;
use tracekeeper_storage::embedded::EmbeddedConfig;
use tracekeeper_storage::{CheckReport, Checkable, Horizons, Lifecycle};

#[cfg(feature = "distributed")]
use tracekeeper_storage::cql::CqlConfig;

/// Which store to check.
#[derive(Debug, Clone)]
pub enum Target {
    /// A stopped all-in-one's data directory.
    Embedded(PathBuf),
    #[cfg(feature = "distributed")]
    Cql(Box<CqlConfig>),
}

/// What `check` runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub target: Target,
    /// The retention the data is held to.
    pub policies: RetentionPolicies,
    /// Slack past retention before data still stored counts as a violation.
    pub grace: Duration,
    /// Print the report as JSON.
    pub json: bool,
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let policies = config.policies;
    #[cfg_attr(not(feature = "distributed"), allow(unused_mut))]
    let mut replication = None;
    let (store, lifecycle, slack): (Arc<dyn Checkable>, Arc<dyn Lifecycle>, Duration) = match &config.target {
        Target::Embedded(dir) => {
            let store = Arc::new(super::compact::open_stopped(EmbeddedConfig::new(dir))?);
            let bucket = Duration::from_nanos(store.bucket_width_ns());
            (store.clone(), store, bucket)
        }
        #[cfg(feature = "distributed")]
        Target::Cql(cql) => {
            let store = crate::roles::connect_cql(cql).await?;
            let lifecycle =
                tracekeeper_storage::cql::lifecycle::CqlLifecycle::new(store.shared_session(), &cql.keyspace).await?;
            let session = store.shared_session();
            replication =
                Some(tracekeeper_storage::cql::replication::Replication::read(&session, &cql.keyspace).await?);
            // A shortened policy's rows are purged an hour bucket at a time.
            (Arc::new(store), Arc::new(lifecycle), Duration::from_secs(3600))
        }
    };
    let now = SystemClock.now_ns();
    let watermarks = lifecycle.watermarks().await.context("reading the retention watermarks")?;
    let visible_from = |tenant: &str| policies.horizon_ns(tenant, now, watermarks.get(tenant).copied().unwrap_or(0));
    let grace = (config.grace + slack).as_nanos() as u64;
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
    print(&report, &policies, replication.as_ref(), config.json)?;
    match report.violations() {
        0 => Ok(()),
        n => bail!("{n} invariant violations"),
    }
}

#[cfg(feature = "distributed")]
type Replication = tracekeeper_storage::cql::replication::Replication;
#[cfg(not(feature = "distributed"))]
type Replication = std::convert::Infallible;

/// Replication warnings are printed, not counted as violations: the data is whole.
fn print(
    report: &CheckReport,
    policies: &RetentionPolicies,
    replication: Option<&Replication>,
    json: bool,
) -> anyhow::Result<()> {
    #[cfg(feature = "distributed")]
    let (described, warnings) = replication.map_or((None, Vec::new()), |r| (Some(r.describe()), r.warnings()));
    #[cfg(not(feature = "distributed"))]
    let (described, warnings): (Option<String>, Vec<String>) = (replication.map(|r| match *r {}), Vec::new());
    if json {
        let mut body = serde_json::to_value(report)?;
        if let Some(described) = described {
            body["replication"] = serde_json::json!(described);
            body["warnings"] = serde_json::json!(warnings);
        }
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    if let Some(described) = described {
        println!("replication: {described}");
    }
    for warning in &warnings {
        println!("warning: {warning}");
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
