//! Which tenant a request belongs to, shared by ingest and query.

/// The header Tempo and Grafana use for the tenant.
pub const TENANT_HEADER: &str = "x-scope-orgid";

/// The Kafka record header carrying a message's tenant: the same name as the HTTP
/// header, so a Collector with `include_metadata_keys: [X-Scope-OrgID]` writes it too.
pub const KAFKA_TENANT_HEADER: &str = "X-Scope-OrgID";

/// The tenant every span belongs to when multi-tenancy is off (Tempo's name for it).
pub const DEFAULT_TENANT: &str = "single-tenant";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    #[error("missing tenant: send the X-Scope-OrgID header")]
    Missing,
    #[error("invalid tenant in X-Scope-OrgID: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Tenancy {
    /// When on, every request must name its tenant in `X-Scope-OrgID`. When off,
    /// everything belongs to [`DEFAULT_TENANT`] and the header is ignored.
    pub multi_tenant: bool,
}

impl Tenancy {
    pub fn resolve(&self, header: Option<&[u8]>) -> Result<String, TenantError> {
        if !self.multi_tenant {
            return Ok(DEFAULT_TENANT.to_string());
        }
        let raw = header.ok_or(TenantError::Missing)?;
        let tenant = std::str::from_utf8(raw).map_err(|_| TenantError::Invalid("not valid UTF-8".into()))?;
        validate_tenant(tenant).map_err(TenantError::Invalid)?;
        Ok(tenant.to_string())
    }
}

/// Checks a tenant id the way Tempo does: 1 to 150 characters out of a safe set, so
/// that it can be embedded in storage keys and file names without escaping.
pub fn validate_tenant(tenant: &str) -> Result<(), String> {
    if tenant.is_empty() || tenant.len() > 150 {
        return Err(format!("tenant id must be 1 to 150 characters, got {}", tenant.len()));
    }
    if let Some(bad) = tenant.chars().find(|c| !(c.is_ascii_alphanumeric() || "!-_.*'()".contains(*c))) {
        return Err(format!("tenant id contains the character {bad:?}, which is not allowed"));
    }
    if tenant == "." || tenant == ".." {
        return Err("tenant id must not be '.' or '..'".into());
    }
    // "*" names the default retention policy and "every tenant" in tokens files.
    if tenant == "*" {
        return Err("tenant id must not be '*', which means every tenant".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenancy_rules() {
        let off = Tenancy { multi_tenant: false };
        assert_eq!(off.resolve(Some(b"acme")).unwrap(), DEFAULT_TENANT);
        let on = Tenancy { multi_tenant: true };
        assert_eq!(on.resolve(Some(b"acme")).unwrap(), "acme");
        assert_eq!(on.resolve(None), Err(TenantError::Missing));
        assert!(matches!(on.resolve(Some(b"a/b")), Err(TenantError::Invalid(_))));
        assert!(matches!(on.resolve(Some(b"")), Err(TenantError::Invalid(_))));
        assert!(matches!(on.resolve(Some(b"*")), Err(TenantError::Invalid(m)) if m.contains("every tenant")));
        assert_eq!(on.resolve(Some(b"a*b")).unwrap(), "a*b", "'*' inside a name is fine");
    }
}

/// Most distinct tenants that get a metric label of their own in one process.
pub const MAX_TENANT_LABELS: usize = 1_000;
/// The label every tenant past [`MAX_TENANT_LABELS`] shares.
pub const OTHER_TENANTS_LABEL: &str = "other";

/// The `tenant` label for a metric: the tenant itself for the first
/// [`MAX_TENANT_LABELS`] tenants this process has seen, and "other" after that, so a
/// client that invents tenants cannot grow the number of series without bound.
pub fn tenant_label(tenant: &str) -> String {
    static SEEN: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<String>>> = std::sync::OnceLock::new();
    let mut seen = SEEN.get_or_init(Default::default).lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if seen.contains(tenant) {
        return tenant.to_string();
    }
    if seen.len() < MAX_TENANT_LABELS {
        seen.insert(tenant.to_string());
        return tenant.to_string();
    }
    OTHER_TENANTS_LABEL.to_string()
}

#[cfg(test)]
mod label_tests {
    use super::*;

    #[test]
    fn tenants_past_the_limit_share_one_label() {
        // Other tests in this process may have labelled a few tenants already.
        let first = tenant_label("label-test-0");
        assert_eq!(first, "label-test-0");
        let labels: Vec<String> =
            (1..=MAX_TENANT_LABELS + 5).map(|i| tenant_label(&format!("label-test-{i}"))).collect();
        assert!(labels.iter().filter(|l| *l == OTHER_TENANTS_LABEL).count() >= 5);
        let distinct: std::collections::HashSet<&String> = labels.iter().collect();
        assert!(distinct.len() <= MAX_TENANT_LABELS + 1, "at most the limit plus \"other\"");
        assert_eq!(tenant_label("label-test-0"), "label-test-0", "a tenant seen early keeps its label");
    }
}
