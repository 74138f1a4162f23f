//! tracekeeper's roles as a library. Each role in [`roles`] has a typed `Config`, its
//! `Listeners` (sockets bound by the caller: port 0 in tests) and one entry point,
//! `run(config, listeners, shutdown)`. The binary (`main.rs`) only parses the command
//! line ([`cli`]), resolves it into those configurations ([`config`]) and runs one.
//!
//! Built without the default `distributed` feature, it is all-in-one only: no Kafka
//! client, no CQL driver, and only the subcommands all-in-one has.
//!
//! Dependencies point one way: `main` → `config` → `cli` and `roles`/`tools`;
//! `roles` and `tools` → the shared plumbing (`serve`, `listeners`, `ops`,
//! `telemetry`, the admin APIs) → the library crates. Nothing but `config` sees a
//! clap type.

pub mod cli;
pub mod config;
pub mod listeners;
pub mod ops;
pub mod purge_api;
pub mod retention_api;
pub mod roles;
pub mod serve;
#[cfg(feature = "distributed")]
pub mod status;
pub mod telemetry;
pub mod tools;
