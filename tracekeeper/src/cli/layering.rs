//! The one config system every role shares: defaults < `--config` file < environment <
//! flags.
//!
//! - Every setting is a flag, declared once with clap: its default, its
//!   `TRACEKEEPER_<FLAG>` variable and its help.
//! - The file's keys are the long flag names of the role (`query-addr = "…"`). A key
//!   whose flag was given neither on the command line nor in the environment becomes
//!   that flag, and the command line is parsed again; so a value is checked by the same
//!   parser wherever it came from, and each default is written in one place.
//! - A key that names no flag of the role is an error, with the role's keys listed.
//!   Tables are the per-tenant settings ([`TABLES`]), read by the roles that have them.
//! - [`effective`] lists every setting with where it came from, secrets redacted, for
//!   the log at start-up.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use super::Cli;

/// The tables a role's file may hold, by role: per-tenant settings that are no flag.
/// The indexer reads only each tenant's max-future-skew from its table.
pub const TABLES: &[(&str, &[&str])] = &[
    ("all-in-one", &["tenant-retention", "tenant-ingest-limits"]),
    ("collector", &["tenant-ingest-limits"]),
    ("indexer", &["tenant-ingest-limits"]),
];

/// The parsed command line.
pub struct Layered {
    pub cli: Cli,
    /// Every setting of the role: (key, value, where it came from), secrets redacted.
    pub effective: Vec<(String, String, &'static str)>,
    /// The `--config` file, if one was given.
    pub config_file: Option<PathBuf>,
    /// Its per-tenant tables ([`TABLES`]), read with the rest of the file.
    pub tables: toml::Table,
}

/// Parses `argv` with the role's `--config` file layered in.
pub fn parse(argv: Vec<OsString>) -> Result<Layered, clap::Error> {
    let matches = Cli::command().try_get_matches_from(&argv)?;
    let (role, sub) = innermost(&matches);
    let Some(path) = sub.try_get_one::<PathBuf>("config").ok().flatten().cloned() else {
        let cli = Cli::from_arg_matches(&matches)?;
        return Ok(Layered { cli, effective: effective(&matches, &[]), config_file: None, tables: toml::Table::new() });
    };
    let (extra, tables) = file_flags(&path, &role, sub)
        .map_err(|e| Cli::command().error(clap::error::ErrorKind::InvalidValue, format!("{e:#}")))?;
    let from_file: Vec<String> = extra.iter().map(|(key, _)| key.clone()).collect();
    let mut argv = argv;
    argv.extend(extra.into_iter().map(|(_, flag)| OsString::from(flag)));
    let matches = Cli::command().try_get_matches_from(&argv)?;
    let cli = Cli::from_arg_matches(&matches)?;
    Ok(Layered { cli, effective: effective(&matches, &from_file), config_file: Some(path), tables })
}

/// The deepest subcommand's name (e.g. `schema apply`) and matches.
fn innermost(matches: &ArgMatches) -> (String, &ArgMatches) {
    let mut names = Vec::new();
    let mut at = matches;
    while let Some((name, sub)) = at.subcommand() {
        names.push(name.to_string());
        at = sub;
    }
    (names.join(" "), at)
}

/// The deepest subcommand's definition.
fn role_command(role: &str) -> clap::Command {
    let mut command = Cli::command();
    command.build();
    for name in role.split(' ') {
        if let Some(sub) = command.find_subcommand(name) {
            command = sub.clone();
        }
    }
    command
}

/// The flags the file's keys stand for, where neither flag nor variable gave a value,
/// as (key, flag); and the file's tables.
type FileFlags = (Vec<(String, String)>, toml::Table);

fn file_flags(path: &PathBuf, role: &str, given: &ArgMatches) -> anyhow::Result<FileFlags> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
    let table: toml::Table = text.parse().with_context(|| format!("parsing config file {}", path.display()))?;
    let command = role_command(role);
    let tables = TABLES.iter().find(|(r, _)| *r == role).map_or(&[][..], |(_, t)| t);
    let mut flags = Vec::new();
    let mut kept = toml::Table::new();
    for (key, value) in &table {
        if let toml::Value::Table(_) = value {
            if tables.contains(&key.as_str()) {
                kept.insert(key.clone(), value.clone());
                continue;
            }
            bail!("config file {}: [{key}] is not a table `tracekeeper {role}` reads", path.display());
        }
        let arg = command.get_arguments().find(|a| a.get_long() == Some(key.as_str()) && key != "config");
        let Some(arg) = arg else {
            let keys: Vec<&str> = command
                .get_arguments()
                .filter_map(|a| a.get_long())
                .filter(|l| *l != "config" && *l != "help")
                .collect();
            bail!(
                "config file {}: unknown key `{key}`; the keys are the long flags of `tracekeeper {role}`: {}",
                path.display(),
                keys.join(", ")
            );
        };
        let id = arg.get_id().as_str();
        if matches!(given.value_source(id), Some(ValueSource::CommandLine | ValueSource::EnvVariable)) {
            continue;
        }
        let takes_value = arg.get_num_args().is_none_or(|n| n.takes_values());
        for text in values(key, value)? {
            let flag = match (takes_value, text.as_str()) {
                (false, "true") => format!("--{key}"),
                (false, "false") => continue,
                (false, other) => bail!("config file {}: `{key}` is true or false, not {other}", path.display()),
                (true, _) => format!("--{key}={text}"),
            };
            flags.push((key.clone(), flag));
        }
    }
    Ok((flags, kept))
}

/// A TOML value as the flag's text: arrays become one flag per item.
fn values(key: &str, value: &toml::Value) -> anyhow::Result<Vec<String>> {
    Ok(match value {
        toml::Value::String(s) => vec![s.clone()],
        toml::Value::Integer(i) => vec![i.to_string()],
        toml::Value::Float(f) => vec![f.to_string()],
        toml::Value::Boolean(b) => vec![b.to_string()],
        toml::Value::Datetime(d) => vec![d.to_string()],
        toml::Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                out.extend(values(key, item)?);
            }
            out
        }
        toml::Value::Table(_) => bail!("`{key}` is a table; it takes a value"),
    })
}

/// Whether a setting's value is a secret to keep out of logs.
pub fn is_secret(key: &str, value: &str) -> bool {
    let key = key.to_ascii_lowercase();
    let value = value.to_ascii_lowercase();
    ["password", "secret", "sasl-username"].iter().any(|s| key.contains(s))
        || ["password=", "secret=", "sasl.username="].iter().any(|s| value.contains(s))
}

/// Every setting of the role with its value and where it came from; `from_file` are
/// the keys the config file gave.
fn effective(matches: &ArgMatches, from_file: &[String]) -> Vec<(String, String, &'static str)> {
    let (role, sub) = innermost(matches);
    // ids() also lists argument groups (one per flattened struct): only flags count.
    let command = role_command(&role);
    let flags: Vec<&str> = command.get_arguments().map(|a| a.get_id().as_str()).collect();
    let mut out = Vec::new();
    for source in [matches, sub] {
        for id in source.ids() {
            let key = id.as_str();
            if !flags.contains(&key) || source.get_raw_occurrences(key).is_none() || key == "help" {
                continue;
            }
            let values: Vec<String> =
                source.get_raw(key).map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect()).unwrap_or_default();
            let value = values.join(",");
            let value = if is_secret(key, &value) { "<redacted>".to_string() } else { value };
            let name = key.replace('_', "-");
            let from = match source.value_source(key) {
                Some(ValueSource::CommandLine) if from_file.contains(&name) => "file",
                Some(ValueSource::CommandLine) => "flag",
                Some(ValueSource::EnvVariable) => "environment",
                _ => "default",
            };
            out.push((name, value, from));
        }
    }
    out
}
