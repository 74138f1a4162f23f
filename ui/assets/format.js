// Formatting and parsing shared by every view. Times inside the UI are microseconds
// (Jaeger's unit) held in doubles, exact to well past a century.

export function formatDuration(us) {
  if (!Number.isFinite(us)) return '—';
  const abs = Math.abs(us);
  if (abs < 1) return `${Math.round(us * 1000)}ns`;
  if (abs < 1000) return `${trim(us)}µs`;
  if (abs < 1e6) return `${trim(us / 1000)}ms`;
  if (abs < 60e6) return `${trim(us / 1e6)}s`;
  if (abs < 3600e6) return `${Math.floor(us / 60e6)}m${trim((us % 60e6) / 1e6)}s`;
  return `${Math.floor(us / 3600e6)}h${Math.floor((us % 3600e6) / 60e6)}m`;
}

function trim(n) {
  return n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1).replace(/\.0$/, '') : n.toFixed(2).replace(/\.?0+$/, '');
}

export function formatTime(us) {
  const d = new Date(us / 1000);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function formatAgo(us, nowUs = Date.now() * 1000) {
  const s = Math.max(0, (nowUs - us) / 1e6);
  if (s < 60) return `${Math.floor(s)}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

const UNITS = { ns: 1e-3, us: 1, 'µs': 1, 'μs': 1, ms: 1e3, s: 1e6, m: 60e6, h: 3600e6 };

/**
 * A Go duration, as the server takes it: '1.5ms' -> 1500 (µs), '1h30m' -> 5.4e9, '0'.
 * Throws an Error naming the problem.
 */
export function parseDuration(text) {
  const t = String(text).trim();
  if (t === '0') return 0;
  const body = t.startsWith('+') ? t.slice(1) : t;
  const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  while (body && pos < body.length) {
    part.lastIndex = pos;
    const m = part.exec(body);
    if (!m) { pos = -1; break; }
    total += Number(m[1]) * UNITS[m[2]];
    pos = part.lastIndex;
  }
  if (!body || pos < 0) throw new Error(`"${t}" is not a duration: write numbers with units, such as 1.5ms, 200us, 2s or 1h30m`);
  return total;
}

/**
 * Tags as logfmt: `http.status_code=500 error=true msg="a b"`. Returns [[key, value]];
 * throws an Error naming the first malformed pair.
 */
export function parseTags(text) {
  const out = [];
  const re = /\s*([^\s=]+)=("((?:[^"\\]|\\.)*)"|[^\s"]*)\s*/y;
  let pos = 0;
  const s = String(text).trim();
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (!m || m[0].length === 0) {
      const bad = s.slice(pos).split(/\s+/)[0];
      throw new Error(`tag "${bad}" must be key=value (quote values with spaces: key="a b")`);
    }
    const value = m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : m[2];
    if (value === '') throw new Error(`tag "${m[1]}" has no value: write ${m[1]}=value`);
    out.push([m[1], value]);
    pos = re.lastIndex;
  }
  return out;
}

export function formatTags(pairs) {
  return pairs.map(([k, v]) => (/[\s"]/.test(v) ? `${k}="${v.replace(/(["\\])/g, '\\$1')}"` : `${k}=${v}`)).join(' ');
}

/** A stable colour per service: a fixed palette, assigned in the order given. */
const PALETTE = ['#3b82f6', '#f59e0b', '#10b981', '#8b5cf6', '#ec4899', '#14b8a6', '#f97316', '#6366f1',
  '#84cc16', '#06b6d4', '#a855f7', '#eab308', '#0ea5e9', '#d946ef', '#22c55e', '#fb7185'];

export function colorFor(index) {
  return PALETTE[index % PALETTE.length];
}
