// The metrics page: a TraceQL metrics query (`{ } | rate() by (resource.service.name)`)
// over a lookback at a step, charted as one line per series from
// /api/metrics/query_range. Like the search page, its whole state lives in the URL.

import { h, svg, clear, go } from './dom.js';
import { getJSON, qs } from './api.js';
import { formatTime, colorFor } from './format.js';
import { attachCompletion } from './complete.js';

const LOOKBACKS = [['15m', 'Last 15 minutes'], ['1h', 'Last hour'], ['6h', 'Last 6 hours'], ['24h', 'Last 24 hours'], ['7d', 'Last 7 days']];
const SECONDS = { m: 60, h: 3600, d: 86400 };
const EXAMPLE = '{ } | rate() by (resource.service.name)';
const W = 900, H = 260, PAD = { l: 64, r: 16, t: 12, b: 28 };

/** The page's state from the URL, with each field checked. */
export function metricsFromParams(q) {
  const state = { q: q.get('q') || '', lookback: q.get('lookback') || '1h', step: q.get('step') || '60s' };
  const errors = [];
  const m = /^(\d+)([mhd])$/.exec(state.lookback);
  if (!m) errors.push('Lookback: a number of minutes, hours or days, such as 1h.');
  if (!/^\d+(\.\d+)?(ms|s|m|h)$/.test(state.step)) errors.push('Step: a duration such as 30s, 1m or 5m.');
  const seconds = m ? Number(m[1]) * SECONDS[m[2]] : 3600;
  return { state, errors, seconds };
}

function labelText(labels) {
  if (!labels?.length) return '(all spans)';
  return labels.map((l) => {
    const v = l.value || {};
    const text = v.stringValue ?? v.intValue ?? v.doubleValue ?? v.boolValue ?? '';
    return `${l.key}=${text}`;
  }).join(', ');
}

function formatValue(v) {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(0);
  if (a >= 1) return v.toFixed(2).replace(/\.?0+$/, '');
  return v.toPrecision(2);
}

export function renderChart(series) {
  const points = series.flatMap((s) => (s.samples || []).map((p) => [Number(p.timestampMs), p.value]));
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  let x0 = Math.min(...xs), x1 = Math.max(...xs);
  if (x1 - x0 < 1000) { x0 -= 30_000; x1 += 30_000; }
  const y1 = Math.max(...ys, 0) * 1.1 || 1;
  const sx = (x) => PAD.l + ((x - x0) / (x1 - x0)) * (W - PAD.l - PAD.r);
  const sy = (y) => H - PAD.b - (y / y1) * (H - PAD.t - PAD.b);
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'metrics-chart', id: 'metrics-chart', role: 'img', 'aria-label': 'Metrics over time' });
  for (let i = 0; i <= 4; i++) {
    const y = (y1 * i) / 4;
    chart.append(svg('line', { x1: PAD.l, x2: W - PAD.r, y1: sy(y), y2: sy(y), class: 'grid' }),
      svg('text', { x: PAD.l - 6, y: sy(y) + 4, 'text-anchor': 'end', class: 'axis' }, formatValue(y)));
  }
  for (const [x, anchor] of [[x0, 'start'], [x1, 'end']]) {
    chart.append(svg('text', { x: sx(x), y: H - 8, 'text-anchor': anchor, class: 'axis' }, formatTime(x * 1000).slice(11, 19)));
  }
  series.forEach((s, i) => {
    const samples = (s.samples || []).map((p) => [Number(p.timestampMs), p.value]);
    const d = samples.map(([x, y], j) => `${j ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
    chart.append(svg('path', { d, class: 'series', stroke: colorFor(i), fill: 'none', dataset: { series: i } },
      svg('title', {}, labelText(s.labels))));
    for (const [x, y] of samples) {
      chart.append(svg('circle', { cx: sx(x), cy: sy(y), r: 2.5, fill: colorFor(i), class: 'sample' },
        svg('title', {}, `${labelText(s.labels)}\n${formatTime(x * 1000)}: ${formatValue(y)}`)));
    }
  });
  const legend = h('ul', { class: 'legend', id: 'metrics-legend' }, series.map((s, i) =>
    h('li', {}, h('span', { class: 'dot', style: { background: colorFor(i) } }), labelText(s.labels))));
  return h('div', { class: 'scatter-wrap' }, chart, legend);
}

export function renderMetrics(el, params) {
  const { state, errors, seconds } = metricsFromParams(params);
  const area = h('textarea', { name: 'q', id: 'm-q', rows: 3, spellcheck: false, placeholder: EXAMPLE }, state.q);
  const lookback = h('select', { name: 'lookback', id: 'm-lookback' }, LOOKBACKS.map(([v, l]) => h('option', { value: v }, l)));
  lookback.value = state.lookback;
  const step = h('input', { name: 'step', id: 'm-step', value: state.step, size: 6 });
  const form = h('form', { class: 'search-form', id: 'metrics-form', novalidate: true },
    h('h2', {}, 'TraceQL metrics'),
    h('label', { class: 'field' }, h('span', {}, 'Query'), attachCompletion(area)),
    h('label', { class: 'field' }, h('span', {}, 'Lookback'), lookback),
    h('label', { class: 'field' }, h('span', {}, 'Step'), step),
    h('button', { type: 'submit', class: 'primary', id: 'm-run' }, 'Run'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    go(`/graph${qs({ q: area.value.trim(), lookback: lookback.value, step: step.value.trim() })}`);
  });
  const results = h('section', { class: 'results', id: 'metrics-results', 'aria-live': 'polite' });
  el.append(h('div', { class: 'search-page' }, form, results));
  if (!state.q) {
    results.append(h('div', { class: 'empty' }, h('h3', {}, 'Chart spans as time series'),
      h('p', { class: 'muted' }, 'For example ', h('code', {}, EXAMPLE), ', or ', h('code', {}, '{ status = error } | quantile_over_time(duration, .99) by (name)'), '.')));
    return;
  }
  if (errors.length) {
    results.append(h('div', { class: 'error-box', role: 'alert' }, h('ul', {}, errors.map((m) => h('li', {}, m)))));
    return;
  }
  const controller = new AbortController();
  const end = Math.floor(Date.now() / 1000);
  getJSON(`/api/metrics/query_range${qs({ q: state.q, start: end - seconds, end, step: state.step })}`, { signal: controller.signal })
    .then((body) => {
      clear(results);
      const series = body.series || [];
      if (!series.some((s) => s.samples?.length)) {
        results.append(h('div', { class: 'empty', id: 'no-series' }, h('h3', {}, 'No series'), h('p', { class: 'muted' }, 'No span in the lookback matches: widen it, or loosen the filter.')));
        return;
      }
      results.append(h('div', { class: 'results-head' }, h('strong', { id: 'series-count' }, `${series.length} series`),
        h('span', { class: 'muted' }, ` · ${body.metrics?.inspectedTraces ?? 0} traces read`)), renderChart(series));
    })
    .catch((e) => {
      if (e.name === 'AbortError') return;
      clear(results).append(h('div', { class: 'error-box', role: 'alert', id: 'metrics-error' }, e.message));
    });
  return () => controller.abort();
}
