//! The `tracekeeper` binary: parses the command line, resolves it into the chosen
//! role's configuration and runs that role ([`tracekeeper::roles`]).

use tracing_subscriber::EnvFilter;

// mimalloc rather than glibc's malloc: under sustained ingest a fifth of the CPU went
// to glibc's allocation and consolidation, and memory freed by flushed memtables stayed
// in its arenas, so RSS only grew. Built without transparent huge pages (`no_thp`):
// mimalloc otherwise asks for them on its segments, and half of the resident memory
// of a long ingest (840 MiB of 1.75 GiB at 62M spans stored) was 2 MiB pages held
// whole for partly used segments.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use tracekeeper::cli::{self, Command, LogFormat};
use tracekeeper::config::{self, FileTables};
use tracekeeper::roles::{self, shutdown_signal};
use tracekeeper::tools;

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
    let layered = cli::parse(std::env::args_os().collect()).unwrap_or_else(|e| e.exit());
    init_logging(layered.cli.log_format);
    if layered.cli.command.is_service() {
        let settings: Vec<String> =
            layered.effective.iter().map(|(key, value, from)| format!("{key}={value} ({from})")).collect();
        tracing::info!(settings = %settings.join(" "), "effective configuration");
    }
    let file = FileTables::from_layered(&layered)?;
    match layered.cli.command {
        Command::AllInOne(args) => {
            let config = config::all_in_one(*args, &file)?;
            let listeners = roles::all_in_one::Listeners::bind(&config).await?;
            roles::all_in_one::run(config, listeners, shutdown_signal()).await
        }
        #[cfg(feature = "distributed")]
        Command::Collector(args) => {
            let config = config::collector(args, &file)?;
            let listeners = roles::collector::Listeners::bind(&config.receivers).await?;
            roles::collector::run(config, listeners, shutdown_signal()).await
        }
        #[cfg(feature = "distributed")]
        Command::Indexer(args) => {
            let config = config::indexer(*args, &file)?;
            let listeners = roles::indexer::Listeners::bind(config.admin_addr).await?;
            roles::indexer::run(config, listeners, shutdown_signal()).await
        }
        #[cfg(feature = "distributed")]
        Command::Query(args) => {
            let config = config::query(args)?;
            let listeners = roles::query::Listeners::bind(&config).await?;
            roles::query::run(config, listeners, shutdown_signal()).await
        }
        #[cfg(feature = "distributed")]
        Command::Retention(args) => {
            let config = config::retention(args)?;
            let listeners = roles::retention::Listeners::bind(config.admin_addr).await?;
            roles::retention::run(config, listeners, shutdown_signal()).await
        }
        Command::Check(args) => tools::check::run(config::check(args)?).await,
        Command::Compact(args) => tools::compact::run(&args.data_dir),
        #[cfg(feature = "distributed")]
        Command::Schema(cli::SchemaCommand::Apply(args)) => {
            let session = args.cql_security.connection(&args.cql_nodes)?.session().await?;
            let started = std::time::Instant::now();
            let count = tracekeeper_storage::cql::schema::apply(&session, &args.keyspace, &args.replication).await?;
            let latest = tracekeeper_storage::cql::schema::LATEST;
            tracing::info!(keyspace = %args.keyspace, statements = count, elapsed = ?started.elapsed(), "schema applied");
            println!("keyspace {} is at schema {latest} ({count} statements run)", args.keyspace);
            Ok(())
        }
        Command::Auth(command) => auth_command(command),
        #[cfg(feature = "distributed")]
        Command::Dlq(cli::DlqCommand::Replay(args)) => tools::dlq::replay(config::dlq_replay(args)?).await,
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
