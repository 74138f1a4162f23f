//! `GET /api/traces/{id}` with a streamed body: the Jaeger JSON of a trace is written a
//! few hundred spans at a time, and each span is dropped once written. A 50,000-span
//! trace so never exists as a whole JSON tree or a whole JSON text in memory, and the
//! first bytes leave before the last span is converted.
//!
//! The bytes are exactly those of the buffered envelope (`{"data":[trace],"total":1,
//! ...}`); a property test holds the two together.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use tracekeeper_model::jaeger::{trace_id_text, Processes, SpanJson};
use tracekeeper_model::Span;

/// Spans per body chunk: ~1 ms of work, so the runtime thread is never held long.
const SPANS_PER_CHUNK: usize = 200;

/// The streamed response for one found trace (`spans` non-empty).
pub fn trace_response(spans: Vec<Span>, warnings: Vec<String>) -> Response {
    let chunks = TraceChunks::new(spans, warnings, SPANS_PER_CHUNK);
    let stream = futures::stream::iter(chunks.map(Ok::<_, Infallible>));
    ([(CONTENT_TYPE, "application/json")], Body::from_stream(stream)).into_response()
}

/// The envelope's bytes, chunk by chunk.
struct TraceChunks {
    spans: std::vec::IntoIter<Span>,
    trace_id: String,
    processes: Processes,
    warnings: Vec<String>,
    per_chunk: usize,
    started: bool,
    finished: bool,
}

impl TraceChunks {
    fn new(spans: Vec<Span>, warnings: Vec<String>, per_chunk: usize) -> Self {
        Self {
            trace_id: trace_id_text(&spans),
            spans: spans.into_iter(),
            processes: Processes::default(),
            warnings,
            per_chunk,
            started: false,
            finished: false,
        }
    }
}

/// Serializing our own types into memory has no way to fail.
fn write_json(out: &mut Vec<u8>, value: &impl serde::Serialize) {
    serde_json::to_writer(out, value).expect("serializing to memory");
}

impl Iterator for TraceChunks {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.finished {
            return None;
        }
        let mut out = Vec::with_capacity(self.per_chunk * 1024);
        if !self.started {
            out.extend_from_slice(br#"{"data":[{"traceID":"#);
            write_json(&mut out, &self.trace_id);
            out.extend_from_slice(br#","spans":["#);
        }
        for span in self.spans.by_ref().take(self.per_chunk) {
            if self.started {
                out.push(b',');
            }
            self.started = true;
            let process = self.processes.number_of(&span.resource);
            write_json(&mut out, &SpanJson { span: &span, process });
        }
        if self.spans.len() == 0 {
            out.extend_from_slice(br#"],"processes":"#);
            write_json(&mut out, &self.processes);
            out.extend_from_slice(br#","warnings":"#);
            write_json(&mut out, &(!self.warnings.is_empty()).then_some(&self.warnings));
            out.extend_from_slice(br#"}],"total":1,"limit":0,"offset":0,"errors":null}"#);
            self.finished = true;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use tracekeeper_model::jaeger::to_trace;
    use tracekeeper_model::testing::arb_spans;

    use super::*;

    proptest! {
        #[test]
        fn streamed_bytes_equal_the_buffered_envelope(
            spans in arb_spans(),
            warnings in proptest::collection::vec(".{0,6}", 0..2),
            per_chunk in 1usize..4,
        ) {
            let buffered = serde_json::to_vec(&crate::jaeger_api::Envelope {
                data: vec![to_trace(&spans, warnings.clone())],
                total: 1,
                limit: 0,
                offset: 0,
                errors: None,
            })
            .unwrap();
            let streamed: Vec<u8> = TraceChunks::new(spans, warnings, per_chunk).flatten().collect();
            prop_assert_eq!(String::from_utf8(streamed).unwrap(), String::from_utf8(buffered).unwrap());
        }
    }
}
