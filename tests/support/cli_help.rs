//! What `tracekeeper <subcommand> --help` offers, for tests that hold deployment files
//! (docker compose, the Helm chart) to the CLI.

use std::process::Command;

/// The help of `subcommand`, on single spaces (help wraps to the terminal width).
/// Panics when the subcommand does not exist.
pub fn help(subcommand: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_tracekeeper")).args(subcommand).arg("--help").output().unwrap();
    assert!(output.status.success(), "tracekeeper {subcommand:?} --help failed: the subcommand does not exist");
    String::from_utf8(output.stdout).unwrap().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `flag` appears in `help` as a whole flag, not as the prefix of a longer one.
pub fn has_flag(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(at, _)| {
        let next = help[at + flag.len()..].chars().next();
        !matches!(next, Some(c) if c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}
