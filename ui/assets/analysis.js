// What the trace view computes from a trace model: the critical path, per-service and
// per-operation statistics with self time, the rows the timeline shows, find, clock
// skew, and the structural diff of two traces. Every walk uses an explicit stack.

import { childrenOf } from './model.js';

/**
 * The critical path: the spans (and the parts of them) that decide when the trace
 * ends. From a span's end, walk back: the child that finished last before that point
 * is critical, the parent's own time after it is critical, and the walk continues
 * from that child's start. Children that overlap one already chosen are not.
 * Returns { onPath: Uint8Array per span, segments: [{span, from, to}] } (µs).
 */
export function criticalPath(trace) {
  const n = trace.spans.length;
  const onPath = new Uint8Array(n);
  const segments = [];
  const { start, end } = trace;
  const stack = [];
  for (const r of trace.roots) stack.push([r, end[r]]);
  // Only the root that ends last decides the trace's end.
  if (stack.length > 1) {
    stack.sort((a, b) => a[1] - b[1]);
    stack.splice(0, stack.length - 1);
  }
  while (stack.length) {
    const [i, until] = stack.pop();
    onPath[i] = 1;
    const kids = Array.from(childrenOf(trace, i)).sort((a, b) => end[b] - end[a] || start[b] - start[a]);
    let cursor = until;
    for (const c of kids) {
      if (cursor <= start[i]) break;
      const childEnd = Math.min(end[c], until);
      if (childEnd > cursor) continue; // overlaps a child already on the path
      if (start[c] >= cursor) continue;
      if (childEnd < cursor) segments.push({ span: i, from: childEnd, to: cursor });
      stack.push([c, childEnd]);
      cursor = Math.max(start[c], start[i]);
    }
    if (cursor > start[i]) segments.push({ span: i, from: start[i], to: cursor });
  }
  segments.sort((a, b) => a.from - b.from);
  return { onPath, segments };
}

/** Each span's self time: its duration less the union of its children's (clipped). */
export function selfTimes(trace) {
  const n = trace.spans.length;
  const self = new Float64Array(n);
  const { start, end } = trace;
  for (let i = 0; i < n; i++) {
    const kids = childrenOf(trace, i); // sorted by start
    let covered = 0, runStart = -Infinity, runEnd = -Infinity;
    for (const c of kids) {
      const s = Math.max(start[c], start[i]), e = Math.min(end[c], end[i]);
      if (e <= s) continue;
      if (s > runEnd) {
        if (runEnd > runStart) covered += runEnd - runStart;
        runStart = s;
        runEnd = e;
      } else if (e > runEnd) runEnd = e;
    }
    if (runEnd > runStart) covered += runEnd - runStart;
    self[i] = Math.max(0, end[i] - start[i] - covered);
  }
  return self;
}

/** Rows for the statistics table: by service, or by service and operation. */
export function statistics(trace, by = 'service') {
  const self = selfTimes(trace);
  const groups = new Map();
  trace.spans.forEach((s, i) => {
    const key = by === 'service' ? s.service : `${s.service}\u0000${s.name}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { service: s.service, operation: by === 'service' ? '' : s.name, count: 0, errors: 0, total: 0, self: 0, max: 0 }));
    g.count++;
    if (s.error) g.errors++;
    g.total += s.duration;
    g.self += self[i];
    if (s.duration > g.max) g.max = s.duration;
  });
  return [...groups.values()].sort((a, b) => b.self - a.self);
}

/**
 * The timeline's rows in pre-order: collapsed subtrees are skipped, and when a filter
 * is given only the spans it accepts are listed (their tree order kept).
 */
export function visibleRows(trace, collapsed, accept) {
  const out = [];
  const stack = trace.roots.slice().reverse();
  while (stack.length) {
    const i = stack.pop();
    if (!accept || accept(i)) out.push(i);
    if (collapsed[i] && !accept) continue;
    const a = trace.childStart[i], b = trace.childStart[i + 1];
    for (let c = b - 1; c >= a; c--) stack.push(trace.childList[c]);
  }
  return Int32Array.from(out);
}

/** Spans whose text (name, service, ids, attribute keys and values) contains `query`. */
export function findSpans(trace, query) {
  const q = query.trim().toLowerCase();
  if (!q) return [];
  const out = [];
  const has = (v) => v !== undefined && v !== null && String(v).toLowerCase().includes(q);
  for (const i of trace.order) {
    const s = trace.spans[i];
    if (has(s.name) || has(s.service) || has(s.spanId)) {
      out.push(i);
      continue;
    }
    const attrs = s.format === 'jaeger' ? s.raw.tags : s.raw.attributes;
    if ((attrs || []).some((t) => has(t.key) || has(t.value?.stringValue ?? t.value?.intValue ?? t.value))) out.push(i);
  }
  return out;
}

/** Spans that start before their parent or end after it: a clock-skew warning. */
export function skewed(trace) {
  const n = trace.spans.length;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const p = trace.parent[i];
    if (p >= 0 && (trace.start[i] < trace.start[p] || trace.end[i] > trace.end[p])) out[i] = 1;
  }
  return out;
}

/**
 * A structural diff: both traces become trees of (service, operation) paths from
 * their roots; each node counts the spans at that path on each side, with their
 * total durations. Rows come back in tree order with their depth.
 */
export function diffTraces(a, b) {
  const nodes = new Map(); // path -> node
  const rootKeys = [];
  const add = (trace, side) => {
    const pathOf = new Array(trace.spans.length);
    for (const i of trace.order) {
      const s = trace.spans[i];
      const label = `${s.service}\u0000${s.name}`;
      const p = trace.parent[i];
      const path = p >= 0 ? `${pathOf[p]}\u0001${label}` : label;
      pathOf[i] = path;
      let node = nodes.get(path);
      if (!node) {
        node = { path, service: s.service, operation: s.name, parent: p >= 0 ? pathOf[p] : null, children: [], count: [0, 0], duration: [0, 0], errors: [0, 0] };
        nodes.set(path, node);
        if (p >= 0) nodes.get(pathOf[p]).children.push(path);
        else rootKeys.push(path);
      }
      node.count[side]++;
      node.duration[side] += s.duration;
      if (s.error) node.errors[side]++;
    }
  };
  add(a, 0);
  add(b, 1);
  const rows = [];
  const stack = rootKeys.slice().reverse().map((k) => [k, 0]);
  while (stack.length) {
    const [key, depth] = stack.pop();
    const node = nodes.get(key);
    rows.push({ ...node, depth, side: node.count[1] === 0 ? 'a' : node.count[0] === 0 ? 'b' : 'both' });
    for (let c = node.children.length - 1; c >= 0; c--) stack.push([node.children[c], depth + 1]);
  }
  const totals = {
    onlyA: rows.filter((r) => r.side === 'a').length,
    onlyB: rows.filter((r) => r.side === 'b').length,
    both: rows.filter((r) => r.side === 'both').length,
  };
  return { rows, totals };
}
