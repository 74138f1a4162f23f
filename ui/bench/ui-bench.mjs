// The UI benchmark (run by ops/bench/ui.sh): in headless Chromium against a running
// all-in-one, for traces of 1,000, 10,000 and 100,000 spans, the time from navigation
// to the first rows painted, frame times while scrolling and on expand-all, and the
// page's JS heap; then the search page's time from submit to results shown. It prints
// numbers and asserts nothing.
import { Server, launchBrowser, traceId, spanId, span, resourceSpans, nowNs } from '../tests/support.mjs';

const query = process.env.BENCH_QUERY;
const otlp = process.env.BENCH_OTLP;
const sizes = (process.env.BENCH_SIZES || '1000,10000,100000').split(',').map(Number);
const server = Object.assign(new Server(), { query, otlpHttp: otlp, base: '' });

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const f = (x) => x.toFixed(1);

async function ingestTrace(n) {
  const id = traceId();
  const base = nowNs(1);
  for (let from = 0; from < n; from += 10_000) {
    const spans = [];
    for (let i = from; i < Math.min(n, from + 10_000); i++) {
      spans.push([`svc-${i % 7}`, span({ trace: id, id: spanId(i), parent: i ? spanId(Math.floor((i - 1) / 10)) : '', name: `op-${i % 50}`, start: i, duration: n - i + 5, attributes: { i, 'http.method': 'GET' } }, base)]);
    }
    await server.ingest(resourceSpans(spans));
  }
  await server.waitForTrace(id, n);
  return id;
}

async function frameTimes(page, action, ms) {
  return page.evaluate(async ([actionName, duration]) => {
    const scroll = document.querySelector('#timeline-scroll');
    const deltas = [];
    let last = performance.now();
    const end = last + duration;
    return new Promise((resolve) => {
      const tick = (now) => {
        deltas.push(now - last);
        last = now;
        if (actionName === 'scroll') scroll.scrollTop += 400;
        if (now < end) requestAnimationFrame(tick);
        else resolve(deltas.slice(1));
      };
      requestAnimationFrame(tick);
    });
  }, [action, ms]);
}

async function main() {
  const browser = await launchBrowser();
  console.log(`machine: ${process.env.BENCH_MACHINE || ''}`);
  console.log('spans    first rows   scroll p50/p95/max (ms)   expand-all (ms)   JS heap (MB)');
  const summary = [];
  for (const n of sizes) {
    const id = await ingestTrace(n);
    const firsts = [], scrolls = [], expands = [], heaps = [];
    for (let run = 0; run < 3; run++) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      await page.goto(`${query}/trace/${id}`, { timeout: 300_000 });
      await page.waitForSelector('[data-ready]', { timeout: 300_000 });
      firsts.push(await page.evaluate(() => performance.getEntriesByName('tk:first-rows')[0].startTime));
      scrolls.push(...await frameTimes(page, 'scroll', 3000));
      await page.click('#collapse-all');
      const t0 = await page.evaluate(() => performance.now());
      await page.click('#expand-all');
      expands.push(await page.evaluate((start) => new Promise((r) => requestAnimationFrame(() => r(performance.now() - start))), t0));
      const cdp = await context.newCDPSession(page);
      await cdp.send('HeapProfiler.collectGarbage');
      await cdp.send('Performance.enable');
      const metrics = (await cdp.send('Performance.getMetrics')).metrics;
      heaps.push(metrics.find((m) => m.name === 'JSHeapUsedSize').value / 2 ** 20);
      await context.close();
    }
    console.log(`${String(n).padEnd(8)} ${f(pct(firsts, 50)).padStart(7)} ms   ${f(pct(scrolls, 50))} / ${f(pct(scrolls, 95))} / ${f(Math.max(...scrolls))}`.padEnd(52) +
      `${f(pct(expands, 50)).padStart(8)}          ${f(Math.max(...heaps))}`);
    summary.push(`trace_${n}_first_rows_ms=${f(pct(firsts, 50))} trace_${n}_scroll_p95_ms=${f(pct(scrolls, 95))}`,
      `trace_${n}_expand_all_ms=${f(pct(expands, 50))} trace_${n}_js_heap_mb=${f(Math.max(...heaps))}`);
  }

  const searchTimes = [];
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const service = process.env.BENCH_SEARCH_SERVICE || '';
  await page.goto(`${query}/search?limit=20&lookback=7d${service ? `&service=${service}` : ''}`);
  await page.waitForSelector('#result-list li', { timeout: 60_000 });
  for (let i = 0; i < 20; i++) {
    await page.evaluate(() => performance.clearMarks());
    await page.click('#find');
    await page.waitForFunction(() => performance.getEntriesByName('tk:results-shown').length > 0, null, { timeout: 60_000 });
    searchTimes.push(await page.evaluate(() => performance.getEntriesByName('tk:results-shown')[0].startTime - performance.getEntriesByName('tk:search-submitted')[0].startTime));
  }
  const shown = await page.locator('#result-list li').count();
  console.log(`search page, ${shown} traces${service ? ` of ${service}` : ''}: submit to results shown p50 ${f(pct(searchTimes, 50))} ms, p95 ${f(pct(searchTimes, 95))} ms`);
  summary.push(`search_p50_ms=${f(pct(searchTimes, 50))} search_p95_ms=${f(pct(searchTimes, 95))}`);
  await browser.close();
  // One machine-readable line; ops/bench/ui.sh appends the server's peak RSS to it.
  process.stdout.write(`SUMMARY bench=ui ${summary.join(' ')}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
