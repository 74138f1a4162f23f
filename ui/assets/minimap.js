// The minimap: every span of the trace drawn on one canvas (pre-order, so the shape
// matches the timeline), with a window that zooms the timeline. Drag across it to
// choose a window, drag inside the window to move it, double-click to see it all.

import { h } from './dom.js';

const HEIGHT = 64;

export function createMinimap({ trace, colors, onWindow }) {
  const canvas = h('canvas', { class: 'minimap-canvas', height: HEIGHT });
  const shade = h('div', { class: 'minimap-window', id: 'minimap-window' });
  const el = h('div', { class: 'minimap', id: 'minimap', title: 'Drag to zoom the timeline; double-click to reset' }, canvas, shade);
  let win = [0, 1];
  const total = Math.max(1e-9, trace.duration);

  function draw() {
    const width = Math.max(100, el.clientWidth || 800);
    const ratio = window.devicePixelRatio || 1;
    canvas.width = width * ratio;
    canvas.height = HEIGHT * ratio;
    canvas.style.width = `${width}px`;
    canvas.style.height = `${HEIGHT}px`;
    const ctx = canvas.getContext('2d');
    ctx.scale(ratio, ratio);
    const n = trace.order.length;
    const rowH = Math.max(HEIGHT / Math.max(n, 1), 0.5);
    let lastColor = -1;
    for (let k = 0; k < n; k++) {
      const i = trace.order[k];
      const c = trace.service[i];
      if (c !== lastColor) { ctx.fillStyle = colors[c]; lastColor = c; }
      const x0 = ((trace.start[i] - trace.startTime) / total) * width;
      const w = Math.max(1, ((trace.end[i] - trace.start[i]) / total) * width);
      ctx.fillRect(x0, (k / n) * HEIGHT, w, rowH);
    }
    place();
  }

  function place() {
    shade.style.left = `${win[0] * 100}%`;
    shade.style.width = `${(win[1] - win[0]) * 100}%`;
    shade.hidden = win[0] <= 0 && win[1] >= 1;
  }

  function set(a, b, notify = true) {
    const lo = Math.max(0, Math.min(a, b)), hi = Math.min(1, Math.max(a, b));
    win = hi - lo < 0.0005 ? [0, 1] : [lo, hi];
    place();
    if (notify) onWindow(trace.startTime + win[0] * total, trace.startTime + win[1] * total);
  }

  const fraction = (e) => {
    const r = el.getBoundingClientRect();
    return Math.max(0, Math.min(1, (e.clientX - r.left) / Math.max(1, r.width)));
  };
  el.addEventListener('pointerdown', (e) => {
    const start = fraction(e);
    const panning = !(win[0] <= 0 && win[1] >= 1) && start >= win[0] && start <= win[1];
    const original = win.slice();
    el.setPointerCapture(e.pointerId);
    const move = (ev) => {
      const f = fraction(ev);
      if (panning) {
        const width = original[1] - original[0];
        const lo = Math.max(0, Math.min(1 - width, original[0] + f - start));
        set(lo, lo + width, false);
      } else set(start, f, false);
    };
    const up = (ev) => {
      el.removeEventListener('pointermove', move);
      el.removeEventListener('pointerup', up);
      if (!panning && Math.abs(fraction(ev) - start) < 0.003) return;
      set(win[0], win[1]);
    };
    el.addEventListener('pointermove', move);
    el.addEventListener('pointerup', up);
  });
  el.addEventListener('dblclick', () => set(0, 1));
  new ResizeObserver(() => draw()).observe(el);

  return { el, draw, reset: () => set(0, 1), setFraction: set, get window() { return win.slice(); } };
}
