//! TLS material and real TLS clients for the tests: a CA with server and client
//! certificates (rcgen), curl, and the OpenTelemetry Python SDK.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // OpenSSL takes a leaf whose subject equals its issuer for self-signed.
        params.distinguished_name.push(DnType::CommonName, "tracekeeper test CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        for (name, san) in [("server", "127.0.0.1"), ("client", "tracekeeper-test-client")] {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(vec![san.to_string()]).unwrap();
            params.distinguished_name.push(DnType::CommonName, name);
            let cert = params.signed_by(&key, &ca).unwrap();
            std::fs::write(dir.path().join(format!("{name}.pem")), cert.pem()).unwrap();
            std::fs::write(dir.path().join(format!("{name}.key")), key.serialize_pem()).unwrap();
        }
        Self { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

pub fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("curl is required for this test ({e}): apt-get install curl"))
}

pub fn sdk_emit(protocol: &str, endpoint: &str, ca: &Path) -> String {
    sdk_emit_with_headers(protocol, endpoint, ca, "")
}

/// [`sdk_emit`] with `headers` as the SDK reads them from OTEL_EXPORTER_OTLP_HEADERS
/// (`key=value,key2=value2`, values percent-encoded).
pub fn sdk_emit_with_headers(protocol: &str, endpoint: &str, ca: &Path, headers: &str) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/otel_sdk_emit.py");
    let python = std::env::var("TRACEKEEPER_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    // requests lets REQUESTS_CA_BUNDLE (and CURL_CA_BUNDLE) override a session's own CA
    // file, which is how the OTLP/HTTP exporter passes `certificate_file`: clear them so
    // that the CA given is the one used.
    let output = Command::new(&python)
        .arg(script)
        .args([protocol, endpoint, ca.to_str().unwrap()])
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .env("OTEL_EXPORTER_OTLP_HEADERS", headers)
        .output()
        .unwrap_or_else(|e| panic!("{python} is required ({e}); run the suite with ops/test.sh, which installs it"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "the OpenTelemetry Python SDK is missing: use ops/test.sh\n{stderr}"
    );
    assert!(output.status.success(), "the SDK script failed:\n{stderr}");
    // The SDK logs a failed export and carries on: its words go with any failure.
    assert!(!stderr.contains("Failed to export"), "the SDK could not export over {protocol}:\n{stderr}");
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}
