//! `ops/stack/fetch.sh` run many times at once into an empty jars cache, as a new
//! machine's first `ops/test.sh` does (Kafka and Cassandra start together). Every
//! caller must succeed and see the same, whole directory. Cheap once Maven's local
//! repository (under `TRACEKEEPER_CACHE`) is warm; on a cold one it downloads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn fetch_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops/stack/fetch.sh")
}

fn fetch(jars: &Path, service: &str) -> std::process::Child {
    Command::new("bash")
        .arg(fetch_script())
        .arg(service)
        .env("TRACEKEEPER_JARS", jars)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs fetch.sh")
}

fn succeeded(output: Output, what: &str) -> String {
    assert!(output.status.success(), "{what} failed ({}):\n{}", output.status, String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8 path").trim().to_string()
}

/// Every file under `dir`, by relative path, with its bytes. Jars of one pinned version
/// copied from the same Maven repository are byte-identical, so a torn copy shows.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("reading {}: {e}", d.display())) {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[test]
fn concurrent_resolutions_into_an_empty_cache_all_succeed_with_identical_contents() {
    let racing = tempfile::tempdir().unwrap();
    let alone = tempfile::tempdir().unwrap();

    let services = ["kafka", "cassandra", "kafka", "cassandra"];
    let children: Vec<_> = services.iter().map(|s| (s, fetch(racing.path(), s))).collect();
    for (service, child) in children {
        let printed = succeeded(child.wait_with_output().unwrap(), &format!("concurrent fetch.sh {service}"));
        assert_eq!(Path::new(&printed), racing.path().join(service), "fetch.sh {service} printed the wrong directory");
    }

    for service in ["kafka", "cassandra"] {
        let printed = succeeded(fetch(alone.path(), service).wait_with_output().unwrap(), "lone fetch.sh");
        let (raced, reference) = (contents(&racing.path().join(service)), contents(Path::new(&printed)));
        assert!(
            reference.keys().any(|name| name.ends_with(".jar")),
            "the lone {service} resolution has no jars: {:?}",
            reference.keys().collect::<Vec<_>>()
        );
        let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(names(&raced), names(&reference), "{service}: the raced cache lists other files");
        for (name, bytes) in &reference {
            assert!(raced[name] == *bytes, "{service}: {name} differs between the raced and the lone resolution");
        }
    }

    let leftovers: Vec<_> = std::fs::read_dir(racing.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".staging.") || name.contains(".old."))
        .collect();
    assert!(leftovers.is_empty(), "temporary directories left behind: {leftovers:?}");
}

#[test]
fn an_unknown_service_is_refused_by_name() {
    let jars = tempfile::tempdir().unwrap();
    let output = fetch(jars.path(), "zookeeper").wait_with_output().unwrap();
    assert!(!output.status.success(), "fetch.sh accepted an unknown service");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown service 'zookeeper'"), "unclear error: {stderr}");
}
