// TraceQL autocomplete for a textarea: attribute names by scope and intrinsics from
// /api/v2/search/tags, and a field's values from /api/v2/search/tag/{field}/values,
// offered in a list under the editor. Arrow keys move, Enter or Tab take, Escape
// closes. What is typed is only ever read and inserted as text.

import { h, clear } from './dom.js';
import { getJSON, qs } from './api.js';
import { contextAt, fieldNames, valueText } from './traceql.js';

export function attachCompletion(textarea) {
  const list = h('ul', { class: 'suggestions', id: `${textarea.id}-suggestions`, role: 'listbox', hidden: true });
  let items = [], active = 0, ctx = null, tags = null, seq = 0;
  const values = new Map();
  const close = () => { list.hidden = true; items = []; };
  const take = (i) => {
    const item = items[i];
    if (!item || !ctx) return;
    const end = textarea.selectionStart;
    textarea.setRangeText(item.insert, ctx.from, end, 'end');
    close();
    textarea.focus();
    textarea.dispatchEvent(new Event('input', { bubbles: true }));
  };
  const show = (found) => {
    items = found.slice(0, 20);
    active = 0;
    clear(list);
    items.forEach((item, i) => {
      const li = h('li', { role: 'option', class: i === active ? 'active' : '', dataset: { index: i } }, item.label);
      li.addEventListener('mousedown', (e) => { e.preventDefault(); take(i); });
      list.append(li);
    });
    list.hidden = items.length === 0;
  };
  const update = async () => {
    const mine = ++seq;
    ctx = contextAt(textarea.value, textarea.selectionStart);
    if (!ctx) return close();
    try {
      if (ctx.kind === 'field') {
        tags ??= getJSON('/api/v2/search/tags').then(fieldNames).catch(() => []);
        const names = await tags;
        const p = ctx.partial.toLowerCase();
        const found = names.filter((n) => n.toLowerCase().startsWith(p) || n.toLowerCase().includes(`.${p.replace(/^\./, '')}`));
        if (mine === seq) show(found.filter((n) => n !== ctx.partial).map((n) => ({ label: n, insert: n })));
      } else {
        if (!values.has(ctx.field)) values.set(ctx.field, getJSON(`/api/v2/search/tag/${encodeURIComponent(ctx.field)}/values${qs({})}`).then((b) => b.tagValues || []).catch(() => []));
        const all = await values.get(ctx.field);
        const p = ctx.partial.toLowerCase();
        const found = all.filter((v) => String(v.value).toLowerCase().startsWith(p));
        if (mine === seq) show(found.map((v) => ({ label: String(v.value), insert: valueText(v) })));
      }
    } catch {
      close();
    }
  };
  textarea.addEventListener('input', update);
  textarea.addEventListener('click', update);
  textarea.addEventListener('blur', () => setTimeout(close, 150));
  textarea.addEventListener('keydown', (e) => {
    if (list.hidden) return;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      active = (active + (e.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length;
      [...list.children].forEach((li, i) => li.classList.toggle('active', i === active));
    } else if (e.key === 'Enter' || e.key === 'Tab') {
      e.preventDefault();
      take(active);
    } else if (e.key === 'Escape') {
      close();
    }
  });
  return h('div', { class: 'complete-wrap' }, textarea, list);
}
