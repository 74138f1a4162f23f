//! Replays the checked-in fuzz corpus (`fuzz/corpus/TARGET/*`) through every target, as
//! an ordinary test: inputs the fuzzer found interesting, and any that once crashed.

use std::path::Path;

#[test]
fn every_corpus_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for (name, target) in tracekeeper_fuzzing::TARGETS {
        let dir = root.join(name);
        let inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        assert!(inputs.len() >= 3, "{name}: the corpus has only {} inputs", inputs.len());
        for input in inputs {
            let data = std::fs::read(&input).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name} panicked on {}", input.display());
        }
    }
}

/// `ops/fuzz.sh` runs what fuzz/Cargo.toml lists: every target has its libFuzzer binary
/// there, calling the function of the same name, and nothing else is listed.
#[test]
fn every_target_has_its_fuzzer_binary() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).unwrap();
    let listed: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \"")?.strip_suffix('"'))
        .filter(|name| *name != "tracekeeper-fuzz")
        .collect();
    let names: Vec<&str> = tracekeeper_fuzzing::TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(listed, names);
    for name in names {
        let source = std::fs::read_to_string(fuzz.join(format!("fuzz_targets/{name}.rs"))).unwrap();
        assert!(source.contains(&format!("tracekeeper_fuzzing::{name}(data)")), "{name}: {source}");
    }
}
