// The duration-over-time scatter plot of search results. SVG, one circle per trace;
// a click opens the trace. Error traces are drawn hollow-red.

import { svg, h } from './dom.js';
import { formatDuration, formatTime } from './format.js';

const W = 900, H = 180, PAD = { l: 60, r: 16, t: 12, b: 28 };

export function renderScatter(traces, open, colorOf) {
  const xs = traces.map((t) => t.start), ys = traces.map((t) => t.duration);
  let x0 = Math.min(...xs), x1 = Math.max(...xs);
  if (x1 - x0 < 1e6) { x0 -= 5e5; x1 += 5e5; }
  const pad = (x1 - x0) * 0.04;
  x0 -= pad;
  x1 += pad;
  const y1 = Math.max(...ys, 1) * 1.1;
  const sx = (x) => PAD.l + ((x - x0) / (x1 - x0)) * (W - PAD.l - PAD.r);
  const sy = (y) => H - PAD.b - (y / y1) * (H - PAD.t - PAD.b);
  const maxSpans = Math.max(...traces.map((t) => t.spanCount), 1);
  const plot = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'scatter', id: 'scatter', role: 'img', 'aria-label': 'Trace duration over start time' });
  for (let i = 0; i <= 3; i++) {
    const y = (y1 * i) / 3;
    plot.append(svg('line', { x1: PAD.l, x2: W - PAD.r, y1: sy(y), y2: sy(y), class: 'grid' }),
      svg('text', { x: PAD.l - 6, y: sy(y) + 4, 'text-anchor': 'end', class: 'axis' }, formatDuration(y)));
  }
  for (const [x, anchor] of [[x0, 'start'], [x1, 'end']]) {
    plot.append(svg('text', { x: sx(x), y: H - 8, 'text-anchor': anchor, class: 'axis' }, formatTime(x).slice(11, 19)));
  }
  for (const t of traces) {
    const r = 4 + 6 * Math.sqrt(t.spanCount / maxSpans);
    const dot = svg('circle', {
      cx: sx(t.start), cy: sy(t.duration), r, class: t.errorCount ? 'point error' : 'point',
      fill: t.errorCount ? 'none' : colorOf(t.rootService), stroke: t.errorCount ? '#ef4444' : colorOf(t.rootService),
      tabindex: 0, role: 'link', dataset: { traceId: t.traceId },
    }, svg('title', {}, `${t.rootService}: ${t.rootName}\n${formatDuration(t.duration)}, ${t.spanCount} spans\n${formatTime(t.start)}`));
    dot.addEventListener('click', () => open(t.traceId));
    dot.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(t.traceId); });
    plot.append(dot);
  }
  return h('div', { class: 'scatter-wrap' }, plot);
}
