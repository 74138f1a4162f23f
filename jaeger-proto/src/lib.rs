//! Jaeger's gRPC APIs, generated at build time from the protos Jaeger publishes
//! (`proto/README.md` says which, from where, under which licence):
//!
//! - [`api_v2`]: `jaeger.api_v2.QueryService`, Jaeger's classic query API, with its
//!   span model;
//! - [`api_v3`]: `jaeger.api_v3.QueryService`, which answers in OTLP;
//! - [`storage_v2`]: `jaeger.storage.v2.TraceReader` and `DependencyReader`, the remote
//!   storage API that Jaeger v2 reads a store through.
//!
//! OTLP messages are the `opentelemetry-proto` crate's own types.

#[allow(clippy::all, clippy::pedantic, missing_docs, rustdoc::all)]
pub mod api_v2 {
    tonic::include_proto!("jaeger.api_v2");
}

#[allow(clippy::all, clippy::pedantic, missing_docs, rustdoc::all)]
pub mod api_v3 {
    tonic::include_proto!("jaeger.api_v3");
}

#[allow(clippy::all, clippy::pedantic, missing_docs, rustdoc::all)]
pub mod storage_v2 {
    tonic::include_proto!("jaeger.storage.v2");
}
