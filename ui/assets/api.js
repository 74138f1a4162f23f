// Calls to tracekeeper's own APIs. Errors become an ApiError whose message is written
// for a person: the server's 400 text, "not found", "too many requests", or the
// network being down.

import { fromJaeger } from './model.js';

const settingsEl = document.querySelector('meta[name="tracekeeper-settings"]');
export const settings = Object.assign(
  { base: '', build: '', multiTenancy: false, auth: false, version: '' },
  settingsEl ? JSON.parse(settingsEl.content) : {},
);

const TENANT_KEY = 'tracekeeper.tenant';
// The token lives for the browser tab only, never on disk.
const TOKEN_KEY = 'tracekeeper.token';

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export function tenant() {
  return localStorage.getItem(TENANT_KEY) || '';
}

export function setTenant(value) {
  if (value) localStorage.setItem(TENANT_KEY, value);
  else localStorage.removeItem(TENANT_KEY);
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function headers() {
  const out = {};
  const t = tenant();
  if (t && settings.multiTenancy) out['X-Scope-OrgID'] = t;
  if (settings.auth && token()) out.Authorization = `Bearer ${token()}`;
  return out;
}

function serverMessage(status, text) {
  try {
    const body = JSON.parse(text);
    if (body?.errors?.[0]?.msg) return body.errors[0].msg;
    if (body?.error?.message) return body.error.message;
    if (typeof body?.message === 'string') return body.message;
  } catch {
    // Not JSON: Zipkin and Tempo answer errors as plain text.
  }
  return text.trim().slice(0, 500) || `HTTP ${status}`;
}

async function call(path, { signal } = {}) {
  let response;
  try {
    response = await fetch(settings.base + path, { headers: headers(), signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'Cannot reach tracekeeper: the network is down or the server has stopped. Try again when it is back.');
  }
  if (response.ok) return response;
  const text = await response.text();
  const message = serverMessage(response.status, text);
  if (response.status === 400) throw new ApiError(400, `The server refused the request: ${message}`);
  if (response.status === 401) throw new ApiError(401, `Sign-in needed: ${message}. Enter a token at the top right.`);
  if (response.status === 403) throw new ApiError(403, `Not allowed: ${message}`);
  if (response.status === 404) throw new ApiError(404, message);
  if (response.status === 429) {
    const retry = response.headers.get('Retry-After');
    throw new ApiError(429, `tracekeeper is busy (too many requests)${retry ? `; retry in ${retry}s` : ''}.`);
  }
  if (response.status === 503) throw new ApiError(503, `tracekeeper is not ready: ${message}`);
  throw new ApiError(response.status, `tracekeeper answered ${response.status}: ${message}`);
}

export async function getJSON(path, options) {
  return (await call(path, options)).json();
}

/** A stored trace as the trace model; an ApiError 404 when there is no such trace. */
export async function fetchTrace(traceId, options) {
  const body = await getJSON(`/api/traces/${encodeURIComponent(traceId)}`, options);
  const data = body.data?.[0];
  if (!data) throw new ApiError(404, body.errors?.[0]?.msg || 'trace not found');
  return fromJaeger(data);
}

/** The body, and the server's note when its answer covers less than was asked. */
export async function getJSONWithNote(path, options) {
  const response = await call(path, options);
  return { body: await response.json(), note: response.headers.get('x-tracekeeper-partial') || '' };
}

export async function getText(path, options) {
  return (await call(path, options)).text();
}

export function qs(params) {
  const sp = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => sp.append(k, x));
    else sp.set(k, String(v));
  }
  const s = sp.toString();
  return s ? `?${s}` : '';
}
