//! Generates the Rust for Jaeger's gRPC APIs from the vendored protos (`proto/`), with
//! the `protoc` that `protoc-bin-vendored` brings: nothing to install.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    let protos = [
        "proto/jaeger-idl/api_v2/query.proto",
        "proto/jaeger-idl/api_v3/query_service.proto",
        "proto/jaeger-idl/storage/v2/trace_storage.proto",
        "proto/jaeger-idl/storage/v2/dependency_storage.proto",
    ];
    // api_v2's files import each other by bare name ("model.proto"): their directory
    // comes first, so each file is known by one name only.
    let includes =
        ["proto/jaeger-idl/api_v2", "proto/jaeger-idl", "proto/gogo", "proto/googleapis", "proto/opentelemetry"];
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .extern_path(".opentelemetry.proto", "::opentelemetry_proto::tonic")
        .compile_protos(&protos, &includes)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
