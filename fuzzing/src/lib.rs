//! The fuzz targets: every decoder and parser that reads bytes from a client.
//!
//! Each target takes arbitrary bytes and must return without panicking, whatever they
//! are; where a decoder accepts its input, the target also checks what must then hold.
//! The same functions run under libFuzzer (`fuzz/`, driven by `ops/fuzz.sh`) and over
//! the checked-in corpus as an ordinary test (`tests/corpus.rs`), so a crash found once
//! stays fixed.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tracekeeper_model::{duration, otlp, otlp_json, zipkin};
use tracekeeper_query::params::Params;
use tracekeeper_query::{jaeger_api, jaeger_v3, tempo_api, traceql, zipkin_api};

/// A fixed "now" for the search parsers, so a run is reproducible.
const NOW_NS: u64 = 1_750_000_000_000_000_000;

/// A fuzz target: arbitrary bytes in, a panic on anything wrong.
pub type Target = fn(&[u8]);

/// Every target by name: the name is its directory under `fuzz/corpus/` and its binary
/// under `fuzz/fuzz_targets/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("otlp_protobuf", otlp_protobuf),
    ("otlp_json", otlp_json),
    ("zipkin_json", zipkin_json),
    ("traceql", traceql),
    ("search_params", search_params),
    ("go_duration", go_duration),
];

fn spans_in(request: &ExportTraceServiceRequest) -> usize {
    request.resource_spans.iter().flat_map(|rs| &rs.scope_spans).map(|ss| ss.spans.len()).sum()
}

/// OTLP protobuf, as the gRPC and HTTP receivers and the indexer decode it. Every span
/// is either kept or refused with a reason, and what is kept encodes and decodes again.
pub fn otlp_protobuf(data: &[u8]) {
    let Ok(request) = ExportTraceServiceRequest::decode(data) else { return };
    let total = spans_in(&request);
    let decoded = otlp::from_request(request);
    assert_eq!(decoded.spans.len() + decoded.rejected.len(), total, "every span kept or refused");
    let again = otlp::to_request(&decoded.spans).encode_to_vec();
    let reread = ExportTraceServiceRequest::decode(again.as_slice()).expect("our own encoding decodes");
    assert_eq!(spans_in(&reread), decoded.spans.len());
}

/// OTLP JSON, as the HTTP receiver decodes it.
pub fn otlp_json(data: &[u8]) {
    let Ok(decoded) = otlp_json::decode_request(data) else { return };
    let total = spans_in(&decoded.request);
    let spans = otlp::from_request(decoded.request);
    assert_eq!(spans.spans.len() + spans.rejected.len(), total, "every span kept or refused");
}

/// Zipkin v2 JSON, as the Zipkin receiver decodes it; what is kept converts back.
pub fn zipkin_json(data: &[u8]) {
    let Ok(decoded) = zipkin::decode(data) else { return };
    for span in &decoded.spans {
        let back = zipkin::to_zipkin(span);
        assert_eq!(back.trace_id.len() % 16, 0, "{back:?}");
    }
}

/// TraceQL, as `/api/search?q=` parses it; a parsed query also yields its index hint
/// and the fields it reads.
pub fn traceql(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(query) = traceql::parse(text) {
        let _ = query.hint();
        let _ = query.fields();
    }
}

/// A query string, through the search parsers of every API: Jaeger's `tags` JSON and
/// durations, Zipkin's `annotationQuery`, Tempo's logfmt `tags`, TraceQL and durations,
/// and Jaeger v3's RFC 3339 times. An accepted search has a sensible range.
pub fn search_params(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let params = Params::parse(Some(text));
    let searches = [
        jaeger_api::parse_search(&params, NOW_NS).ok(),
        zipkin_api::parse_search(&params, NOW_NS).ok(),
        jaeger_v3::parse_search(&params).ok(),
        tempo_api::parse_search(&params, NOW_NS).ok().map(|s| s.query),
    ];
    for query in searches.into_iter().flatten() {
        assert!(query.start_ns <= query.end_ns, "an accepted range is ordered: {query:?}");
        assert!(query.limit > 0, "an accepted search returns something: {query:?}");
    }
}

/// Go durations, as every duration parameter and flag reads them.
pub fn go_duration(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = duration::parse_go_duration(text);
}
