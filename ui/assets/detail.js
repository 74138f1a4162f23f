// The span detail panel: typed attributes, resource, scope, events at their offset
// from the span's start, links (followed within the trace or into another), status,
// and ids with a copy button.

import { h, copyText, go } from './dom.js';
import { spanDetail } from './model.js';
import { formatDuration, formatTime } from './format.js';

function table(rows, empty) {
  if (!rows.length) return h('p', { class: 'muted small' }, empty);
  return h('table', { class: 'kv' }, h('tbody', {}, rows.map((r) =>
    h('tr', {}, h('th', {}, r.key), h('td', { class: 'type' }, r.type), h('td', { class: 'value' }, r.value)))));
}

function idLine(label, value) {
  if (!value) return null;
  const button = h('button', { class: 'ghost small', title: `Copy ${label}` }, 'copy');
  button.addEventListener('click', async () => { button.textContent = (await copyText(value)) ? 'copied' : 'select & copy'; });
  return h('div', { class: 'id-line' }, h('span', { class: 'label' }, label), h('code', {}, value), button);
}

export function renderDetail(trace, i, { onClose, onSelectSpan }) {
  const s = trace.spans[i];
  const d = spanDetail(trace, i);
  const close = h('button', { class: 'ghost', id: 'detail-close', 'aria-label': 'Close span detail' }, '×');
  close.addEventListener('click', onClose);
  const parent = trace.parent[i] >= 0 ? trace.spans[trace.parent[i]] : null;
  const links = d.links.map((l) => {
    const local = l.traceId === trace.traceId || !l.traceId;
    const target = local ? trace.spans.findIndex((x) => x.spanId === l.spanId) : -1;
    const a = h('a', { href: '#', class: 'link' }, `${l.kind === 'FOLLOWS_FROM' ? 'follows from' : l.kind === 'CHILD_OF' ? 'child of' : 'link to'} ${local ? 'span' : 'trace'} ${local ? l.spanId : `${l.traceId} / ${l.spanId}`}`);
    a.addEventListener('click', (e) => {
      e.preventDefault();
      if (local && target >= 0) onSelectSpan(target);
      else if (!local) go(`/trace/${l.traceId}`);
    });
    return h('li', {}, a, l.attributes.length ? table(l.attributes, '') : null);
  });
  return h('aside', { class: 'detail', id: 'span-detail', 'aria-label': 'Span detail' },
    h('div', { class: 'detail-head' }, h('div', {},
      h('div', { class: 'detail-title' }, s.name),
      h('div', { class: 'muted' }, s.service, s.kind ? ` · ${s.kind}` : '')), close),
    h('div', { class: 'detail-facts' },
      fact('Duration', formatDuration(s.duration)),
      fact('Starts at', `+${formatDuration(s.start - trace.startTime)}`),
      fact('Start', formatTime(s.start)),
      fact('Status', d.status.code + (d.status.message ? `: ${d.status.message}` : ''), d.status.code === 'ERROR' ? 'error' : '')),
    idLine('Span ID', s.spanId),
    idLine('Parent ID', parent ? parent.spanId : s.parentId),
    idLine('Trace ID', trace.traceId),
    d.startNs ? idLine('Start (ns)', d.startNs) : null,
    section('Attributes', table(d.attributes, 'No attributes.')),
    section(`Events (${d.events.length})`, d.events.length ? h('ol', { class: 'events' }, d.events.map((e) =>
      h('li', {}, h('span', { class: 'offset' }, `+${formatDuration(e.offset)}`), ' ', h('strong', {}, e.name || '(event)'), table(e.attributes, '')))) : h('p', { class: 'muted small' }, 'No events.')),
    section(`Links (${links.length})`, links.length ? h('ul', { class: 'links' }, links) : h('p', { class: 'muted small' }, 'No links.')),
    section('Resource', table(d.resource, 'No resource attributes.')),
    section('Scope', d.scope.name ? h('p', {}, d.scope.name, d.scope.version ? ` ${d.scope.version}` : '') : h('p', { class: 'muted small' }, 'No instrumentation scope.')));
}

function fact(label, value, cls = '') {
  return h('div', { class: `fact ${cls}` }, h('span', { class: 'label' }, label), h('span', { class: 'value' }, value));
}

function section(title, body) {
  return h('details', { class: 'section', open: true }, h('summary', {}, title), body);
}
