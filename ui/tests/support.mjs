// Starts the real tracekeeper binary on free loopback ports, sends spans through its
// OTLP/HTTP receiver, and drives Debian's Chromium with playwright-core. Nothing here
// is optional: a missing binary, browser or driver fails the test, saying what to do.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, mkdirSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';

export const CHROMIUM = process.env.TRACEKEEPER_CHROMIUM || '/usr/bin/chromium';

export function binary() {
  const bin = process.env.TRACEKEEPER_BIN;
  if (!bin || !existsSync(bin)) {
    throw new Error(`TRACEKEEPER_BIN must name a built tracekeeper binary (got ${bin}); run the UI tests through ops/test.sh`);
  }
  return bin;
}

export function playwright() {
  const dir = process.env.TRACEKEEPER_NODE_DIR;
  if (!dir) throw new Error('TRACEKEEPER_NODE_DIR must name the folder where ops/test.sh installed playwright-core');
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium fonts-liberation`);
  return createRequire(join(dir, 'package.json'))('playwright-core');
}

export function screenshotDir() {
  const dir = process.env.TRACEKEEPER_SCREENSHOTS || join(tmpdir(), 'tracekeeper-ui-screenshots');
  mkdirSync(dir, { recursive: true });
  return dir;
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export class Server {
  static async start(extra = [], dataDir = null) {
    const server = new Server();
    server.dataDir = dataDir || mkdtempSync(join(tmpdir(), 'tk-ui-'));
    server.ownsDir = !dataDir;
    const [grpc, http, zipkin, query] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    server.otlpHttp = `http://127.0.0.1:${http}`;
    server.query = `http://127.0.0.1:${query}`;
    const baseAt = extra.indexOf('--ui-base-path');
    server.base = baseAt >= 0 ? extra[baseAt + 1] : '';
    server.args = ['all-in-one', '--data-dir', server.dataDir, '--otlp-grpc-addr', `127.0.0.1:${grpc}`,
      '--otlp-http-addr', `127.0.0.1:${http}`, '--zipkin-addr', `127.0.0.1:${zipkin}`, '--query-addr', `127.0.0.1:${query}`,
      // Jaeger's gRPC query API is not used here: any free port, so servers never share 16685.
      '--query-grpc-addr', '127.0.0.1:0', ...extra];
    await server.spawn();
    return server;
  }

  async spawn() {
    this.log = '';
    this.child = spawn(binary(), this.args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } });
    this.child.stdout.on('data', (d) => { this.log += d; });
    this.child.stderr.on('data', (d) => { this.log += d; });
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error(`tracekeeper exited (${this.child.exitCode}):\n${this.log}`);
      try {
        if ((await fetch(`${this.query}/ready`)).ok) return;
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`tracekeeper was not ready within 30 s:\n${this.log}`);
  }

  async restart(extra) {
    await this.stop(false);
    this.args = [...this.args.filter((a, i, all) => !extra.includes(a) && !extra.includes(all[i - 1])), ...extra];
    await this.spawn();
  }

  async stop(removeData = true) {
    if (this.child && this.child.exitCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      await exited;
    }
    if (removeData && this.ownsDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** Sends OTLP JSON; `tenant` goes in X-Scope-OrgID. Fails on anything but 200. */
  async ingest(resourceSpans, tenant) {
    const headers = { 'Content-Type': 'application/json' };
    if (tenant) headers['X-Scope-OrgID'] = tenant;
    const r = await fetch(`${this.otlpHttp}/v1/traces`, { method: 'POST', headers, body: JSON.stringify({ resourceSpans }) });
    if (!r.ok) throw new Error(`ingest answered ${r.status}: ${await r.text()}`);
    return r.json();
  }

  /** Waits until the query API returns `count` spans of the trace. */
  async waitForTrace(traceId, count, tenant) {
    const headers = tenant ? { 'X-Scope-OrgID': tenant } : {};
    const deadline = Date.now() + 30_000;
    let last = 0;
    while (Date.now() < deadline) {
      const r = await fetch(`${this.query}${this.base}/api/traces/${traceId}`, { headers });
      if (r.ok) {
        last = (await r.json()).data?.[0]?.spans?.length || 0;
        if (last >= count) return;
      }
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error(`trace ${traceId} had ${last} of ${count} spans after 30 s`);
  }
}

export async function launchBrowser() {
  const { chromium } = playwright();
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--enable-precise-memory-info'],
  });
}

const hex = (n, width) => n.toString(16).padStart(width, '0');
let counter = 1;
export function traceId() {
  return hex(Date.now(), 16) + hex(counter++ * 7919 + Math.floor(Math.random() * 1e6), 16);
}
export function spanId(i) {
  return hex(0x1000 + i, 16);
}

/** One OTLP span. Times are µs offsets from `base` (ns, BigInt). */
export function span({ trace, id, parent, name, start, duration, kind = 1, error = false, attributes = {}, events = [], links = [] }, base) {
  const ns = (us) => (base + BigInt(Math.round(us * 1000))).toString();
  const value = (v) => (typeof v === 'number' ? (Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v }) : typeof v === 'boolean' ? { boolValue: v } : { stringValue: String(v) });
  return {
    traceId: trace, spanId: id, parentSpanId: parent || '', name, kind,
    startTimeUnixNano: ns(start), endTimeUnixNano: ns(start + duration),
    attributes: Object.entries(attributes).map(([key, v]) => ({ key, value: value(v) })),
    events: events.map((e) => ({ name: e.name, timeUnixNano: ns(e.at), attributes: [] })),
    links: links.map((l) => ({ traceId: l.trace, spanId: l.span })),
    status: error ? { code: 2, message: 'boom' } : {},
  };
}

/** Groups spans by service into OTLP resourceSpans. */
export function resourceSpans(bySpan) {
  const groups = new Map();
  for (const [service, s] of bySpan) {
    if (!groups.has(service)) groups.set(service, []);
    groups.get(service).push(s);
  }
  return [...groups].map(([service, spans]) => ({
    resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
    scopeSpans: [{ scope: { name: 'ui-test', version: '1.0' }, spans }],
  }));
}

export function nowNs(minutesAgo = 2) {
  return BigInt(Date.now() - minutesAgo * 60_000) * 1_000_000n;
}
