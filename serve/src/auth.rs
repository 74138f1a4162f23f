//! Authentication and tenancy for every listener: a tokens file maps each bearer token
//! (or Basic username and password) to the tenants it may act for and its scopes
//! (`write`, `read`, `admin`). Secrets are stored only as SHA-256 hashes, so they must
//! be long random strings (`tracekeeper auth hash` prints the hash of one). The file is
//! re-read when it changes ([`crate::reloading`]); a broken new file is logged and the
//! previous one kept.
//!
//! ```toml
//! [[token]]
//! name = "acme-ingest"
//! sha256 = "5e88…"          # of the bearer token
//! tenants = ["acme"]        # or ["*"] for every tenant
//! scopes = ["write"]
//! expires = 2027-06-30T00:00:00Z   # optional: refused from then on
//!
//! [[basic]]
//! name = "zipkin-reporter"
//! username = "reporter"
//! password_sha256 = "…"
//! tenants = ["acme"]
//! scopes = ["write"]
//! ```

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::{header, HeaderMap};
use base64::Engine;
use serde::Deserialize;

use crate::access::Grant;
use crate::reloading::Reloading;

/// The header that names the tenant (Tempo's and Grafana's convention).
pub const TENANT_HEADER: &str = "X-Scope-OrgID";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Send spans.
    Write,
    /// Search and read traces.
    Read,
    /// Status, retention and metrics.
    Admin,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    token: Vec<TokenEntry>,
    #[serde(default)]
    basic: Vec<BasicEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    sha256: String,
    tenants: Vec<String>,
    scopes: Vec<Scope>,
    #[serde(default)]
    expires: Option<toml::value::Datetime>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BasicEntry {
    name: String,
    username: String,
    password_sha256: String,
    tenants: Vec<String>,
    scopes: Vec<Scope>,
    #[serde(default)]
    expires: Option<toml::value::Datetime>,
}

/// Who a request is, once its credentials check out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    /// `None`: every tenant.
    pub tenants: Option<BTreeSet<String>>,
    pub scopes: BTreeSet<Scope>,
    /// Seconds since the Unix epoch from which the credentials are refused.
    pub expires_at: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    #[error("reading tokens file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("tokens file {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// Why a request was refused; the message is safe to send to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// 401 / UNAUTHENTICATED.
    Unauthenticated(&'static str),
    /// 403 / PERMISSION_DENIED.
    Forbidden(String),
}

#[derive(Default)]
struct Table {
    tokens: HashMap<[u8; 32], Principal>,
    basic: HashMap<String, ([u8; 32], Principal)>,
}

pub fn sha256(secret: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, secret);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn parse_hash(text: &str, what: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(text.trim()).map_err(|_| format!("{what}: not 64 hexadecimal characters"))?;
    bytes.try_into().map_err(|_| format!("{what}: a SHA-256 hash is 64 hexadecimal characters"))
}

/// Seconds since the Unix epoch of a TOML date-time with an offset (RFC 3339 in its
/// text form); `None` for a local date or time, which names no instant.
fn unix_seconds(at: &toml::value::Datetime) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(&at.to_string()).ok().map(|at| at.timestamp())
}

fn principal(
    name: &str,
    tenants: &[String],
    scopes: &[Scope],
    expires: Option<&toml::value::Datetime>,
) -> Result<Principal, String> {
    if tenants.is_empty() || scopes.is_empty() {
        return Err(format!("{name:?} needs at least one tenant and one scope"));
    }
    let expires_at = match expires {
        None => None,
        Some(at) => Some(unix_seconds(at).ok_or_else(|| {
            format!("{name:?}: expires must be a date and time with an offset, such as 2027-06-30T00:00:00Z")
        })?),
    };
    let tenants = if tenants.iter().any(|t| t == "*") {
        None
    } else {
        for tenant in tenants {
            tracekeeper_model::validate_tenant(tenant).map_err(|e| format!("{name:?}: tenant {tenant:?}: {e}"))?;
        }
        Some(tenants.iter().cloned().collect())
    };
    Ok(Principal { name: name.to_string(), tenants, scopes: scopes.iter().copied().collect(), expires_at })
}

fn load(path: &Path) -> Result<Table, AuthFileError> {
    let invalid = |reason: String| AuthFileError::Invalid { path: path.to_path_buf(), reason };
    let text =
        std::fs::read_to_string(path).map_err(|source| AuthFileError::Read { path: path.to_path_buf(), source })?;
    let file: TokensFile = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let mut table = Table::default();
    for entry in &file.token {
        let hash = parse_hash(&entry.sha256, &format!("token {:?}", entry.name)).map_err(invalid)?;
        let who = principal(&entry.name, &entry.tenants, &entry.scopes, entry.expires.as_ref()).map_err(invalid)?;
        if table.tokens.insert(hash, who).is_some() {
            return Err(invalid(format!("token {:?} has the same hash as another token", entry.name)));
        }
    }
    for entry in &file.basic {
        let hash = parse_hash(&entry.password_sha256, &format!("basic {:?}", entry.name)).map_err(invalid)?;
        let who = principal(&entry.name, &entry.tenants, &entry.scopes, entry.expires.as_ref()).map_err(invalid)?;
        if table.basic.insert(entry.username.clone(), (hash, who)).is_some() {
            return Err(invalid(format!("username {:?} appears twice", entry.username)));
        }
    }
    Ok(table)
}

/// The tokens in force, re-read from their file when it changes.
pub struct Authenticator {
    path: PathBuf,
    /// Whether tenants are kept apart; when not, tokens carry scopes only.
    multi_tenant: bool,
    table: Arc<Reloading<Table, AuthFileError>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").field("path", &self.path).field("multi_tenant", &self.multi_tenant).finish()
    }
}

impl Authenticator {
    pub fn load(path: &Path, multi_tenant: bool) -> Result<Self, AuthFileError> {
        let file = path.to_path_buf();
        let table = Reloading::load(vec![file.clone()], move || load(&file))?;
        Ok(Self { path: path.to_path_buf(), multi_tenant, table: Arc::new(table) })
    }

    /// Re-reads the file if it changed; a broken file keeps the previous tokens.
    pub fn reload_if_changed(&self) -> Result<bool, AuthFileError> {
        self.table.reload_if_changed()
    }

    /// Checks the file every [`crate::reloading::RELOAD_CHECK`] for as long as these
    /// tokens are in use.
    pub fn watch(&self) -> tokio::task::JoinHandle<()> {
        self.table.watch("tokens")
    }

    fn identify(&self, headers: &HeaderMap) -> Result<Principal, Refused> {
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or(Refused::Unauthenticated("credentials required: send Authorization: Bearer <token>"))?;
        let value = value.to_str().map_err(|_| Refused::Unauthenticated("the Authorization header is not text"))?;
        let table = self.table.current();
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let found = if scheme.eq_ignore_ascii_case("bearer") {
            table.tokens.get(&sha256(rest.trim().as_bytes())).cloned()
        } else if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).unwrap_or_default();
            let text = String::from_utf8(decoded).unwrap_or_default();
            text.split_once(':').and_then(|(user, password)| {
                table
                    .basic
                    .get(user)
                    .filter(|(hash, _)| *hash == sha256(password.as_bytes()))
                    .map(|(_, who)| who.clone())
            })
        } else {
            return Err(Refused::Unauthenticated("unsupported Authorization scheme: use Bearer or Basic"));
        };
        let who = found.ok_or(Refused::Unauthenticated("invalid credentials"))?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        if who.expires_at.is_some_and(|at| now >= at) {
            return Err(Refused::Unauthenticated("these credentials have expired"));
        }
        Ok(who)
    }

    /// Checks a request's credentials, scope and tenant. With multi-tenancy on, a read
    /// or write request must act for a tenant the credentials allow: the one its
    /// `X-Scope-OrgID` names or, when it names none and they allow exactly one, that one.
    /// The request itself is left as it came; handlers read the tenant from the grant.
    pub fn authorize(&self, headers: &HeaderMap, needs: Scope) -> Result<Grant, Refused> {
        let who = self.identify(headers)?;
        if !who.scopes.contains(&needs) {
            return Err(Refused::Forbidden(
                format!("these credentials ({}) lack the {needs:?} scope", who.name).to_lowercase(),
            ));
        }
        // Admin endpoints (status, retention, metrics) span tenants by nature.
        if !self.multi_tenant || needs == Scope::Admin {
            return Ok(Grant { name: who.name, tenant: None });
        }
        let tenant = match headers.get(TENANT_HEADER).map(|v| v.to_str().map(str::to_string)) {
            Some(Ok(tenant)) => {
                if who.tenants.as_ref().is_some_and(|allowed| !allowed.contains(&tenant)) {
                    return Err(Refused::Forbidden(format!("these credentials may not act for tenant {tenant:?}")));
                }
                tenant
            }
            Some(Err(_)) => return Err(Refused::Forbidden("the X-Scope-OrgID header is not text".into())),
            None => match who.tenants.as_ref().filter(|t| t.len() == 1).and_then(|t| t.iter().next()) {
                Some(only) => only.clone(),
                None => {
                    return Err(Refused::Forbidden(
                        "these credentials allow several tenants: name one in X-Scope-OrgID".into(),
                    ))
                }
            },
        };
        Ok(Grant { name: who.name, tenant: Some(tenant) })
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
