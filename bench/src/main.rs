//! `tracekeeper-bench`: the tools the benchmarks in `ops/bench/` drive. They talk to a
//! running tracekeeper over its public APIs only, so the production binary links no
//! HTTP client of its own.

mod freshness;
mod loadgen;
mod query_bench;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "tracekeeper-bench", version, about = "Benchmark tools for tracekeeper")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send realistic OTLP/HTTP load, or measure trace-fetch, search and freshness
    /// latency against a running tracekeeper.
    Loadgen(loadgen::LoadgenArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Loadgen(args) => loadgen::run(args).await,
    }
}
