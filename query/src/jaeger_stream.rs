//! `GET /api/traces/{id}` with a streamed body: the trace is read from storage a page
//! at a time ([`TracePages`]), and each page is written as Jaeger JSON and dropped
//! before the next is read. A 50,000-span trace so never exists whole in memory, as
//! spans, as a JSON tree or as JSON text, and the first bytes leave before the last
//! span is read.
//!
//! The bytes are exactly those of the buffered envelope (`{"data":[trace],"total":1,
//! ...}`); a property test holds the two together.

use std::sync::Arc;

use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use tracekeeper_model::jaeger::{trace_id_text, Processes, SpanJson};
use tracekeeper_model::Span;

use crate::engine::TracePages;
use crate::QueryState;

/// The streamed response for a found trace: `first` is its first page (non-empty),
/// `pages` the rest.
pub fn trace_response(first: Vec<Span>, pages: TracePages, state: Arc<QueryState>) -> Response {
    let json = TraceJson::new(trace_id_text(&first));
    let stream = futures::stream::unfold(Some((json, pages, Some(first))), move |step| {
        let state = Arc::clone(&state);
        async move {
            let (mut json, mut pages, pending) = step?;
            let page = match pending {
                Some(page) => Some(page),
                None => match pages.next().await {
                    Ok(page) => page,
                    Err(e) => {
                        // The status line is gone: all that is left is to cut the body
                        // short, which the client sees as a failed read.
                        tracing::warn!(error = %e, "reading a trace page failed mid-response");
                        return Some((Err(std::io::Error::other("reading the trace failed")), None));
                    }
                },
            };
            match page {
                // One body chunk per page.
                Some(page) => Some((Ok(json.spans(&page)), Some((json, pages, None)))),
                None => Some((Ok(json.finish(&state.truncation_warning(pages.truncated()))), None)),
            }
        }
    });
    ([(CONTENT_TYPE, "application/json")], Body::from_stream(stream)).into_response()
}

/// Writes the envelope of one trace, spans first and processes last, as they come.
struct TraceJson {
    trace_id: String,
    processes: Processes,
    started: bool,
}

/// Serializing our own types into memory has no way to fail.
fn write_json(out: &mut Vec<u8>, value: &impl serde::Serialize) {
    serde_json::to_writer(out, value).expect("serializing to memory");
}

impl TraceJson {
    fn new(trace_id: String) -> Self {
        Self { trace_id, processes: Processes::default(), started: false }
    }

    /// The bytes for `spans`, after the envelope's head before the first of them.
    fn spans(&mut self, spans: &[Span]) -> Vec<u8> {
        let mut out = Vec::with_capacity(spans.len() * 1024 + 64);
        for span in spans {
            if self.started {
                out.push(b',');
            } else {
                out.extend_from_slice(br#"{"data":[{"traceID":"#);
                write_json(&mut out, &self.trace_id);
                out.extend_from_slice(br#","spans":["#);
                self.started = true;
            }
            let process = self.processes.number_of(&span.resource);
            write_json(&mut out, &SpanJson { span, process });
        }
        out
    }

    /// The envelope's tail: the processes seen, and the warnings.
    fn finish(&self, warnings: &[String]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(br#"],"processes":"#);
        write_json(&mut out, &self.processes);
        out.extend_from_slice(br#","warnings":"#);
        write_json(&mut out, &(!warnings.is_empty()).then_some(warnings));
        out.extend_from_slice(br#"}],"total":1,"limit":0,"offset":0,"errors":null}"#);
        out
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
            per_page in 1usize..4,
        ) {
            prop_assume!(!spans.is_empty());
            let buffered = serde_json::to_vec(&crate::jaeger_api::Envelope {
                data: vec![to_trace(&spans, warnings.clone())],
                total: 1,
                limit: 0,
                offset: 0,
                errors: None,
            })
            .unwrap();
            let mut json = TraceJson::new(trace_id_text(&spans));
            let mut streamed: Vec<u8> = spans.chunks(per_page).flat_map(|page| json.spans(page)).collect();
            streamed.extend(json.finish(&warnings));
            prop_assert_eq!(String::from_utf8(streamed).unwrap(), String::from_utf8(buffered).unwrap());
        }
    }
}
