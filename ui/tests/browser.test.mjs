// The web UI in a real browser (Debian's Chromium) against the real binary, with
// spans sent through the real OTLP/HTTP receiver. Each test asserts what a person
// sees; screenshots land in $TRACEKEEPER_SCREENSHOTS.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Server, launchBrowser, screenshotDir, traceId, spanId, span, resourceSpans, nowNs } from './support.mjs';

const ACME = 'acme', GLOBEX = 'globex';
const T1 = traceId(), T2 = traceId(), T3 = traceId(), T5 = traceId();
const shots = screenshotDir();
let server, browser;

// T1: GET /checkout 0..100ms with reserve 10..40, SELECT stock 20..60, charge 50..90.
// Its critical path is GET /checkout, reserve and charge (SELECT overlaps charge).
function t1(base) {
  return resourceSpans([
    ['frontend', span({ trace: T1, id: spanId(1), name: 'GET /checkout', start: 0, duration: 100_000, kind: 2, error: true, attributes: { 'http.status_code': 500, 'http.route': '/checkout' } }, base)],
    ['backend', span({ trace: T1, id: spanId(2), parent: spanId(1), name: 'reserve', start: 10_000, duration: 30_000, kind: 2, events: [{ name: 'cache miss', at: 15_000 }], links: [{ trace: T2, span: spanId(1) }] }, base)],
    ['db', span({ trace: T1, id: spanId(3), parent: spanId(1), name: 'SELECT stock', start: 20_000, duration: 40_000, kind: 3 }, base)],
    ['backend', span({ trace: T1, id: spanId(4), parent: spanId(1), name: 'charge', start: 50_000, duration: 40_000, kind: 2 }, base)],
  ]);
}

// T2: the same request without the db call, with a second reserve and a cache call.
function t2(base) {
  return resourceSpans([
    ['frontend', span({ trace: T2, id: spanId(1), name: 'GET /checkout', start: 0, duration: 80_000, kind: 2, attributes: { 'http.status_code': 200 } }, base)],
    ['backend', span({ trace: T2, id: spanId(2), parent: spanId(1), name: 'reserve', start: 10_000, duration: 20_000, kind: 2 }, base)],
    ['backend', span({ trace: T2, id: spanId(3), parent: spanId(1), name: 'reserve', start: 30_000, duration: 20_000, kind: 2 }, base)],
    ['cache', span({ trace: T2, id: spanId(4), parent: spanId(1), name: 'GET', start: 5_000, duration: 1_000, kind: 3 }, base)],
    ['backend', span({ trace: T2, id: spanId(5), parent: spanId(1), name: 'charge', start: 50_000, duration: 25_000, kind: 2 }, base)],
  ]);
}

async function newPage(tenant = ACME) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  await context.addInitScript((t) => { if (!localStorage.getItem('tracekeeper.tenant')) localStorage.setItem('tracekeeper.tenant', t); }, tenant);
  const page = await context.newPage();
  page.on('pageerror', (e) => { page.errors = [...(page.errors || []), e.message]; });
  return page;
}

async function done(page, shot) {
  if (shot) await page.screenshot({ path: join(shots, `${shot}.png`) });
  assert.deepEqual(page.errors || [], [], 'no script errors on the page');
  await page.context().close();
}

const rowNames = (page) => page.$$eval('.tl-row:not([hidden]) .tl-op', (els) => els.map((e) => e.textContent));

/** Rows are painted on the next animation frame: wait for them, then compare. */
async function expectRows(page, expected) {
  await page.waitForFunction((want) => JSON.stringify([...document.querySelectorAll('.tl-row:not([hidden]) .tl-op')].map((e) => e.textContent)) === want,
    JSON.stringify(expected), { timeout: 5_000 }).catch(() => {});
  assert.deepEqual(await rowNames(page), expected);
}

describe('web UI', { timeout: 600_000 }, () => {
  before(async () => {
    server = await Server.start(['--multi-tenancy']);
    const base = nowNs(3);
    await server.ingest(t1(base), ACME);
    await server.ingest(t2(base + 60_000_000_000n), ACME);
    await server.ingest(resourceSpans([['globex-secret', span({ trace: T3, id: spanId(1), name: 'classified', start: 0, duration: 5_000 }, base)]]), GLOBEX);
    await server.waitForTrace(T1, 4, ACME);
    await server.waitForTrace(T2, 5, ACME);
    await server.waitForTrace(T3, 1, GLOBEX);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('search lists the tenant\'s traces, and a deep link survives a reload', async () => {
    const page = await newPage();
    await page.goto(`${server.query}/search?service=frontend&lookback=1h`);
    await page.waitForSelector('#result-list li');
    assert.equal(await page.locator('#result-list li').count(), 2);
    assert.equal(await page.inputValue('#f-service'), 'frontend');
    const first = await page.locator('#result-list li').first().innerText();
    assert.match(first, /frontend: GET \/checkout/);
    assert.equal(await page.locator('#scatter circle').count(), 2);
    await page.reload();
    await page.waitForSelector('#result-list li');
    assert.equal(await page.locator('#result-list li').count(), 2);
    assert.equal(new URL(page.url()).search, '?service=frontend&lookback=1h');
    await page.selectOption('#sort', 'spans');
    assert.match(await page.locator('#result-list li').first().innerText(), /5 spans/);
    // The order is in the URL, so it survives a reload and a shared link.
    assert.equal(new URL(page.url()).searchParams.get('sort'), 'spans');
    await page.reload();
    await page.waitForSelector('#result-list li');
    assert.equal(await page.inputValue('#sort'), 'spans');
    assert.match(await page.locator('#result-list li').first().innerText(), /5 spans/);
    await done(page, 'search');
  });

  test('tags are typed as the API types them: http.status_code=500 finds the integer', async () => {
    const page = await newPage();
    await page.goto(`${server.query}/search?tags=${encodeURIComponent('http.status_code=500')}&lookback=1h`);
    await page.waitForSelector('#result-list li');
    const items = page.locator('#result-list li');
    assert.equal(await items.count(), 1);
    assert.equal(await items.first().getAttribute('data-trace-id'), T1);
    assert.match(await items.first().innerText(), /1 error\b/);
    await done(page);
  });

  test('the form writes its state into the URL', async () => {
    const page = await newPage();
    await page.goto(`${server.query}/search`);
    await page.waitForSelector('#f-service option[value="backend"]', { state: 'attached' });
    await page.selectOption('#f-service', 'backend');
    await page.waitForSelector('#f-operation option:has-text("charge (server)")', { state: 'attached' });
    await page.fill('#f-minDuration', '30ms');
    await page.click('#find');
    await page.waitForURL(/minDuration=30ms/);
    const params = new URL(page.url()).searchParams;
    assert.equal(params.get('service'), 'backend');
    await page.waitForSelector('#result-list li');
    // T1 has backend spans of 30 and 40ms; T2's backend spans are 20, 20 and 25ms.
    assert.equal(await page.locator('#result-list li').count(), 1);
    await done(page);
  });

  test('TraceQL mode and a custom range find the same traces as the form', async () => {
    const page = await newPage();
    const q = encodeURIComponent('{ resource.service.name = "frontend" && span.http.status_code = 500 }');
    await page.goto(`${server.query}/search?mode=traceql&q=${q}&lookback=1h`);
    await page.waitForSelector('#result-list li');
    assert.equal(await page.locator('#result-list li').count(), 1);
    assert.equal(await page.getAttribute('#result-list li', 'data-trace-id'), T1);
    assert.match(await page.innerText('#result-list li'), /frontend: GET \/checkout/);
    assert.equal(await page.inputValue('#f-mode'), 'traceql');

    const local = (ms) => new Date(ms - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 16);
    const [from, to] = [local(Date.now() - 30 * 60_000), local(Date.now() + 60_000)];
    await page.goto(`${server.query}/search?service=frontend&lookback=custom&start=${from}&end=${to}`);
    await page.waitForSelector('#result-list li');
    assert.equal(await page.locator('#result-list li').count(), 2);
    assert.ok(await page.isVisible('#f-start'));
    const past = [local(Date.now() - 120 * 60_000), local(Date.now() - 90 * 60_000)];
    await page.goto(`${server.query}/search?service=frontend&lookback=custom&start=${past[0]}&end=${past[1]}`);
    await page.waitForSelector('#no-results');
    await done(page);
  });

  test('TraceQL mode autocompletes names and values from the tag APIs', async () => {
    const page = await newPage();
    await page.goto(`${server.query}/search?mode=traceql&lookback=1h`);
    const area = page.locator('#f-q');
    await area.click();
    await area.pressSequentially('{ resource.service.na');
    await page.waitForSelector('#f-q-suggestions li');
    assert.ok((await page.locator('#f-q-suggestions li').allInnerTexts()).includes('resource.service.name'));
    await page.locator('#f-q-suggestions li', { hasText: 'resource.service.name' }).first().dispatchEvent('mousedown');
    assert.equal(await area.inputValue(), '{ resource.service.name');
    await area.pressSequentially(' = "fr');
    await page.waitForFunction(() => [...document.querySelectorAll('#f-q-suggestions li')].map((li) => li.textContent).join() === 'frontend');
    await page.screenshot({ path: join(shots, 'traceql-autocomplete.png') });
    await area.press('Enter');
    assert.equal(await area.inputValue(), '{ resource.service.name = "frontend"');
    assert.ok(await page.locator('#f-q-suggestions').isHidden());
    await area.pressSequentially(' }');
    await page.click('#find');
    await page.waitForSelector('#result-list li');
    assert.equal(await page.locator('#result-list li').count(), 2);
    await done(page);
  });

  test('the metrics page charts a TraceQL metrics query and keeps it in the URL', async () => {
    const page = await newPage();
    // duration > 0 reads the spans, so the answer does not wait for the RED counts' flush.
    const q = '{ duration > 0 } | count_over_time() by (resource.service.name)';
    await page.goto(`${server.query}/graph?q=${encodeURIComponent(q)}&lookback=1h&step=60s`);
    await page.waitForSelector('#metrics-chart path.series');
    const legend = (await page.locator('#metrics-legend li').allInnerTexts()).sort();
    assert.deepEqual(legend, ['resource.service.name=backend', 'resource.service.name=cache', 'resource.service.name=db', 'resource.service.name=frontend']);
    assert.equal(await page.locator('#metrics-chart path.series').count(), 4);
    await page.screenshot({ path: join(shots, 'metrics-page.png') });
    await page.reload();
    await page.waitForSelector('#metrics-chart path.series');
    assert.equal(await page.inputValue('#m-q'), q);
    await page.fill('#m-q', '{ } | rate() | topk(');
    await page.click('#m-run');
    const error = await page.waitForSelector('#metrics-error');
    assert.match(await error.innerText(), /The server refused the request: TraceQL/);
    assert.match(page.url(), /\/graph\?q=/);
    await done(page);
  });

  test('a 400 from the server and a bad field are shown in plain words', async () => {
    const page = await newPage();
    await page.goto(`${server.query}/search?mode=traceql&q=${encodeURIComponent('{ .a = }')}&lookback=1h`);
    const error = await page.waitForSelector('.error-box');
    assert.match(await error.innerText(), /The server refused the request: /);
    await done(page, 'search-error');
    const page2 = await newPage();
    await page2.goto(`${server.query}/search?minDuration=fast`);
    assert.match(await (await page2.waitForSelector('.error-box')).innerText(), /Min span duration: "fast" is not a duration/);
    await done(page2);
  });

  test('the trace view lists every span and marks the known critical path', async () => {
    const page = await newPage();
    await page.goto(`${server.query}/trace/${T1}`);
    await page.waitForSelector('[data-ready]');
    assert.equal(await page.innerText('#trace-span-count'), '4');
    assert.equal(await page.innerText('#trace-errors'), '1');
    assert.equal(await page.innerText('#trace-services'), '3');
    assert.equal(await page.innerText('#trace-depth'), '2');
    assert.deepEqual(await rowNames(page), ['GET /checkout', 'reserve', 'SELECT stock', 'charge']);
    const critical = await page.$$eval('.tl-row.critical:not([hidden]) .tl-op', (els) => els.map((e) => e.textContent).sort());
    assert.deepEqual(critical, ['GET /checkout', 'charge', 'reserve']);
    assert.equal(await page.innerText('#critical-count'), '3 spans');
    await done(page, 'trace');
  });

  test('span detail: typed attributes, events at their offset, a link into another trace', async () => {
    const page = await newPage();
    await page.goto(`${server.query}/trace/${T1}`);
    await page.waitForSelector('[data-ready]');
    await page.click('.tl-row:has(.tl-op:text-is("GET /checkout"))');
    const detail = page.locator('#span-detail');
    await detail.waitFor();
    const attr = await detail.locator('tr:has(th:text-is("http.status_code"))').innerText();
    assert.match(attr, /int64\s+500/);
    assert.match(await detail.innerText(), /ERROR: boom/);
    await page.click('.tl-row:has(.tl-op:text-is("reserve"))');
    assert.match(await detail.innerText(), /\+5ms\s+cache miss/);
    await done(page, 'trace-detail');
    const page2 = await newPage();
    await page2.goto(`${server.query}/trace/${T1}`);
    await page2.waitForSelector('[data-ready]');
    await page2.click('.tl-row:has(.tl-op:text-is("reserve"))');
    await page2.click(`#span-detail a:has-text("${T2}")`);
    await page2.waitForURL(new RegExp(`/trace/${T2}$`));
    await page2.waitForSelector('[data-ready]');
    assert.equal(await page2.innerText('#trace-span-count'), '5');
    await done(page2);
  });

  test('find, filters, keyboard, collapse and statistics', async () => {
    const page = await newPage();
    await page.goto(`${server.query}/trace/${T1}`);
    await page.waitForSelector('[data-ready]');
    await page.fill('#find-input', 'backend');
    await page.waitForFunction(() => document.querySelector('#find-count').textContent === '2 matches');
    assert.equal(await page.locator('.tl-row.match:not([hidden])').count(), 2);
    await page.press('#find-input', 'Enter');
    assert.equal(await page.innerText('#find-count'), '1 of 2');

    await page.check('#filter-errors');
    await expectRows(page, ['GET /checkout']);
    assert.match(await page.innerText('#shown-count'), /1 of 4 spans/);
    await page.uncheck('#filter-errors');
    await page.fill('#filter-min', '35ms');
    await page.press('#filter-min', 'Enter');
    await expectRows(page, ['GET /checkout', 'SELECT stock', 'charge']);
    await page.fill('#filter-min', 'soon');
    await page.press('#filter-min', 'Enter');
    assert.match(await page.innerText('#filter-error'), /not a duration/);
    await page.fill('#filter-min', '');
    await page.press('#filter-min', 'Enter');

    await page.click('#timeline-scroll');
    await page.keyboard.press('Home');
    await page.keyboard.press('ArrowDown');
    assert.equal(await page.innerText('.tl-row.selected .tl-op'), 'reserve');
    assert.match(await page.innerText('#span-detail .detail-title'), /reserve/);
    await page.keyboard.press('ArrowLeft'); // a leaf: moves to its parent
    assert.equal(await page.innerText('.tl-row.selected .tl-op'), 'GET /checkout');
    await page.keyboard.press('ArrowLeft'); // collapses it
    await expectRows(page, ['GET /checkout']);
    await page.keyboard.press('ArrowRight');
    await expectRows(page, ['GET /checkout', 'reserve', 'SELECT stock', 'charge']);

    await page.click('#tab-stats');
    const services = await page.$$eval('#stats-services tbody tr', (rows) => rows.map((r) => r.cells[0].textContent));
    assert.deepEqual(services.sort(), ['backend', 'db', 'frontend']);
    // frontend's self time: 100ms less the union of its children (10..90) = 20ms.
    const frontend = await page.$$eval('#stats-services tbody tr', (rows) => rows.find((r) => r.cells[0].textContent === 'frontend').cells[4].textContent);
    assert.equal(frontend, '20ms');
    await done(page, 'trace-stats');
  });

  test('downloads the trace as OTLP JSON and as Jaeger JSON', async () => {
    const page = await newPage();
    await page.goto(`${server.query}/trace/${T1}`);
    await page.waitForSelector('[data-ready]');
    for (const [button, count] of [['#download-otlp', (j) => j.result.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)).length], ['#download-jaeger', (j) => j.data[0].spans.length]]) {
      const [download] = await Promise.all([page.waitForEvent('download'), page.click(button)]);
      const json = JSON.parse(readFileSync(await download.path(), 'utf8'));
      assert.equal(count(json), 4, button);
      assert.match(download.suggestedFilename(), new RegExp(`^trace-${T1}\\.(otlp|jaeger)\\.json$`));
    }
    await done(page);
  });

  test('compare shows the structural diff with counts per side', async () => {
    const page = await newPage();
    await page.goto(`${server.query}/compare/${T1}/${T2}`);
    await page.waitForSelector('#diff-table');
    assert.equal(await page.locator('#diff-table tbody tr').count(), 5);
    assert.match(await page.innerText('#diff-table tr[data-side="a"]'), /db: SELECT stock\s+1\s+0/);
    assert.match(await page.innerText('#diff-table tr[data-side="b"]'), /cache: GET\s+0\s+1/);
    assert.match(await page.innerText('#diff-table tr:has-text("reserve")'), /backend: reserve\s+1\s+2/);
    await done(page, 'compare');
  });

  test('the service map draws each cross-service call, and a click searches the service', async () => {
    const page = await newPage();
    await page.goto(`${server.query}/dependencies`);
    await page.waitForSelector('#deps-graph');
    const nodes = await page.$$eval('#deps-graph .node', (els) => els.map((e) => e.dataset.service).sort());
    assert.deepEqual(nodes, ['backend', 'cache', 'db', 'frontend']);
    // frontend -> backend: 2 child spans in T1 and 3 in T2.
    assert.match(await page.$eval('#deps-graph', (g) => g.textContent), /5 calls/);
    await page.screenshot({ path: join(shots, 'dependencies.png') });
    await page.click('#deps-graph .node[data-service="db"]');
    await page.waitForURL(/\/search\?service=db$/);
    await page.waitForSelector('#result-list li');
    assert.equal(await page.locator('#result-list li').count(), 1);
    await done(page);
  });

  test('a tenant never sees another tenant\'s traces', async () => {
    const page = await newPage(ACME);
    await page.goto(`${server.query}/search?lookback=1h`);
    await page.waitForSelector('#result-list li');
    assert.doesNotMatch(await page.innerText('#results'), /globex-secret/);
    assert.equal(await page.locator('#f-service option[value="globex-secret"]').count(), 0);
    await page.goto(`${server.query}/trace/${T3}`);
    assert.match(await (await page.waitForSelector('#trace-error')).innerText(), /was not found/);
    await page.fill('#tenant', GLOBEX);
    await page.press('#tenant', 'Enter');
    await page.waitForSelector('[data-ready]');
    assert.equal(await page.innerText('#trace-title'), 'globex-secret: classified');
    await page.goto(`${server.query}/search?lookback=1h`);
    await page.waitForSelector('#result-list li');
    assert.equal(await page.locator('#result-list li').count(), 1);
    assert.doesNotMatch(await page.innerText('#results'), /checkout/);
    await done(page);
  });

  test('unknown and malformed trace ids get a clear message', async () => {
    const page = await newPage();
    await page.goto(`${server.query}/trace/0000000000000000000000000000dead`);
    assert.match(await (await page.waitForSelector('#trace-error')).innerText(), /Trace 0000000000000000000000000000dead was not found/);
    await page.goto(`${server.query}/trace/not-hex`);
    assert.match(await (await page.waitForSelector('#trace-error')).innerText(), /The server refused the request: invalid trace id/);
    await done(page);
  });

  test('a trace file opens in the trace view and is not stored', async () => {
    const page = await newPage();
    await page.goto(`${server.query}/search`);
    const file = { resourceSpans: t1(nowNs(1)).map((rs) => ({ ...rs, scopeSpans: rs.scopeSpans.map((ss) => ({ ...ss, spans: ss.spans.map((s) => ({ ...s, traceId: T5 })) })) })) };
    await page.setInputFiles('#open-file-input', { name: 'checkout.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(file)) });
    await page.waitForSelector('[data-ready]');
    assert.match(page.url(), /\/open$/);
    assert.equal(await page.innerText('#trace-span-count'), '4');
    assert.match(await page.innerText('.trace-header'), /from file checkout\.json, not stored/);
    const stored = await fetch(`${server.query}/api/traces/${T5}`, { headers: { 'X-Scope-OrgID': ACME } });
    assert.equal(stored.status, 404);
    await page.goto(`${server.query}/search`);
    await page.setInputFiles('#open-file-input', { name: 'junk.json', mimeType: 'application/json', buffer: Buffer.from('{"hello":1}') });
    assert.match(await (await page.waitForSelector('.error-box')).innerText(), /Cannot open junk\.json: not a trace file/);
    await done(page);
  });

  test('dark theme', async () => {
    const page = await newPage();
    await page.goto(`${server.query}/trace/${T2}`);
    await page.waitForSelector('[data-ready]');
    await page.click('#theme-toggle');
    assert.equal(await page.getAttribute('html', 'data-theme'), 'dark');
    await page.reload();
    await page.waitForSelector('[data-ready]');
    assert.equal(await page.getAttribute('html', 'data-theme'), 'dark', 'the choice is kept');
    await done(page, 'trace-dark');
  });

  test('two results picked on the search page open the comparison; a scatter point opens its trace', async () => {
    const page = await newPage();
    await page.goto(`${server.query}/search?service=frontend&lookback=1h`);
    await page.waitForSelector('#result-list li');
    assert.ok(await page.isDisabled('#compare-selected'));
    for (const id of [T1, T2]) await page.check(`#result-list li[data-trace-id="${id}"] input[type=checkbox]`);
    await page.click('#compare-selected');
    await page.waitForURL(/\/compare\/[0-9a-f]+\/[0-9a-f]+$/);
    const [a, b] = new URL(page.url()).pathname.split('/').slice(-2);
    assert.deepEqual([a, b].sort(), [T1, T2].sort());
    await page.waitForSelector('#diff-table');
    await page.goto(`${server.query}/search?service=frontend&lookback=1h`);
    await page.click(`#scatter circle[data-trace-id="${T2}"]`);
    await page.waitForURL(new RegExp(`/trace/${T2}$`));
    await page.waitForSelector('[data-ready]');
    await done(page);
  });

  test('dragging across the minimap zooms the timeline; a double-click shows it all', async () => {
    const page = await newPage();
    await page.goto(`${server.query}/trace/${T1}`);
    await page.waitForSelector('[data-ready]');
    const lastTick = () => page.$eval('.tl-ticks .tick:last-child', (e) => e.textContent);
    assert.equal(await lastTick(), '100ms');
    const box = await page.locator('#minimap').boundingBox();
    await page.mouse.move(box.x + 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    // The window now ends half-way through the 100ms trace.
    await page.waitForFunction(() => /^(4\d|5\d)(\.\d+)?ms$/.test(document.querySelector('.tl-ticks .tick:last-child').textContent));
    assert.ok(await page.isVisible('#minimap-window'));
    await page.dblclick('#minimap');
    await page.waitForFunction(() => document.querySelector('.tl-ticks .tick:last-child').textContent === '100ms');
    await done(page);
  });

  test('a child that starts before its parent carries a clock-skew warning', async () => {
    const skewed = traceId();
    const base = nowNs(2);
    await server.ingest(resourceSpans([
      ['gateway', span({ trace: skewed, id: spanId(1), name: 'proxy', start: 10_000, duration: 20_000 }, base)],
      ['worker', span({ trace: skewed, id: spanId(2), parent: spanId(1), name: 'early', start: 5_000, duration: 2_000 }, base)],
      ['worker', span({ trace: skewed, id: spanId(3), parent: spanId(1), name: 'inside', start: 12_000, duration: 2_000 }, base)],
    ]), ACME);
    await server.waitForTrace(skewed, 3, ACME);
    const page = await newPage();
    await page.goto(`${server.query}/trace/${skewed}`);
    await page.waitForSelector('[data-ready]');
    const warned = await page.$$eval('.tl-row:not([hidden])', (rows) => rows.filter((r) => !r.querySelector('.tl-warn').hidden).map((r) => r.querySelector('.tl-op').textContent));
    assert.deepEqual(warned, ['early']);
    await done(page);
  });

  test('assets are compressed and cached; unknown API paths stay JSON 404s', async () => {
    const html = await (await fetch(`${server.query}/trace/${T1}`)).text();
    const asset = /href="([^"]+style\.css)"/.exec(html)[1];
    const r = await fetch(`${server.query}${asset}`, { headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal(r.headers.get('content-encoding'), 'gzip');
    assert.equal(r.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    const api = await fetch(`${server.query}/api/no-such-thing`);
    assert.equal(api.status, 404);
    assert.match(api.headers.get('content-type'), /application\/json/);
  });
});

describe('web UI: large traces, a cut trace, a base path, turned off', { timeout: 900_000 }, () => {
  const LARGE = 100_000;
  let other, big;
  before(async () => {
    other = await Server.start(['--ui-base-path', '/tk']);
    big = traceId();
    const base = nowNs(2);
    const batch = 10_000;
    for (let from = 0; from < LARGE; from += batch) {
      const spans = [];
      for (let i = from; i < Math.min(LARGE, from + batch); i++) {
        // A wide, shallow tree: every span's parent is (i-1)/10, like fan-out RPCs.
        const parent = i ? spanId(Math.floor((i - 1) / 10)) : '';
        spans.push([`svc-${i % 7}`, span({ trace: big, id: spanId(i), parent, name: `op-${i % 50}`, start: i, duration: LARGE - i + 5, attributes: { 'i': i } }, base)]);
      }
      await other.ingest(resourceSpans(spans));
    }
    await other.waitForTrace(big, LARGE);
    browser = browser?.isConnected() ? browser : await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await other?.stop();
  });

  test('a 100,000-span trace opens with virtualized rows and scrolls to its end', async () => {
    const page = await newPage('');
    await page.goto(`${other.query}/tk/trace/${big}`, { timeout: 120_000 });
    await page.waitForSelector('[data-ready]', { timeout: 120_000 });
    assert.equal(await page.innerText('#trace-span-count'), String(LARGE));
    const laidOut = await page.locator('.tl-row:not([hidden])').count();
    assert.ok(laidOut > 10 && laidOut < 120, `only the rows on screen are laid out (got ${laidOut})`);
    await page.$eval('#timeline-scroll', (el) => { el.scrollTop = el.scrollHeight; });
    await page.waitForFunction((n) => Number(document.querySelector('#timeline').dataset.firstRow) > n - 100, LARGE);
    assert.ok((await page.locator('.tl-row:not([hidden])').count()) < 120);
    await page.click('#collapse-all');
    await expectRows(page, ['op-0']);
    await page.click('#expand-all');
    await page.screenshot({ path: join(shots, 'trace-100k.png') });
    await done(page);
  });

  test('a base path serves the app and the APIs under it', async () => {
    const page = await newPage('');
    await page.goto(`${other.query}/tk/search?lookback=1h`);
    await page.waitForSelector('#result-list li');
    assert.equal(await page.locator('#result-list li').count(), 1);
    await page.click('#result-list li a.result-title');
    await page.waitForURL(new RegExp(`/tk/trace/${big}$`));
    assert.equal((await fetch(`${other.query}/search`)).status, 404, 'nothing is served outside the base path');
    await done(page);
  });

  test('a trace cut at --max-trace-spans says so', async () => {
    await other.restart(['--max-trace-spans', '50']);
    const page = await newPage('');
    await page.goto(`${other.query}/tk/trace/${big}`);
    await page.waitForSelector('[data-ready]');
    assert.equal(await page.innerText('#trace-span-count'), '50');
    assert.match(await page.innerText('#trace-warning'), /trace truncated: only the first 50 spans/);
    await done(page, 'trace-truncated');
  });

  test('a server that goes away is reported in plain words', async () => {
    const gone = await Server.start([]);
    const page = await newPage('');
    await page.goto(`${gone.query}/search?lookback=1h`);
    await page.waitForSelector('#results .empty, #result-list');
    await gone.stop();
    await page.click('#find');
    assert.match(await (await page.waitForSelector('.error-box')).innerText(), /Cannot reach tracekeeper/);
    await done(page);
  });

  test('with tokens required, the page asks for one and then searches', async () => {
    const { createHash } = await import('node:crypto');
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'tk-auth-'));
    const tokens = join(dir, 'tokens.toml');
    const hash = (s) => createHash('sha256').update(s).digest('hex');
    writeFileSync(tokens, `[[token]]\nname = "ui"\nsha256 = "${hash('ui-secret')}"\ntenants = ["*"]\nscopes = ["read", "write"]\n`);
    const guarded = await Server.start(['--auth-tokens-file', tokens]);
    try {
      const page = await newPage('');
      await page.goto(`${guarded.query}/search?lookback=1h`);
      assert.match(await (await page.waitForSelector('.error-box')).innerText(), /Sign-in needed: credentials required/);
      await page.fill('#token', 'ui-secret');
      await page.press('#token', 'Enter');
      await page.waitForSelector('#no-results');
      assert.equal(await page.locator('.error-box').count(), 0);
      await done(page);
    } finally {
      await guarded.stop();
    }
  });

  test('--ui=false serves no UI but keeps the APIs', async () => {
    const off = await Server.start(['--ui=false']);
    try {
      const page = await fetch(`${off.query}/search`);
      assert.equal(page.status, 404);
      assert.match(await page.text(), /--ui=false/);
      assert.equal((await fetch(`${off.query}/api/services`)).status, 200);
    } finally {
      await off.stop();
    }
  });
});
