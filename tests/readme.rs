//! The README's "Flags by role" tables against the real binary's `--help`: every flag of
//! every role is listed with its default, in the same order, and nothing else is.

use std::process::Command;

/// (flag, default) of each option `tracekeeper ROLE --help` lists; "none" without one.
fn help_flags(role: &str) -> Vec<(String, String)> {
    let output = Command::new(env!("CARGO_BIN_EXE_tracekeeper"))
        .args(role.split(' '))
        .arg("--help")
        .output()
        .expect("run tracekeeper");
    assert!(output.status.success(), "{role} --help failed");
    let help = String::from_utf8(output.stdout).unwrap();
    let options = help.split_once("Options:").map(|(_, o)| o).unwrap_or_else(|| panic!("{role}: no options"));
    // An option starts on a line indented by a few spaces and a dash; its text runs on.
    let mut entries: Vec<String> = Vec::new();
    for line in options.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('-') && line.len() - trimmed.len() <= 6 {
            entries.push(trimmed.to_string());
        } else if let Some(last) = entries.last_mut() {
            last.push(' ');
            last.push_str(trimmed);
        }
    }
    entries
        .iter()
        .map(|entry| entry.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter_map(|entry| {
            let long = entry.split("--").nth(1)?;
            let flag: String = long.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
            let default = entry
                .split_once("[default: ")
                .and_then(|(_, rest)| rest.split_once(']'))
                .map_or("none".to_string(), |(d, _)| d.to_string());
            Some((flag, default))
        })
        .filter(|(flag, _)| flag != "help" && flag != "version")
        .collect()
}

/// The README's table for `role`: (flag, default) per row, backticks dropped.
fn readme_flags(readme: &str, role: &str) -> Vec<(String, String)> {
    let heading = format!("### `tracekeeper {role}`");
    let section = readme.split_once(&heading).unwrap_or_else(|| panic!("README has no {heading}")).1;
    let section = section.split("\n#").next().unwrap();
    section
        .lines()
        .filter(|l| l.starts_with("| `--"))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let flag = cells[1].trim_matches('`').trim_start_matches("--").to_string();
            (flag, cells[2].trim_matches('`').to_string())
        })
        .collect()
}

#[test]
fn the_readme_lists_every_flag_of_every_role_with_its_default() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let roles =
        ["all-in-one", "collector", "indexer", "query", "retention", "schema apply", "check", "compact", "dlq replay"];
    for role in roles {
        let help = help_flags(role);
        assert!(help.len() >= 3, "{role}: parsed only {help:?}");
        let listed = readme_flags(&readme, role);
        let missing: Vec<_> = help.iter().filter(|f| !listed.contains(f)).collect();
        let extra: Vec<_> = listed.iter().filter(|f| !help.contains(f)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "README's table for `tracekeeper {role}` is out of date:\n  in --help, not in README: {missing:?}\n  in README, not in --help: {extra:?}"
        );
        assert_eq!(listed, help, "{role}: same flags, same order");
    }
}

/// A real role, with a setting from each layer: flag beats variable beats file beats
/// default, and the log at start-up says which layer each value came from.
#[test]
fn a_role_logs_its_effective_configuration_and_where_each_value_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("retention.toml");
    std::fs::write(&file, "keyspace = \"from_file\"\nlease-ttl = \"5m\"\ncql-nodes = [\"127.0.0.1:2\"]\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tracekeeper"))
        .args(["retention", "--config", file.to_str().unwrap(), "--cql-nodes", "127.0.0.1:1"])
        .env("TRACEKEEPER_KEYSPACE", "from_env")
        .env("TRACEKEEPER_LOG_FORMAT", "json")
        .output()
        .unwrap();
    assert!(!output.status.success(), "nothing listens on port 1: it stops");
    let log = String::from_utf8_lossy(&output.stderr);
    let line = log.lines().find(|l| l.contains("effective configuration")).unwrap_or_else(|| panic!("{log}"));
    for expected in [
        "cql-nodes=127.0.0.1:1 (flag)",
        "keyspace=from_env (environment)",
        "lease-ttl=5m (file)",
        "interval=1m (default)",
        "log-format=json (environment)",
    ] {
        assert!(line.contains(expected), "{expected} in {line}");
    }
}
