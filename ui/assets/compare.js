// Comparing two traces: a structural diff of their (service, operation) paths, with
// span counts and total durations per side, coloured by the side that dominates.

import { h, clear, go } from './dom.js';
import { fetchTrace, ApiError } from './api.js';
import { diffTraces } from './analysis.js';
import { formatDuration } from './format.js';

export function renderCompare(el, { a, b }) {
  const controller = new AbortController();
  const inputA = h('input', { id: 'compare-a', value: a, placeholder: 'trace ID A', size: 34, spellcheck: false });
  const inputB = h('input', { id: 'compare-b', value: b, placeholder: 'trace ID B', size: 34, spellcheck: false });
  const form = h('form', { class: 'compare-form' }, h('h2', {}, 'Compare two traces'), inputA, ' vs ', inputB,
    h('button', { type: 'submit', class: 'primary' }, 'Compare'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (inputA.value.trim() && inputB.value.trim()) go(`/compare/${inputA.value.trim()}/${inputB.value.trim()}`);
  });
  const body = h('div', { id: 'compare-body' });
  el.append(h('div', { class: 'pad' }, form, body));
  if (!a || !b) {
    body.append(h('p', { class: 'muted' }, 'Give two trace IDs, or select two results on the search page.'));
    return () => controller.abort();
  }
  body.append(h('p', { class: 'muted' }, 'Loading both traces…'));
  const load = (id, side) => fetchTrace(id, { signal: controller.signal }).catch((e) => {
    if (e instanceof ApiError && e.status === 404) throw new ApiError(404, `Trace ${side} (${id}) was not found.`);
    throw e;
  });
  Promise.all([load(a, 'A'), load(b, 'B')]).then(([ta, tb]) => {
    clear(body).append(renderDiff(ta, tb));
  }).catch((e) => {
    if (e.name !== 'AbortError') clear(body).append(h('div', { class: 'error-box', role: 'alert', id: 'compare-error' }, e.message));
  });
  return () => controller.abort();
}

function renderDiff(ta, tb) {
  const { rows, totals } = diffTraces(ta, tb);
  const cls = (r) => {
    if (r.side === 'a') return 'only-a';
    if (r.side === 'b') return 'only-b';
    const da = r.duration[0], db = r.duration[1];
    if (r.count[0] !== r.count[1] || Math.abs(da - db) > 0.1 * Math.max(da, db)) return da > db || r.count[0] > r.count[1] ? 'more-a' : 'more-b';
    return 'same';
  };
  const traceLink = (t, label) => h('a', { href: '#', onclick: (e) => { e.preventDefault(); go(`/trace/${t.traceId}`); } }, `${label}: ${t.rootService}: ${t.rootName}`);
  return h('div', { class: 'diff' },
    h('div', { class: 'diff-summary' },
      h('div', {}, traceLink(ta, 'A'), ` — ${ta.spans.length} spans, ${formatDuration(ta.duration)}`),
      h('div', {}, traceLink(tb, 'B'), ` — ${tb.spans.length} spans, ${formatDuration(tb.duration)}`),
      h('div', { class: 'legend' },
        h('span', { class: 'only-a' }, `only in A: ${totals.onlyA}`), h('span', { class: 'only-b' }, `only in B: ${totals.onlyB}`),
        h('span', { class: 'same' }, `in both: ${totals.both}`), h('span', { class: 'more-a' }, 'A dominates'), h('span', { class: 'more-b' }, 'B dominates'))),
    h('table', { class: 'diff-table', id: 'diff-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Service: operation (path from the root)'), h('th', {}, 'Spans A'), h('th', {}, 'Spans B'), h('th', {}, 'Time A'), h('th', {}, 'Time B'), h('th', {}, 'Δ time'))),
      h('tbody', {}, rows.map((r) => h('tr', { class: cls(r), dataset: { side: r.side } },
        h('td', { style: { paddingLeft: `${Math.min(r.depth, 40) * 14 + 6}px` } }, h('strong', {}, r.service), ': ', r.operation),
        h('td', { class: 'num' }, String(r.count[0])), h('td', { class: 'num' }, String(r.count[1])),
        h('td', { class: 'num' }, r.count[0] ? formatDuration(r.duration[0]) : '—'), h('td', { class: 'num' }, r.count[1] ? formatDuration(r.duration[1]) : '—'),
        h('td', { class: 'num' }, r.side === 'both' ? `${r.duration[1] >= r.duration[0] ? '+' : '−'}${formatDuration(Math.abs(r.duration[1] - r.duration[0]))}` : '—'))))));
}
