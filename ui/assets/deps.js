// The service map: the graph from /api/dependencies for a chosen window, with call
// counts on the edges. Services are laid out in layers by their distance from the
// services nobody calls; clicking one searches its traces.

import { h, svg, clear, go } from './dom.js';
import { getJSONWithNote, qs } from './api.js';
import { colorFor } from './format.js';

const WINDOWS = [['1h', 3600e3], ['6h', 6 * 3600e3], ['24h', 86400e3], ['7d', 7 * 86400e3]];

export function renderDependencies(el, params) {
  const controller = new AbortController();
  const chosen = WINDOWS.find(([k]) => k === params.get('lookback')) || WINDOWS[2];
  const select = h('select', { id: 'deps-lookback', 'aria-label': 'Window' }, WINDOWS.map(([k]) => h('option', { value: k }, `Last ${k}`)));
  select.value = chosen[0];
  select.addEventListener('change', () => go(`/dependencies?lookback=${select.value}`));
  const body = h('div', { id: 'deps-body' }, h('p', { class: 'muted' }, 'Loading the service map…'));
  el.append(h('div', { class: 'pad' }, h('div', { class: 'row' }, h('h2', {}, 'Service map'), h('span', { class: 'spacer' }), select), body));
  getJSONWithNote(`/api/dependencies${qs({ endTs: Date.now(), lookback: chosen[1] })}`, { signal: controller.signal }).then(({ body: r, note }) => {
    clear(body).append(...[note ? h('div', { class: 'warning-box', id: 'deps-partial', role: 'status' }, `Partial map: ${note}.`) : null, renderGraph(r.data || [])].filter(Boolean));
  }).catch((e) => {
    if (e.name !== 'AbortError') clear(body).append(h('div', { class: 'error-box', role: 'alert' }, e.message));
  });
  return () => controller.abort();
}

/** Layers: each service sits one below the deepest of its callers (cycles cut). */
export function layout(edges) {
  const names = [...new Set(edges.flatMap((e) => [e.parent, e.child]))].sort();
  const callers = new Map(names.map((n) => [n, []]));
  for (const e of edges) if (e.parent !== e.child) callers.get(e.child).push(e.parent);
  const layer = new Map();
  // Longest-path layering, bounded: a cycle would otherwise raise layers forever.
  for (const n of names) layer.set(n, 0);
  for (let round = 0; round < names.length; round++) {
    let changed = false;
    for (const n of names) for (const c of callers.get(n)) {
      const want = layer.get(c) + 1;
      if (want > layer.get(n) && want < names.length) { layer.set(n, want); changed = true; }
    }
    if (!changed) break;
  }
  return { names, layer };
}

function renderGraph(edges) {
  if (!edges.length) return h('div', { class: 'empty', id: 'deps-empty' }, h('h3', {}, 'No calls between services in this window'), h('p', { class: 'muted' }, 'The map is built from traces whose spans cross services.'));
  const { names, layer } = layout(edges);
  const byLayer = new Map();
  for (const n of names) {
    const l = layer.get(n);
    if (!byLayer.has(l)) byLayer.set(l, []);
    byLayer.get(l).push(n);
  }
  const layers = [...byLayer.keys()].sort((a, b) => a - b);
  const colW = 230, rowH = 70, W = Math.max(600, layers.length * colW + 40);
  const H = Math.max(200, Math.max(...[...byLayer.values()].map((l) => l.length)) * rowH + 40);
  const pos = new Map();
  layers.forEach((l, k) => byLayer.get(l).forEach((n, j, all) => pos.set(n, [40 + k * colW, 20 + (H - 40) * ((j + 0.5) / all.length)])));
  const g = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: 'deps', id: 'deps-graph', role: 'img', 'aria-label': 'Service map' },
    svg('defs', {}, svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrow' }))));
  for (const e of edges) {
    const [x1, y1] = pos.get(e.parent), [x2, y2] = pos.get(e.child);
    const self = e.parent === e.child;
    const sx = x1 + 150, ex = self ? x1 + 150 : x2;
    const d = self ? `M ${sx} ${y1 - 8} c 40 -30 40 30 0 16` : `M ${sx} ${y1} C ${(sx + ex) / 2} ${y1}, ${(sx + ex) / 2} ${y2}, ${ex} ${y2}`;
    g.append(svg('path', { d, class: 'edge', 'marker-end': 'url(#arrow)', dataset: { edge: `${e.parent}->${e.child}` } }),
      svg('text', { x: (sx + ex) / 2 + (self ? 30 : 0), y: (y1 + y2) / 2 - 6, class: 'edge-label', 'text-anchor': 'middle' },
        `${e.callCount} call${e.callCount === 1 ? '' : 's'}${e.errorCount ? ` · ${Math.round((100 * e.errorCount) / e.callCount)}% errors` : ''}`));
  }
  names.forEach((n, i) => {
    const [x, y] = pos.get(n);
    const node = svg('g', { class: 'node', tabindex: 0, role: 'link', dataset: { service: n } },
      svg('rect', { x, y: y - 16, width: 150, height: 32, rx: 8, fill: colorFor(i) }),
      svg('text', { x: x + 75, y: y + 5, 'text-anchor': 'middle', class: 'node-label' }, n.length > 20 ? `${n.slice(0, 19)}…` : n),
      svg('title', {}, `${n}: click to search its traces`));
    node.addEventListener('click', () => go(`/search?service=${encodeURIComponent(n)}`));
    node.addEventListener('keydown', (e) => { if (e.key === 'Enter') go(`/search?service=${encodeURIComponent(n)}`); });
    g.append(node);
  });
  return h('div', { class: 'deps-wrap' }, g);
}
