//! The service graph, computed at query time from stored traces: one edge per parent →
//! child span pair whose services differ, counted per call, with the child's errors.

use std::collections::{BTreeMap, HashMap};

use tracekeeper_model::Span;

/// Most traces a dependency graph is computed from: the newest of the window. A
/// window holding more answers from these and says so
/// ([`crate::budget::PARTIAL_HEADER`]).
pub const MAX_TRACES: usize = 10_000;

/// The service graph of `tenant`'s traces with a posting of `term` in
/// `[start_ns, end_ns]`, from at most the newest [`MAX_TRACES`] of them, and the note
/// saying so when the window held more.
pub async fn graph(
    engine: &crate::QueryEngine,
    tenant: &str,
    term: tracekeeper_storage::IndexTerm,
    start_ns: u64,
    end_ns: u64,
) -> Result<(Vec<DependencyLink>, Option<String>), tracekeeper_storage::StorageError> {
    let traces = engine.traces_in(tenant, term, start_ns, end_ns, MAX_TRACES).await?;
    let note = (traces.len() >= MAX_TRACES)
        .then(|| format!("computed from the newest {MAX_TRACES} traces of the window; narrow the window to cover all"));
    Ok((links(&traces), note))
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DependencyLink {
    pub parent: String,
    pub child: String,
    pub call_count: u64,
    pub error_count: u64,
}

/// Links over `traces`, sorted by (parent, child).
pub fn links(traces: &[Vec<Span>]) -> Vec<DependencyLink> {
    let mut edges: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for spans in traces {
        let by_id: HashMap<_, _> = spans.iter().map(|s| (s.span_id, s)).collect();
        for span in spans {
            let Some(parent) = span.parent_span_id.and_then(|p| by_id.get(&p)) else { continue };
            let (from, to) = (parent.service_name(), span.service_name());
            if from != to {
                let edge = edges.entry((from.to_string(), to.to_string())).or_default();
                edge.0 += 1;
                edge.1 += u64::from(span.is_error());
            }
        }
    }
    edges
        .into_iter()
        .map(|((parent, child), (call_count, error_count))| DependencyLink { parent, child, call_count, error_count })
        .collect()
}

#[cfg(test)]
mod tests {
    use tracekeeper_model::{SpanId, StatusCode};
    use tracekeeper_storage::testing::span;

    use super::*;

    #[test]
    fn only_cross_service_parent_child_pairs_count() {
        let root = span(1, 1, "web", "GET /", 10);
        let mut db = span(1, 2, "db", "query", 11);
        db.parent_span_id = Some(SpanId([1; 8]));
        db.status.code = StatusCode::Error;
        let mut internal = span(1, 3, "web", "render", 12);
        internal.parent_span_id = Some(SpanId([1; 8]));
        let mut orphan = span(1, 4, "cache", "get", 13);
        orphan.parent_span_id = Some(SpanId([9; 8]));
        let mut db2 = span(2, 2, "db", "query", 20);
        db2.parent_span_id = Some(SpanId([1; 8]));
        let traces = vec![vec![root.clone(), db, internal, orphan], vec![span(2, 1, "web", "GET /", 20), db2]];
        let expected = DependencyLink { parent: "web".into(), child: "db".into(), call_count: 2, error_count: 1 };
        assert_eq!(links(&traces), [expected]);
    }
}
