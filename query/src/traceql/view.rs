//! One trace prepared for evaluation: each span's parent and children, a pre-order of
//! the tree (parents before children, so that relations to ancestors are computed in
//! one pass), and Tempo's nested-set numbers.

use std::collections::HashMap;

use tracekeeper_model::Span;

use crate::engine::TraceSummary;

pub struct TraceView<'a> {
    pub(super) spans: &'a [Span],
    pub(super) summary: TraceSummary,
    pub(super) parent_of: Vec<Option<usize>>,
    pub(super) child_count: Vec<u32>,
    /// Every span once, each after its parent.
    pub(super) preorder: Vec<usize>,
    /// (left, right, parent's left) per span. Roots have parent -1; spans whose parent
    /// is missing from the trace are numbered as roots of their own, with parent 0.
    pub(super) nested: Vec<(i64, i64, i64)>,
    pub(super) trace_id: String,
}

impl<'a> TraceView<'a> {
    pub fn new(spans: &'a [Span]) -> Option<Self> {
        let summary = TraceSummary::of(spans)?;
        let index: HashMap<_, _> = spans.iter().enumerate().map(|(i, s)| (s.span_id, i)).collect();
        let mut parent_of: Vec<Option<usize>> =
            spans.iter().map(|s| s.parent_span_id.and_then(|p| index.get(&p).copied())).collect();
        // A span that is its own ancestor would never be reached from a root: such
        // cycles (hostile or broken input) are cut where they are found.
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
        for (i, parent) in parent_of.iter().enumerate() {
            if let Some(p) = parent {
                children[*p].push(i);
            }
        }
        for list in &mut children {
            list.sort_by_key(|&c| (spans[c].start_ns, c));
        }
        let child_count = children.iter().map(|c| c.len() as u32).collect();
        let mut roots: Vec<usize> = (0..spans.len()).filter(|&i| parent_of[i].is_none()).collect();
        roots.sort_by_key(|&r| (spans[r].parent_span_id.is_some(), spans[r].start_ns, r));
        let mut walk = Walk {
            children: &children,
            nested: vec![(0, 0, 0); spans.len()],
            preorder: Vec::with_capacity(spans.len()),
            seen: vec![false; spans.len()],
            counter: 0,
        };
        for &root in &roots {
            walk.from(root, if spans[root].parent_span_id.is_none() { -1 } else { 0 });
        }
        for (i, parent) in parent_of.iter_mut().enumerate() {
            if !walk.seen[i] {
                // Only members of a parent cycle are left: the cycle is cut here.
                *parent = None;
                walk.from(i, 0);
            }
        }
        let Walk { nested, preorder, .. } = walk;
        let trace_id = summary.trace_id.to_hex();
        Some(Self { spans, summary, parent_of, child_count, preorder, nested, trace_id })
    }

    pub fn spans(&self) -> &'a [Span] {
        self.spans
    }
}

/// A depth-first walk numbering the nested sets, without recursion (a trace may be a
/// chain of 100,000 spans).
struct Walk<'c> {
    children: &'c [Vec<usize>],
    nested: Vec<(i64, i64, i64)>,
    preorder: Vec<usize>,
    seen: Vec<bool>,
    counter: i64,
}

impl Walk<'_> {
    fn enter(&mut self, span: usize, parent_left: i64) {
        self.seen[span] = true;
        self.counter += 1;
        self.nested[span] = (self.counter, 0, parent_left);
        self.preorder.push(span);
    }

    fn from(&mut self, root: usize, parent_left: i64) {
        self.enter(root, parent_left);
        // (span, next child to visit)
        let mut stack = vec![(root, 0usize)];
        while let Some(&mut (span, ref mut next)) = stack.last_mut() {
            match self.children[span].get(*next) {
                Some(&child) => {
                    *next += 1;
                    if !self.seen[child] {
                        self.enter(child, self.nested[span].0);
                        stack.push((child, 0));
                    }
                }
                None => {
                    self.counter += 1;
                    self.nested[span].1 = self.counter;
                    stack.pop();
                }
            }
        }
    }
}
