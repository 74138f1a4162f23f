//! The ecosystem tools some tests run (promtool, helm), built by `ops/tools.sh`.

use std::path::PathBuf;

/// `name` as built by `ops/tools.sh`: `$TRACEKEEPER_<NAME>` when set, otherwise
/// `$TRACEKEEPER_CACHE/tools/bin/<name>` (default cache `~/.cache/tracekeeper`).
/// Panics when it is missing: a check that cannot run must not pass.
pub fn tool(name: &str) -> PathBuf {
    let variable = format!("TRACEKEEPER_{}", name.to_uppercase().replace('-', "_"));
    let path = std::env::var_os(&variable).map(PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("TRACEKEEPER_CACHE").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/tracekeeper")
        });
        cache.join("tools/bin").join(name)
    });
    assert!(path.is_file(), "{name} is not at {} ({variable} unset?): run ops/tools.sh to build it", path.display());
    path
}
