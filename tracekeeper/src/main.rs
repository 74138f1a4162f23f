//! The `tracekeeper` binary: parses the command line and runs the chosen role. All
//! behaviour lives in the library crates; this file only wires them together.

mod all_in_one;
mod check;
mod cli;
mod clients;
mod collector;
mod compact;
mod config;
mod dlq;
mod indexer_service;
mod layering;
mod listeners;
mod ops;
mod query_service;
mod retention_api;
mod retention_service;
mod serve;
mod status;
mod telemetry;

use tracing_subscriber::EnvFilter;

// mimalloc rather than glibc's malloc: under sustained ingest a fifth of the CPU went
// to glibc's allocation and consolidation, and memory freed by flushed memtables stayed
// in its arenas, so RSS only grew. Built without transparent huge pages (`no_thp`):
// mimalloc otherwise asks for them on its segments, and half of the resident memory
// of a long ingest (840 MiB of 1.75 GiB at 62M spans stored) was 2 MiB pages held
// whole for partly used segments.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use crate::cli::{Command, LogFormat};
use crate::telemetry::Role;

fn init_logging(format: LogFormat) {
    // fjall reports every recovery and compaction step at info; only its warnings are news.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,fjall=warn,lsm_tree=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let layered = layering::parse(std::env::args_os().collect()).unwrap_or_else(|e| e.exit());
    let cli = layered.cli;
    init_logging(cli.log_format);
    if cli.command.is_service() {
        let settings: Vec<String> =
            layered.effective.iter().map(|(key, value, from)| format!("{key}={value} ({from})")).collect();
        tracing::info!(settings = %settings.join(" "), "effective configuration");
    }
    match cli.command {
        Command::AllInOne(args) => {
            let config = config::AllInOneConfig::resolve(*args)?;
            let listeners = all_in_one::Listeners::bind(&config).await?;
            let metrics = ops::install_metrics(Role::AllInOne)?;
            all_in_one::run(config, listeners, metrics, all_in_one::system_clock(), all_in_one::shutdown_signal()).await
        }
        Command::Collector(args) => {
            let config = config::CollectorConfig::resolve(args)?;
            collector::run(config, ops::install_metrics(Role::Collector)?, all_in_one::shutdown_signal()).await
        }
        Command::Indexer(args) => {
            indexer_service::run(*args, ops::install_metrics(Role::Indexer)?, all_in_one::shutdown_signal()).await
        }
        Command::Query(args) => {
            query_service::run(args, ops::install_metrics(Role::Query)?, all_in_one::shutdown_signal()).await
        }
        Command::Check(args) => check::run(args).await,
        Command::Compact(args) => compact::run(args),
        Command::Retention(args) => {
            retention_service::run(args, ops::install_metrics(Role::Retention)?, all_in_one::shutdown_signal()).await
        }
        Command::Schema(cli::SchemaCommand::Apply(args)) => {
            let session = args.cql_security.connection(&args.cql_nodes)?.session().await?;
            let started = std::time::Instant::now();
            let count = tracekeeper_storage::cql::schema::apply(&session, &args.keyspace, &args.replication).await?;
            tracing::info!(keyspace = %args.keyspace, statements = count, elapsed = ?started.elapsed(), "schema applied");
            Ok(())
        }
        Command::Auth(command) => auth_command(command),
        Command::Dlq(command) => dlq::run(command).await,
    }
}

fn auth_command(command: cli::AuthCommand) -> anyhow::Result<()> {
    use tracekeeper_serve::auth::sha256;
    match command {
        cli::AuthCommand::NewToken => {
            let mut raw = [0u8; 32];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw)
                .map_err(|_| anyhow::anyhow!("the system's random source failed"))?;
            let token = format!("tk_{}", hex::encode(raw));
            println!("token:  {token}");
            println!("sha256: {}", hex::encode(sha256(token.as_bytes())));
            eprintln!("Give the token to the client; put only the sha256 in the tokens file.");
        }
        cli::AuthCommand::Hash => {
            let mut secret = String::new();
            std::io::stdin().read_line(&mut secret)?;
            let secret = secret.trim_end_matches(['\n', '\r']);
            anyhow::ensure!(!secret.is_empty(), "no secret on standard input");
            println!("{}", hex::encode(sha256(secret.as_bytes())));
        }
    }
    Ok(())
}
