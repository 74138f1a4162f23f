//! The span model every tracekeeper stage shares, and its conversions.
//!
//! # Layout
//! - [`ids`]: fixed-size trace and span identifiers with their hex forms.
//! - [`span`]: the span itself, with full OTLP fidelity (resource, scope, attributes of
//!   every OTLP value type, events, links, status, dropped counts).
//! - [`otlp`]: OTLP protobuf ↔ model, with per-span validation.
//! - [`otlp_json`]: OTLP JSON ↔ model, including the checks that catch bodies the serde
//!   types would silently decode to nothing.
//! - [`zipkin`]: Zipkin v2 JSON ↔ model; [`zipkin_proto`]: Zipkin's proto3 `ListOfSpans`.
//! - [`jaeger`]: model → the JSON the Jaeger UI reads; [`jaeger_kafka`]: Jaeger `api_v2`
//!   spans (protobuf or JSON, as on Kafka) → model.
//! - [`clock`]: the injectable clock; [`duration`]: Go durations (`1h30m`), as every
//!   flag and API parameter takes them.

pub mod clock;
pub mod duration;
pub mod hash;
pub mod ids;
pub mod jaeger;
pub mod jaeger_kafka;
pub mod otlp;
pub mod otlp_json;
#[cfg(feature = "pem")]
pub mod pem;
pub mod span;
pub mod telemetry;
pub mod tenancy;
pub mod zipkin;
pub mod zipkin_proto;

pub use ids::{SpanId, TraceId};
pub use span::{AnyValue, Event, KeyValue, Link, Resource, Scope, Span, SpanKind, Status, StatusCode};

pub use tenancy::{
    tenant_label, validate_tenant, Tenancy, TenantError, DEFAULT_TENANT, KAFKA_TENANT_HEADER, TENANT_HEADER,
};

#[cfg(any(test, feature = "testing"))]
pub mod testing;
