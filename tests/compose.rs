//! `docker-compose.yml` cannot run on machines without Docker, so it is checked
//! against the real binary instead: every tracekeeper subcommand, flag and
//! environment variable it uses must exist in the CLI, and the topology must be the
//! documented one.

mod support;

use std::collections::BTreeSet;

use serde_yaml::Value;
use support::cli_help::{has_flag, help};

fn compose() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docker-compose.yml");
    let text = std::fs::read_to_string(path).expect("docker-compose.yml at the repository root");
    let mut doc: Value = serde_yaml::from_str(&text).expect("docker-compose.yml is valid YAML");
    doc.apply_merge().expect("merge keys resolve");
    doc
}

fn strings(value: &Value) -> Vec<String> {
    value.as_sequence().map(|s| s.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

#[test]
fn every_tracekeeper_command_flag_and_variable_in_compose_exists() {
    let doc = compose();
    let services = doc["services"].as_mapping().expect("services");
    let mut roles = BTreeSet::new();
    for (name, service) in services {
        let name = name.as_str().unwrap();
        if service["image"].as_str() != Some("tracekeeper:local") {
            continue;
        }
        assert_eq!(service["build"].as_str(), Some("."), "{name} builds the Dockerfile");
        let command = strings(&service["command"]);
        let path: Vec<&str> = match command.first().map(String::as_str) {
            Some("schema") => vec!["schema", command.get(1).expect("schema subcommand")],
            Some(role) => vec![role],
            None => panic!("{name} has no command"),
        };
        roles.insert(path.join(" "));
        let help = help(&path);
        for flag in command.iter().filter(|a| a.starts_with("--")) {
            let flag = flag.split('=').next().unwrap();
            assert!(has_flag(&help, flag), "{name}: `tracekeeper {}` has no flag {flag}", path.join(" "));
        }
        if let Some(env) = service["environment"].as_mapping() {
            for key in env.keys().filter_map(Value::as_str) {
                assert!(
                    help.contains(&format!("[env: {key}=")),
                    "{name}: `tracekeeper {}` reads no {key}",
                    path.join(" ")
                );
            }
        }
        let depends = service["depends_on"].as_mapping();
        if path != ["schema", "apply"] || depends.is_some() {
            for (dependency, how) in depends.expect("depends_on") {
                assert!(services.contains_key(dependency), "{name} depends on unknown {dependency:?}");
                assert!(how["condition"].as_str().is_some(), "{name}: depends_on {dependency:?} has a condition");
            }
        }
    }
    let expected: BTreeSet<String> =
        ["collector", "indexer", "query", "retention", "schema apply"].into_iter().map(String::from).collect();
    assert_eq!(roles, expected);
}

#[test]
fn compose_runs_two_indexers_and_a_six_partition_topic() {
    let doc = compose();
    let services = &doc["services"];
    let indexers = services
        .as_mapping()
        .unwrap()
        .values()
        .filter(|s| strings(&s["command"]).first().map(String::as_str) == Some("indexer"))
        .count();
    assert_eq!(indexers, 2);
    let topic = strings(&services["kafka-topic"]["command"]);
    let partitions = topic.iter().position(|a| a == "--partitions").map(|i| topic[i + 1].as_str());
    assert_eq!(partitions, Some("6"));
    assert!(topic.contains(&"tracekeeper-spans".to_string()), "the collectors' default topic");
    for stateful in ["kafka", "scylla", "collector", "query", "retention"] {
        assert!(services[stateful]["healthcheck"]["test"].is_sequence(), "{stateful} has a healthcheck");
    }
}
