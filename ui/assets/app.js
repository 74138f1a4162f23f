// The app shell: routes, navigation, tenant picker, theme, and opening a trace file.
// Every route is a real path (/search, /trace/{id}, /compare/{a}/{b}, /dependencies,
// /graph for TraceQL metrics),
// so a link can be shared and a reload lands on the same view.

import { h, clear } from './dom.js';
import { settings, tenant, setTenant, token, setToken } from './api.js';
import { parseTraceFile } from './model.js';
import { renderSearch } from './search.js';
import { renderTrace } from './trace.js';
import { renderCompare } from './compare.js';
import { renderDependencies } from './deps.js';
import { renderMetrics } from './metrics.js';

const view = document.getElementById('view');
let cleanup = null;
let openedFile = null;

const routes = [
  [/^\/?$/, () => navigate('/search', { replace: true })],
  [/^\/search$/, (el, _m, q) => renderSearch(el, q)],
  [/^\/trace\/([^/]+)$/, (el, m) => renderTrace(el, { traceId: decodeURIComponent(m[1]) })],
  [/^\/compare$/, (el, _m, q) => renderCompare(el, { a: q.get('a') || '', b: q.get('b') || '' })],
  [/^\/compare\/([^/]+)\/([^/]+)$/, (el, m) => renderCompare(el, { a: decodeURIComponent(m[1]), b: decodeURIComponent(m[2]) })],
  [/^\/dependencies$/, (el, _m, q) => renderDependencies(el, q)],
  [/^\/graph$/, (el, _m, q) => renderMetrics(el, q)],
  [/^\/open$/, (el) => renderOpened(el)],
];

function navigate(path, { replace = false } = {}) {
  const url = settings.base + path;
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  route();
}

function currentPath() {
  let p = location.pathname;
  if (settings.base && p.startsWith(settings.base)) p = p.slice(settings.base.length);
  return p || '/';
}

function route() {
  if (cleanup) {
    try { cleanup(); } catch { /* a view's cleanup must not stop navigation */ }
    cleanup = null;
  }
  const path = currentPath();
  const query = new URLSearchParams(location.search);
  clear(view);
  markNav(path);
  for (const [re, render] of routes) {
    const m = re.exec(path);
    if (m) {
      const result = render(view, m, query);
      if (typeof result === 'function') cleanup = result;
      return;
    }
  }
  view.append(h('div', { class: 'pad' }, h('h2', {}, 'Page not found'), h('p', {}, `There is no page at ${path}. `, h('a', { href: `${settings.base}/search`, 'data-link': true }, 'Search traces'))));
}

function markNav(path) {
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', path.startsWith(a.dataset.prefix));
}

function renderOpened(el) {
  if (!openedFile) {
    el.append(h('div', { class: 'pad' }, h('h2', {}, 'Open a trace file'),
      h('p', { class: 'muted' }, 'Jaeger JSON or OTLP JSON. The trace is shown here and never stored.'),
      fileButton()));
    return;
  }
  return renderTrace(el, { trace: openedFile.trace, fileName: openedFile.name, rawText: openedFile.text });
}

function fileButton() {
  const input = h('input', { type: 'file', accept: '.json,application/json', class: 'hidden', id: 'open-file-input' });
  input.addEventListener('change', async () => {
    const file = input.files?.[0];
    if (!file) return;
    input.value = '';
    const text = await file.text();
    try {
      openedFile = { trace: parseTraceFile(JSON.parse(text)), name: file.name, text };
    } catch (e) {
      openedFile = null;
      alertBox(`Cannot open ${file.name}: ${e.message}`);
      return;
    }
    navigate('/open');
  });
  return h('label', { class: 'button', for: 'open-file-input', title: 'Open a Jaeger or OTLP JSON file' }, 'Open file', input);
}

function alertBox(message) {
  clear(view);
  view.append(h('div', { class: 'pad' }, h('div', { class: 'error-box', role: 'alert' }, message)));
}

function tenantPicker() {
  if (!settings.multiTenancy) return null;
  const input = h('input', { id: 'tenant', class: 'tenant-input', value: tenant(), placeholder: 'tenant', title: 'Tenant (sent as X-Scope-OrgID)', spellcheck: false });
  input.addEventListener('change', () => {
    setTenant(input.value.trim());
    route();
  });
  return h('label', { class: 'tenant' }, 'Tenant ', input);
}

function tokenField() {
  if (!settings.auth) return null;
  const input = h('input', { id: 'token', type: 'password', class: 'tenant-input', value: token(), placeholder: 'token', title: 'Bearer token (kept for this tab only)', autocomplete: 'off' });
  input.addEventListener('change', () => {
    setToken(input.value.trim());
    route();
  });
  return h('label', { class: 'tenant' }, 'Token ', input);
}

function themeToggle() {
  const stored = localStorage.getItem('tracekeeper.theme');
  const dark = stored ? stored === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches;
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
  const button = h('button', { class: 'ghost', id: 'theme-toggle', title: 'Switch between light and dark' }, dark ? 'Light' : 'Dark');
  button.addEventListener('click', () => {
    const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
    document.documentElement.dataset.theme = next;
    localStorage.setItem('tracekeeper.theme', next);
    button.textContent = next === 'dark' ? 'Light' : 'Dark';
  });
  return button;
}

function init() {
  const nav = document.getElementById('nav');
  const link = (path, label) => h('a', { href: settings.base + path, 'data-link': true, dataset: { prefix: path } }, label);
  nav.append(link('/search', 'Search'), link('/graph', 'Metrics'), link('/compare', 'Compare'), link('/dependencies', 'Service map'));
  document.querySelector('.brand').setAttribute('href', `${settings.base}/search`);
  document.getElementById('topbar-right').append(...[tokenField(), tenantPicker(), fileButton(), themeToggle()].filter(Boolean));
  document.addEventListener('click', (e) => {
    const a = e.target.closest?.('a[data-link]');
    if (!a || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || a.target) return;
    e.preventDefault();
    const url = new URL(a.href, location.href);
    navigate(url.pathname.slice(settings.base.length) + url.search);
  });
  window.addEventListener('popstate', route);
  window.addEventListener('tracekeeper:navigate', (e) => navigate(e.detail.path, { replace: e.detail.replace }));
  route();
}

init();
