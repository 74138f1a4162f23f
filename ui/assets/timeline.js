// The span timeline, virtualized: a fixed pool of row elements is reused as the list
// scrolls, so a 100,000-span trace lays out only the ~40 rows on screen. Rows are a
// list of span indices (pre-order, collapsed subtrees left out) given by the page.

import { h } from './dom.js';
import { formatDuration } from './format.js';

export const ROW_HEIGHT = 26;
const OVERSCAN = 8;
const MAX_INDENT = 40;

export function createTimeline({ trace, colors, onSelect, onToggle }) {
  let rows = new Int32Array(0);
  let windowStart = trace.startTime, windowEnd = trace.endTime;
  let selected = -1;
  let critical = null; // { onPath, bySpan: Map(span -> [[from, to]]) }
  let matches = new Set();
  let skew = new Uint8Array(trace.spans.length);
  const pool = [];
  let frame = 0;

  const spacer = h('div', { class: 'tl-spacer' });
  const scroll = h('div', { class: 'tl-scroll', id: 'timeline-scroll', tabindex: 0, role: 'tree', 'aria-label': 'Spans' }, spacer);
  const ticks = h('div', { class: 'tl-ticks' });
  const head = h('div', { class: 'tl-head' }, h('div', { class: 'tl-name-col' }, 'Service & operation'), ticks);
  const el = h('div', { class: 'timeline', id: 'timeline' }, head, scroll);

  function makeRow() {
    const toggle = h('button', { class: 'tl-toggle', tabindex: -1, 'aria-label': 'Collapse or expand' });
    const dot = h('span', { class: 'dot' });
    const service = h('span', { class: 'tl-svc' });
    const op = h('span', { class: 'tl-op' });
    const warn = h('span', { class: 'tl-warn', title: 'This span starts before or ends after its parent: the clocks of the two hosts may disagree' }, '⚠');
    const err = h('span', { class: 'tl-err', title: 'Error' }, '!');
    const name = h('div', { class: 'tl-name' }, toggle, dot, err, service, op, warn);
    const bar = h('div', { class: 'tl-bar' });
    const label = h('span', { class: 'tl-label' });
    const crit = h('div', { class: 'tl-crit-layer' });
    const area = h('div', { class: 'tl-area' }, bar, crit, label);
    const row = h('div', { class: 'tl-row', role: 'treeitem' }, name, area);
    row.addEventListener('click', (e) => {
      const i = Number(row.dataset.span);
      if (e.target === toggle) onToggle(i, e.altKey || e.shiftKey);
      else select(i, true);
    });
    scroll.append(row);
    return { row, toggle, dot, service, op, warn, err, bar, label, crit, span: -1 };
  }

  function x(t) {
    return ((t - windowStart) / Math.max(1e-9, windowEnd - windowStart)) * 100;
  }

  function paintRow(r, i, index) {
    const s = trace.spans[i];
    r.row.style.transform = `translateY(${index * ROW_HEIGHT}px)`;
    r.row.dataset.span = String(i);
    r.row.hidden = false;
    if (r.span === i) {
      r.row.classList.toggle('selected', i === selected);
      r.row.classList.toggle('match', matches.has(i));
      return;
    }
    r.span = i;
    const hasKids = trace.childStart[i + 1] > trace.childStart[i];
    r.toggle.textContent = hasKids ? (collapsedOf(i) ? '▸' : '▾') : '';
    r.toggle.style.visibility = hasKids ? 'visible' : 'hidden';
    r.row.firstChild.style.paddingLeft = `${Math.min(trace.depth[i], MAX_INDENT) * 12 + 4}px`;
    r.row.setAttribute('aria-level', String(trace.depth[i] + 1));
    const color = colors[trace.service[i]];
    r.dot.style.background = color;
    r.service.textContent = s.service;
    r.op.textContent = s.name;
    r.err.hidden = !s.error;
    r.warn.hidden = !skew[i];
    const left = x(trace.start[i]), right = x(trace.end[i]);
    const l = Math.max(0, Math.min(100, left)), w = Math.max(0.15, Math.min(100, right) - l);
    r.bar.style.left = `${l}%`;
    r.bar.style.width = `${right < 0 || left > 100 ? 0 : w}%`;
    r.bar.style.background = color;
    r.bar.classList.toggle('error', s.error);
    r.label.textContent = formatDuration(s.duration);
    // After the bar when there is room, else before it, else inside its start.
    const inside = right > 90 && l < 8;
    r.label.classList.toggle('inside', inside);
    r.label.style.left = inside ? `${l + 0.4}%` : right <= 90 ? `${Math.max(0, right) + 0.5}%` : '';
    r.label.style.right = !inside && right > 90 ? `${100 - l + 0.5}%` : '';
    r.crit.replaceChildren();
    const segs = critical?.bySpan.get(i);
    if (segs) for (const [from, to] of segs) {
      const a = Math.max(0, x(from)), b = Math.min(100, x(to));
      if (b > a) r.crit.append(h('div', { class: 'tl-crit', style: { left: `${a}%`, width: `${Math.max(0.15, b - a)}%` } }));
    }
    r.row.classList.toggle('critical', !!critical?.onPath[i]);
    r.row.classList.toggle('selected', i === selected);
    r.row.classList.toggle('match', matches.has(i));
  }

  let collapsedOf = () => false;

  function render() {
    frame = 0;
    const top = scroll.scrollTop;
    const height = scroll.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(rows.length, Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN);
    const needed = last - first;
    while (pool.length < needed) pool.push(makeRow());
    for (let k = 0; k < pool.length; k++) {
      if (k < needed) paintRow(pool[k], rows[first + k], first + k);
      else if (!pool[k].row.hidden) {
        pool[k].row.hidden = true;
        pool[k].span = -1;
      }
    }
    el.dataset.firstRow = String(first);
  }

  function schedule() {
    if (!frame) frame = requestAnimationFrame(render);
  }

  function repaintAll() {
    for (const r of pool) r.span = -1;
    schedule();
  }

  function drawTicks() {
    ticks.replaceChildren();
    for (let k = 0; k <= 4; k++) {
      const t = windowStart + ((windowEnd - windowStart) * k) / 4;
      ticks.append(h('span', { class: 'tick', style: { left: `${k * 25}%` } }, formatDuration(t - trace.startTime)));
    }
  }

  function select(i, notify) {
    selected = i;
    for (const r of pool) r.row.classList.toggle('selected', r.span === i && !r.row.hidden);
    if (notify) onSelect(i);
  }

  function scrollToSpan(i) {
    const index = rows.indexOf(i);
    if (index < 0) return false;
    const top = index * ROW_HEIGHT, h2 = scroll.clientHeight;
    if (top < scroll.scrollTop || top + ROW_HEIGHT > scroll.scrollTop + h2) scroll.scrollTop = Math.max(0, top - h2 / 3);
    schedule();
    return true;
  }

  scroll.addEventListener('scroll', schedule, { passive: true });
  scroll.addEventListener('keydown', (e) => {
    const index = selected >= 0 ? rows.indexOf(selected) : -1;
    const page = Math.max(1, Math.floor(scroll.clientHeight / ROW_HEIGHT) - 1);
    const moveTo = (k) => {
      const j = Math.max(0, Math.min(rows.length - 1, k));
      if (rows.length) { select(rows[j], true); scrollToSpan(rows[j]); }
    };
    const keys = {
      ArrowDown: () => moveTo(index + 1), ArrowUp: () => moveTo(index - 1), j: () => moveTo(index + 1), k: () => moveTo(index - 1),
      PageDown: () => moveTo(index + page), PageUp: () => moveTo(index - page), Home: () => moveTo(0), End: () => moveTo(rows.length - 1),
      ArrowLeft: () => {
        if (selected < 0) return;
        if (trace.childStart[selected + 1] > trace.childStart[selected] && !collapsedOf(selected)) onToggle(selected, false);
        else if (trace.parent[selected] >= 0) { select(trace.parent[selected], true); scrollToSpan(trace.parent[selected]); }
      },
      ArrowRight: () => { if (selected >= 0 && collapsedOf(selected)) onToggle(selected, false); },
    };
    if (keys[e.key] && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      keys[e.key]();
    }
  });
  new ResizeObserver(schedule).observe(scroll);

  return {
    el,
    scroll,
    setRows(next, isCollapsed) {
      rows = next;
      collapsedOf = isCollapsed;
      spacer.style.height = `${rows.length * ROW_HEIGHT}px`;
      repaintAll();
    },
    setWindow(a, b) {
      windowStart = a;
      windowEnd = b;
      drawTicks();
      repaintAll();
    },
    setCritical(value) {
      if (!value) critical = null;
      else {
        const bySpan = new Map();
        for (const s of value.segments) {
          if (!bySpan.has(s.span)) bySpan.set(s.span, []);
          bySpan.get(s.span).push([s.from, s.to]);
        }
        critical = { onPath: value.onPath, bySpan };
      }
      repaintAll();
    },
    setMatches(set) { matches = set; repaintAll(); },
    setSkew(flags) { skew = flags; repaintAll(); },
    select,
    scrollToSpan,
    render,
    get rows() { return rows; },
  };
}
