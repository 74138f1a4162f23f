// The trace page: header, minimap, virtualized timeline, span detail, find, filters,
// critical path, statistics and downloads. Works the same on a stored trace and on a
// file opened from disk (which is never sent anywhere).

import { h, clear, download, copyText, go } from './dom.js';
import { fetchTrace, getText, ApiError } from './api.js';
import { criticalPath, statistics, visibleRows, findSpans, skewed } from './analysis.js';
import { formatDuration, formatTime, colorFor, parseDuration } from './format.js';
import { createTimeline } from './timeline.js';
import { createMinimap } from './minimap.js';
import { renderDetail } from './detail.js';

export function renderTrace(el, { traceId, trace, fileName, rawText }) {
  const controller = new AbortController();
  const cleanups = [() => controller.abort()];
  if (trace) {
    cleanups.push(show(el, trace, { fileName, rawText }));
  } else {
    performance.mark('tk:trace-requested');
    el.append(h('p', { class: 'pad muted', id: 'trace-loading' }, `Loading trace ${traceId}…`));
    fetchTrace(traceId, { signal: controller.signal }).then((model) => {
      performance.mark('tk:trace-modelled');
      clear(el);
      cleanups.push(show(el, model, {}));
    }).catch((e) => {
      if (e.name === 'AbortError') return;
      clear(el);
      const message = e instanceof ApiError && e.status === 404
        ? `Trace ${traceId} was not found. It may have expired, not been stored yet, or belong to another tenant.`
        : e.message;
      el.append(h('div', { class: 'pad' }, h('div', { class: 'error-box', role: 'alert', id: 'trace-error' }, message),
        h('p', {}, h('a', { href: '#', onclick: (ev) => { ev.preventDefault(); go('/search'); } }, 'Back to search'))));
    });
  }
  return () => cleanups.forEach((f) => f && f());
}

function show(el, trace, { fileName, rawText }) {
  const n = trace.spans.length;
  const colors = trace.services.map((_, i) => colorFor(i));
  const collapsed = new Uint8Array(n);
  const critical = criticalPath(trace);
  const skew = skewed(trace);
  let filter = null;
  let matches = [];
  let matchIndex = -1;
  let detailOpen = -1;

  const detailPane = h('div', { class: 'detail-pane', hidden: true });
  const timeline = createTimeline({
    trace, colors,
    onSelect: (i) => openDetail(i),
    onToggle: (i, deep) => toggle(i, deep),
  });
  const minimap = createMinimap({ trace, colors, onWindow: (a, b) => timeline.setWindow(a, b) });
  timeline.setWindow(trace.startTime, trace.endTime);
  timeline.setSkew(skew);
  timeline.setCritical(critical);

  const shownCount = h('span', { class: 'muted', id: 'shown-count' });
  function refreshRows() {
    const rows = visibleRows(trace, collapsed, filter);
    timeline.setRows(rows, (i) => collapsed[i] === 1);
    shownCount.textContent = filter ? `${rows.length} of ${n} spans match the filters` : '';
  }

  function toggle(i, deep) {
    const value = collapsed[i] ? 0 : 1;
    collapsed[i] = value;
    if (deep) {
      const stack = [i];
      while (stack.length) {
        const j = stack.pop();
        if (trace.childStart[j + 1] > trace.childStart[j]) collapsed[j] = value;
        for (let c = trace.childStart[j]; c < trace.childStart[j + 1]; c++) stack.push(trace.childList[c]);
      }
    }
    refreshRows();
  }

  function reveal(i) {
    let changed = false;
    for (let p = trace.parent[i]; p >= 0; p = trace.parent[p]) if (collapsed[p]) { collapsed[p] = 0; changed = true; }
    if (changed) refreshRows();
  }

  function openDetail(i) {
    detailOpen = i;
    timeline.select(i, false);
    clear(detailPane).append(renderDetail(trace, i, {
      onClose: () => { detailPane.hidden = true; detailOpen = -1; timeline.select(-1, false); },
      onSelectSpan: (j) => { reveal(j); timeline.scrollToSpan(j); openDetail(j); },
    }));
    detailPane.hidden = false;
  }

  // Find: matches counted and highlighted, next and previous.
  const findInput = h('input', { id: 'find-input', type: 'search', placeholder: 'Find in trace (/)', spellcheck: false, 'aria-label': 'Find in trace' });
  const findCount = h('span', { class: 'muted', id: 'find-count' });
  const step = (dir) => {
    if (!matches.length) return;
    matchIndex = (matchIndex + dir + matches.length) % matches.length;
    const i = matches[matchIndex];
    reveal(i);
    timeline.scrollToSpan(i);
    timeline.select(i, false);
    findCount.textContent = `${matchIndex + 1} of ${matches.length}`;
  };
  let findTimer = 0;
  findInput.addEventListener('input', () => {
    clearTimeout(findTimer);
    findTimer = setTimeout(() => {
      matches = findSpans(trace, findInput.value);
      matchIndex = -1;
      timeline.setMatches(new Set(matches));
      findCount.textContent = findInput.value.trim() ? `${matches.length} match${matches.length === 1 ? '' : 'es'}` : '';
    }, 120);
  });
  findInput.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); step(e.shiftKey ? -1 : 1); }
    if (e.key === 'Escape') findInput.blur();
  });
  const prev = h('button', { class: 'ghost', id: 'find-prev', title: 'Previous match (Shift+Enter)' }, '↑');
  const next = h('button', { class: 'ghost', id: 'find-next', title: 'Next match (Enter)' }, '↓');
  prev.addEventListener('click', () => step(-1));
  next.addEventListener('click', () => step(1));

  // Filters: service, errors only, minimum duration.
  const serviceFilter = h('select', { id: 'filter-service', 'aria-label': 'Only spans of service' }, h('option', { value: '' }, 'All services'), trace.services.map((s) => h('option', { value: s }, s)));
  const errorsOnly = h('input', { type: 'checkbox', id: 'filter-errors' });
  const minDuration = h('input', { id: 'filter-min', placeholder: 'min 10ms', size: 8, 'aria-label': 'Minimum span duration' });
  const filterError = h('span', { class: 'field-error', id: 'filter-error', role: 'alert' });
  const applyFilters = () => {
    let min = 0;
    filterError.textContent = '';
    if (minDuration.value.trim()) {
      try { min = parseDuration(minDuration.value); } catch (e) { filterError.textContent = e.message; return; }
    }
    const svc = serviceFilter.value ? trace.services.indexOf(serviceFilter.value) : -1;
    const errs = errorsOnly.checked;
    filter = svc < 0 && !errs && !min ? null
      : (i) => (svc < 0 || trace.service[i] === svc) && (!errs || trace.spans[i].error) && trace.spans[i].duration >= min;
    refreshRows();
  };
  serviceFilter.addEventListener('change', applyFilters);
  errorsOnly.addEventListener('change', applyFilters);
  minDuration.addEventListener('change', applyFilters);

  const critToggle = h('input', { type: 'checkbox', id: 'critical-toggle', checked: true });
  critToggle.addEventListener('change', () => timeline.setCritical(critToggle.checked ? critical : null));
  const collapseAll = h('button', { class: 'ghost', id: 'collapse-all', title: 'Collapse all ([)' }, 'Collapse all');
  const expandAll = h('button', { class: 'ghost', id: 'expand-all', title: 'Expand all (])' }, 'Expand all');
  collapseAll.addEventListener('click', () => {
    for (let i = 0; i < n; i++) collapsed[i] = trace.childStart[i + 1] > trace.childStart[i] ? 1 : 0;
    refreshRows();
  });
  expandAll.addEventListener('click', () => { collapsed.fill(0); refreshRows(); });

  const statsView = h('div', { class: 'stats', id: 'trace-stats', hidden: true });
  const timelineView = h('div', { class: 'trace-body' }, h('div', { class: 'trace-main' }, minimap.el, timeline.el), detailPane);
  const tabs = tabBar([['timeline', 'Timeline'], ['stats', 'Statistics']], (which) => {
    timelineView.hidden = which !== 'timeline';
    statsView.hidden = which !== 'stats';
    if (which === 'stats' && !statsView.firstChild) statsView.append(...renderStats(trace, colors));
    if (which === 'timeline') timeline.render();
  });

  const onKey = (e) => {
    if (e.target.matches?.('input, textarea, select')) return;
    if (e.key === '/') { e.preventDefault(); findInput.focus(); }
    else if (e.key === '[') collapseAll.click();
    else if (e.key === ']') expandAll.click();
    else if (e.key === 'Escape' && detailOpen >= 0) detailPane.querySelector('#detail-close')?.click();
  };
  document.addEventListener('keydown', onKey);

  el.append(...[
    header(trace, fileName, critical, downloads(trace, fileName, rawText)),
    trace.warnings.length ? h('div', { class: 'warning-box', id: 'trace-warning', role: 'status' }, trace.warnings.map((w) => h('div', {}, w))) : null,
    h('div', { class: 'toolbar' }, tabs,
      h('div', { class: 'tool-group' }, findInput, findCount, prev, next),
      h('div', { class: 'tool-group' }, serviceFilter, h('label', { class: 'check' }, errorsOnly, ' Errors only'), minDuration, filterError),
      h('div', { class: 'tool-group' }, h('label', { class: 'check', title: 'Highlight the spans that decide the trace duration' }, critToggle, ' Critical path'), collapseAll, expandAll),
      shownCount),
    timelineView, statsView].filter(Boolean));
  refreshRows();
  minimap.draw();
  timeline.render();
  requestAnimationFrame(() => {
    performance.mark('tk:first-rows');
    el.dataset.ready = 'true';
  });
  return () => document.removeEventListener('keydown', onKey);
}

function tabBar(tabs, onChange) {
  const bar = h('div', { class: 'tabs', role: 'tablist' });
  for (const [id, label] of tabs) {
    const b = h('button', { class: id === tabs[0][0] ? 'tab active' : 'tab', role: 'tab', id: `tab-${id}` }, label);
    b.addEventListener('click', () => {
      for (const other of bar.children) other.classList.toggle('active', other === b);
      onChange(id);
    });
    bar.append(b);
  }
  return bar;
}

function header(trace, fileName, critical, downloadButtons) {
  const copy = h('button', { class: 'ghost small', title: 'Copy trace ID' }, 'copy');
  copy.addEventListener('click', async () => { copy.textContent = (await copyText(trace.traceId)) ? 'copied' : 'copy'; });
  const criticalCount = critical.onPath.reduce((a, b) => a + b, 0);
  const fact = (label, value, id) => h('div', { class: 'fact' }, h('span', { class: 'label' }, label), h('span', { class: 'value', id }, value));
  const compareInput = h('input', { id: 'compare-with', placeholder: 'other trace ID', size: 20, spellcheck: false });
  const compareBtn = h('button', { class: 'ghost', id: 'compare-go' }, 'Compare');
  compareBtn.addEventListener('click', () => { if (compareInput.value.trim()) go(`/compare/${trace.traceId}/${compareInput.value.trim()}`); });
  return h('section', { class: 'trace-header' },
    h('h2', { id: 'trace-title' }, h('span', { class: 'svc' }, trace.rootService), ': ', trace.rootName),
    h('div', { class: 'id-line' }, h('code', { id: 'trace-id' }, trace.traceId), copy, fileName ? h('span', { class: 'badge' }, `from file ${fileName}, not stored`) : null),
    h('div', { class: 'facts' },
      fact('Start', formatTime(trace.startTime)),
      fact('Duration', formatDuration(trace.duration), 'trace-duration'),
      fact('Services', String(trace.services.length), 'trace-services'),
      fact('Depth', String(trace.maxDepth), 'trace-depth'),
      fact('Spans', String(trace.spans.length), 'trace-span-count'),
      fact('Errors', String(trace.errors), 'trace-errors'),
      fact('Critical path', `${criticalCount} spans`, 'critical-count')),
    h('div', { class: 'compare-with' }, fileName ? null : [compareInput, compareBtn], h('span', { class: 'muted small' }, 'Download'), downloadButtons));
}

function downloads(trace, fileName, rawText) {
  if (fileName) {
    const b = h('button', { class: 'ghost', id: 'download-file' }, 'Download file');
    b.addEventListener('click', () => download(fileName, rawText));
    return b;
  }
  const make = (id, label, path, suffix) => {
    const b = h('button', { class: 'ghost', id, title: `Download the trace as ${label}` }, label);
    b.addEventListener('click', async () => {
      try {
        download(`trace-${trace.traceId}.${suffix}.json`, await getText(path));
      } catch (e) {
        b.title = e.message;
        b.classList.add('failed');
      }
    });
    return b;
  };
  return [make('download-otlp', 'OTLP JSON', `/api/v3/traces/${trace.traceId}`, 'otlp'),
    make('download-jaeger', 'Jaeger JSON', `/api/traces/${trace.traceId}`, 'jaeger')];
}

function renderStats(trace, colors) {
  const table = (title, rows, withOp, id) => h('section', {}, h('h3', {}, title), h('table', { class: 'stats-table', id },
    h('thead', {}, h('tr', {}, h('th', {}, 'Service'), withOp ? h('th', {}, 'Operation') : null, h('th', {}, 'Spans'), h('th', {}, 'Errors'),
      h('th', {}, 'Total time'), h('th', {}, 'Self time'), h('th', {}, 'Longest'))),
    h('tbody', {}, rows.map((r) => h('tr', {},
      h('td', {}, h('span', { class: 'dot', style: { background: colors[trace.services.indexOf(r.service)] } }), r.service),
      withOp ? h('td', {}, r.operation) : null, h('td', { class: 'num' }, String(r.count)), h('td', { class: 'num' }, String(r.errors)),
      h('td', { class: 'num' }, formatDuration(r.total)), h('td', { class: 'num' }, formatDuration(r.self)), h('td', { class: 'num' }, formatDuration(r.max)))))));
  return [table('By service', statistics(trace, 'service'), false, 'stats-services'), table('By operation', statistics(trace, 'operation'), true, 'stats-operations')];
}
