//! `ops/helm/tracekeeper` checked with the real helm (built by `ops/tools.sh`): it lints
//! with each values file, and what it renders is held to the CLI and to itself: every
//! role's subcommand and flags exist, every file a flag names is mounted from a Secret,
//! probes ask `/ready` on the port the role listens on, and Services, the autoscaler,
//! disruption budgets and ServiceMonitors select what the chart runs.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Output};

use serde_yaml::Value;
use support::cli_help::{has_flag, help};
use support::tools::tool;

fn chart() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ops/helm/tracekeeper")
}

fn helm(args: &[&str]) -> Output {
    Command::new(tool("helm")).args(args).output().expect("run helm")
}

fn values_file(name: &str) -> String {
    chart().join("ci").join(name).to_string_lossy().into_owned()
}

/// The rendered manifests, by (kind, name).
fn render(extra: &[&str]) -> BTreeMap<(String, String), Value> {
    let chart = chart();
    let mut args = vec!["template", "t", chart.to_str().unwrap()];
    args.extend_from_slice(extra);
    let output = helm(&args);
    assert!(output.status.success(), "helm template {extra:?}: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    let mut manifests = BTreeMap::new();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value = Value::deserialize(document).unwrap();
        if value.is_null() {
            continue;
        }
        let key = (str_at(&value, &["kind"]).to_string(), str_at(&value, &["metadata", "name"]).to_string());
        assert!(manifests.insert(key.clone(), value).is_none(), "{key:?} rendered twice");
    }
    manifests
}

use serde::Deserialize as _;

fn at<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |v, key| &v[*key])
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    at(value, path).as_str().unwrap_or_else(|| panic!("{path:?} is not a string in {value:?}"))
}

fn kinds(manifests: &BTreeMap<(String, String), Value>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (kind, _) in manifests.keys() {
        *counts.entry(kind.clone()).or_default() += 1;
    }
    counts
}

fn pod_spec(manifest: &Value) -> &Value {
    at(manifest, &["spec", "template", "spec"])
}

/// Checks one workload's container against the CLI and its pod; returns its role.
fn check_workload(name: &str, manifest: &Value) -> String {
    let pod = pod_spec(manifest);
    let containers = pod["containers"].as_sequence().unwrap();
    assert_eq!(containers.len(), 1, "{name}");
    let container = &containers[0];
    let args: Vec<&str> = container["args"].as_sequence().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let path: Vec<&str> = if args[0] == "schema" { args[..2].to_vec() } else { args[..1].to_vec() };
    let help = help(&path);
    let mut flags = BTreeMap::new();
    for arg in &args[path.len()..] {
        let (flag, value) = arg.split_once('=').unwrap_or_else(|| panic!("{name}: {arg} is not --flag=value"));
        assert!(has_flag(&help, flag), "{name}: `tracekeeper {}` has no flag {flag}", path.join(" "));
        flags.insert(flag.to_string(), value.to_string());
    }

    // Every file a flag names is in a volume the pod mounts from a Secret (or the data
    // volume).
    let mounts: BTreeMap<&str, &str> = container["volumeMounts"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|m| (str_at(m, &["mountPath"]), str_at(m, &["name"])))
        .collect();
    let secrets: BTreeSet<&str> = pod["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter(|v| v["secret"]["secretName"].is_string())
        .map(|v| str_at(v, &["name"]))
        .collect();
    for (flag, value) in &flags {
        if value.starts_with('/') {
            let mounted = mounts.iter().find(|(path, _)| value.starts_with(&format!("{path}/")) || value == *path);
            let (_, volume) = mounted.unwrap_or_else(|| panic!("{name}: {flag}={value} is not under a mount"));
            assert!(
                secrets.contains(volume) || flag == "--data-dir",
                "{name}: {flag} reads {value} from {volume}, not a Secret"
            );
        }
    }

    // Probes ask /ready on a port the container declares, which is the one the role's
    // listen flag binds.
    let ports: BTreeMap<&str, u64> = container["ports"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|p| (str_at(p, &["name"]), p["containerPort"].as_u64().unwrap()))
        .collect();
    for (port_name, number) in &ports {
        let bound = flags.iter().any(|(flag, value)| flag.ends_with("-addr") && value.ends_with(&format!(":{number}")));
        assert!(bound, "{name}: port {port_name} ({number}) is bound by no --*-addr flag: {flags:?}");
    }
    if path != ["schema", "apply"] {
        for probe in ["readinessProbe", "livenessProbe"] {
            let probe = &container[probe];
            let port = if probe["httpGet"].is_mapping() {
                assert_eq!(str_at(probe, &["httpGet", "path"]), "/ready", "{name}");
                str_at(probe, &["httpGet", "port"])
            } else {
                // Under mutual TLS the kubelet cannot present a client certificate.
                assert!(flags.contains_key("--tls-client-ca"), "{name}: a probe other than /ready");
                str_at(probe, &["tcpSocket", "port"])
            };
            assert!(ports.contains_key(port), "{name}: probe port {port} is not declared");
        }
    }

    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true), "{name}");
    assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false), "{name}");
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true), "{name}");
    assert!(container["resources"]["requests"]["memory"].is_string(), "{name}: no memory request");
    path.join(" ")
}

/// Selectors point at what the chart runs: each Service, PDB and ServiceMonitor
/// selects the labels of some pod template, and a Service's target ports are named
/// container ports of the pods it selects.
fn check_selectors(manifests: &BTreeMap<(String, String), Value>) {
    let workloads: Vec<&Value> = manifests
        .iter()
        .filter(|((kind, _), _)| kind == "Deployment" || kind == "StatefulSet")
        .map(|(_, m)| m)
        .collect();
    let selects = |selector: &Value| -> Vec<&Value> {
        let wanted = selector.as_mapping().unwrap();
        workloads
            .iter()
            .copied()
            .filter(|w| {
                let labels = at(w, &["spec", "template", "metadata", "labels"]).as_mapping().unwrap();
                wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .collect()
    };
    for ((kind, name), manifest) in manifests {
        match kind.as_str() {
            "Service" => {
                let pods = selects(at(manifest, &["spec", "selector"]));
                assert_eq!(pods.len(), 1, "Service {name} selects {} workloads", pods.len());
                let container = &pod_spec(pods[0])["containers"][0];
                let names: BTreeSet<&str> =
                    container["ports"].as_sequence().unwrap().iter().map(|p| str_at(p, &["name"])).collect();
                for port in manifest["spec"]["ports"].as_sequence().unwrap() {
                    assert!(names.contains(str_at(port, &["targetPort"])), "Service {name}: {port:?}");
                }
            }
            "PodDisruptionBudget" | "ServiceMonitor" => {
                let pods = selects(at(manifest, &["spec", "selector", "matchLabels"]));
                assert_eq!(pods.len(), 1, "{kind} {name} selects {} workloads", pods.len());
            }
            "HorizontalPodAutoscaler" => {
                let target = str_at(manifest, &["spec", "scaleTargetRef", "name"]);
                let deployment = &manifests[&("Deployment".to_string(), target.to_string())];
                assert!(deployment["spec"]["replicas"].is_null(), "the autoscaler owns {target}'s replicas");
            }
            _ => {}
        }
    }
}

#[test]
fn helm_lints_the_chart_with_each_values_file() {
    let chart = chart();
    let chart = chart.to_str().unwrap();
    let mut files: Vec<String> = std::fs::read_dir(chart.to_string() + "/ci")
        .unwrap()
        .map(|e| e.unwrap().path().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    let lint = helm(&["lint", "--strict", chart]);
    assert!(lint.status.success(), "{}", String::from_utf8_lossy(&lint.stdout));
    for file in &files {
        let lint = helm(&["lint", "--strict", chart, "-f", file]);
        assert!(lint.status.success(), "{file}: {}", String::from_utf8_lossy(&lint.stdout));
    }
}

#[test]
fn the_distributed_chart_runs_each_role_with_flags_the_cli_has() {
    for values in ["default-values.yaml", "secured-values.yaml"] {
        let manifests = render(&["-f", &values_file(values)]);
        let mut roles = BTreeSet::new();
        for ((kind, name), manifest) in &manifests {
            if matches!(kind.as_str(), "Deployment" | "Job" | "StatefulSet") {
                roles.insert(check_workload(name, manifest));
            }
        }
        let expected: BTreeSet<String> =
            ["collector", "indexer", "query", "retention", "schema apply"].into_iter().map(String::from).collect();
        assert_eq!(roles, expected, "{values}");
        let counts = kinds(&manifests);
        for (kind, count) in [
            ("Deployment", 4),
            ("Job", 1),
            ("HorizontalPodAutoscaler", 1),
            ("PodDisruptionBudget", 4),
            ("Service", 4),
            ("ServiceMonitor", 4),
        ] {
            assert_eq!(counts.get(kind).copied(), Some(count), "{values}: {kind} in {counts:?}");
        }
        let job = &manifests[&("Job".to_string(), "t-tracekeeper-schema".to_string())];
        assert_eq!(str_at(job, &["metadata", "annotations", "helm.sh/hook"]), "pre-install,pre-upgrade");
        check_selectors(&manifests);
    }

    // The secured values wire every secret to its flag.
    let manifests = render(&["-f", &values_file("secured-values.yaml")]);
    let indexer = &manifests[&("Deployment".to_string(), "t-tracekeeper-indexer".to_string())];
    let args: Vec<&str> =
        pod_spec(indexer)["containers"][0]["args"].as_sequence().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    for expected in [
        "--kafka-security-protocol=sasl_ssl",
        "--kafka-sasl-mechanism=SCRAM-SHA-512",
        "--kafka-sasl-password-file=/etc/tracekeeper/kafka-sasl/password",
        "--cql-password-file=/etc/tracekeeper/cql-password/password",
        "--cql-local-datacenter=dc1",
        "--cql-tls-cert=/etc/tracekeeper/cql-tls/client.pem",
        "--tls-client-ca=/etc/tracekeeper/serving-tls/ca.crt",
        "--auth-tokens-file=/etc/tracekeeper/auth/tokens.toml",
    ] {
        assert!(args.contains(&expected), "{expected} missing from {args:?}");
    }
    let retention = &manifests[&("Deployment".to_string(), "t-tracekeeper-retention".to_string())];
    let args = &pod_spec(retention)["containers"][0]["args"];
    assert!(args.as_sequence().unwrap().iter().any(|a| a.as_str() == Some("--tenant-retention=acme=24h,beta=72h")));
    let monitor = &manifests[&("ServiceMonitor".to_string(), "t-tracekeeper-query".to_string())];
    assert_eq!(
        str_at(&monitor["spec"]["endpoints"][0], &["authorization", "credentials", "name"]),
        "tracekeeper-scrape-token"
    );
}

#[test]
fn the_all_in_one_chart_is_one_stateful_set_on_a_volume() {
    let manifests = render(&["-f", &values_file("all-in-one-values.yaml")]);
    let counts = kinds(&manifests);
    assert_eq!(counts.get("StatefulSet"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("Deployment"), None, "{counts:?}");
    assert_eq!(counts.get("Job"), None, "no schema on the embedded store: {counts:?}");
    let (name, set) = manifests.iter().find(|((kind, _), _)| kind == "StatefulSet").map(|((_, n), m)| (n, m)).unwrap();
    assert_eq!(check_workload(name, set), "all-in-one");
    assert_eq!(set["spec"]["replicas"].as_u64(), Some(1), "one process owns the embedded store");
    let claim = &set["spec"]["volumeClaimTemplates"][0];
    assert_eq!(str_at(claim, &["spec", "resources", "requests", "storage"]), "50Gi");
    assert_eq!(str_at(claim, &["spec", "storageClassName"]), "fast-ssd");
    let container = &pod_spec(set)["containers"][0];
    let data_dir = container["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .find_map(|a| a.as_str()?.strip_prefix("--data-dir="))
        .expect("--data-dir");
    let mounted =
        container["volumeMounts"].as_sequence().unwrap().iter().any(|m| {
            m["name"].as_str() == claim["metadata"]["name"].as_str() && m["mountPath"].as_str() == Some(data_dir)
        });
    assert!(mounted, "the claim is mounted at --data-dir {data_dir}");
    check_selectors(&manifests);
}

#[test]
fn bad_values_are_refused_by_name() {
    for (set, says) in [
        ("mode=bogus", "mode must be \"distributed\" or \"all-in-one\", not \"bogus\""),
        ("kafka.securityProtocol=tls", "kafka.securityProtocol must be plaintext, ssl, sasl_plaintext or sasl_ssl"),
        ("kafka.sasl.mechanism=PLAIN", "kafka.sasl.existingSecret"),
        ("cql.username=tk", "cql.existingSecret"),
    ] {
        let chart = chart();
        let output = helm(&["template", "t", chart.to_str().unwrap(), "--set", set]);
        assert!(!output.status.success(), "{set} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{set}: {stderr}");
    }
}
