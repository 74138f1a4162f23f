// The UI's trace model and analyses, run in Node on traces whose answers are worked
// out by hand in the comments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromJaeger, fromOtlp, parseTraceFile, normalizeId, anyText } from '../assets/model.js';
import { criticalPath, selfTimes, statistics, visibleRows, findSpans, skewed, diffTraces } from '../assets/analysis.js';
import { parseTags, parseDuration, formatDuration, formatTags } from '../assets/format.js';
import { contextAt, fieldNames, valueText } from '../assets/traceql.js';

function jaeger(spans, services = {}) {
  const processes = {};
  const traceID = 'abc';
  const out = spans.map(([id, parent, service, name, start, duration, tags = []]) => {
    processes[service] = { serviceName: service, tags: [] };
    return {
      traceID, spanID: id, operationName: name, startTime: start, duration, processID: service, tags,
      references: parent ? [{ refType: 'CHILD_OF', traceID, spanID: parent }] : [],
    };
  });
  return fromJaeger({ traceID, spans: out, processes: { ...processes, ...services } });
}

// root 0..100 with children A 10..40, C 20..60 and B 50..90.
// Walking back from 100: B ends last (90) -> critical; root's own 90..100 is critical.
// From B's start (50): C ends at 60 > 50, so it overlaps B and is skipped; A ends at
// 40 <= 50 -> critical, root's 40..50 too; then root's 0..10. Critical: root, A, B.
const fourSpans = () => jaeger([
  ['r', '', 'frontend', 'GET /', 0, 100],
  ['a', 'r', 'backend', 'A', 10, 30],
  ['c', 'r', 'db', 'C', 20, 40],
  ['b', 'r', 'backend', 'B', 50, 40],
]);

test('critical path: the last-finishing children back from the end', () => {
  const t = fourSpans();
  const { onPath, segments } = criticalPath(t);
  const names = t.spans.filter((_, i) => onPath[i]).map((s) => s.name).sort();
  assert.deepEqual(names, ['A', 'B', 'GET /']);
  const total = segments.reduce((a, s) => a + (s.to - s.from), 0);
  assert.equal(total, 100, 'the segments cover the trace exactly once');
  const rootSegs = segments.filter((s) => t.spans[s.span].name === 'GET /').map((s) => [s.from, s.to]);
  assert.deepEqual(rootSegs, [[0, 10], [40, 50], [90, 100]]);
});

test('self time subtracts the union of the children, not their sum', () => {
  const t = fourSpans();
  const self = selfTimes(t);
  // Children cover 10..40 ∪ 20..60 ∪ 50..90 = 10..90, so the root keeps 20.
  assert.equal(self[t.spans.findIndex((s) => s.name === 'GET /')], 20);
  const stats = statistics(t, 'service');
  const backend = stats.find((s) => s.service === 'backend');
  assert.equal(backend.count, 2);
  assert.equal(backend.total, 70);
  assert.equal(backend.self, 70);
});

test('a 20,000-deep chain builds, walks and finds its critical path without recursion', () => {
  const n = 20000;
  const spans = [];
  for (let i = 0; i < n; i++) spans.push([`s${i}`, i ? `s${i - 1}` : '', `svc${i % 3}`, `op${i}`, i, 2 * n - 2 * i]);
  const t = jaeger(spans);
  assert.equal(t.maxDepth, n);
  assert.equal(criticalPath(t).onPath.reduce((a, b) => a + b, 0), n);
  assert.equal(visibleRows(t, new Uint8Array(n)).length, n);
  const collapsed = new Uint8Array(n);
  collapsed[0] = 1;
  assert.deepEqual(Array.from(visibleRows(t, collapsed)), [0]);
});

test('a parent cycle in hostile data still shows every span', () => {
  const t = jaeger([['x', 'y', 'a', 'X', 0, 10], ['y', 'x', 'a', 'Y', 1, 5], ['z', '', 'a', 'Z', 2, 1]]);
  assert.equal(visibleRows(t, new Uint8Array(3)).length, 3);
});

test('collapsed subtrees are skipped and filters keep tree order', () => {
  const t = fourSpans();
  const root = t.roots[0];
  const collapsed = new Uint8Array(4);
  collapsed[root] = 1;
  assert.deepEqual(Array.from(visibleRows(t, collapsed)), [root]);
  const backend = t.services.indexOf('backend');
  const rows = Array.from(visibleRows(t, collapsed, (i) => t.service[i] === backend)).map((i) => t.spans[i].name);
  assert.deepEqual(rows, ['A', 'B'], 'a filter lists matches even inside collapsed subtrees, in start order');
});

test('find matches names, services and attribute values', () => {
  const t = jaeger([['r', '', 'frontend', 'GET /', 0, 10, [{ key: 'http.status_code', type: 'int64', value: 500 }]], ['a', 'r', 'db', 'SELECT', 1, 2]]);
  assert.equal(findSpans(t, 'select').length, 1);
  assert.equal(findSpans(t, 'DB').length, 1);
  assert.equal(findSpans(t, '500').length, 1);
  assert.equal(findSpans(t, '  ').length, 0);
});

test('clock skew: a child outside its parent is flagged', () => {
  const t = jaeger([['r', '', 'a', 'root', 100, 50], ['k', 'r', 'b', 'early', 90, 5], ['o', 'r', 'b', 'ok', 110, 5]]);
  const flags = skewed(t);
  assert.deepEqual(t.spans.filter((_, i) => flags[i]).map((s) => s.name), ['early']);
});

test('diff: paths only on one side, and counts per side', () => {
  const a = fourSpans();
  const b = jaeger([['r', '', 'frontend', 'GET /', 0, 100], ['a', 'r', 'backend', 'A', 10, 30], ['a2', 'r', 'backend', 'A', 40, 30], ['q', 'r', 'cache', 'GET', 5, 1]]);
  const { rows, totals } = diffTraces(a, b);
  const row = (svc, op) => rows.find((r) => r.service === svc && r.operation === op);
  assert.deepEqual(row('backend', 'A').count, [1, 2]);
  assert.equal(row('db', 'C').side, 'a');
  assert.equal(row('backend', 'B').side, 'a');
  assert.equal(row('cache', 'GET').side, 'b');
  assert.deepEqual(totals, { onlyA: 2, onlyB: 1, both: 2 });
  assert.equal(rows[0].depth, 0);
  assert.ok(rows.slice(1).every((r) => r.depth === 1));
});

test('OTLP JSON: nanosecond times keep their microseconds, base64 ids become hex', () => {
  const t = fromOtlp({
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] },
      scopeSpans: [{ scope: { name: 'lib' }, spans: [
        { traceId: 'AAECAwQFBgcICQoLDA0ODw==', spanId: 'AQIDBAUGBwg=', name: 'root', startTimeUnixNano: '1700000000123456789', endTimeUnixNano: '1700000000123556789', kind: 2, status: { code: 2 } },
      ] }],
    }],
  });
  assert.equal(t.traceId, '000102030405060708090a0b0c0d0e0f');
  assert.equal(t.spans[0].spanId, '0102030405060708');
  assert.equal(t.spans[0].start, 1700000000123456.789);
  assert.equal(t.spans[0].duration, 100);
  assert.equal(t.spans[0].kind, 'server');
  assert.equal(t.errors, 1);
});

test('trace files: Jaeger and OTLP shapes are recognised, anything else is refused by name', () => {
  const j = { data: [{ traceID: 't', spans: [{ traceID: 't', spanID: 's', operationName: 'x', startTime: 1, duration: 1, processID: 'p1', references: [] }], processes: { p1: { serviceName: 'a' } } }] };
  assert.equal(parseTraceFile(j).spans.length, 1);
  assert.throws(() => parseTraceFile({ hello: 1 }), /not a trace file/);
  assert.throws(() => parseTraceFile({ data: [] }), /no trace/);
  assert.equal(normalizeId('ABCDEF0123456789'), 'abcdef0123456789');
});

test('deeply nested attribute values are cut, not recursed into forever', () => {
  let v = { stringValue: 'leaf' };
  for (let i = 0; i < 10000; i++) v = { arrayValue: { values: [v] } };
  assert.match(anyText(v), /…/);
});

test('tags parse as logfmt and errors name the bad pair', () => {
  assert.deepEqual(parseTags('http.status_code=500 error=true msg="a b"'), [['http.status_code', '500'], ['error', 'true'], ['msg', 'a b']]);
  assert.deepEqual(parseTags(''), []);
  assert.throws(() => parseTags('oops'), /tag "oops" must be key=value/);
  assert.throws(() => parseTags('a='), /has no value/);
  assert.deepEqual(parseTags(formatTags([['k', 'x "y" z']])), [['k', 'x "y" z']]);
});

test('durations parse and format', () => {
  assert.equal(parseDuration('1.5ms'), 1500);
  assert.equal(parseDuration('2s'), 2e6);
  assert.equal(parseDuration('250us'), 250);
  // What the server's Go durations take, units in any order and repeated.
  assert.equal(parseDuration('1h30m'), 5400e6);
  assert.equal(parseDuration('2m3.5s'), 123.5e6);
  assert.equal(parseDuration('1s500ms'), 1.5e6);
  assert.equal(parseDuration('0'), 0);
  assert.equal(parseDuration('+10ms'), 10e3);
  assert.equal(parseDuration('1μs'), 1);
  for (const bad of ['fast', '', '-1s', '1h30', '10', '1 h', 'h', '1hh']) {
    assert.throws(() => parseDuration(bad), /not a duration/, bad);
  }
  assert.equal(formatDuration(1500), '1.5ms');
  assert.equal(formatDuration(2e6), '2s');
  assert.equal(formatDuration(0.5), '500ns');
});

test('the TraceQL editor knows whether the cursor is in a field or a value', () => {
  const at = (text) => contextAt(text, text.length);
  assert.deepEqual(at('{ resource.se'), { kind: 'field', partial: 'resource.se', from: 2 });
  assert.deepEqual(at('{ name = "GE'), { kind: 'value', field: 'name', quoted: true, partial: 'GE', from: 9 });
  assert.deepEqual(at('{ span.http.status_code >= 5'), { kind: 'value', field: 'span.http.status_code', quoted: false, partial: '5', from: 27 });
  assert.deepEqual(at('{ .a = 1 && kin'), { kind: 'field', partial: 'kin', from: 12 });
  assert.equal(at('{ name = "GET /a" '), null, 'after a closed value: nothing to complete');
  assert.equal(at('{ } | rate'), null, 'outside a spanset');
  assert.equal(at('no braces'), null);
  assert.deepEqual(fieldNames({ scopes: [{ name: 'span', tags: ['http.method'] }, { name: 'intrinsic', tags: ['name'] }] }), ['name', 'span.http.method']);
  assert.equal(valueText({ type: 'string', value: 'a "b"' }), '"a \\"b\\""');
  assert.equal(valueText({ type: 'int', value: '500' }), '500');
  assert.equal(valueText({ type: 'keyword', value: 'error' }), 'error');
});
