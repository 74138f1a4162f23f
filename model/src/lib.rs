//! The span model every tracekeeper stage shares, and its conversions.
//!
//! # Layout
//! - [`ids`]: fixed-size trace and span identifiers with their hex forms.
//! - [`span`]: the span itself, with full OTLP fidelity (resource, scope, attributes of
//!   every OTLP value type, events, links, status, dropped counts).
//! - [`otlp`]: OTLP protobuf ↔ model, with per-span validation.
//! - [`otlp_json`]: OTLP JSON ↔ model, including the checks that catch bodies the serde
//!   types would silently decode to nothing.
//! - [`zipkin`]: Zipkin v2 JSON ↔ model.
//! - [`jaeger`]: model → the JSON the Jaeger UI reads.

pub mod ids;
pub mod jaeger;
pub mod otlp;
pub mod otlp_json;
pub mod span;
pub mod zipkin;

pub use ids::{SpanId, TraceId};
pub use span::{AnyValue, Event, KeyValue, Link, Resource, Scope, Span, SpanKind, Status, StatusCode};

/// The tenant every span belongs to when multi-tenancy is off (Tempo's name for it).
pub const DEFAULT_TENANT: &str = "single-tenant";

/// Checks a tenant id the way Tempo does: 1 to 150 characters out of a safe set, so
/// that it can be embedded in storage keys and file names without escaping.
pub fn validate_tenant(tenant: &str) -> Result<(), String> {
    if tenant.is_empty() || tenant.len() > 150 {
        return Err(format!("tenant id must be 1 to 150 characters, got {}", tenant.len()));
    }
    if let Some(bad) = tenant
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "!-_.*'()".contains(*c)))
    {
        return Err(format!("tenant id contains the character {bad:?}, which is not allowed"));
    }
    if tenant == "." || tenant == ".." {
        return Err("tenant id must not be '.' or '..'".into());
    }
    Ok(())
}

#[cfg(any(test, feature = "testing"))]
pub mod testing;
