// The search page: a form whose whole state lives in the URL, results from trace
// summaries (never whole traces), a scatter plot, sorting, and picking two to compare.

import { h, clear, go } from './dom.js';
import { getJSON, getJSONWithNote, qs, ApiError, settings } from './api.js';
import { formatDuration, formatTime, formatAgo, parseDuration, parseTags, colorFor } from './format.js';
import { renderScatter } from './scatter.js';
import { attachCompletion } from './complete.js';

const LOOKBACKS = [['5m', 'Last 5 minutes'], ['15m', 'Last 15 minutes'], ['1h', 'Last hour'], ['2h', 'Last 2 hours'],
  ['6h', 'Last 6 hours'], ['12h', 'Last 12 hours'], ['24h', 'Last 24 hours'], ['2d', 'Last 2 days'], ['7d', 'Last 7 days'], ['custom', 'Custom range']];
const LOOKBACK_US = { m: 60e6, h: 3600e6, d: 86400e6 };
const SORTS = [['newest', 'Newest first'], ['longest', 'Longest first'], ['spans', 'Most spans'], ['errors', 'Most errors']];

function lookbackMicros(text) {
  const m = /^(\d+)([mhd])$/.exec(text);
  return m ? Number(m[1]) * LOOKBACK_US[m[2]] : 3600e6;
}

function toLocalInput(us) {
  const d = new Date(us / 1000 - new Date().getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

/** Reads the form state from the URL, checking each field; errors name the field. */
export function queryFromParams(q, nowUs = Date.now() * 1000) {
  const state = {
    mode: q.get('mode') === 'traceql' ? 'traceql' : 'form',
    service: q.get('service') || '', operation: q.get('operation') || '', spanKind: q.get('spanKind') || '',
    tags: q.get('tags') || '', lookback: q.get('lookback') || '1h', start: q.get('start') || '', end: q.get('end') || '',
    minDuration: q.get('minDuration') || '', maxDuration: q.get('maxDuration') || '', limit: q.get('limit') || '20',
    traceql: q.get('q') || '', sort: q.get('sort') || 'newest',
  };
  const errors = [];
  let startUs, endUs;
  if (state.lookback === 'custom') {
    startUs = Date.parse(state.start) * 1000;
    endUs = Date.parse(state.end) * 1000;
    if (!Number.isFinite(startUs) || !Number.isFinite(endUs)) errors.push('Custom range: give both a start and an end time.');
    else if (startUs > endUs) errors.push('Custom range: the start is after the end.');
  } else {
    endUs = nowUs;
    startUs = nowUs - lookbackMicros(state.lookback);
  }
  let tags = [];
  try { tags = parseTags(state.tags); } catch (e) { errors.push(`Tags: ${e.message}`); }
  for (const [field, label] of [['minDuration', 'Min span duration'], ['maxDuration', 'Max span duration']]) {
    if (state[field]) try { parseDuration(state[field]); } catch (e) { errors.push(`${label}: ${e.message}`); }
  }
  if (state.minDuration && state.maxDuration && !errors.length && parseDuration(state.minDuration) > parseDuration(state.maxDuration)) {
    errors.push('Min span duration is greater than max span duration.');
  }
  const limit = Number(state.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) errors.push('Limit: a whole number from 1 to 1000.');
  // An empty TraceQL box lists recent traces, as `{ }` does; only a link that names an
  // empty `q` is pointed out.
  if (state.mode === 'traceql' && q.has('q') && !state.traceql.trim()) errors.push('TraceQL: write a query, such as { resource.service.name = "checkout" }');
  return { state, errors, startUs, endUs, tags, limit };
}

export function summariesUrl({ state, startUs, endUs, tags, limit }) {
  const iso = (us) => new Date(us / 1000).toISOString();
  return `/api/v3/trace-summaries${qs({
    'query.serviceName': state.service, 'query.operationName': state.operation, 'query.spanKind': state.spanKind,
    'query.startTimeMin': iso(startUs), 'query.startTimeMax': iso(endUs + 1000),
    'query.durationMin': state.minDuration.replace(/\s+/g, ''), 'query.durationMax': state.maxDuration.replace(/\s+/g, ''),
    'query.searchDepth': limit, 'query.attributes': tags.length ? JSON.stringify(Object.fromEntries(tags)) : '',
  })}`;
}

function fromSummary(s) {
  const start = Number(BigInt(s.minStartTimeUnixNano) / 1000n);
  const end = Number(BigInt(s.maxEndTimeUnixNano || s.minStartTimeUnixNano) / 1000n);
  return {
    traceId: s.traceId, rootService: s.rootServiceName, rootName: s.rootOperationName, start, duration: end - start,
    spanCount: s.spanCount, errorCount: s.errorSpanCount,
    services: (s.services || []).map((x) => (typeof x === 'string' ? { name: x, spanCount: 0, errorSpanCount: 0 } : x)),
  };
}

function fromTempo(t) {
  const start = Number(BigInt(t.startTimeUnixNano || '0') / 1000n);
  const stats = Object.entries(t.serviceStats || {}).map(([name, v]) => ({ name, spanCount: v.spanCount || 0, errorSpanCount: v.errorCount || 0 }));
  return {
    traceId: t.traceID, rootService: t.rootServiceName || '', rootName: t.rootTraceName || '', start, duration: (t.durationMs || 0) * 1000,
    spanCount: stats.reduce((a, s) => a + s.spanCount, 0), errorCount: stats.reduce((a, s) => a + s.errorSpanCount, 0), services: stats,
  };
}

const SORTERS = {
  newest: (a, b) => b.start - a.start,
  longest: (a, b) => b.duration - a.duration,
  spans: (a, b) => b.spanCount - a.spanCount,
  errors: (a, b) => b.errorCount - a.errorCount || b.start - a.start,
};

export function renderSearch(el, params) {
  const parsed = queryFromParams(params);
  const { state } = parsed;
  const controller = new AbortController();
  const field = (label, input, hint) => h('label', { class: 'field' }, h('span', { class: 'label' }, label), input, hint ? h('span', { class: 'hint' }, hint) : null);
  const input = (name, attrs = {}) => h('input', { name, id: `f-${name}`, value: state[name], spellcheck: false, ...attrs });
  const select = (name, options, attrs = {}) => {
    const s = h('select', { name, id: `f-${name}`, ...attrs }, options.map(([v, label]) => h('option', { value: v }, label)));
    s.value = state[name];
    return s;
  };

  const serviceSel = select('service', [['', 'All services']]);
  const operationSel = select('operation', [['', 'All operations']]);
  const lookbackSel = select('lookback', LOOKBACKS);
  const custom = h('div', { class: 'row custom-range', hidden: state.lookback !== 'custom' },
    field('From', h('input', { type: 'datetime-local', name: 'start', id: 'f-start', value: state.start || toLocalInput(Date.now() * 1000 - 3600e6) })),
    field('To', h('input', { type: 'datetime-local', name: 'end', id: 'f-end', value: state.end || toLocalInput(Date.now() * 1000) })));
  lookbackSel.addEventListener('change', () => { custom.hidden = lookbackSel.value !== 'custom'; });

  const formFields = h('div', { class: 'form-fields', hidden: state.mode === 'traceql' },
    field('Service', serviceSel),
    field('Operation', operationSel),
    field('Tags', input('tags', { placeholder: 'http.status_code=500 error=true' }), 'key=value, separated by spaces'),
    h('div', { class: 'row' },
      field('Min span duration', input('minDuration', { placeholder: '1.5ms', size: 7 })),
      field('Max span duration', input('maxDuration', { placeholder: '2s', size: 7 }))));
  const traceqlField = h('div', { class: 'traceql-fields', hidden: state.mode !== 'traceql' },
    field('TraceQL', attachCompletion(h('textarea', { name: 'q', id: 'f-q', rows: 4, spellcheck: false, placeholder: '{ resource.service.name = "checkout" && duration > 100ms }' }, state.traceql))));
  const modeSel = select('mode', [['form', 'Search form'], ['traceql', 'TraceQL']]);
  modeSel.addEventListener('change', () => {
    formFields.hidden = modeSel.value === 'traceql';
    traceqlField.hidden = modeSel.value !== 'traceql';
  });

  const form = h('form', { class: 'search-form', id: 'search-form', novalidate: true },
    h('h2', {}, 'Find traces'),
    field('Mode', modeSel),
    formFields, traceqlField,
    field('Lookback', lookbackSel), custom,
    field('Limit', input('limit', { type: 'number', min: 1, max: 1000, size: 5 })),
    h('button', { type: 'submit', class: 'primary', id: 'find' }, 'Find traces'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    performance.mark('tk:search-submitted');
    const data = new FormData(form);
    const next = {};
    for (const [k, v] of data.entries()) if (String(v).trim() !== '') next[k] = String(v).trim();
    if (next.mode === 'form') {
      delete next.mode;
      delete next.q;
    } else {
      for (const k of ['service', 'operation', 'tags', 'minDuration', 'maxDuration']) delete next[k];
    }
    if (next.lookback !== 'custom') { delete next.start; delete next.end; }
    if (next.operation) {
      const [op, kind] = next.operation.split('\u0000');
      next.operation = op;
      if (kind) next.spanKind = kind;
    }
    if (state.sort !== 'newest') next.sort = state.sort;
    go(`/search${qs(next)}`);
  });

  const results = h('section', { class: 'results', id: 'results' }, h('p', { class: 'muted' }, 'Searching…'));
  el.append(h('div', { class: 'search-page' }, form, results));

  loadServices(serviceSel, operationSel, state, controller.signal);
  runSearch(results, parsed, controller.signal);
  return () => controller.abort();
}

async function loadServices(serviceSel, operationSel, state, signal) {
  try {
    const services = (await getJSON('/api/services', { signal })).data || [];
    for (const s of services) serviceSel.append(h('option', { value: s }, s));
    if (state.service && !services.includes(state.service)) serviceSel.append(h('option', { value: state.service }, state.service));
    serviceSel.value = state.service;
  } catch (e) {
    if (e.name !== 'AbortError') serviceSel.title = e.message;
  }
  const loadOps = async (service, selected) => {
    clear(operationSel).append(h('option', { value: '' }, 'All operations'));
    if (!service) return;
    try {
      const ops = (await getJSON(`/api/operations${qs({ service })}`, { signal })).data || [];
      for (const o of ops) operationSel.append(h('option', { value: `${o.name}\u0000${o.spanKind || ''}` }, o.spanKind ? `${o.name} (${o.spanKind})` : o.name));
      if (selected) {
        const match = [...operationSel.options].find((opt) => opt.value === `${selected}\u0000${state.spanKind}`) || [...operationSel.options].find((opt) => opt.value.split('\u0000')[0] === selected);
        if (match) operationSel.value = match.value;
      }
    } catch (e) {
      if (e.name !== 'AbortError') operationSel.title = e.message;
    }
  };
  serviceSel.addEventListener('change', () => loadOps(serviceSel.value, ''));
  await loadOps(state.service, state.operation);
}

async function runSearch(results, parsed, signal) {
  const { state, errors } = parsed;
  if (errors.length) {
    clear(results).append(h('div', { class: 'error-box', role: 'alert' }, h('strong', {}, 'Check the form:'), h('ul', {}, errors.map((e) => h('li', {}, e)))));
    return;
  }
  const began = performance.now();
  let traces;
  let note = '';
  try {
    if (state.mode === 'traceql') {
      const answer = await getJSONWithNote(`/api/search${qs({ q: state.traceql, start: Math.floor(parsed.startUs / 1e6), end: Math.ceil(parsed.endUs / 1e6), limit: parsed.limit })}`, { signal });
      traces = (answer.body.traces || []).map(fromTempo);
      note = answer.note;
    } else {
      const answer = await getJSONWithNote(summariesUrl(parsed), { signal });
      traces = (answer.body.summaries || []).map(fromSummary);
      note = answer.note;
    }
  } catch (e) {
    if (e.name === 'AbortError') return;
    if (e instanceof ApiError && e.status === 404) traces = [];
    else {
      clear(results).append(h('div', { class: 'error-box', role: 'alert' }, e.message));
      return;
    }
  }
  renderResults(results, traces, state, Math.round(performance.now() - began));
  if (note) results.prepend(h('div', { class: 'warning-box', id: 'search-partial', role: 'status' }, `Partial results: ${note}.`));
}

function renderResults(results, traces, state, ms) {
  clear(results);
  requestAnimationFrame(() => performance.mark('tk:results-shown'));
  if (!traces.length) {
    results.append(h('div', { class: 'empty', id: 'no-results' }, h('h3', {}, 'No traces found'), h('p', { class: 'muted' }, 'Widen the lookback, or remove a condition.')));
    return;
  }
  const selected = new Set();
  const compareBtn = h('button', { class: 'primary', disabled: true, id: 'compare-selected' }, 'Compare selected');
  compareBtn.addEventListener('click', () => {
    const [a, b] = [...selected];
    go(`/compare/${a}/${b}`);
  });
  const sortSel = h('select', { id: 'sort', 'aria-label': 'Sort results' }, SORTS.map(([v, l]) => h('option', { value: v }, l)));
  sortSel.value = SORTERS[state.sort] ? state.sort : 'newest';
  const list = h('ol', { class: 'result-list', id: 'result-list' });
  const serviceOrder = [...new Set(traces.flatMap((t) => t.services.map((s) => s.name)))].sort();
  const colorOf = (name) => colorFor(serviceOrder.indexOf(name));
  const draw = () => {
    clear(list);
    for (const t of [...traces].sort(SORTERS[sortSel.value])) {
      const box = h('input', { type: 'checkbox', 'aria-label': `Select ${t.traceId} to compare`, checked: selected.has(t.traceId) });
      box.addEventListener('change', () => {
        if (box.checked) selected.add(t.traceId); else selected.delete(t.traceId);
        while (selected.size > 2) selected.delete(selected.values().next().value);
        for (const other of list.querySelectorAll('input[type=checkbox]')) other.checked = selected.has(other.closest('li').dataset.traceId);
        compareBtn.disabled = selected.size !== 2;
      });
      list.append(h('li', { class: 'result', dataset: { traceId: t.traceId } },
        h('div', { class: 'result-head' }, box,
          h('a', { href: `${settings.base}/trace/${t.traceId}`, 'data-link': true, class: 'result-title' },
            h('span', { class: 'svc', style: { color: colorOf(t.rootService) } }, t.rootService), ': ', t.rootName),
          h('span', { class: 'result-duration' }, formatDuration(t.duration))),
        h('div', { class: 'result-meta' },
          h('span', { class: 'count' }, `${t.spanCount} spans`),
          t.errorCount ? h('span', { class: 'badge error' }, `${t.errorCount} error${t.errorCount === 1 ? '' : 's'}`) : null,
          h('span', { class: 'muted', title: formatTime(t.start) }, `${formatTime(t.start)} · ${formatAgo(t.start)}`),
          h('code', { class: 'muted trace-id' }, t.traceId)),
        h('div', { class: 'pills' }, t.services.map((s) => h('span', { class: 'pill', style: { borderColor: colorOf(s.name) } },
          h('span', { class: 'dot', style: { background: colorOf(s.name) } }), s.spanCount ? `${s.name} (${s.spanCount})` : s.name)))));
    }
  };
  sortSel.addEventListener('change', () => {
    // The order is search state like the rest: kept in the URL (replaced, since the
    // results are the same), so a reload or a shared link shows the same order.
    const url = new URL(window.location.href);
    if (sortSel.value === 'newest') url.searchParams.delete('sort'); else url.searchParams.set('sort', sortSel.value);
    history.replaceState(history.state, '', url);
    state.sort = sortSel.value;
    draw();
  });
  draw();
  results.append(
    h('div', { class: 'results-head' }, h('strong', { id: 'result-count' }, `${traces.length} trace${traces.length === 1 ? '' : 's'}`),
      h('span', { class: 'muted' }, ` in ${ms} ms`), h('span', { class: 'spacer' }), sortSel, compareBtn),
    renderScatter(traces, (id) => go(`/trace/${id}`), colorOf),
    list);
}
